"""CC (Li et al., AAAI 2021) on ImageNet-Dogs with the paper's settings.

ResNet-34, 224x224, batch 256, Adam 3e-4,
1000 epochs, tau_I 0.5, tau_C 1.0, instance dim 128; 19,500 images, 15 clusters.
Gaussian blur on (CC leaves it out only for the small-image datasets; its code:
p 0.5, sigma in [0.1, 2]).
Needs the ImageNet-Dogs subset prepared once from a manual ImageNet download:
`python -m ccjax prepare --dataset=imagenet_dogs --manual_dir=<imagenet train dir>`.
"""

from ccjax.config import get_base_config


def get_config():
    c = get_base_config()
    c.method = "cc"
    c.dataset.name = "imagenet_dogs"
    c.dataset.image_size = 224
    c.model.backbone = "resnet34"
    c.model.stem = "imagenet"
    c.augment.image_size = 224
    c.augment.blur_p = 0.5
    c.augment.blur_sigma = (0.1, 2.0)
    return c
