"""Small in-memory stand-ins used by several tests."""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
# the shapes tools/nuisance_family.py draws
from shape_drawing import SHAPES, inside_shape

from ccjax.config import augment_config
from ccjax.data.dataset import ImageDataset


def tiny_grayscale_augment():
    """The tests' pipeline for one-channel fake images: 8x8 views, mild crops, CC's jitter otherwise."""
    return augment_config(image_size=8, crop_scale=(0.6, 1.0), saturation=0.0, hue=0.0, mean=(0.5,), std=(0.5,))


def class_names_of(labels: np.ndarray | None) -> list[str] | None:
    """Classes '0'..str(max(labels)), or None for unlabelled data."""
    return None if labels is None else [str(i) for i in range(int(np.max(labels)) + 1)]


def array_dataset(images: np.ndarray, labels: np.ndarray | None, name: str = "fake") -> ImageDataset:
    """An in-memory Dataset over numpy arrays; classes 0..max(labels)."""
    return ImageDataset(name, np.asarray(images, np.uint8), labels, class_names_of(labels))


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


PALETTE = ((230, 40, 40), (40, 200, 60), (50, 80, 230), (230, 210, 40))  # red, green, blue, yellow


def shape_image(shape: str, colour, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [size, size, 3]: one filled shape of `colour` (jittered position and scale) on a dark background."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = rng.uniform(0.4, 0.6, 2) * size
    r = rng.uniform(0.25, 0.35) * size
    mask = inside_shape(shape, yy - cy, xx - cx, r)
    img = rng.integers(0, 30, (size, size, 3)).astype(np.uint8)
    img[mask] = np.asarray(colour, np.uint8)
    return img


def shapes_folder(root, per_class: int, size: int = 16, labelled: bool = True, seed: int = 0) -> list:
    """Writes PNGs of the four SHAPES, each in a colour drawn at random from PALETTE (independent of the
    shape): class sub-folders if `labelled`, else one flat folder. Returns [(path, shape, colour index)]."""
    import os

    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for shape in SHAPES:
        folder = os.path.join(root, shape) if labelled else root
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            c = int(rng.integers(len(PALETTE)))
            path = os.path.join(folder, f"{shape}_{i:04d}.png")
            Image.fromarray(shape_image(shape, PALETTE[c], size, rng)).save(path)
            out.append((path, shape, c))
    return out


class ArraySource:
    """A random-access example source over numpy arrays, shaped like a TFDS data_source (picklable,
    so grain's workers can hold a copy): len(), source[i] -> {'image', 'label', 'file'}."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, prefix: str = "img"):
        self.images = np.asarray(images, np.uint8)
        self.labels = labels
        self.prefix = prefix

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        ex = {"image": self.images[i], "file": f"{self.prefix}_{i}"}
        if self.labels is not None:
            ex["label"] = int(self.labels[i])
        return ex


def array_sources(images: np.ndarray, labels: np.ndarray | None, name: str = "fake"):
    """`Sources` over one ArraySource; classes 0..max(labels)."""
    from ccjax.data.dataset import Sources

    return Sources(name, [ArraySource(images, labels)], None if labels is None else "label", "file", None,
                   class_names_of(labels))


def streamed_dataset(images: np.ndarray, labels: np.ndarray | None, workers: int = 2, name: str = "fake"):
    """A StreamingDataset over numpy arrays, read by `workers` grain processes (0: a thread)."""
    from ccjax.data.streaming import StreamingDataset

    return StreamingDataset(array_sources(images, labels, name), workers=workers, buffer=2)
