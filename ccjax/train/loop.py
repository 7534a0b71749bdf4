"""Training, part 3 of 3: the loop. `train_and_evaluate(config, workdir)`.

`TrainingRun` puts a run together from the config: the dataset, the frozen CLIP
anchors (MFAVBs-CC), the global batches, the model and state of
ccjax/train/state.py and the step of ccjax/train/step.py. The loop then runs
the steps and calls its services: checkpoints (ccjax/run/checkpoint.py), the
run directory (ccjax/run/rundir.py), the log (ccjax/run/log.py), the final
evaluation and report (ccjax/report/run_report.py).

The loop reads in parts, each a function of what it is given: `resume` (the state
and the epoch's running sums from the newest checkpoint, or fresh), `run_steps`
(the steps; at each epoch's end `end_epoch`: log, evaluate every N epochs, save)
and `finish` (the last save, then the final evaluation). `Progress` is what they
hand each other.

A run resumes automatically from the newest complete checkpoint in
`workdir/checkpoints`: the step counter fixes the data position and the
randomness, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ccjax.clip import load_anchors
from ccjax.config import validate
from ccjax.data import open_dataset
from ccjax.data.labels import dataset_labels
from ccjax.data.pipeline import TrainBatches
from ccjax.eval.assign import assign_clusters, evaluate_assignments
from ccjax.eval.evaluation import print_summary
from ccjax.report.run_report import evaluate_run
from ccjax.run import rundir
from ccjax.run.checkpoint import Checkpointer, SaveFailed
from ccjax.run.load import Restored, TrainedModel
from ccjax.run.log import RunLog
from ccjax.run.resume import refuse_fewer_epochs
from ccjax.runtime.distributed import is_main_process
from ccjax.runtime.mesh import check_batch_size, make_mesh
from ccjax.runtime.preemption import StopRequest
from ccjax.train.checks import TrainingDiverged, resolve_num_clusters
from ccjax.train.state import ModelSetup
from ccjax.train.step import make_train_step
from ccjax.train.temi import train_temi

log = logging.getLogger(__name__)


class TrainingRun:
    """Everything a training run is built from: data, anchors, batches, model and state (`setup`), step."""

    def __init__(self, config, mesh=None, dataset=None, anchors="load"):
        """`dataset` and `anchors` default to the config's (anchors computed or read from the cache)."""
        self.config = config
        self.mesh = make_mesh() if mesh is None else mesh
        check_batch_size(config.batch_size, self.mesh)
        check_batch_size(config.eval.batch_size, self.mesh, "eval.batch_size")
        self.dataset = open_dataset(config.dataset) if dataset is None else dataset
        self.anchors = load_anchors(config, self.dataset, self.mesh) if isinstance(anchors, str) else anchors
        self.anchor_dim = None if self.anchors is None else int(self.anchors.shape[1])
        self.batches = TrainBatches(self.dataset, config.batch_size, config.seed, self.mesh, self.anchors)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.num_clusters = resolve_num_clusters(config, self.dataset)
        self.setup = ModelSetup.build(config, self.num_clusters, self.dataset.image_shape, self.anchor_dim,
                                      self.mesh, self.steps_per_epoch)
        self.train_step = make_train_step(self.setup.module, self.setup.tx, config, self.steps_per_epoch)

    def describe(self) -> dict:
        """What inference needs to know about the training data (written to run.json)."""
        return {
            "dataset": self.config.dataset.name,
            "num_examples": self.dataset.num_examples,
            "image_shape": list(self.dataset.image_shape),
            "num_clusters": self.num_clusters,
            "class_names": self.dataset.class_names,
            "anchor_dim": self.anchor_dim,
        }


def _variables(state) -> dict:
    """The model variables of a TrainState: {'params', 'batch_stats', ...}."""
    return {"params": state.params, **state.model_state}


def _mean_metrics(sums: dict, count: int) -> dict[str, float]:
    host = jax.device_get(sums)
    return {k: float(v) / max(count, 1) for k, v in host.items()}


@dataclasses.dataclass
class Progress:
    """What the loop carries from step to step, and a checkpoint across a restart: the train state, the
    running sums of this epoch's step metrics (device scalars; None before its first step) and the lowest
    epoch-mean training loss saved so far."""

    state: Any
    epoch_sums: dict | None = None
    epoch_count: int = 0
    best_loss: float = float("inf")

    def add(self, metrics: dict) -> None:
        self.epoch_sums = metrics if self.epoch_sums is None else jax.tree.map(jnp.add, self.epoch_sums, metrics)
        self.epoch_count += 1

    def take_epoch_means(self) -> dict[str, float]:
        """This epoch's mean step metrics; the sums start again."""
        means = _mean_metrics(self.epoch_sums, self.epoch_count)
        self.epoch_sums, self.epoch_count = None, 0
        return means


@dataclasses.dataclass
class Checkpoints:
    """The training checkpoints, and the one with the lowest epoch-mean training loss among the saved ones:
    the model selection a label-free user can make. A failed save of the best one names the training
    checkpoint a resume starts from."""

    last: Checkpointer
    best: Checkpointer

    @classmethod
    def open(cls, workdir: str, config) -> "Checkpoints":
        last = Checkpointer(os.path.join(workdir, rundir.CHECKPOINTS_DIR), config.checkpoint.keep)
        best = Checkpointer(os.path.join(workdir, rundir.BEST_CHECKPOINTS_DIR), keep=1,
                            resume_directory=last.directory)
        return cls(last, best)

    def check(self) -> None:
        """A failed asynchronous save is reported now, not at the next save."""
        self.last.check()
        self.best.check()

    def wait(self) -> None:
        self.last.wait()
        self.best.wait()

    def close(self) -> None:
        self.last.close()
        self.best.close()


def save(ckpts: Checkpoints, progress: Progress, step: int, steps_per_epoch: int) -> None:
    """A training checkpoint at `step`, with what a resume needs to continue the epoch's sums."""
    sums = {} if progress.epoch_sums is None else {k: float(v) for k, v in jax.device_get(progress.epoch_sums).items()}
    ckpts.last.save(step, progress.state, {"step": step, "epoch": step // steps_per_epoch, "epoch_sums": sums,
                                           "epoch_count": progress.epoch_count, "best_loss": progress.best_loss})


def check_finite(state, ckpts: Checkpoints, steps_per_epoch: int) -> None:
    """TrainingDiverged when a step's loss or gradients were not finite (its update was discarded)."""
    bad = int(state.first_nonfinite_step)
    if bad >= 0:
        ckpts.last.wait()
        good = ckpts.last.latest_step()
        kept = f"the last good checkpoint (step {good}) is kept" if good is not None else "no checkpoint was saved"
        raise TrainingDiverged(
            f"loss or gradients became NaN/inf at step {bad} (epoch {bad // steps_per_epoch}); {kept}; "
            "lower --config.learning_rate or try --config.dtype=float32"
        )


def resume(run: TrainingRun, ckpts: Checkpoints, runlog: RunLog, workdir: str, main: bool) -> Progress:
    """The newest checkpoint's progress (a damaged newest one is set aside), or a fresh state; the run log
    forgets the records after it."""
    newest = ckpts.last.restore_newest(run.setup.abstract_state)
    latest = None if newest is None else newest[0]
    runlog.truncate_history(latest or 0)  # records after the resumed step (or all, from scratch) go
    if latest is None:
        return Progress(run.setup.init_state())
    _, state, meta = newest
    progress = Progress(state, best_loss=float(meta.get("best_loss", float("inf"))),
                        epoch_count=int(meta.get("epoch_count", 0)))
    if progress.epoch_count:
        progress.epoch_sums = {k: jnp.float32(v) for k, v in meta["epoch_sums"].items()}
    if main:
        print(f"ccjax: resuming from step {latest} (epoch {latest // run.steps_per_epoch}) in {workdir}", flush=True)
    return progress


def print_start(run: TrainingRun) -> None:
    """The line that says what is trained, on what, for how long."""
    config, spe = run.config, run.steps_per_epoch
    n, bs = run.dataset.num_examples, config.batch_size
    left_out = n - spe * bs  # the epoch's permutation drops the last partial batch
    print(
        f"ccjax: {config.method} on {config.dataset.name} ({n} images {run.dataset.how_opened}; "
        f"{run.num_clusters} clusters), {config.num_epochs} epochs x {spe} step{'s' if spe != 1 else ''} "
        f"of {bs}" + (f" ({left_out} of the {n} images left out of each epoch, a different random "
                      f"{left_out} each time)" if left_out else "")
        + f", {jax.device_count()} {jax.devices()[0].platform} device(s)", flush=True)


def end_epoch(run: TrainingRun, progress: Progress, ckpts: Checkpoints, runlog: RunLog, done: int,
              t0: float) -> None:
    """At the end of the epoch that ends at step `done`: its record in the history (with ACC/NMI/ARI every
    `eval.every_epochs`), then the checkpoints due (`checkpoint.every_epochs`, and the last epoch)."""
    config, spe = run.config, run.steps_per_epoch
    # A save has until the end of the next epoch (it is normally done long before): a failed one stops the
    # run here at the latest, on every process at the same step, before this epoch is logged; `check` in
    # run_steps reports it as soon as it is known.
    ckpts.wait()
    check_finite(progress.state, ckpts, spe)
    epoch = done // spe
    means = progress.take_epoch_means()
    record = {"epoch": epoch, "step": done, **means, "seconds": round(time.time() - t0, 3)}
    if config.eval.every_epochs and epoch % config.eval.every_epochs == 0 and epoch < config.num_epochs:
        probs = assign_clusters(run.setup.module, _variables(progress.state), config, run.dataset, run.mesh,
                                run.anchors, progress=False)
        ev = evaluate_assignments(probs, dataset_labels(run.dataset))
        record.update({f"eval_{k}": ev[k] for k in ("acc", "nmi", "ari") if k in ev})
    runlog.history(record)
    runlog.scalars(done, {f"epoch_{k}": v for k, v in means.items()})
    if epoch % config.checkpoint.every_epochs == 0 or epoch == config.num_epochs:
        if np.isfinite(means["loss"]) and means["loss"] < progress.best_loss:
            progress.best_loss = means["loss"]
            # A kill between the best and the main save leaves the best one at this step:
            # the replay reaches the same state (bit-identical resume), so it is kept.
            if done not in ckpts.best.all_steps():
                ckpts.best.save(done, progress.state, {"step": done, "epoch": epoch, "loss": progress.best_loss})
        save(ckpts, progress, done, spe)


def run_steps(run: TrainingRun, progress: Progress, ckpts: Checkpoints, runlog: RunLog, stop: StopRequest,
              stop_at_epoch: int | None, main: bool) -> int | None:
    """The steps from the state's step to the last; returns the step it stopped at early (a signal, a
    preemption notice, `stop_at_epoch`), with a checkpoint saved there, or None when it ran to the end."""
    config, spe = run.config, run.steps_per_epoch
    total_steps = config.num_epochs * spe
    start = int(progress.state.step)
    bar = tqdm(total=total_steps, initial=start, desc="train", unit="step",
               disable=not (main and config.progress_bar), dynamic_ncols=True)
    stopped, finished = None, False
    t0 = time.time()
    try:
        for step, batch in run.batches.iterate(start, total_steps - start):
            progress.state, metrics = run.train_step(progress.state, batch)
            ckpts.check()
            progress.add(metrics)
            done = step + 1
            bar.update(1)
            if done % config.log_every_steps == 0:
                check_finite(progress.state, ckpts, spe)
                last = {k: float(v) for k, v in jax.device_get(metrics).items()}
                runlog.scalars(done, last)
                bar.set_postfix(loss=f"{last['loss']:.4f}", refresh=False)
            if done % spe == 0:
                end_epoch(run, progress, ckpts, runlog, done, t0)
                if stop_at_epoch is not None and done // spe >= stop_at_epoch and done < total_steps:
                    stopped = done
            if stop.requested or ckpts.last.reached_preemption(done):
                stopped = done
            if stopped is not None:
                check_finite(progress.state, ckpts, spe)
                if ckpts.last.latest_step() != done:
                    save(ckpts, progress, done, spe)
                break
        finished = True
    finally:
        bar.close()
        stop.restore()
        for c in (ckpts.last, ckpts.best):
            try:
                c.wait()
            except SaveFailed:
                if finished:  # else the error already on its way says more
                    raise
    return stopped


def finish(run: TrainingRun, progress: Progress, ckpts: Checkpoints, runlog: RunLog, workdir: str) -> dict:
    """The last checkpoint (unless the last step saved it), then the final evaluation and report of the
    trained model as it is in memory (the model of `run`, not built again)."""
    spe = run.steps_per_epoch
    check_finite(progress.state, ckpts, spe)
    total_steps = run.config.num_epochs * spe
    if ckpts.last.latest_step() != total_steps:
        save(ckpts, progress, total_steps, spe)
    ckpts.close()
    runlog.close()
    trained = TrainedModel.of_module(workdir, run.config, run.describe(), run.setup.module, run.mesh)
    last = Restored(_variables(progress.state), int(progress.state.step), {})
    return evaluate_run(trained, run.dataset, run.anchors, last, progress=run.config.progress_bar)


def train_and_evaluate(config, workdir: str, stop_at_epoch: int | None = None) -> dict:
    """Trains (resuming if `workdir` holds checkpoints), evaluates, writes metrics.json.

    Returns the final metrics, or {'stopped_at_step': s} when the run stopped
    early (SIGTERM, or `stop_at_epoch`) after saving a checkpoint.
    """
    if config.method == "temi":  # heads on cached frozen features: their own small loop (temi.py)
        return train_temi(config, workdir, stop_at_epoch)
    validate(config)  # every field, before anything is opened or created
    with rundir.lock(workdir):  # one run per workdir, taken before anything in it is touched
        rundir.check(workdir, config)
        return _train_and_evaluate(config, workdir, stop_at_epoch)


def _train_and_evaluate(config, workdir: str, stop_at_epoch: int | None) -> dict:
    run = TrainingRun(config)  # opens the data (and checks K against it) before anything is written
    refuse_fewer_epochs(os.path.join(workdir, rundir.CHECKPOINTS_DIR), workdir, config.num_epochs,
                        run.steps_per_epoch)  # config.json must not say fewer epochs than the checkpoints hold
    rundir.write_config(workdir, config)
    main = is_main_process()
    if main:
        rundir.write_json_atomic(os.path.join(workdir, rundir.RUN_INFO), run.describe())
    runlog = RunLog(workdir)
    ckpts = Checkpoints.open(workdir, config)
    progress = resume(run, ckpts, runlog, workdir, main)
    stop = StopRequest()
    if main:
        print_start(run)
    stopped = run_steps(run, progress, ckpts, runlog, stop, stop_at_epoch, main)
    if stopped is not None:
        ckpts.close()
        runlog.close()
        if main:
            why = f"{stop.signal_name} received" if stop.requested else "stop requested"
            print(f"ccjax: {why}; saved a checkpoint at step {stopped} (epoch {stopped / run.steps_per_epoch:.2f}); "
                  "run the same command again to resume", flush=True)
        return {"stopped_at_step": stopped}
    result = finish(run, progress, ckpts, runlog, workdir)
    if main:
        print_summary(result)
        print(f"ccjax: metrics, report and checkpoints are in {workdir}", flush=True)
    return result
