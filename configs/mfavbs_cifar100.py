"""MFAVBs-CC (Wang et al.) on CIFAR-100 (20 superclasses) with the paper's settings.

ViT-small (E = 512, 8 blocks, 16 heads, ConvStem patch 16 at 224x224) with
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
The CLIP anchors are computed once and cached (`python -m ccjax.anchors
--config=<this file>`, or automatically by the trainer); the CLIP model must be
downloadable or cached (`huggingface-cli download openai/clip-vit-base-patch32`).
Needs the dataset prepared once: `python -m ccjax.prepare --dataset=cifar100_20`. See docs/mfavbs.md.
"""

from ccjax.config_base import get_base_config


def get_config():
    c = get_base_config()
    c.method = "mfavbs"
    c.objective = "cc"
    c.dataset.name = "cifar100_20"
    # Optimisation (Section 4.1): batch 128, Adam 3e-4, 500 epochs; CC's temperatures.
    c.batch_size = 128
    c.num_epochs = 500
    c.learning_rate = 3e-4
    c.loss.instance_temperature = 0.5
    c.loss.cluster_temperature = 1.0
    c.model.feature_dim = 128
    # ViT-small of the paper: E = 512 (= CLIP's dimension), 8 blocks, 16 heads, ConvStem patch 16 at 224.
    c.model.backbone = "vit"
    c.model.vit.embed_dim = 512
    c.model.vit.depth = 8
    c.model.vit.num_heads = 16
    c.model.vit.patch_size = 16
    c.model.vit.mlp_ratio = 4.0
    c.model.vit.num_fusing_blocks = 4
    c.model.vit.fusion = "tokens"
    c.anchor.enabled = True
    c.anchor.model = "openai/clip-vit-base-patch32"
    c.anchor.project = False
    # T^a (VTCC's code): crop scale 0.08-1, jitter 0.4/0.4/0.2/0.1 at p 0.8, grayscale p 0.2,
    # Gaussian blur sigma 0.1-2 (applied always, p 1.0), flip; ImageNet mean/std.
    c.augment.image_size = 224
    c.augment.crop_scale = (0.08, 1.0)
    c.augment.jitter_p = 0.8
    c.augment.brightness = 0.4
    c.augment.contrast = 0.4
    c.augment.saturation = 0.2
    c.augment.hue = 0.1
    c.augment.grayscale_p = 0.2
    c.augment.blur_p = 1.0
    c.augment.blur_sigma = (0.1, 2.0)
    c.augment.flip_p = 0.5
    c.augment.mean = (0.485, 0.456, 0.406)
    c.augment.std = (0.229, 0.224, 0.225)
    # T^b = T^a + solarize at p 0.2.
    c.augment2.solarize_p = 0.2
    return c
