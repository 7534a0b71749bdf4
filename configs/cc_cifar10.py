"""CC (Li et al., AAAI 2021) on CIFAR-10 with the paper's settings.

ResNet-34, images resized to 224x224, batch 256, Adam 3e-4, 1000 epochs,
tau_I 0.5, tau_C 1.0, instance dim 128; train and test splits used together
(60,000 images, 10 clusters). Augmentation (CC's code): random resized crop,
flip, colour jitter 0.4/0.4/0.4/0.1 at p 0.8, grayscale p 0.2, no blur.
Needs CIFAR-10 prepared once: `python -m ccjax prepare --dataset=cifar10`.
"""

from ccjax.config import get_base_config


def get_config():
    c = get_base_config()
    c.method = "cc"
    c.dataset.name = "cifar10"
    c.model.backbone = "resnet34"
    c.model.stem = "imagenet"
    c.augment.image_size = 224
    return c
