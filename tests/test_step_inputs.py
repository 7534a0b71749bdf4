"""What the train step hands to the method's objective at each step, pinned.

A recording objective, registered in METHODS for the test, returns what it was given as
metrics: the epoch (what GeCC's schedule t reads), the random key's bits and which examples
the batch holds (each fake image is filled with its own index). Checked over three epochs
against what the schedule and the seed say:

- epoch = step // steps_per_epoch at every step (not the step, not the position in the epoch);
- the key is a pure function of (seed, step): distinct at every step, the same for the same
  step in a fresh (resumed) run, different for another seed, and the same on every process,
  which must agree since they augment one global batch together;
- step s's batch is the s-th slice of its epoch's shuffle: every epoch covers distinct examples,
  epochs are shuffled differently, a resumed run gets the same batches;
- a non-finite loss keeps the state and records the first such step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.methods import METHODS
from ccjax.train.loop import TrainingRun
from ccjax.train.state import TrainState
from ccjax.train.step import make_train_step
from fakes import array_dataset
from test_train import tiny_config

N, BATCH = 40, 8  # 5 steps per epoch
EPOCHS = 3


class RecordingObjective:
    """Stands in for a method's objective module (ccjax/methods/__init__.py's contract)."""

    nan_in_epoch: int | None = None  # a non-finite loss in every step of this epoch

    @staticmethod
    def check_config(config) -> None:
        pass

    @classmethod
    def loss_fn(cls, params, model_state, *, model, config, images, anchors, rng, epoch):
        bits = jax.random.key_data(rng).reshape(-1).astype(jnp.uint32)
        metrics = {"epoch": epoch, "examples": images[:, 0, 0, 0].astype(jnp.float32) - 1}
        for i in range(bits.shape[0]):  # 16-bit halves: exact in the float32 the step's metrics are kept in
            metrics[f"key_{i}_hi"] = bits[i] >> 16
            metrics[f"key_{i}_lo"] = bits[i] & 0xFFFF
        # A loss with a gradient, so that the optimiser moves the parameters when the step is kept.
        loss = 1.0 + 1e-3 * sum(jnp.sum(p * p) for p in jax.tree.leaves(params))
        if cls.nan_in_epoch is not None:
            loss = jnp.where(epoch == cls.nan_in_epoch, jnp.nan, loss)
        return loss, (metrics, model_state)


def indexed_dataset():
    """Image i is filled with the value i + 1, so the objective can read which examples it got."""
    images = np.broadcast_to((np.arange(N) + 1).astype(np.uint8)[:, None, None, None], (N, 8, 8, 1)).copy()
    return array_dataset(images, np.arange(N) % 4)


@pytest.fixture(scope="module")
def run():
    mp = pytest.MonkeyPatch()
    mp.setitem(METHODS, "cc", RecordingObjective)
    config = tiny_config()
    config.batch_size = BATCH
    config.num_epochs = EPOCHS
    try:
        yield TrainingRun(config, dataset=indexed_dataset())
    finally:
        mp.undo()


def record(run, step_fn, state, start: int, count: int) -> tuple[TrainState, list[dict]]:
    rows = []
    for step, batch in run.batches.iterate(start, count):
        assert int(state.step) == step
        state, metrics = step_fn(state, batch)
        rows.append({k: np.asarray(v) for k, v in jax.device_get(metrics).items()})
    return state, rows


def key_of(row: dict) -> tuple[int, ...]:
    n = len([k for k in row if k.endswith("_hi")])
    return tuple(int(row[f"key_{i}_hi"]) << 16 | int(row[f"key_{i}_lo"]) for i in range(n))


def step_fn(run, config=None):
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(METHODS, "cc", RecordingObjective)
        return make_train_step(run.setup.module, run.setup.tx, config or run.config, run.steps_per_epoch)


def test_epoch_key_and_batch_of_every_step_follow_the_schedule_and_the_seed(run):
    spe = run.steps_per_epoch
    assert spe == N // BATCH
    total = EPOCHS * spe
    state, rows = record(run, run.train_step, run.setup.init_state(), 0, total)
    assert int(state.step) == total
    # The epoch GeCC's schedule reads.
    assert [int(r["epoch"]) for r in rows] == [s // spe for s in range(total)]
    # A new key at every step.
    keys = [key_of(r) for r in rows]
    assert len(set(keys)) == total
    # Step s gets the s-th slice of its epoch's shuffle: each epoch's batches are distinct examples,
    # and each epoch is ordered differently.
    examples = [r["examples"].astype(int) for r in rows]
    orders = []
    for e in range(EPOCHS):
        order = np.concatenate(examples[e * spe:(e + 1) * spe])
        assert len(set(order.tolist())) == spe * BATCH, f"epoch {e} repeats an example"
        assert set(order.tolist()) <= set(range(N))
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    for s in (0, 3, spe + 2, total - 1):  # the batch the pipeline gives for that step, whenever asked
        np.testing.assert_array_equal(examples[s], np.asarray(run.batches.batch(s // spe, s % spe)["index"]))

    # Resumed mid-epoch, with a freshly built step: the same keys and batches from there on.
    resume_at = spe + 2
    restarted = run.setup.init_state().replace(step=jnp.asarray(resume_at, jnp.int32))
    _, again = record(run, step_fn(run), restarted, resume_at, total - resume_at)
    assert [key_of(r) for r in again] == keys[resume_at:]
    for a, b in zip(again, rows[resume_at:]):
        np.testing.assert_array_equal(a["examples"], b["examples"])
        assert int(a["epoch"]) == int(b["epoch"])


def test_another_seed_gives_other_keys_and_every_process_the_same(run, monkeypatch):
    _, rows = record(run, run.train_step, run.setup.init_state(), 0, 3)
    other = run.config.copy_and_resolve_references()
    other.seed = run.config.seed + 5
    _, seeded = record(run, step_fn(run, other), run.setup.init_state(), 0, 3)
    assert not {key_of(r) for r in rows} & {key_of(r) for r in seeded}
    # Seen from process 1 of 2 (the step is traced there with these answers): the same keys, since
    # the processes augment one global batch together.
    batches = list(run.batches.iterate(0, 3))  # assembled as process 0 (the whole batch is local here)
    fn, state, second = step_fn(run), run.setup.init_state(), []
    monkeypatch.setattr(jax, "process_index", lambda *a, **k: 1)
    monkeypatch.setattr(jax, "process_count", lambda *a, **k: 2)
    for _, batch in batches:
        state, metrics = fn(state, batch)
        second.append(jax.device_get(metrics))
    monkeypatch.undo()
    assert [key_of(r) for r in second] == [key_of(r) for r in rows]


def test_a_non_finite_loss_keeps_the_state_and_records_its_first_step(run, monkeypatch):
    monkeypatch.setattr(RecordingObjective, "nan_in_epoch", 0)  # steps 0 .. spe-1 are non-finite
    fn = step_fn(run)
    spe = run.steps_per_epoch
    state0 = run.setup.init_state()
    before = jax.device_get(state0.params)
    state, _ = record(run, fn, state0, 0, spe)
    assert int(state.step) == spe and int(state.first_nonfinite_step) == 0
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(state.params))):
        np.testing.assert_array_equal(a, b)
    state, _ = record(run, fn, state, spe, 1)  # epoch 1 is finite: the update is applied, the record stays
    assert int(state.first_nonfinite_step) == 0
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(state.params))))
