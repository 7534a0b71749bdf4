"""What each process reads at each step: numpy only, no jax, since grain's workers run it.

The readers are picklable callables (a copy goes to every grain worker) and
depend on their argument alone: `ReadTrainBatch(step)` and
`ReadEvalBatch(batch number)` return the same rows whichever process, worker
or thread calls them, and whether the dataset is in memory or streamed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ReadEvalBatch", "ReadTrainBatch", "TrainRows", "epoch_permutation"]


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of one epoch: depends on (seed, epoch) only."""
    return np.random.default_rng([seed, epoch, 0x0CC]).permutation(num_examples)


class TrainRows:
    """Which examples this process reads at each global step (picklable: grain workers hold a copy)."""

    def __init__(self, num_examples: int, batch_size: int, seed: int, rows: slice):
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.seed = seed
        self.rows = rows
        self.steps_per_epoch = num_examples // batch_size
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, permutation): one epoch cached

    def global_indices(self, epoch: int, step_in_epoch: int) -> np.ndarray:
        cached = self._order  # read once: another thread may swap in another epoch meanwhile
        if cached is None or cached[0] != epoch:
            cached = self._order = (epoch, epoch_permutation(self.num_examples, self.seed, epoch))
        start = step_in_epoch * self.batch_size
        return cached[1][start : start + self.batch_size]

    def local_indices(self, step: int) -> np.ndarray:
        """This process's rows of global step `step`'s batch."""
        epoch, k = divmod(step, self.steps_per_epoch)
        return self.global_indices(epoch, k)[self.rows]


class ReadTrainBatch:
    """step -> this process's rows of that step's batch: image uint8 and index (runs in grain workers)."""

    def __init__(self, dataset, rows: TrainRows):
        self.dataset = dataset
        self.rows = rows

    def __call__(self, step: int) -> dict[str, np.ndarray]:
        ex = self.dataset.read(self.rows.local_indices(int(step)))
        return {"image": ex["image"], "index": ex["index"].astype(np.int32)}


class ReadEvalBatch:
    """batch number -> this process's rows of it, in dataset order, the last batch padded (grain-picklable)."""

    def __init__(self, dataset, batch_size: int, rows: slice):
        self.dataset = dataset
        self.batch_size = batch_size
        self.rows = rows

    def __call__(self, i: int) -> dict[str, np.ndarray]:
        n = self.dataset.num_examples
        idx = np.arange(i * self.batch_size, (i + 1) * self.batch_size)[self.rows]
        valid = idx < n
        idx = np.where(valid, idx, n - 1)  # pad by repeating the last example
        ex = self.dataset.read(idx)
        return {"image": ex["image"], "index": idx.astype(np.int32), "valid": valid}
