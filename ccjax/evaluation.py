"""Evaluate a run's checkpoints and write its report (library side of `ccjax.evaluate`).

Reads the run's config.json, restores the last checkpoint and the
best-by-training-loss one (never best by the labels), assigns every example to
a cluster with each, and writes `<workdir>/metrics.json` and the report under
`<workdir>/report/` (see ccjax/report.py). Training calls the same code at its end.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections

from ccjax.assign import assign_clusters, dataset_labels, evaluate_assignments
from ccjax.checkpoint import Checkpointer
from ccjax.errors import UserError
from ccjax.workdir import with_defaults, write_json_atomic

BEST_DIR = "checkpoints_best"


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run was trained with (its workdir's config.json)."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise UserError(f"{workdir!r} has no config.json: not a ccjax run directory (train with ccjax.main first)")
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        raise UserError(f"{path} is unreadable or corrupt; it must be the JSON ccjax.main wrote") from None
    return ml_collections.ConfigDict(_tuples(with_defaults(d)))


def _tuples(d):
    """JSON has no tuples: turn lists back into tuples (config fields are tuples)."""
    if isinstance(d, dict):
        return {k: _tuples(v) for k, v in d.items()}
    if isinstance(d, list):
        return tuple(_tuples(v) for v in d)
    return d


def restore_latest(workdir: str, subdir: str, run) -> tuple[object, dict] | None:
    d = os.path.join(workdir, subdir)
    if not os.path.isdir(d):
        return None
    ck = Checkpointer(d, keep=1)
    try:
        step = ck.latest_step()
        return None if step is None else ck.restore(step, run.abstract_state)
    finally:
        ck.close()


def evaluate_run(run, workdir: str, last_state=None, progress: bool = True) -> dict:
    """Metrics of the last and of the best-by-training-loss checkpoints; writes metrics.json and the report."""
    if last_state is None:
        restored = restore_latest(workdir, "checkpoints", run)
        if restored is None:
            raise UserError(f"no complete checkpoint in {os.path.join(workdir, 'checkpoints')}; train first")
        last_state = restored[0]
    labels = dataset_labels(run.dataset)
    probs_last = assign_clusters(last_state, run.model, run.config, run.dataset, run.mesh, run.anchors, progress)
    last = evaluate_assignments(probs_last, labels)
    last["step"] = int(last_state.step)
    result = dict(last)
    best = restore_latest(workdir, BEST_DIR, run)
    if best is not None:
        best_state, meta = best
        if int(best_state.step) == last["step"]:
            best_metrics = dict(last)
        else:
            probs = assign_clusters(best_state, run.model, run.config, run.dataset, run.mesh, run.anchors, progress)
            best_metrics = evaluate_assignments(probs, labels)
            best_metrics["step"] = int(best_state.step)
        best_metrics["train_loss"] = meta.get("loss")
        best_metrics["epoch"] = meta.get("epoch")
        result["best_by_train_loss"] = best_metrics
    if jax.process_index() == 0:
        from ccjax.report import write_report

        write_json_atomic(os.path.join(workdir, "metrics.json"), result)
        report_metrics = {"last": last}
        if "best_by_train_loss" in result:
            report_metrics["best_by_train_loss"] = result["best_by_train_loss"]
        write_report(workdir, run.dataset, probs_last, report_metrics, labels)
    return result
