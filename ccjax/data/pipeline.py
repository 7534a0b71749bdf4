"""Host-side batching: from a Dataset to global, sharded jax.Arrays, and the one batched inference loop.

- The order of an epoch is a pure function of (seed, epoch), so a resumed run
  sees exactly the batches an uninterrupted one would.
- Every process computes the same global permutation and reads only its own
  contiguous slice of each global batch; `jax.make_array_from_process_local_data`
  assembles the global array sharded over the mesh's 'data' axis.
- Images stay uint8 until they are on the device (augmentation runs there).
- A background thread reads and transfers the next batches while the device
  computes the current one; a `StreamingDataset` is decoded further ahead in
  grain worker processes (ccjax.data.streaming), each reading whole
  process-local batches chosen by the step alone.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from tqdm import tqdm

from ccjax.data.reading import ReadEvalBatch, ReadTrainBatch, TrainRows
from ccjax.data.streaming import read_ahead
from ccjax.errors import UserError
from ccjax.runtime.distributed import is_main_process
from ccjax.runtime.mesh import batch_sharding


def process_slice(global_batch: int) -> slice:
    """The rows of a global batch this process reads."""
    per_process = global_batch // jax.process_count()
    start = jax.process_index() * per_process
    return slice(start, start + per_process)


class TrainBatches:
    """Global training batches of one dataset; drops the last incomplete batch of each epoch.

    A `StreamingDataset` is read ahead in its grain workers; an in-memory one in a thread.
    """

    def __init__(self, dataset, batch_size: int, seed: int, mesh: Mesh, anchors: np.ndarray | None = None):
        if dataset.num_examples < batch_size:
            raise UserError(
                f"the dataset has {dataset.num_examples} examples, fewer than batch_size={batch_size}; "
                "lower --config.batch_size"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.anchors = anchors
        self.sharding = batch_sharding(mesh)
        self.steps_per_epoch = dataset.num_examples // batch_size
        self.rows = TrainRows(dataset.num_examples, batch_size, seed, process_slice(batch_size))
        self._read = ReadTrainBatch(dataset, self.rows)

    def global_indices(self, epoch: int, step_in_epoch: int) -> np.ndarray:
        return self.rows.global_indices(epoch, step_in_epoch)

    def batch(self, epoch: int, step_in_epoch: int) -> dict[str, jax.Array]:
        """The global batch `step_in_epoch` of `epoch`, as arrays sharded over 'data'."""
        return self._to_global(self._read(epoch * self.steps_per_epoch + step_in_epoch))

    def _to_global(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return to_global(with_anchors(local, self.anchors), self.sharding, self.batch_size)

    def iterate(self, start_step: int, num_steps: int, prefetch: int = 2) -> Iterator[tuple[int, dict]]:
        """(global step, batch) for steps [start_step, start_step + num_steps), read ahead.

        A streamed dataset is decoded ahead in grain's workers; this thread keeps the
        transfers ahead of the device (and reads an in-memory dataset).
        """
        steps = range(start_step, start_step + num_steps)
        local = read_ahead(self._read, steps, self.dataset)
        return prefetch_map(lambda sl: (sl[0], self._to_global(sl[1])), _numbered(steps, local), prefetch)


def _numbered(items, local):
    """(item, batch) pairs; `local` (grain's iterator when streamed) is closed with this generator."""
    try:
        yield from zip(items, local)
    finally:
        local.close()


def with_anchors(local: dict[str, np.ndarray], anchors: np.ndarray | None) -> dict[str, np.ndarray]:
    """The batch plus its examples' CLIP anchors [n, A] (when the run has them), looked up by index."""
    return local if anchors is None else {**local, "anchor": anchors[local["index"]]}


def to_global(local: dict[str, np.ndarray], sharding, global_batch: int) -> dict[str, jax.Array]:
    """Process-local rows -> global arrays of leading size `global_batch`."""
    return {
        k: jax.make_array_from_process_local_data(sharding, v, (global_batch,) + v.shape[1:])
        for k, v in local.items()
    }


class EvalBatches:
    """The whole dataset in order, in global batches; the last one padded (and masked)."""

    def __init__(self, dataset, batch_size: int, mesh: Mesh, anchors: np.ndarray | None = None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.anchors = anchors
        self.sharding = batch_sharding(mesh)
        self.num_batches = -(-dataset.num_examples // batch_size)
        self._read = ReadEvalBatch(dataset, batch_size, process_slice(batch_size))

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, i: int) -> dict[str, jax.Array]:
        return self._to_global(self._read(i))

    def _to_global(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return to_global(with_anchors(local, self.anchors), self.sharding, self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        yield from prefetch_map(self._to_global, read_ahead(self._read, range(self.num_batches), self.dataset), 2)


def map_batches(fn: Callable[[dict], jax.Array], dataset, batch_size: int, mesh: Mesh,
                anchors: np.ndarray | None = None, *, desc: str = "", progress: bool = False) -> np.ndarray:
    """fn over the whole dataset in order, in global batches: host array [N, ...] (padding dropped).

    `fn(batch) -> jax.Array [batch_size, ...]` gets EvalBatches' batches (image, index,
    valid and, with `anchors`, anchor). Every process gets all N rows. Cluster
    assignment, the CLIP anchor pass and prediction all run through here.
    """
    batches = EvalBatches(dataset, batch_size, mesh, anchors)
    outs, valid = [], []
    show = progress and is_main_process()
    for b in tqdm(batches, total=len(batches), desc=desc, unit="batch", disable=not show, leave=False):
        outs.append(multihost_utils.process_allgather(fn(b), tiled=True))
        valid.append(multihost_utils.process_allgather(b["valid"], tiled=True))
    return np.concatenate(outs)[np.concatenate(valid)]


def prefetch_map(fn, items, depth: int):
    """Yields fn(item) for each item, computing up to `depth` ahead in a daemon thread.

    Exceptions in the producer are re-raised in the consumer. An `items` generator
    is closed by the producer when it stops (this shuts grain's workers down).
    """
    if depth <= 0:
        yield from map(fn, items)
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def producer():
        try:
            for it in items:
                if stop.is_set():
                    return
                q.put(("ok", fn(it)))
            q.put(("ok", done))
        except BaseException as e:  # forwarded to the consumer
            q.put(("err", e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    t = threading.Thread(target=producer, daemon=True)
    t.start()
    try:
        while True:
            kind, val = q.get()
            if kind == "err":
                raise val
            if val is done:
                return
            yield val
    finally:
        stop.set()
        while not q.empty():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                break
        # Let the producer close `items` (grain's workers) before this process moves on, perhaps
        # to exit: grain's own exit-time close racing that one prints a traceback.
        t.join(timeout=60)
