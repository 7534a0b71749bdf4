"""Datasets larger than host memory: `StreamingDataset`, and reading batches ahead in grain workers.

`StreamingDataset` is the `Dataset` contract over the same `Sources` that the
in-memory `ImageDataset` is decoded from, but it holds no image: `read(indices)`
decodes just those examples, with the same `Sources.image` code, so both give
bit-identical pixels. Only labels (4 bytes an example) are kept, read once
without decoding an image.

`stream(read_fn, items, ...)` runs `read_fn(item)` (one process-local batch) for
each item in grain worker processes (`grain.MapDataset` + `mp_prefetch`) and
yields the results in item order. What a batch holds is decided by the item
alone (a global step, or an evaluation batch number), never by which worker
read it or how many there are, so streamed batches equal in-memory ones and a
resumed run reads what an uninterrupted one would. Read-ahead is bounded:
`buffer` batches per worker, so host memory is about
workers x (buffer + 1) x one batch, whatever the dataset's size.
"""

from __future__ import annotations

import gc
import os
from typing import Callable, Iterator, Sequence

import numpy as np
from absl import flags

from ccjax.data.dataset import Dataset, Sources
from ccjax.errors import UserError

_LABEL_CHUNK = 4096  # records read at a time for labels and ids (each holds its encoded image)


class StreamingDataset:
    """A `Dataset` that decodes examples from their sources when read (docs/datasets.md, "Streaming")."""

    streams = True

    def __init__(self, spec: Sources, workers: int = -1, buffer: int = 2, how_opened: str = "streamed"):
        """workers: grain worker processes reading batches ahead (-1: one per core, at most 8; 0: read
        in a thread of this process); buffer: batches each worker reads ahead; how_opened: starts with
        "streamed" (`open_dataset` adds why)."""
        self.spec = spec
        self.name = spec.name
        self.how_opened = how_opened
        self.num_examples = spec.num_examples
        self.image_shape: tuple[int, int, int] = tuple(int(d) for d in spec.image_shape)  # type: ignore[assignment]
        self.class_names = None if spec.class_names is None else list(spec.class_names)
        self.num_classes = None if spec.class_names is None else len(spec.class_names)
        self.workers = default_workers() if workers < 0 else int(workers)
        self.buffer = max(1, int(buffer))
        self._labels: np.ndarray | None = None

    def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """image uint8 [n, H, W, C], label int32 [n] (-1 = no label), index int32 [n]: decoded now."""
        indices = np.asarray(indices, np.int64)
        images = np.empty((len(indices), *self.image_shape), np.uint8)
        labels = np.empty(len(indices), np.int32)
        try:
            for j, (k, ex) in enumerate(self.spec.read(indices)):
                images[j] = self.spec.image(ex)
                labels[j] = self.spec.label(k, ex)
        except IndexError:
            raise
        except Exception as e:  # noqa: BLE001 - a file gone or damaged under a running job
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise UserError(
                f"reading images of {self.name} failed ({type(e).__name__}: {first}); its prepared files "
                f"may have been moved or damaged: prepare it again (python -m ccjax prepare "
                f"--dataset={self.name} --overwrite, with the run's --data_dir and --image_size) and relaunch, which resumes from the last checkpoint"
            ) from None
        return {"image": images, "label": labels, "index": indices.astype(np.int32)}

    @property
    def labels(self) -> np.ndarray:
        """int32 [N] (-1 = no label), read once on first use without decoding an image."""
        if self._labels is None:
            n = self.num_examples
            if self.spec.label_key is None:
                self._labels = np.full(n, -1, np.int32)
            else:
                self._labels = np.asarray(self._read_meta(np.arange(n), self.spec.label, f"labels of {self.name}"),
                                          np.int32)
        return self._labels

    def example_ids(self, indices) -> list[str]:
        """File names (or TFDS ids) where the dataset has them, else the index as text."""
        indices = np.asarray(indices, np.int64)
        if self.spec.id_key is None:
            return [str(int(i)) for i in indices]
        return self._read_meta(indices, lambda k, ex: self.spec.example_id(ex), f"ids of {self.name}")

    def _read_meta(self, indices: np.ndarray, field, desc: str) -> list:
        """field(source k, record) for each index, from the image-skipping sources a chunk of records at a
        time (each record still holds its encoded image, so never all N at once)."""
        from tqdm import tqdm

        out: list = []
        for start in tqdm(range(0, len(indices), _LABEL_CHUNK), desc=desc, unit="chunk",
                          disable=len(indices) < 50 * _LABEL_CHUNK, leave=False):
            out += [field(k, ex) for k, ex in self.spec.read(indices[start:start + _LABEL_CHUNK], meta_only=True)]
        return out

    def __getstate__(self):  # what grain's workers get: the sources, not the labels
        state = dict(self.__dict__)
        state["_labels"] = None
        return state

    def __repr__(self) -> str:
        return (f"StreamingDataset({self.name!r}, {self.num_examples} x {self.image_shape}, "
                f"classes={self.num_classes}, workers={self.workers})")


def default_workers() -> int:
    """One grain worker per core, at most 8 (decoding is the work; the device needs little host CPU)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores))


def read_ahead(read_fn: Callable[[int], dict], items: Sequence[int], dataset: Dataset) -> Iterator:
    """read_fn(item) for each item, in order: in the dataset's grain workers when it is streamed, else
    lazily in the thread that iterates (an in-memory read is a numpy index)."""
    if dataset.streams:
        return stream(read_fn, items, dataset.workers, dataset.buffer)
    return (read_fn(item) for item in items)


def stream(read_fn: Callable[[int], dict], items: Sequence[int], workers: int, buffer: int) -> Iterator[dict]:
    """read_fn(item) for each item, in order, computed ahead in `workers` grain processes (0: one thread).

    `read_fn` must be picklable (workers get a copy) and must depend on the item only.
    """
    # grain loads only for a streamed dataset
    import grain

    if len(items) == 0:
        return _closing(iter(()))
    ds = grain.MapDataset.source(list(items)).map(read_fn)
    # One read thread and a short queue in each worker: grain's defaults (16 threads,
    # 500 elements) would hold hundreds of batches.
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=buffer))
    if workers > 0:
        _absl_flags_ready()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=buffer))
    return _closing(iter(it))


def _absl_flags_ready() -> None:
    """grain's workers read absl flags; outside an absl app (a notebook, a library call) nothing
    has parsed them, so their defaults are taken as parsed."""
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _closing(iterator) -> Iterator[dict]:
    """Yields grain's batches as plain arrays; shuts the workers down when done or abandoned.

    Each batch is copied out of grain's shared memory at once, so its block is
    released now rather than whenever the last view of it goes; after closing,
    this waits for grain's background thread to unlink the blocks it dropped.
    """
    try:
        for element in iterator:
            batch = {k: np.array(v, copy=True) for k, v in element.items()}
            del element
            yield batch
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        _wait_for_shared_memory_release()


def _wait_for_shared_memory_release() -> None:
    """grain unlinks dropped shared-memory blocks in one background thread, in order: a no-op task
    finishing there means the blocks dropped before it are gone."""
    try:
        # grain's private module, tried only where grain ran
        from grain._src.python.ipc.shared_memory_array import SharedMemoryArray

        pool = SharedMemoryArray._del_thread_pool  # noqa: SLF001 (no public way to wait for it)
    except (ImportError, AttributeError):
        return
    if pool is not None:
        gc.collect()
        pool.apply(lambda: None)
