"""A TEMI run: `train_temi(config, workdir)`, writing the same run directory as every other method.

Frozen features (cached, ccjax/features/) -> exact kNN over the whole set (sharded, blockwise)
-> H heads with an EMA teacher, one jit call per epoch (step.py) -> checkpoints (resumable at
any saved epoch, bit-identically: the epoch's randomness is keyed by (seed, epoch)) -> the best head
by training loss (no labels) -> the common evaluation and report (metrics.json, report/), with
scikit-learn's k-means on the same features beside it (metrics.json's "kmeans").
For `features.source=run:<workdir>` the data is that run's dataset (its config's `dataset`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.errors import UserError
from ccjax.run import rundir


def _adopt_run_dataset(config) -> None:
    """For run:<workdir>, the data is the run's: its dataset fields replace this config's."""
    from ccjax.features.encoders import run_dataset_config

    dataset_cfg = run_dataset_config(config.features.source)
    if dataset_cfg is not None:
        k = config.dataset.num_clusters  # the K asked for here, not the run's
        config.unlock()
        config.dataset = dataset_cfg
        config.dataset.num_clusters = k
        config.lock()


def _knn(workdir: str, feats: np.ndarray, config, mesh) -> np.ndarray:
    """The kNN table int32 [N, k], read from workdir/knn.npz when it was built from these features."""
    from ccjax.features.knn import exact_knn

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
    if jax.process_index() == 0:
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
    from ccjax.config import validate

    validate(config)
    _adopt_run_dataset(config)
    with rundir.lock(workdir):
        rundir.check(workdir, config)
        return _train(config, workdir, stop_at_epoch)


def _prepare(config, workdir: str, mesh):
    """(dataset, K, steps per epoch, features [N, D], kNN [N, k], seconds to get the features);
    checks the data against the config before anything is written."""
    from ccjax.data import open_dataset
    from ccjax.features import load_features
    from ccjax.train.loop import resolve_num_clusters

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
    return dataset, k, spe, feats, _knn(workdir, feats, config, mesh), embed_s


def _train(config, workdir: str, stop_at_epoch: int | None) -> dict:
    from ccjax.methods.temi.step import make_train_epoch, set_best_head
    from ccjax.models import build_model
    from ccjax.run.checkpoint import Checkpointer
    from ccjax.run.log import RunLog
    from ccjax.runtime.mesh import check_batch_size, make_mesh, replicated
    from ccjax.runtime.preemption import StopRequest
    from ccjax.train.loop import TrainingDiverged
    from ccjax.train.state import train_state_spec

    mesh = make_mesh()
    check_batch_size(config.batch_size, mesh)
    dataset, k, spe, feats, knn, embed_s = _prepare(config, workdir, mesh)
    n = dataset.num_examples
    rundir.write_config(workdir, config)
    info = {"dataset": config.dataset.name, "num_examples": n, "image_shape": list(dataset.image_shape),
            "num_clusters": k, "class_names": dataset.class_names, "anchor_dim": int(feats.shape[1])}
    main = jax.process_index() == 0
    if main:
        rundir.write_json_atomic(os.path.join(workdir, rundir.RUN_INFO), info)
    module = build_model(config, k)
    train_epoch, tx = make_train_epoch(config.to_json_best_effort(), spe, n, mesh)
    init, abstract = train_state_spec(module, tx, config, mesh, tuple(dataset.image_shape), int(feats.shape[1]))
    ckpt = Checkpointer(os.path.join(workdir, rundir.CHECKPOINTS_DIR), config.checkpoint.keep)
    best_ckpt = Checkpointer(os.path.join(workdir, rundir.BEST_CHECKPOINTS_DIR), keep=1,
                             resume_directory=ckpt.directory)
    runlog = RunLog(workdir)
    newest = ckpt.restore_newest(abstract)
    if newest is None:
        state, best_loss = _initial_state(init, feats, config), float("inf")
    else:
        _, state, meta = newest
        best_loss = float(meta.get("best_loss", float("inf")))
        if main:
            print(f"ccjax: resuming from epoch {int(state.step) // spe} in {workdir}", flush=True)
    runlog.truncate_history(int(state.step))
    feats_dev = jax.device_put(feats, replicated(mesh))
    knn_dev = jax.device_put(knn.astype(np.int32), replicated(mesh))
    if main:
        print(f"ccjax: temi on {config.dataset.name} ({n} examples, {feats.shape[1]}-d features from "
              f"{config.features.source}; {k} clusters, {config.temi.num_heads} heads), {config.num_epochs} "
              f"epochs x {spe} steps of {config.batch_size}", flush=True)
    stop, stopped, t_train = StopRequest(), None, time.time()
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
                            "best_head_loss": float(head_losses[best_head]),
                            "seconds": round(time.time() - t_train, 3)})
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
                stopped = done
                break
    finally:
        stop.restore()
        for c in (ckpt, best_ckpt):
            c.wait()
            c.close()
        runlog.close()
    train_s = time.time() - t_train
    if stopped is not None:
        if main:
            print(f"ccjax: saved a checkpoint at epoch {stopped // spe}; run the same command again to resume",
                  flush=True)
        return {"stopped_at_step": stopped}
    return _evaluate(config, workdir, info, module, mesh, dataset, feats, state, embed_s, train_s)


def _evaluate(config, workdir, info, module, mesh, dataset, feats, state, embed_s, train_s) -> dict:
    from ccjax.eval.evaluation import evaluate_run, print_summary
    from ccjax.run.load import Restored, TrainedModel

    last = Restored({"params": state.params, **state.model_state}, int(state.step), {})
    trained = TrainedModel.build(workdir, config, info, mesh)
    result = evaluate_run(trained, dataset, feats, last, progress=config.progress_bar)
    result["seconds"] = {"features": round(embed_s, 3), "train": round(train_s, 3)}
    if config.temi.kmeans_baseline:
        result["kmeans"] = kmeans_metrics(feats, int(info["num_clusters"]), dataset, int(config.seed))
    if jax.process_index() == 0:
        rundir.write_json_atomic(os.path.join(workdir, rundir.METRICS), result)
        print_summary(result)
        if "kmeans" in result:
            print(kmeans_line(result["kmeans"]), flush=True)
        print(f"ccjax: metrics, report and checkpoints are in {workdir}", flush=True)
    return result


def kmeans_metrics(feats: np.ndarray, k: int, dataset, seed: int) -> dict:
    """The k-means baseline's evaluation on the same features (ACC/NMI/ARI where labelled) and its seconds."""
    from ccjax.eval.assign import dataset_labels, evaluate_assignments
    from ccjax.features.kmeans import kmeans_baseline

    labels, seconds = kmeans_baseline(feats, k, seed)
    out = evaluate_assignments(np.eye(k, dtype=np.float32)[labels], dataset_labels(dataset))
    out["seconds"] = round(seconds, 3)
    return json.loads(json.dumps(out))


def kmeans_line(m: dict) -> str:
    if "acc" in m:
        return (f"ccjax: k-means baseline on the same features: ACC {m['acc']:.4f}  NMI {m['nmi']:.4f}  "
                f"ARI {m['ari']:.4f} ({m['seconds']:.1f}s)")
    return f"ccjax: k-means baseline on the same features: {m['num_clusters']} clusters ({m['seconds']:.1f}s)"
