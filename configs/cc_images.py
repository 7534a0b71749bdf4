"""CC on your own images: `--config.dataset.name=folder:<your image folder>`.

    python -m ccjax train --config=configs/cc_images.py --config.dataset.name=folder:/data/photos \\
        [--config.dataset.num_clusters=K]      # K is required when the folder has no class sub-folders

Images are read once from the folder (class sub-folders, if any, become the
labels the report scores against; unreadable files are skipped and listed),
stored at 96x96 and trained at 96x96 with CC's RGB augmentations for 200
epochs (configs/common.py's own_images_config has every setting). Sized for one GPU and
a few thousand to a few hundred thousand images; docs/own_images.md gives the
expected time, what to change (--config.model.*, --config.augment.*) and how to
read the report's "What do the clusters follow?" probe and pick K.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the shared presets: configs/common.py
from common import own_images_config  # noqa: E402


def get_config():
    return own_images_config("cc")
