"""VTCC (Ling et al. 2022) on ImageNet-10: the MFAVBs-CC paper's baseline (its Table 4 row
"VTCC").

The MFAVBs-CC paper's ViT-small with N = 0 fusing blocks and no CLIP anchor:
ConvStem + 8 pre-norm blocks, E = 512, 8 heads, patch 16 at 224x224, VTCC's
projectors (hidden 4E); CC's objective (tau_I 0.5, tau_C 1.0, feature dim
128); batch 128, Adam 3e-4, 500 epochs; 13,000 images (train split), 10 clusters.
(VTCC's own code used E = 384 with 12 heads: --config.model.vit.embed_dim=384
--config.model.vit.num_heads=12.) See docs/mfavbs.md.
Needs the dataset prepared once: `python -m ccjax prepare --dataset=imagenet10 --manual_dir=<imagenet train dir>`.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the shared presets: configs/common.py
from common import vit_paper_config  # noqa: E402


def get_config():
    return vit_paper_config("vtcc", "imagenet10", stored_size=224)
