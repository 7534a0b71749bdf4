"""CC (Li et al., AAAI 2021) on ImageNet-10 with the paper's settings.

ResNet-34 (CC's Implementation Details: "we adopt ResNet34 as the backbone";
ResNet-18 appears only in its Table 5 ablation), 224x224, batch 256, Adam 3e-4,
1000 epochs, tau_I 0.5, tau_C 1.0, instance dim 128; 13,000 images, 10 clusters.
Gaussian blur on (CC leaves it out only for the small-image datasets; its code:
p 0.5, sigma in [0.1, 2]).
Needs the ImageNet-10 subset prepared once from a manual ImageNet download:
`python -m ccjax prepare --dataset=imagenet10 --manual_dir=<imagenet train dir>`.
"""

from ccjax.config import get_base_config


def get_config():
    c = get_base_config()
    c.method = "cc"
    c.dataset.name = "imagenet10"
    c.dataset.image_size = 224
    c.model.backbone = "resnet34"
    c.model.stem = "imagenet"
    c.augment.image_size = 224
    c.augment.blur_p = 0.5
    c.augment.blur_sigma = (0.1, 2.0)
    return c
