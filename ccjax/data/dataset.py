"""The dataset contract (`Dataset`) and its in-memory implementation (`ImageDataset`).

`Dataset` is what every consumer of examples reads (training and evaluation
batches, the CLIP anchor pass, the report): a fixed number of examples of one
uint8 image shape, read by index. `ImageDataset` holds them in host memory and
reads a batch by numpy fancy indexing; it serves the catalog's datasets, the
images given to `ccjax.predict` and the benchmark's synthetic data alike.

At open of a catalog dataset, every example of the dataset's splits (concatenated in the order the
papers use them) is decoded once from its TFDS `data_source` into one uint8
array `[N, H, W, C]`, so reading a training batch is `images[indices]`: no
per-image Python and no decoding in the training loop. The memory cost is
N * H * W * C bytes (CIFAR-10: 184 MB; ImageNet-10 at 224x224: 1.96 GB).
"""

from __future__ import annotations

import concurrent.futures
import os
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ccjax.data.images import resize_uint8

_CHUNK = 1024  # examples decoded per data_source call


@runtime_checkable
class Dataset(Protocol):
    """N examples of one uint8 image shape, read by index (docs/architecture.md, "Data")."""

    name: str
    num_examples: int
    image_shape: tuple[int, int, int]  # (H, W, C), C = 1 or 3
    num_classes: int | None  # None: unlabelled
    class_names: list[str] | None

    def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """image uint8 [n, H, W, C], label int32 [n] (-1 = no label), index int32 [n]."""
        ...

    def example_ids(self, indices) -> list[str]:
        """A printable id per example (file name, TFDS id, or the index)."""
        ...


class ImageDataset:
    """A `Dataset` over in-memory arrays."""

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray | None,
                 class_names: list[str] | None, ids: Sequence[str] | None = None):
        """images: uint8 [N, H, W, C]; labels: int [N] (-1 = no label) or None (unlabelled)."""
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
        self.name = name
        self.images = images
        self.num_examples = int(images.shape[0])
        self.image_shape: tuple[int, int, int] = tuple(int(d) for d in images.shape[1:])  # type: ignore[assignment]
        self.class_names = None if class_names is None else list(class_names)
        self.num_classes = None if class_names is None else len(class_names)
        if labels is None:
            labels = np.full(self.num_examples, -1, np.int32)
        self.labels = np.asarray(labels, np.int32)  # [N]
        if self.labels.shape != (self.num_examples,):
            raise ValueError(f"labels shape {self.labels.shape} != ({self.num_examples},)")
        self._ids = None if ids is None else list(ids)

    def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """image uint8 [n, H, W, C], label int32 [n] (-1 unlabelled), index int32 [n]."""
        indices = np.asarray(indices, dtype=np.int64)
        return {
            "image": self.images[indices],
            "label": self.labels[indices],
            "index": indices.astype(np.int32),
        }

    def example_ids(self, indices) -> list[str]:
        """File names (or TFDS ids) where the dataset has them, else the index as text."""
        if self._ids is None:
            return [str(int(i)) for i in indices]
        return [self._ids[int(i)] for i in indices]

    @classmethod
    def synthetic(cls, num_examples: int, image_shape: Sequence[int], num_classes: int, seed: int = 0) -> "ImageDataset":
        """uint8 noise of `image_shape` with labels i % num_classes (benchmarks, tests)."""
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(num_examples, *image_shape), dtype=np.uint8)
        labels = np.arange(num_examples) % num_classes
        return cls("synthetic", images, labels, [str(i) for i in range(num_classes)])

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, {self.num_examples} x {self.image_shape}, "
                f"classes={self.num_classes})")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _read_range(source, start: int, stop: int) -> list:
    """Examples start..stop-1 of a TFDS data source, decoded (one batched read where possible)."""
    try:
        return list(source.__getitems__(list(range(start, stop))))
    except TypeError:  # tfds.testing.mock_data's stand-in has no working batch read
        return [source[i] for i in range(start, stop)]


def load_sources(
    sources: Sequence,
    *,
    label_key: str | None,
    id_key: str | None,
    size: tuple[int, int] | None,
    unlabeled: Sequence[bool] | None = None,
    desc: str = "loading",
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Decodes TFDS data sources (concatenated) into (images [N,H,W,C], labels [N], ids).

    `size` = (H, W) resizes every image (needed when the source's images vary in
    size); None keeps the stored size, which must then be the same everywhere.
    `unlabeled[k]` forces label -1 for every example of source k (STL-10's
    unlabelled split). A progress bar appears when there is more than a moment's work.
    """
    from tqdm import tqdm

    lengths = [len(s) for s in sources]
    total = sum(lengths)
    if total == 0:
        raise ValueError("the dataset has no examples")
    first = sources[0][0]["image"]
    channels = first.shape[-1]
    shape = (size[0], size[1], channels) if size is not None else tuple(first.shape)
    images = np.empty((total, *shape), np.uint8)  # [N, H, W, C]
    labels = np.full(total, -1, np.int32)
    ids: list[str] | None = [""] * total if id_key is not None else None
    unlabeled = unlabeled or [False] * len(sources)

    chunks = []  # (source index, start in source, stop in source, offset in the output)
    offset = 0
    for k, n in enumerate(lengths):
        chunks += [(k, a, min(a + _CHUNK, n), offset + a) for a in range(0, n, _CHUNK)]
        offset += n

    def fill(chunk) -> int:
        k, a, b, out = chunk
        for j, ex in enumerate(_read_range(sources[k], a, b)):
            img = np.asarray(ex["image"], np.uint8)
            if img.ndim == 2:
                img = img[:, :, None]
            if size is not None:
                img = resize_uint8(img, size)
            elif img.shape != shape:
                raise ValueError(f"image {out + j} has shape {img.shape}, expected {shape}")
            images[out + j] = img
            if label_key is not None and not unlabeled[k]:
                labels[out + j] = int(ex[label_key])
            if ids is not None:
                ids[out + j] = _text(ex[id_key])
        return b - a

    bar = tqdm(total=total, desc=desc, unit="img", disable=total < 20000 and size is None)
    workers = max(1, min(8, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for n in pool.map(fill, chunks):
            bar.update(n)
    bar.close()
    return images, labels, ids
