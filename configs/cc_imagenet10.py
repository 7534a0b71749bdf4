"""CC (Li et al., AAAI 2021) on ImageNet-10 with the paper's settings.

ResNet-18 (the paper's choice for ImageNet-10), 224x224, batch 256, Adam 3e-4,
1000 epochs, tau_I 0.5, tau_C 1.0, instance dim 128; 13,000 images, 10 clusters.
Needs the ImageNet-10 subset prepared once from a manual ImageNet download:
`python -m ccjax.prepare --dataset=imagenet10 --manual_dir=<imagenet train dir>`.
"""

from ccjax.config import get_base_config


def get_config():
    c = get_base_config()
    c.method = "cc"
    c.objective = "cc"
    c.dataset.name = "imagenet10"
    c.dataset.image_size = 224
    c.model.backbone = "resnet18"
    c.model.stem = "imagenet"
    c.augment.image_size = 224
    return c
