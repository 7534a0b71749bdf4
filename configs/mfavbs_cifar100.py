"""MFAVBs-CC (Wang et al.) on CIFAR-100 (20 superclasses) with the paper's settings.

ViT-small (E = 512, 8 blocks, 8 heads, ConvStem patch 16 at 224x224) with
N = 4 fusing-augmenting blocks (blocks 2, 4, 6, 8 run on the two branches'
tokens concatenated, [B, 396, E]); the frozen openai/clip-vit-base-patch32
image embedding of each un-augmented image as an extra token (T = 198), whose
final output is the feature; CC's objective (tau_I 0.5, tau_C 1.0, feature dim
128); batch 128, Adam 3e-4, 500 epochs; 60,000 images (train + test, 32x32 upsampled to 224), 20 clusters.
T^a: random resized crop 0.08-1, colour jitter 0.4/0.4/0.2/0.1 at p 0.8,
grayscale p 0.2, Gaussian blur sigma 0.1-2, flip; T^b: T^a + solarize p 0.2.

Ablations (the paper's Table 4):
  MethodA (no CLIP anchor): --config.anchor.enabled=False
  MethodB (CLIP anchor, no fusion): --config.model.vit.fusion=none
The CLIP anchors are computed once and cached (`python -m ccjax anchors
--config=<this file>`, or automatically by the trainer); the CLIP model must be
downloadable or cached (`huggingface-cli download openai/clip-vit-base-patch32`).
Needs the dataset prepared once: `python -m ccjax prepare --dataset=cifar100_20`. See docs/mfavbs.md.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the shared presets: configs/common.py
from common import vit_paper_config  # noqa: E402


def get_config():
    return vit_paper_config("mfavbs", "cifar100_20")
