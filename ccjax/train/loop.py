"""Training, part 3 of 3: the loop. `train_and_evaluate(config, workdir)`.

`TrainingRun` puts a run together from the config: the dataset, the frozen CLIP
anchors (MFAVBs-CC), the global batches, the model and state of
ccjax/train/state.py and the step of ccjax/train/step.py. The loop then runs
the steps and calls its services: checkpoints (ccjax/run/checkpoint.py), the
run directory (ccjax/run/rundir.py), the log (ccjax/run/log.py), the final
evaluation and report (ccjax/eval/).

A run resumes automatically from the newest complete checkpoint in
`workdir/checkpoints`: the step counter fixes the data position and the
randomness, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ccjax.clip import load_anchors
from ccjax.config import validate
from ccjax.data import open_dataset
from ccjax.data.pipeline import TrainBatches
from ccjax.errors import UserError
from ccjax.eval.assign import assign_clusters, dataset_labels, evaluate_assignments
from ccjax.eval.evaluation import evaluate_run, print_summary
from ccjax.run import rundir
from ccjax.run.checkpoint import Checkpointer, SaveFailed
from ccjax.run.load import Restored, TrainedModel
from ccjax.run.log import RunLog
from ccjax.runtime.mesh import check_batch_size, make_mesh
from ccjax.runtime.preemption import StopRequest
from ccjax.train.state import ModelSetup
from ccjax.train.step import make_train_step

log = logging.getLogger(__name__)


class TrainingDiverged(UserError):
    """Loss or gradients became NaN/inf."""


def resolve_num_clusters(config, dataset) -> int:
    """config.dataset.num_clusters, or the dataset's number of classes when it is -1; 2 <= K <= N.

    A K above the batch size is allowed with a warning: the cluster loss sees
    one batch's assignment columns, so most clusters are empty in every batch.
    """
    k = config.dataset.num_clusters
    if k <= 0:
        if dataset.num_classes is None:
            raise UserError(
                f"dataset {config.dataset.name!r} has no labels, so the number of clusters cannot be "
                "inferred; set --config.dataset.num_clusters=K"
            )
        k = dataset.num_classes
    k = int(k)
    if k < 2:
        raise UserError(f"{k} cluster: clustering needs at least 2; set --config.dataset.num_clusters=K (K >= 2)")
    if k > dataset.num_examples:
        raise UserError(f"dataset.num_clusters={k} is more than the {dataset.num_examples} images of "
                        f"{config.dataset.name!r}; set --config.dataset.num_clusters to at most {dataset.num_examples}")
    if k > config.batch_size and jax.process_index() == 0:
        print(f"ccjax: warning: {k} clusters but batches of {config.batch_size}: the cluster loss sees one batch, "
              f"so most clusters are empty in each; raise --config.batch_size to at least {k}", file=sys.stderr,
              flush=True)
    return k


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


def train_and_evaluate(config, workdir: str, stop_at_epoch: int | None = None) -> dict:
    """Trains (resuming if `workdir` holds checkpoints), evaluates, writes metrics.json.

    Returns the final metrics, or {'stopped_at_step': s} when the run stopped
    early (SIGTERM, or `stop_at_epoch`) after saving a checkpoint.
    """
    if config.method == "temi":  # heads on cached frozen features: their own small loop
        from ccjax.methods.temi.train import train_temi

        return train_temi(config, workdir, stop_at_epoch)
    validate(config)  # every field, before anything is opened or created
    with rundir.lock(workdir):  # one run per workdir, taken before anything in it is touched
        rundir.check(workdir, config)
        return _train_and_evaluate(config, workdir, stop_at_epoch)


def _train_and_evaluate(config, workdir: str, stop_at_epoch: int | None) -> dict:
    run = TrainingRun(config)  # opens the data (and checks K against it) before anything is written
    rundir.write_config(workdir, config)
    main = jax.process_index() == 0
    if main:
        rundir.write_json_atomic(os.path.join(workdir, rundir.RUN_INFO), run.describe())
    spe = run.steps_per_epoch
    total_steps = config.num_epochs * spe
    runlog = RunLog(workdir)
    ckpt = Checkpointer(os.path.join(workdir, rundir.CHECKPOINTS_DIR), config.checkpoint.keep)
    # The checkpoint with the lowest epoch-mean training loss among the saved
    # ones: the model selection a label-free user can make.
    # A failed save of it names the training checkpoint a resume starts from.
    best_ckpt = Checkpointer(os.path.join(workdir, rundir.BEST_CHECKPOINTS_DIR), keep=1,
                             resume_directory=ckpt.directory)

    newest = ckpt.restore_newest(run.setup.abstract_state)  # a damaged newest checkpoint is set aside
    latest = None if newest is None else newest[0]
    acc_sums, acc_count = None, 0
    best_loss = float("inf")
    runlog.truncate_history(latest or 0)  # records after the resumed step (or all, from scratch) go
    if latest is None:
        state = run.setup.init_state()
    else:
        _, state, meta = newest
        best_loss = float(meta.get("best_loss", float("inf")))
        acc_count = int(meta.get("epoch_count", 0))
        if acc_count:
            acc_sums = {k: jnp.float32(v) for k, v in meta["epoch_sums"].items()}
        if main:
            print(f"ccjax: resuming from step {latest} (epoch {latest // spe}) in {workdir}", flush=True)

    def save(step: int) -> None:
        sums = {} if acc_sums is None else {k: float(v) for k, v in jax.device_get(acc_sums).items()}
        ckpt.save(step, state, {"step": step, "epoch": step // spe, "epoch_sums": sums,
                                "epoch_count": acc_count, "best_loss": best_loss})

    def check_finite() -> None:
        bad = int(state.first_nonfinite_step)
        if bad >= 0:
            ckpt.wait()
            good = ckpt.latest_step()
            kept = f"the last good checkpoint (step {good}) is kept" if good is not None else "no checkpoint was saved"
            raise TrainingDiverged(
                f"loss or gradients became NaN/inf at step {bad} (epoch {bad // spe}); {kept}; "
                "lower --config.learning_rate or try --config.dtype=float32"
            )

    stop = StopRequest()
    finished = False
    start = int(state.step)
    if main:
        n, bs = run.dataset.num_examples, config.batch_size
        left_out = n - spe * bs  # the epoch's permutation drops the last partial batch
        print(
            f"ccjax: {config.method} on {config.dataset.name} ({n} images {run.dataset.how_opened}; "
            f"{run.num_clusters} clusters), {config.num_epochs} epochs x {spe} step{'s' if spe != 1 else ''} "
            f"of {bs}" + (f" ({left_out} of the {n} images left out of each epoch, a different random "
                          f"{left_out} each time)" if left_out else "")
            + f", {jax.device_count()} {jax.devices()[0].platform} device(s)", flush=True)
    bar = tqdm(total=total_steps, initial=start, desc="train", unit="step",
               disable=not (main and config.progress_bar), dynamic_ncols=True)
    stopped = None
    t0 = time.time()
    try:
        for step, batch in run.batches.iterate(start, total_steps - start):
            state, metrics = run.train_step(state, batch)
            ckpt.check()  # a failed asynchronous save is reported now, not at the next save
            best_ckpt.check()
            acc_sums = metrics if acc_sums is None else jax.tree.map(jnp.add, acc_sums, metrics)
            acc_count += 1
            done = step + 1
            bar.update(1)
            if done % config.log_every_steps == 0:
                check_finite()
                last = {k: float(v) for k, v in jax.device_get(metrics).items()}
                runlog.scalars(done, last)
                bar.set_postfix(loss=f"{last['loss']:.4f}", refresh=False)
            if done % spe == 0:
                # A save has until the end of the next epoch (it is normally done long before): a failed
                # one stops the run here at the latest, on every process at the same step, before this
                # epoch is logged; `check` above reports it as soon as it is known.
                ckpt.wait()
                best_ckpt.wait()
                check_finite()
                epoch = done // spe
                means = _mean_metrics(acc_sums, acc_count)
                acc_sums, acc_count = None, 0
                record = {"epoch": epoch, "step": done, **means, "seconds": round(time.time() - t0, 3)}
                if config.eval.every_epochs and epoch % config.eval.every_epochs == 0 and epoch < config.num_epochs:
                    probs = assign_clusters(run.setup.module, _variables(state), config, run.dataset, run.mesh, run.anchors,
                                            progress=False)
                    ev = evaluate_assignments(probs, dataset_labels(run.dataset))
                    record.update({f"eval_{k}": ev[k] for k in ("acc", "nmi", "ari") if k in ev})
                runlog.history(record)
                runlog.scalars(done, {f"epoch_{k}": v for k, v in means.items()})
                if epoch % config.checkpoint.every_epochs == 0 or epoch == config.num_epochs:
                    if np.isfinite(means["loss"]) and means["loss"] < best_loss:
                        best_loss = means["loss"]
                        # A kill between the best and the main save leaves the best one at this step:
                        # the replay reaches the same state (bit-identical resume), so it is kept.
                        if done not in best_ckpt.all_steps():
                            best_ckpt.save(done, state, {"step": done, "epoch": epoch, "loss": best_loss})
                    save(done)
                if stop_at_epoch is not None and epoch >= stop_at_epoch and done < total_steps:
                    stopped = done
            if stop.requested or ckpt.reached_preemption(done):
                stopped = done
            if stopped is not None:
                check_finite()
                if ckpt.latest_step() != done:
                    save(done)
                break
        finished = True
    finally:
        bar.close()
        stop.restore()
        for c in (ckpt, best_ckpt):
            try:
                c.wait()
            except SaveFailed:
                if finished:  # else the error already on its way says more
                    raise

    if stopped is not None:
        ckpt.close()
        best_ckpt.close()
        runlog.close()
        if main:
            why = f"{stop.signal_name} received" if stop.requested else "stop requested"
            print(f"ccjax: {why}; saved a checkpoint at step {stopped} (epoch {stopped / spe:.2f}); "
                  "run the same command again to resume", flush=True)
        return {"stopped_at_step": stopped}

    check_finite()
    if ckpt.latest_step() != total_steps:
        save(total_steps)
    ckpt.close()
    best_ckpt.close()
    runlog.close()

    trained = TrainedModel.build(workdir, config, run.describe(), run.mesh)
    last = Restored(_variables(state), int(state.step), {})
    result = evaluate_run(trained, run.dataset, run.anchors, last, progress=config.progress_bar)
    if main:
        print_summary(result)
        print(f"ccjax: metrics, report and checkpoints are in {workdir}", flush=True)
    return result

