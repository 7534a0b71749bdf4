"""GeCC (Chen et al., AAAI 2025) on CIFAR-10 with the paper's settings.

ResNet-34, images resized to 224x224, batch 256, Adam 3e-4, 1000 epochs,
tau_I 0.5, tau_C 1.0, instance dim 128, lambda1 = lambda2 = 1; train and test
splits used together (60,000 images, 10 clusters). Reference view: CDSM after
every ResNet stage with probability t = 0.1 * (epoch // 100 + 1); weights
W_z and W_c. Augmentation (the paper, in CC's code's order): random resized
crop to 224, flip, colour jitter 0.4/0.4/0.4/0.1 at p 0.8, grayscale p 0.2;
no Gaussian blur for CIFAR. Table 3's ablations are overrides, e.g.
`--config.gecc.reference=aug|dsu`, `--config.gecc.weights=none|wz|wc` (docs/gecc.md).
Needs CIFAR-10 prepared once: `python -m ccjax prepare --dataset=cifar10`.
"""

from ccjax.config import get_base_config


def get_config():
    c = get_base_config()
    c.method = "gecc"
    c.dataset.name = "cifar10"
    c.model.backbone = "resnet34"
    c.model.stem = "imagenet"
    c.augment.image_size = 224
    c.augment.blur_p = 0.0  # the paper leaves blur out for CIFAR
    c.gecc.reference = "cdsm"
    c.gecc.weights = "both"
    return c
