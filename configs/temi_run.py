"""Re-cluster a finished run with any K in seconds: TEMI's heads on that run's backbone features.

    python -m ccjax train --config=configs/temi_run.py --config.features.source=run:runs/cc_digits \\
        --config.dataset.num_clusters=12 --workdir=runs/cc_digits_k12

The data is the run's own dataset (its config's `dataset` replaces this one's); its backbone
features `h` (last checkpoint, evaluation preprocessing) are embedded once and cached. The fast
path after `python -m ccjax evaluate --suggest_k` proposes another K (docs/temi.md).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the shared presets: configs/common.py
from common import temi_preset  # noqa: E402


def get_config():
    c = temi_preset("run:runs/cc_digits")
    # Sized for a run's own features (a few hundred dimensions, thousands of images): the official
    # 16 heads, each 128 -> 64, learning rate 1e-3 held constant after 5 warm-up epochs, 300 epochs; features
    # standardised and L2-normalised. On cc_digits:
    # docs/temi.md, "Re-clustering a finished run".
    c.temi.hidden_dim = 128
    c.temi.bottleneck_dim = 64
    c.temi.embed_norm = True  # standardise each dimension (the dataset's mean / std), then
    c.temi.l2_norm = True  # L2-normalise: the backbone's h are neither centred nor unit-norm
    c.learning_rate = 1e-3
    c.temi.min_learning_rate = 1e-3
    c.warmup_epochs = 5
    c.num_epochs = 300
    c.checkpoint.every_epochs = 50
    return c
