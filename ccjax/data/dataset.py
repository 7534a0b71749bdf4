"""The dataset contract (`Dataset`), where a catalog dataset's examples live (`Sources`), and the
in-memory implementation (`ImageDataset`; the streamed one is ccjax.data.streaming).

`Dataset` is what every consumer of examples reads (training and evaluation
batches, the CLIP anchor pass, the report): a fixed number of examples of one
uint8 image shape, read by index. `ImageDataset` holds them in host memory and
reads a batch by numpy fancy indexing; it serves the catalog's datasets that
fit in memory, the images given to `ccjax predict` and the benchmark's
synthetic data alike.

`load_sources` decodes every example of a catalog dataset's splits
(concatenated in the order the papers use them) once from its TFDS
`data_source`s into one uint8 array `[N, H, W, C]`, so reading a training
batch is `images[indices]`: no per-image Python and no decoding in the
training loop. The memory cost is N * H * W * C bytes (CIFAR-10: 184 MB;
ImageNet-10 at 224x224: 1.96 GB); datasets that do not fit are streamed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from tqdm import tqdm

from ccjax.data.images import resize_uint8

_CHUNK = 1024  # examples decoded per data_source call


class _NoOpenCvAdvice(logging.Filter):
    """TFDS advises installing OpenCV once in every process that decodes (grain's workers too);
    PIL decodes the same pixels, so the advice is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "OpenCV is not installed" not in record.getMessage()


logging.getLogger("absl").addFilter(_NoOpenCvAdvice())


@runtime_checkable
class Dataset(Protocol):
    """N examples of one uint8 image shape, read by index (docs/architecture.md, "Data")."""

    name: str
    num_examples: int
    image_shape: tuple[int, int, int]  # (H, W, C), C = 1 or 3
    num_classes: int | None  # None: unlabelled
    class_names: list[str] | None
    streams: bool  # True: read() decodes from files, and batch loops read ahead in grain workers
    how_opened: str  # "in memory: ..." | "streamed: ..." and why (training's start-up line prints it)

    def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """image uint8 [n, H, W, C], label int32 [n] (-1 = no label), index int32 [n]."""
        ...

    def example_ids(self, indices) -> list[str]:
        """A printable id per example (file name, TFDS id, or the index)."""
        ...


class ImageDataset:
    """A `Dataset` over in-memory arrays."""

    streams = False

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray | None,
                 class_names: list[str] | None, ids: Sequence[str] | None = None, *,
                 how_opened: str = "in memory"):
        """images: uint8 [N, H, W, C]; labels: int [N] (-1 = no label) or None (unlabelled); how_opened:
        starts with "in memory" (`open_dataset` adds why)."""
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
        self.name = name
        self.how_opened = how_opened
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
        return cls("synthetic", images, labels, [str(i) for i in range(num_classes)],
                   how_opened="in memory (synthetic)")

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, {self.num_examples} x {self.image_shape}, "
                f"classes={self.num_classes})")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _read_examples(source, local: Sequence[int]) -> list:
    """Examples `local` of one random-access source (one batched read where it has one)."""
    local = [int(i) for i in local]
    try:
        return list(source.__getitems__(local))
    except (TypeError, AttributeError):  # tfds.testing.mock_data's stand-in has no working batch read
        return [source[i] for i in local]


@dataclasses.dataclass
class Sources:
    """Where a dataset's examples live: random-access sources (TFDS `data_source`s) read as one sequence.

    Both ways of opening a dataset decode through `image`, so the in-memory
    array (`load_sources`) and the streamed batches (`ccjax.data.streaming`)
    hold bit-identical pixels. `size` = (H, W) resizes every image (needed when
    the stored images vary in size); None keeps the stored size, which must then
    be the same everywhere. `unlabeled[k]` forces label -1 for every example of
    source k (STL-10's unlabelled split). `meta_sources`, when given, are the
    same examples with image decoding skipped: labels and ids are read from them
    without decoding a pixel.
    """

    name: str
    sources: list
    label_key: str | None
    id_key: str | None
    size: tuple[int, int] | None
    class_names: list[str] | None
    unlabeled: list[bool] | None = None
    meta_sources: list | None = None

    def __post_init__(self):
        self.lengths = [len(s) for s in self.sources]
        self.offsets = np.cumsum([0] + self.lengths)  # source k holds global [offsets[k], offsets[k+1])
        self.num_examples = int(self.offsets[-1])
        if self.num_examples == 0:
            raise ValueError(f"the dataset {self.name} has no examples")
        self.unlabeled = list(self.unlabeled or [False] * len(self.sources))
        first = np.asarray(self.sources[0][0]["image"])
        channels = first.shape[-1] if first.ndim == 3 else 1
        self.image_shape = ((self.size[0], self.size[1], channels) if self.size is not None
                            else (*first.shape[:2], channels))

    @property
    def decoded_bytes(self) -> int:
        """What holding every decoded image in memory takes."""
        return self.num_examples * int(np.prod(self.image_shape))

    def chunks(self, chunk: int) -> list[tuple[int, int, int]]:
        """(source k, start, stop) in source order, at most `chunk` examples each."""
        return [(k, a, min(a + chunk, n)) for k, n in enumerate(self.lengths) for a in range(0, n, chunk)]

    def locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global indices -> (source k, index within source k)."""
        k = np.searchsorted(self.offsets, indices, side="right") - 1
        return k, indices - self.offsets[k]

    def read(self, indices: np.ndarray, *, meta_only: bool = False) -> list[tuple[int, dict]]:
        """(source k, raw example) for each global index, in the order given."""
        indices = np.asarray(indices, np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_examples):
            raise IndexError(f"index out of range for {self.num_examples} examples")
        ks, local = self.locate(indices)
        sources = self.meta_sources if (meta_only and self.meta_sources is not None) else self.sources
        out: list = [None] * len(indices)
        for k in np.unique(ks):
            rows = np.flatnonzero(ks == k)
            for r, ex in zip(rows, _read_examples(sources[k], local[rows])):
                out[r] = (int(k), ex)
        return out

    def image(self, ex: dict) -> np.ndarray:
        """An example's image as stored in the dataset: uint8 [H, W, C], resized to `size` if set."""
        img = np.asarray(ex["image"], np.uint8)
        if img.ndim == 2:
            img = img[:, :, None]
        if self.size is not None:
            img = resize_uint8(img, self.size)
        elif img.shape != self.image_shape:
            raise ValueError(f"an image of {self.name} has shape {img.shape}, expected {self.image_shape}")
        return img

    def label(self, k: int, ex: dict) -> int:
        return -1 if self.label_key is None or self.unlabeled[k] else int(ex[self.label_key])

    def example_id(self, ex: dict) -> str:
        return _text(ex[self.id_key])


def load_sources(spec: Sources, desc: str = "loading", how_opened: str = "in memory") -> ImageDataset:
    """Decodes every example of `spec` into one in-memory `ImageDataset` (threads over chunks).

    A progress bar appears when there is more than a moment's work.
    """
    total = spec.num_examples
    images = np.empty((total, *spec.image_shape), np.uint8)  # [N, H, W, C]
    labels = np.full(total, -1, np.int32)
    ids: list[str] | None = [""] * total if spec.id_key is not None else None

    def fill(chunk) -> int:
        k, a, b = chunk
        out = int(spec.offsets[k]) + a
        for j, ex in enumerate(_read_examples(spec.sources[k], range(a, b))):
            images[out + j] = spec.image(ex)
            labels[out + j] = spec.label(k, ex)
            if ids is not None:
                ids[out + j] = spec.example_id(ex)
        return b - a

    bar = tqdm(total=total, desc=desc, unit="img", disable=total < 20000 and spec.size is None)
    workers = max(1, min(8, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for n in pool.map(fill, spec.chunks(_CHUNK)):
            bar.update(n)
    bar.close()
    return ImageDataset(spec.name, images, labels if spec.label_key is not None else None,
                        spec.class_names, ids, how_opened=how_opened)
