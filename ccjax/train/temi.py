"""A TEMI run: `train_temi(config, workdir)`, writing the same run directory as every other method.

Frozen features (cached, ccjax/features/) -> exact kNN over the whole set (sharded, blockwise)
-> H heads with an EMA teacher, one jit call per epoch (ccjax/methods/temi/step.py) -> checkpoints
(resumable at any saved epoch, bit-identically: the epoch's randomness is keyed by (seed, epoch))
-> the best head by training loss (no labels) -> the common evaluation and report (metrics.json,
report/), with scikit-learn's k-means on the same features beside it (metrics.json's "kmeans").
For `features.source=run:<workdir>` the data is that run's dataset (its config's `dataset`).
`fit_features` / `assign_features` are the same pieces on an in-memory feature matrix, without a
run directory (the tests, the benchmarks, quick experiments).
loop.py's train_and_evaluate hands a method=temi config here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.config import validate
from ccjax.data import open_dataset
from ccjax.data.labels import dataset_labels
from ccjax.errors import UserError
from ccjax.eval.assign import evaluate_assignments
from ccjax.eval.evaluation import print_summary
from ccjax.features import load_features
from ccjax.features.encoders import run_dataset_config
from ccjax.features.kmeans import kmeans_baseline
from ccjax.features.knn import exact_knn
from ccjax.methods.temi.step import make_train_epoch, set_best_head
from ccjax.models import build_model
from ccjax.report.run_report import evaluate_run
from ccjax.run import rundir
from ccjax.run.checkpoint import Checkpointer
from ccjax.run.load import Restored, TrainedModel
from ccjax.run.log import RunLog
from ccjax.runtime.distributed import is_main_process
from ccjax.runtime.mesh import check_batch_size, make_mesh, replicated
from ccjax.runtime.preemption import StopRequest
from ccjax.train.checks import TrainingDiverged, resolve_num_clusters
from ccjax.train.state import train_state_spec


def _adopt_run_dataset(config) -> None:
    """For run:<workdir>, the data is the run's: its dataset fields replace this config's."""
    dataset_cfg = run_dataset_config(config.features.source)
    if dataset_cfg is not None:
        k = config.dataset.num_clusters  # the K asked for here, not the run's
        config.unlock()
        config.dataset = dataset_cfg
        config.dataset.num_clusters = k
        config.lock()


def _knn(workdir: str, feats: np.ndarray, config, mesh) -> np.ndarray:
    """The kNN table int32 [N, k], read from workdir/knn.npz when it was built from these features."""
    t = config.temi
    path = os.path.join(workdir, "knn.npz")
    digest = hashlib.sha256(np.ascontiguousarray(feats).tobytes() + str(t.knn).encode()).hexdigest()
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                if str(z["key"]) == digest:
                    return z["indices"]
        except Exception:  # noqa: BLE001 - rebuilt below
            pass
    t0 = time.time()
    idx, _ = exact_knn(feats, t.knn, mesh, query_block=t.knn_query_block, key_chunk=t.knn_key_chunk)
    if is_main_process():
        print(f"ccjax: exact {t.knn}-NN of {len(feats)} features in {time.time() - t0:.1f}s", flush=True)
        rundir.write_atomic(path, lambda f: np.savez(f, indices=idx, key=np.str_(digest)))
    return idx


def _initial_state(setup_init, feats: np.ndarray, config):
    state = setup_init()
    if config.temi.embed_norm:
        ms = state.model_state["temi"]
        mean = jnp.asarray(feats.mean(0), jnp.float32)
        std = jnp.asarray(feats.std(0, ddof=1) + 1e-6, jnp.float32)
        state = state.replace(model_state=dict(state.model_state, temi=dict(ms, mean=mean, std=std)))
    return state


def train_temi(config, workdir: str, stop_at_epoch: int | None = None) -> dict:
    """Trains TEMI's heads (resuming from workdir's newest checkpoint), evaluates, writes metrics.json."""
    validate(config)
    _adopt_run_dataset(config)
    with rundir.lock(workdir):
        rundir.check(workdir, config)
        return _train(config, workdir, stop_at_epoch)


@dataclasses.dataclass
class _Prepared:
    """What a TEMI run trains on, checked against the config before anything is written."""

    dataset: object
    k: int
    steps_per_epoch: int
    feats: np.ndarray  # [N, D] float32
    knn: np.ndarray  # [N, temi.knn] int32
    embed_s: float  # seconds to get the features (cache or encoder)


def _prepare(config, workdir: str, mesh) -> _Prepared:
    dataset = open_dataset(config.dataset)
    k = resolve_num_clusters(config, dataset)
    n = dataset.num_examples
    spe = n // config.batch_size
    if spe < 1:
        raise UserError(f"batch_size={config.batch_size} is more than the {n} examples; set --config.batch_size "
                        f"to at most {n}")
    t0 = time.time()
    feats = load_features(config, dataset, mesh, progress=config.progress_bar)
    embed_s = time.time() - t0
    return _Prepared(dataset, k, spe, feats, _knn(workdir, feats, config, mesh), embed_s)


def _train(config, workdir: str, stop_at_epoch: int | None) -> dict:
    mesh = make_mesh()
    check_batch_size(config.batch_size, mesh)
    p = _prepare(config, workdir, mesh)
    n = p.dataset.num_examples
    rundir.write_config(workdir, config)
    info = {"dataset": config.dataset.name, "num_examples": n, "image_shape": list(p.dataset.image_shape),
            "num_clusters": p.k, "class_names": p.dataset.class_names, "anchor_dim": int(p.feats.shape[1])}
    main = is_main_process()
    if main:
        rundir.write_json_atomic(os.path.join(workdir, rundir.RUN_INFO), info)
    module = build_model(config, p.k)
    train_epoch, tx = make_train_epoch(config.to_json_best_effort(), p.steps_per_epoch, n, mesh)
    init, abstract = train_state_spec(module, tx, config, mesh, tuple(p.dataset.image_shape), int(p.feats.shape[1]))
    ckpt = Checkpointer(os.path.join(workdir, rundir.CHECKPOINTS_DIR), config.checkpoint.keep)
    best_ckpt = Checkpointer(os.path.join(workdir, rundir.BEST_CHECKPOINTS_DIR), keep=1,
                             resume_directory=ckpt.directory)
    runlog = RunLog(workdir)
    newest = ckpt.restore_newest(abstract)
    if newest is None:
        state, best_loss = _initial_state(init, p.feats, config), float("inf")
    else:
        _, state, meta = newest
        best_loss = float(meta.get("best_loss", float("inf")))
        if main:
            print(f"ccjax: resuming from epoch {int(state.step) // p.steps_per_epoch} in {workdir}", flush=True)
    runlog.truncate_history(int(state.step))
    if main:
        print(f"ccjax: temi on {config.dataset.name} ({n} examples, {p.feats.shape[1]}-d features from "
              f"{config.features.source}; {p.k} clusters, {config.temi.num_heads} heads), {config.num_epochs} "
              f"epochs x {p.steps_per_epoch} steps of {config.batch_size}", flush=True)
    t_train = time.time()
    try:
        state, stopped = _epochs(config, p, mesh, train_epoch, state, best_loss, (ckpt, best_ckpt), runlog,
                                 stop_at_epoch)
    finally:
        for c in (ckpt, best_ckpt):
            c.wait()
            c.close()
        runlog.close()
    train_s = time.time() - t_train
    if stopped is not None:
        if main:
            print(f"ccjax: saved a checkpoint at epoch {stopped // p.steps_per_epoch}; run the same command again "
                  "to resume", flush=True)
        return {"stopped_at_step": stopped}
    trained = TrainedModel.of_module(workdir, config, info, module, mesh)  # the model built once, above
    return _evaluate(config, trained, p, state, train_s)


def _epochs(config, p: _Prepared, mesh, train_epoch, state, best_loss: float, ckpts, runlog: RunLog,
            stop_at_epoch: int | None):
    """The epochs from the state's own to config.num_epochs, saving every checkpoint.every_epochs (and the
    best-by-loss one); (state, None) when done, (state, step saved) when stopped early."""
    ckpt, best_ckpt = ckpts
    spe = p.steps_per_epoch
    feats_dev = jax.device_put(p.feats, replicated(mesh))
    knn_dev = jax.device_put(p.knn.astype(np.int32), replicated(mesh))
    stop, t0 = StopRequest(), time.time()
    try:
        for epoch in range(int(state.step) // spe, config.num_epochs):
            state, head_losses = train_epoch(state, feats_dev, knn_dev, jnp.int32(epoch))
            head_losses = np.asarray(jax.device_get(head_losses), np.float64)
            if int(state.first_nonfinite_step) >= 0:
                raise TrainingDiverged(f"TEMI's loss or gradients became NaN/inf at step "
                                       f"{int(state.first_nonfinite_step)}; lower --config.learning_rate")
            state = set_best_head(state, head_losses)
            done, loss = (epoch + 1) * spe, float(head_losses.mean())
            best_head = int(np.argmin(head_losses))
            runlog.history({"epoch": epoch + 1, "step": done, "loss": loss, "best_head": best_head,
                            "best_head_loss": float(head_losses[best_head]), "seconds": round(time.time() - t0, 3)})
            last_epoch = epoch + 1 == config.num_epochs
            if (epoch + 1) % config.checkpoint.every_epochs == 0 or last_epoch:
                if np.isfinite(loss) and loss < best_loss:
                    best_loss = loss
                    if done not in best_ckpt.all_steps():
                        best_ckpt.save(done, state, {"step": done, "epoch": epoch + 1, "loss": loss})
                ckpt.save(done, state, {"step": done, "epoch": epoch + 1, "best_loss": best_loss})
            if not last_epoch and (stop.requested or (stop_at_epoch is not None and epoch + 1 >= stop_at_epoch)):
                if ckpt.latest_step() != done:
                    ckpt.save(done, state, {"step": done, "epoch": epoch + 1, "best_loss": best_loss})
                return state, done
    finally:
        stop.restore()
    return state, None


def _evaluate(config, trained: TrainedModel, p: _Prepared, state, train_s: float) -> dict:
    last = Restored({"params": state.params, **state.model_state}, int(state.step), {})
    result = evaluate_run(trained, p.dataset, p.feats, last, progress=config.progress_bar)
    result["seconds"] = {"features": round(p.embed_s, 3), "train": round(train_s, 3)}
    if config.temi.kmeans_baseline:
        result["kmeans"] = kmeans_metrics(p.feats, p.k, p.dataset, int(config.seed))
    if is_main_process():
        rundir.write_json_atomic(os.path.join(trained.workdir, rundir.METRICS), result)
        print_summary(result)
        if "kmeans" in result:
            print(kmeans_line(result["kmeans"]), flush=True)
        print(f"ccjax: metrics, report and checkpoints are in {trained.workdir}", flush=True)
    return result


def kmeans_metrics(feats: np.ndarray, k: int, dataset, seed: int) -> dict:
    """The k-means baseline's evaluation on the same features (ACC/NMI/ARI where labelled) and its seconds."""
    labels, seconds = kmeans_baseline(feats, k, seed)
    out = evaluate_assignments(np.eye(k, dtype=np.float32)[labels], dataset_labels(dataset))
    out["seconds"] = round(seconds, 3)
    return json.loads(json.dumps(out))


def kmeans_line(m: dict) -> str:
    if "acc" in m:
        return (f"ccjax: k-means baseline on the same features: ACC {m['acc']:.4f}  NMI {m['nmi']:.4f}  "
                f"ARI {m['ari']:.4f} ({m['seconds']:.1f}s)")
    return f"ccjax: k-means baseline on the same features: {m['num_clusters']} clusters ({m['seconds']:.1f}s)"


def fit_features(config, feats: np.ndarray, num_clusters: int, mesh, knn: np.ndarray | None = None,
                 epochs: int | None = None):
    """(state, module, per-head losses of the last epoch [H]) after `epochs` (default config.num_epochs)
    epochs of TEMI on feats float32 [N, D], without a run directory. `knn` int [N, k] defaults to the exact kNN."""
    n, d = feats.shape
    spe = n // config.batch_size
    if knn is None:
        knn, _ = exact_knn(feats, config.temi.knn, mesh)
    module = build_model(config, num_clusters)
    train_epoch, tx = make_train_epoch(config.to_json_best_effort(), spe, n, mesh)
    init, _ = train_state_spec(module, tx, config, mesh, (8, 8, 1), d)
    state = _initial_state(init, feats, config)
    f = jax.device_put(np.asarray(feats, np.float32), replicated(mesh))
    kn = jax.device_put(np.asarray(knn, np.int32), replicated(mesh))
    losses = None
    for epoch in range(config.num_epochs if epochs is None else epochs):
        state, losses = train_epoch(state, f, kn, jnp.int32(epoch))
        losses = np.asarray(jax.device_get(losses))
        state = set_best_head(state, losses)
    return state, module, losses


def assign_features(module, state, feats: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Cluster probabilities float32 [N, K] of the best teacher head for feats [N, D] (host)."""
    variables = {"params": state.params, **state.model_state}
    apply = jax.jit(lambda v, x: module.apply(v, [None], x, train=False)[0]["c"])
    return np.concatenate([np.asarray(apply(variables, jnp.asarray(feats[i:i + batch], jnp.float32)))
                           for i in range(0, len(feats), batch)])
