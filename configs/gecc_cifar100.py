"""GeCC (Chen et al., AAAI 2025) on CIFAR-100 (20 superclasses) with the paper's settings.

ResNet-34, images resized to 224x224, batch 256, Adam 3e-4, 1000 epochs,
tau_I 0.5, tau_C 1.0, instance dim 128, lambda1 = lambda2 = 1; train and test
splits used together (60,000 images, the 20 superclasses as targets).
Reference view: CDSM with probability t = 0.1 * (epoch // 100 + 1); weights
W_z and W_c. Augmentation: random resized crop to 224, flip, colour jitter
0.4/0.4/0.4/0.1 at p 0.8, grayscale p 0.2; no Gaussian blur for CIFAR.
Ablations: docs/gecc.md. Needs CIFAR-100 prepared once:
`python -m ccjax prepare --dataset=cifar100_20`.
"""

from ccjax.config import get_base_config


def get_config():
    c = get_base_config()
    c.method = "gecc"
    c.dataset.name = "cifar100_20"
    c.model.backbone = "resnet34"
    c.model.stem = "imagenet"
    c.augment.image_size = 224
    c.augment.blur_p = 0.0  # the paper leaves blur out for CIFAR
    c.gecc.reference = "cdsm"
    c.gecc.weights = "both"
    return c
