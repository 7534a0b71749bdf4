"""VTCC (Ling et al. 2022) on CIFAR-10: the MFAVBs-CC paper's baseline (its Table 4 row "VTCC").

The MFAVBs-CC paper's ViT-small with N = 0 fusing blocks and no CLIP anchor:
ConvStem + 8 pre-norm blocks, E = 512, 16 heads, patch 16 at 224x224, VTCC's
projectors (hidden 4E); CC's objective (tau_I 0.5, tau_C 1.0, feature dim
128); batch 128, Adam 3e-4, 500 epochs; 60,000 images (train + test, 32x32 upsampled to 224), 10 clusters.
(VTCC's own code used E = 384 with 12 heads: --config.model.vit.embed_dim=384
--config.model.vit.num_heads=12.) See docs/mfavbs.md.
Needs the dataset prepared once: `python -m ccjax.prepare --dataset=cifar10`.
"""

from ccjax.config_base import get_base_config


def get_config():
    c = get_base_config()
    c.method = "vtcc"
    c.objective = "cc"
    c.dataset.name = "cifar10"
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
    c.model.vit.num_fusing_blocks = 0
    c.model.vit.fusion = "tokens"
    c.anchor.enabled = False
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
