"""GeCC (Chen et al., AAAI 2025) on ImageNet-Dogs with the paper's settings.

ResNet-34, 224x224, batch 256, Adam 3e-4, 1000 epochs, tau_I 0.5, tau_C 1.0,
instance dim 128, lambda1 = lambda2 = 1; 19,500 images, 15 clusters.
Reference view: CDSM with probability t = 0.1 * (epoch // 100 + 1); weights
W_z and W_c. Augmentation: random resized crop to 224, flip, colour jitter
0.4/0.4/0.4/0.1 at p 0.8, grayscale p 0.2, Gaussian blur (CC's code: p 0.5,
sigma in [0.1, 2], 23 taps at 224). Ablations: docs/gecc.md. Needs the
ImageNet-Dogs subset prepared once from a manual ImageNet download:
`python -m ccjax prepare --dataset=imagenet_dogs --manual_dir=<imagenet train dir>`.
"""

from ccjax.config import get_base_config


def get_config():
    c = get_base_config()
    c.method = "gecc"
    c.dataset.name = "imagenet_dogs"
    c.dataset.image_size = 224
    c.model.backbone = "resnet34"
    c.model.stem = "imagenet"
    c.augment.image_size = 224
    c.augment.blur_p = 0.5
    c.augment.blur_sigma = (0.1, 2.0)
    c.gecc.reference = "cdsm"
    c.gecc.weights = "both"
    return c
