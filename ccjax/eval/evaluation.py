"""Evaluate a run's checkpoints and write its report (library side of `ccjax.evaluate`).

Restores the last checkpoint and the best-by-training-loss one (never best by
the labels), assigns every example to a cluster with each, and writes
`<workdir>/metrics.json` and the report under `<workdir>/report/` (see
ccjax/eval/report.py; report/cams.png, where the model looks for each cluster's
most confident images, is ccjax/eval/cam_figures.py). Training calls the same
code at its end.
"""

from __future__ import annotations

import os

import jax

from ccjax.eval.assign import assign_clusters, dataset_labels, evaluate_assignments
from ccjax.run.load import Restored, TrainedModel
from ccjax.run.rundir import BEST_CHECKPOINTS_DIR, METRICS, write_json_atomic


def evaluate_run(trained: TrainedModel, dataset, anchors=None, last: Restored | None = None,
                 progress: bool = True) -> dict:
    """Metrics of the last and of the best-by-training-loss checkpoints; writes metrics.json and the report.

    `dataset` (and `anchors` [N, A] for a run with the CLIP anchor) is the training data;
    `last` the final variables when the caller has them (training), else the newest checkpoint's.
    """
    last = trained.restore_latest() if last is None else last
    config, mesh = trained.config, trained.mesh

    def assign(variables):
        return assign_clusters(trained.module, variables, config, dataset, mesh, anchors, progress)

    labels = dataset_labels(dataset)
    probs_last = assign(last.variables)
    last_metrics = evaluate_assignments(probs_last, labels)
    last_metrics["step"] = last.step
    result = dict(last_metrics)
    best = trained.restore(BEST_CHECKPOINTS_DIR)
    if best is not None:
        if best.step == last.step:
            best_metrics = dict(last_metrics)
        else:
            best_metrics = evaluate_assignments(assign(best.variables), labels)
            best_metrics["step"] = best.step
        best_metrics["train_loss"] = best.meta.get("loss")
        best_metrics["epoch"] = best.meta.get("epoch")
        result["best_by_train_loss"] = best_metrics
    if jax.process_index() == 0:
        from ccjax.eval.report import write_report

        write_json_atomic(os.path.join(trained.workdir, METRICS), result)
        report_metrics = {"last": last_metrics}
        if "best_by_train_loss" in result:
            report_metrics["best_by_train_loss"] = result["best_by_train_loss"]
        write_report(trained.workdir, dataset, probs_last, report_metrics, labels)
        from ccjax.eval.cam_figures import write_report_cams
        from ccjax.eval.nuisance import nuisance_report, write_nuisance

        nuisance = nuisance_report(dataset, probs_last, labels, config.dataset.name, seed=int(config.seed))
        write_nuisance(trained.workdir, nuisance)
        if config.get("method") != "temi":  # a head on frozen features has no image layers to explain
            write_report_cams(trained.workdir, trained.module, last.variables, config, dataset, probs_last, anchors)
        result["nuisance_warnings"] = nuisance["warnings"]
    return result


def evaluate_workdir(workdir: str, progress: bool = True) -> dict:
    """`ccjax.evaluate`: the run in `workdir` re-evaluated on its training data (cached anchors)."""
    from ccjax.data import open_dataset
    from ccjax.clip import load_anchors
    from ccjax.run.load import load_trained

    trained = load_trained(workdir)  # the model only: no training batches, no optimiser
    dataset = open_dataset(trained.config.dataset)
    anchors = load_anchors(trained.config, dataset, trained.mesh)
    return evaluate_run(trained, dataset, anchors, progress=progress)


def print_summary(result: dict) -> None:
    """The final clustering's line, then any nuisance warning (stderr), as every command ends."""
    import sys

    print(summary_line(result), flush=True)
    for warning in result.get("nuisance_warnings", []):
        print(warning, file=sys.stderr, flush=True)


def summary_line(result: dict) -> str:
    """The one line a command prints for a run's final clustering."""
    if "acc" in result:
        return (f"ccjax: final clustering of {result['num_examples']} images: "
                f"ACC {result['acc']:.4f}  NMI {result['nmi']:.4f}  ARI {result['ari']:.4f}")
    empty = result.get("num_empty_clusters", 0)
    return (f"ccjax: final clustering of {result['num_examples']} images (no labels): "
            f"{result['num_clusters']} clusters{f' ({empty} empty)' if empty else ''}, balance of the cluster "
            f"sizes {result.get('entropy', float('nan')):.3f} (their entropy / log K: 1 = all the same size, "
            "0 = all in one cluster)")
