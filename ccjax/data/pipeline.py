"""Host-side batching: from a Dataset to global, sharded jax.Arrays, and the one batched inference loop.

- The order of an epoch is a pure function of (seed, epoch), so a resumed run
  sees exactly the batches an uninterrupted one would.
- Every process computes the same global permutation and reads only its own
  contiguous slice of each global batch; `jax.make_array_from_process_local_data`
  assembles the global array sharded over the mesh's 'data' axis.
- Images stay uint8 until they are on the device (augmentation runs there).
- A background thread reads and transfers the next batches while the device
  computes the current one.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from ccjax.errors import UserError
from ccjax.runtime.mesh import batch_sharding


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of one epoch: depends on (seed, epoch) only."""
    return np.random.default_rng([seed, epoch, 0x0CC]).permutation(num_examples)


def process_slice(global_batch: int) -> slice:
    """The rows of a global batch this process reads."""
    per_process = global_batch // jax.process_count()
    start = jax.process_index() * per_process
    return slice(start, start + per_process)


class TrainBatches:
    """Global training batches of one dataset; drops the last incomplete batch of each epoch."""

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
        self._rows = process_slice(batch_size)

    def global_indices(self, epoch: int, step_in_epoch: int) -> np.ndarray:
        order = epoch_permutation(self.dataset.num_examples, self.seed, epoch)
        start = step_in_epoch * self.batch_size
        return order[start : start + self.batch_size]

    def batch(self, epoch: int, step_in_epoch: int) -> dict[str, jax.Array]:
        """The global batch `step_in_epoch` of `epoch`, as arrays sharded over 'data'."""
        local = self.global_indices(epoch, step_in_epoch)[self._rows]
        return to_global(self._read(local), self.sharding, self.batch_size)

    def _read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        ex = self.dataset.read(indices)
        out = {"image": ex["image"], "index": ex["index"].astype(np.int32)}
        if self.anchors is not None:
            out["anchor"] = self.anchors[indices]
        return out

    def iterate(self, start_step: int, num_steps: int, prefetch: int = 2) -> Iterator[tuple[int, dict]]:
        """(global step, batch) for steps [start_step, start_step + num_steps), read ahead in a thread."""

        def produce(step: int):
            epoch, k = divmod(step, self.steps_per_epoch)
            return step, self.batch(epoch, k)

        return prefetch_map(produce, range(start_step, start_step + num_steps), prefetch)


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
        self._rows = process_slice(batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, i: int) -> dict[str, jax.Array]:
        n = self.dataset.num_examples
        idx = np.arange(i * self.batch_size, (i + 1) * self.batch_size)[self._rows]
        valid = idx < n
        idx = np.where(valid, idx, n - 1)  # pad by repeating the last example
        ex = self.dataset.read(idx)
        local = {"image": ex["image"], "index": idx.astype(np.int32), "valid": valid}
        if self.anchors is not None:
            local["anchor"] = self.anchors[idx]
        return to_global(local, self.sharding, self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        for _, b in prefetch_map(lambda i: (i, self.batch(i)), range(self.num_batches), 2):
            yield b


def map_batches(fn: Callable[[dict], jax.Array], dataset, batch_size: int, mesh: Mesh,
                anchors: np.ndarray | None = None, *, desc: str = "", progress: bool = False) -> np.ndarray:
    """fn over the whole dataset in order, in global batches: host array [N, ...] (padding dropped).

    `fn(batch) -> jax.Array [batch_size, ...]` gets EvalBatches' batches (image, index,
    valid and, with `anchors`, anchor). Every process gets all N rows. Cluster
    assignment, the CLIP anchor pass and prediction all run through here.
    """
    from tqdm import tqdm

    batches = EvalBatches(dataset, batch_size, mesh, anchors)
    outs, valid = [], []
    show = progress and jax.process_index() == 0
    for b in tqdm(batches, total=len(batches), desc=desc, unit="batch", disable=not show, leave=False):
        outs.append(multihost_utils.process_allgather(fn(b), tiled=True))
        valid.append(multihost_utils.process_allgather(b["valid"], tiled=True))
    return np.concatenate(outs)[np.concatenate(valid)]


def prefetch_map(fn, items, depth: int):
    """Yields fn(item) for each item, computing up to `depth` ahead in a daemon thread.

    Exceptions in the producer are re-raised in the consumer.
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
