"""Three wires of a real training run no other test pulled (issue 30, points 4-6), through
`train_and_evaluate`:

4. A best-checkpoint save that fails on a real full disk (a tmpfs mounted as the best folder), when
   that folder's earlier step is already gone, ends in the one line naming the TRAINING checkpoint
   kept (tests/test_faults.py checks the Checkpointer class alone).
5. The learning rate the run applies at every step, read back from the optimiser state and the
   parameter change (Adam's update divided by the rate), is warm-up then cosine over
   num_epochs x steps_per_epoch (tests/test_optimizer.py checks the schedule function alone).
6. With the lowest training loss at an earlier epoch than the last, the best-by-loss metrics are an
   evaluation of the variables the run had at that epoch, not the last ones.

5 and 6 share one 3-epoch digits run (ConvNet width 8) whose steps are recorded by wrapping the
run's own compiled step.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil

import jax
import numpy as np
import optax
import pytest

from ccjax.run.checkpoint import SaveFailed
from ccjax.run.rundir import BEST_CHECKPOINTS_DIR, CHECKPOINTS_DIR
from test_full_disk import du, fill, tmpfs
from test_report import tiny_digits_config, trained_digits_run

DIGITS, BATCH = 1797, 256  # the embedded digits and cc_digits' batch: 7 full batches an epoch
STEPS_PER_EPOCH = DIGITS // BATCH


# ----------------------------------------------------------------------------- 4. the best save on a full disk


@pytest.mark.slow
def test_a_best_save_failing_on_a_full_disk_names_the_training_checkpoint_kept(tmp_path_factory, tmp_path):
    """The tiny digits run (2 epochs) extended to 3: epoch 3's loss is the lowest, so its best-by-loss
    save starts, into a best folder that is a full tmpfs and no longer holds its earlier step (keep=1:
    Orbax may delete it first). The training checkpoint of epoch 2 is what a resume reads; a line
    naming the best folder's own steps says "no complete checkpoint exists" (the best Checkpointer
    built without `resume_directory`); one that leaves the failed step out of the training folder's
    steps names step 14, which a resume does not start from."""
    from ccjax.train import train_and_evaluate

    src, _ = trained_digits_run(tmp_path_factory)
    wd = str(tmp_path / "run")
    shutil.copytree(src, wd)
    best_dir = os.path.join(wd, BEST_CHECKPOINTS_DIR)
    assert os.listdir(best_dir) == ["14"]
    shutil.rmtree(best_dir)
    with tmpfs(best_dir, "8m"):
        fill(best_dir, leave=du(os.path.join(wd, CHECKPOINTS_DIR, "14")) // 4)
        config = tiny_digits_config()
        config.num_epochs = 3
        with pytest.raises(SaveFailed) as e:
            train_and_evaluate(config, wd)
        line = str(e.value)
        assert "\n" not in line
        assert line.startswith(f"saving checkpoint step 21 in {best_dir} failed (the disk is full); "), line
        kept = sorted(int(s) for s in os.listdir(os.path.join(wd, CHECKPOINTS_DIR)) if s.isdigit())
        # the training save of step 21 finished on the real disk (the best save's failure is reported after
        # waiting for it): a resume starts from 21, and the line names it (it named 14 before the fix)
        assert kept == [7, 14, 21] and "the previous complete checkpoint (step 21) is kept" in line, (line, kept)
        assert not [n for n in os.listdir(best_dir) if n != "ballast"]  # nothing half-written


# ----------------------------------------------------------------------------- 5 and 6: one recorded run


def adam_direction(opt_state) -> np.ndarray:
    """Adam's update for a unit rate, from its state after a step (Kingma & Ba, optax's defaults
    b1 = 0.9, b2 = 0.999, eps = 1e-8): m_hat / (sqrt(v_hat) + eps), all parameters flattened."""
    (adam,) = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
               if isinstance(s, optax.ScaleByAdamState)]
    t = int(adam.count)
    mu = np.concatenate([np.ravel(x) for x in jax.tree.leaves(adam.mu)]).astype(np.float64) / (1 - 0.9**t)
    nu = np.concatenate([np.ravel(x) for x in jax.tree.leaves(adam.nu)]).astype(np.float64) / (1 - 0.999**t)
    return mu / (np.sqrt(nu) + 1e-8)


def flat(params) -> np.ndarray:
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)]).astype(np.float64)


def warmup_cosine(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up from 0, then cosine decay to 0 at `total` (written here from the definition)."""
    if step < warmup:
        return peak * step / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def wires_config():
    c = tiny_digits_config()
    c.num_epochs = 3
    c.lr_schedule, c.warmup_epochs = "cosine", 1
    c.eval.every_epochs = 0
    return c


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory):
    """(workdir, result, {step: (params before, variables after, optimiser state after)}, its stderr) of a
    3-epoch run whose epoch-mean losses after the first are reported 1.0 higher, so the best epoch is the
    first."""
    from ccjax.train import loop

    steps = {}
    real_make, real_mean = loop.make_train_step, loop._mean_metrics
    epochs = []

    def make_recording_step(*args, **kwargs):
        step = real_make(*args, **kwargs)

        def recording_step(state, batch):
            at, before = int(state.step), jax.device_get(state.params)  # the step donates `state`
            new, metrics = step(state, batch)
            steps[at] = (before, jax.device_get({"params": new.params, **new.model_state}),
                                      jax.device_get(new.opt_state))
            return new, metrics
        return recording_step

    def later_epochs_worse(sums, count):
        means = real_mean(sums, count)
        epochs.append(means["loss"])
        return {**means, "loss": means["loss"] + (1.0 if len(epochs) > 1 else 0.0)}

    wd = str(tmp_path_factory.mktemp("wires") / "run")
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(loop, "make_train_step", make_recording_step)
        mp.setattr(loop, "_mean_metrics", later_epochs_worse)
        result = loop.train_and_evaluate(wires_config(), wd)
    return wd, result, steps, err.getvalue()


@pytest.mark.slow
def test_the_learning_rate_a_run_applies_is_warm_up_then_cosine_over_the_whole_run(recorded_run):
    """A schedule built over num_epochs steps instead of num_epochs x steps_per_epoch (the run's
    steps per epoch not handed to the optimiser), over the steps left after a resume, or with the
    warm-up counted in epochs as steps, applies other rates at these steps."""
    _, result, steps, _ = recorded_run
    c = wires_config()
    total = c.num_epochs * STEPS_PER_EPOCH
    assert sorted(steps) == list(range(total)) and result["step"] == total
    for s, (before, after, opt_state) in steps.items():
        u = adam_direction(opt_state)
        moved = flat(before) - flat(after["params"])
        applied = float(moved @ u / (u @ u))  # least squares: params_after = params_before - lr * u
        expected = warmup_cosine(s, c.learning_rate, c.warmup_epochs * STEPS_PER_EPOCH, total)
        assert applied == pytest.approx(expected, rel=1e-4, abs=1e-4 * c.learning_rate), s


@pytest.mark.slow
def test_best_by_loss_metrics_evaluate_the_best_epochs_variables_not_the_last(recorded_run):
    """Best epoch 1 (step 7), last step 21. Reporting the last variables' metrics under the best's
    name (or restoring the training folder's newest checkpoint for it) makes them equal the last's."""
    from ccjax.data import open_dataset
    from ccjax.data.labels import dataset_labels
    from ccjax.eval.assign import assign_clusters, evaluate_assignments
    from ccjax.run.load import load_trained

    wd, result, steps, _ = recorded_run
    best = result["best_by_train_loss"]
    assert (best["step"], best["epoch"], result["step"]) == (STEPS_PER_EPOCH, 1, 3 * STEPS_PER_EPOCH)
    trained = load_trained(wd)
    dataset = open_dataset(trained.config.dataset)
    labels = dataset_labels(dataset)

    def metrics_of(variables) -> dict:
        probs = assign_clusters(trained.module, variables, trained.config, dataset, trained.mesh, None, progress=False)
        return evaluate_assignments(probs, labels)

    at_best = metrics_of(steps[STEPS_PER_EPOCH - 1][1])  # the variables after the epoch's last step
    at_last = metrics_of(steps[3 * STEPS_PER_EPOCH - 1][1])
    assert at_best["cluster_sizes"] != at_last["cluster_sizes"]  # the two really differ
    for k in ("acc", "nmi", "ari", "cluster_sizes"):
        assert best[k] == pytest.approx(at_best[k], abs=1e-12), k
        assert result[k] == pytest.approx(at_last[k], abs=1e-12), k


@pytest.mark.slow
def test_progress_bar_off_draws_no_bar_in_training_or_the_final_evaluation(recorded_run):
    """`progress_bar=False` (the config's, as `--config.progress_bar=False` sets it) reaches the final
    evaluation too: no tqdm bar on stderr. Dropped on the way to `evaluate_run` (whose default draws
    the bars), the "assign" bars of the last and best checkpoints appear."""
    *_, stderr = recorded_run
    assert wires_config().progress_bar is False
    assert "%|" not in stderr and "assign" not in stderr and "train:" not in stderr, stderr[-2000:]
