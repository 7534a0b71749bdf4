"""GeCC on ImageNet-1k (TFDS imagenet2012's 1,281,167 train images; prepare once with
TensorFlow installed: `python -m ccjax prepare --dataset=imagenet1k --manual_dir=<folder
with ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar>`).

ResNet-50 at 224x224 with SCAN's augmentation and length; the optimiser and
loss settings are GeCC's. Every setting and its source: configs/common.py's imagenet_scale_config.
Streams the data from disk (docs/datasets.md, "Streaming").
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the shared presets: configs/common.py
from common import imagenet_scale_config  # noqa: E402


def get_config():
    return imagenet_scale_config("gecc", "imagenet1k")
