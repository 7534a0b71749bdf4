"""TEMI on your own images: a clustering head on frozen CLIP (or DINOv2) features, minutes on a CPU.

    python -m ccjax train --config=configs/temi_images.py --config.dataset.name=folder:/data/photos \\
        [--config.dataset.num_clusters=K] [--config.features.source=dinov2:facebook/dinov2-small]

The folder is read once and stored at 224x224 (the encoders' input size); every image is embedded
once with the frozen encoder (cached), then TEMI's 16 heads train on the cached features
(configs/common.py temi_preset; docs/temi.md). metrics.json also holds k-means on the same features.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the shared presets: configs/common.py
from common import temi_preset  # noqa: E402


def get_config():
    c = temi_preset("clip:openai/clip-vit-base-patch32")
    c.dataset.name = "folder:./images"  # --config.dataset.name=folder:<your image folder>
    c.dataset.image_size = 224
    c.dataset.num_clusters = -1  # the number of class sub-folders; set K for a flat folder
    return c
