"""GeCC on SCAN's ImageNet-200 (the train images of its 200 classes; prepare once from your
ImageNet train set and SCAN's class list: `python -m ccjax prepare --dataset=imagenet200
--manual_dir=<folder with ILSVRC2012_img_train.tar and imagenet_200.txt>`).

ResNet-50 at 224x224 with SCAN's augmentation and length; the optimiser and
loss settings are GeCC's. Every setting and its source: configs/common.py's imagenet_scale_config.
Streams the data from disk (docs/datasets.md, "Streaming").
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the shared presets: configs/common.py
from common import imagenet_scale_config  # noqa: E402


def get_config():
    return imagenet_scale_config("gecc", "imagenet200")
