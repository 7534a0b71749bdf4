"""MFAVBs-CC on the embedded digits (scikit-learn's 1,797 8x8 images): a CPU-sized plumbing demo.

A tiny ViT with the paper's structure: views upsampled to 16x16, a ConvStem of
two stride-2 convs (patch 4, so a 4x4 grid of 16 patches), E = 32, 4 blocks,
4 heads, N = 2 fusing-augmenting blocks (blocks 2 and 4 fused, as the paper
fuses every second block), plus the CLIP anchor token (T = 16 + 2 = 18; 36
inside a fused block). The anchor comes from a tiny, randomly initialised CLIP
(projection dim 32 = E) made on first use in ~/.cache/ccjax/tiny_random_clip:
it exercises the whole anchor path (preprocessing, cached embeddings, the extra
token) but carries no semantics, so it is NOT the paper's pretrained anchor.
For a real anchor point --config.anchor.model at a downloaded CLIP and set
--config.anchor.project=True (its 512-d embedding is projected to E = 32).
`python -m ccjax train --config=configs/mfavbs_digits.py`
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the shared presets: configs/common.py
from ccjax.config import get_base_config  # noqa: E402
from common import digits_augment_config  # noqa: E402


def get_config():
    c = get_base_config()
    c.method = "mfavbs"
    c.dataset.name = "digits"
    c.batch_size = 256
    c.num_epochs = 100
    c.learning_rate = 1e-3
    c.model.backbone = "vit"
    c.model.feature_dim = 32
    c.model.vit.embed_dim = 32
    c.model.vit.depth = 4
    c.model.vit.num_heads = 4
    c.model.vit.patch_size = 4
    c.model.vit.mlp_ratio = 4.0
    c.model.vit.num_fusing_blocks = 2
    c.model.vit.fusion = "tokens"
    c.anchor.enabled = True
    c.anchor.model = "~/.cache/ccjax/tiny_random_clip"  # ccjax.clip.TINY_CLIP_DIR: made on first use
    c.anchor.project = False
    c.augment = digits_augment_config(image_size=16, crop_scale=(0.5, 1.0))
    c.augment2.solarize_p = 0.2  # T^b = T^a + solarize, as the paper
    c.eval.batch_size = 512
    c.checkpoint.every_epochs = 10
    c.log_every_steps = 7
    return c
