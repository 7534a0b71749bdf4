"""Small in-memory stand-ins used by several tests."""

from __future__ import annotations

import numpy as np

from ccjax.config import augment_config
from ccjax.data.dataset import ImageDataset


def tiny_grayscale_augment():
    """The tests' pipeline for one-channel fake images: 8x8 views, mild crops, CC's jitter otherwise."""
    return augment_config(image_size=8, crop_scale=(0.6, 1.0), saturation=0.0, hue=0.0, mean=(0.5,), std=(0.5,))


def array_dataset(images: np.ndarray, labels: np.ndarray | None, name: str = "fake") -> ImageDataset:
    """An in-memory Dataset over numpy arrays; classes 0..max(labels)."""
    class_names = None if labels is None else [str(i) for i in range(int(np.max(labels)) + 1)]
    return ImageDataset(name, np.asarray(images, np.uint8), labels, class_names)


def blob_images(n: int = 64, size: int = 8, channels: int = 1, classes: int = 4, seed: int = 0):
    """Images whose class is a bright square in one of `classes` positions, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    imgs = rng.integers(0, 40, size=(n, size, size, channels)).astype(np.uint8)
    half = size // 2
    for i, y in enumerate(labels):
        r, c = divmod(int(y) % 4, 2)
        imgs[i, r * half:(r + 1) * half, c * half:(c + 1) * half] += 180
    return imgs, labels
