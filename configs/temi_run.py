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
    c.temi.embed_norm = True  # a contrastive backbone's h is not centred: standardise each dimension
    return c
