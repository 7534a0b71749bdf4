"""The training loop: `train_and_evaluate(config, workdir)`.

A run resumes automatically from the newest complete checkpoint in
`workdir/checkpoints`: the step counter fixes the data position and the
randomness, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import logging
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ccjax import workdir as workdir_lib
from ccjax.assign import assign_clusters, dataset_labels, evaluate_assignments
from ccjax.checkpoint import Checkpointer
from ccjax.data import open_dataset
from ccjax.errors import UserError
from ccjax.evaluation import BEST_DIR, evaluate_run
from ccjax.input_pipeline import TrainBatches
from ccjax.models import build_model
from ccjax.objectives import get_objective
from ccjax.preemption import StopRequest
from ccjax.run_log import RunLog
from ccjax.sharding import check_batch_size, make_mesh
from ccjax.train_state import make_optimizer, make_train_step, train_state_spec

log = logging.getLogger(__name__)


RUN_INFO = "run.json"


class TrainingDiverged(UserError):
    """Loss or gradients became NaN/inf."""


def resolve_num_clusters(config, dataset) -> int:
    k = config.dataset.num_clusters
    if k > 0:
        return int(k)
    if dataset.num_classes is None:
        raise UserError(
            f"dataset {config.dataset.name!r} has no labels, so the number of clusters cannot be "
            "inferred; set --config.dataset.num_clusters=K"
        )
    return int(dataset.num_classes)


def load_anchors(config, dataset, mesh):
    """The cached frozen-CLIP embeddings [N, A], or None when the run uses no anchor."""
    if not config.anchor.enabled:
        return None
    from ccjax.anchors import load_or_build_anchors

    return load_or_build_anchors(config, dataset, mesh)


class Model:
    """The model, optimiser and state layout of a run: what a checkpoint needs, no data."""

    def __init__(self, config, num_clusters: int, image_shape, anchor_dim: int | None, mesh,
                 steps_per_epoch: int = 1):
        """`steps_per_epoch` sets the learning-rate schedule's length only (any value restores a checkpoint)."""
        self.config = config
        self.mesh = mesh
        self.num_clusters = num_clusters
        self.image_shape = tuple(image_shape)
        self.model = build_model(config, num_clusters)
        self.tx = make_optimizer(config, steps_per_epoch)
        self.init_state, self.abstract_state = train_state_spec(
            self.model, self.tx, config, mesh, self.image_shape, anchor_dim
        )


class Run(Model):
    """Everything a run is built from, shared by training, evaluation and benchmarks."""

    def __init__(self, config, mesh=None, dataset=None, anchors="load"):
        """`dataset` and `anchors` default to the config's (anchors computed or read from the cache)."""
        mesh = make_mesh() if mesh is None else mesh
        check_batch_size(config.batch_size, mesh)
        check_batch_size(config.eval.batch_size, mesh, "eval.batch_size")
        self.objective = get_objective(config.objective)
        self.dataset = open_dataset(config.dataset) if dataset is None else dataset
        self.anchors = load_anchors(config, self.dataset, mesh) if isinstance(anchors, str) else anchors
        anchor_dim = None if self.anchors is None else self.anchors.shape[1]
        self.batches = TrainBatches(self.dataset, config.batch_size, config.seed, mesh, self.anchors)
        self.steps_per_epoch = self.batches.steps_per_epoch
        super().__init__(config, resolve_num_clusters(config, self.dataset), self.dataset.image_shape,
                         anchor_dim, mesh, self.steps_per_epoch)
        self.train_step = make_train_step(self.model, self.tx, self.objective, config, self.steps_per_epoch)

    def describe(self) -> dict:
        """What predicting new images needs to know about the training data (written to run.json)."""
        return {
            "dataset": self.config.dataset.name,
            "num_examples": self.dataset.num_examples,
            "image_shape": list(self.image_shape),
            "num_clusters": self.num_clusters,
            "class_names": self.dataset.class_names,
            "anchor_dim": None if self.anchors is None else int(self.anchors.shape[1]),
        }


def _mean_metrics(sums: dict, count: int) -> dict[str, float]:
    host = jax.device_get(sums)
    return {k: float(v) / max(count, 1) for k, v in host.items()}


def train_and_evaluate(config, workdir: str, stop_at_epoch: int | None = None) -> dict:
    """Trains (resuming if `workdir` holds checkpoints), evaluates, writes metrics.json.

    Returns the final metrics, or {'stopped_at_step': s} when the run stopped
    early (SIGTERM, or `stop_at_epoch`) after saving a checkpoint.
    """
    workdir_lib.check(workdir, config)
    run = Run(config)  # validates the config and data before anything is written
    workdir_lib.write_config(workdir, config)
    main = jax.process_index() == 0
    if main:
        workdir_lib.write_json_atomic(os.path.join(workdir, RUN_INFO), run.describe())
    spe = run.steps_per_epoch
    total_steps = config.num_epochs * spe
    runlog = RunLog(workdir)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), config.checkpoint.keep)
    # The checkpoint with the lowest epoch-mean training loss among the saved
    # ones: the model selection a label-free user can make.
    best_ckpt = Checkpointer(os.path.join(workdir, BEST_DIR), keep=1)

    latest = ckpt.latest_step()
    acc_sums, acc_count = None, 0
    best_loss = float("inf")
    if latest is None:
        state = run.init_state()
    else:
        state, meta = ckpt.restore(latest, run.abstract_state)
        best_loss = float(meta.get("best_loss", float("inf")))
        acc_count = int(meta.get("epoch_count", 0))
        if acc_count:
            acc_sums = {k: jnp.float32(v) for k, v in meta["epoch_sums"].items()}
        runlog.truncate_history(latest)
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
    start = int(state.step)
    if main:
        print(
            f"ccjax: {config.method} on {config.dataset.name} ({run.dataset.num_examples} images, "
            f"{run.num_clusters} clusters), {config.num_epochs} epochs x {spe} steps of {config.batch_size}, "
            f"{jax.device_count()} {jax.devices()[0].platform} device(s)",
            flush=True,
        )
    bar = tqdm(total=total_steps, initial=start, desc="train", unit="step",
               disable=not (main and config.progress_bar), dynamic_ncols=True)
    stopped = None
    t0 = time.time()
    try:
        for step, batch in run.batches.iterate(start, total_steps - start):
            state, metrics = run.train_step(state, batch)
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
                check_finite()
                epoch = done // spe
                means = _mean_metrics(acc_sums, acc_count)
                acc_sums, acc_count = None, 0
                record = {"epoch": epoch, "step": done, **means, "seconds": round(time.time() - t0, 3)}
                if config.eval.every_epochs and epoch % config.eval.every_epochs == 0 and epoch < config.num_epochs:
                    probs = assign_clusters(state, run.model, config, run.dataset, run.mesh, run.anchors, progress=False)
                    ev = evaluate_assignments(probs, dataset_labels(run.dataset))
                    record.update({f"eval_{k}": ev[k] for k in ("acc", "nmi", "ari") if k in ev})
                runlog.history(record)
                runlog.scalars(done, {f"epoch_{k}": v for k, v in means.items()})
                if epoch % config.checkpoint.every_epochs == 0 or epoch == config.num_epochs:
                    if np.isfinite(means["loss"]) and means["loss"] < best_loss:
                        best_loss = means["loss"]
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
    finally:
        bar.close()
        stop.restore()
        ckpt.wait()
        best_ckpt.wait()

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

    result = evaluate_run(run, workdir, last_state=state, progress=config.progress_bar)
    if main:
        print(summary_line(result), flush=True)
        print(f"ccjax: metrics, report and checkpoints are in {workdir}", flush=True)
    return result


def summary_line(result: dict) -> str:
    if "acc" in result:
        return (f"ccjax: final clustering of {result['num_examples']} images: "
                f"ACC {result['acc']:.4f}  NMI {result['nmi']:.4f}  ARI {result['ari']:.4f}")
    return (f"ccjax: final clustering of {result['num_examples']} images (no labels): "
            f"{result['num_clusters']} clusters, assignment entropy {result.get('entropy', float('nan')):.3f}")

