"""Scoring a run's checkpoints (the report that follows is ccjax/report/run_report.py).

Restores the last checkpoint and the best-by-training-loss one (never best by
the labels) and assigns every example to a cluster with each. Training and
`python -m ccjax evaluate` call the same code.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from ccjax.data.labels import dataset_labels
from ccjax.eval.assign import assign_clusters, evaluate_assignments
from ccjax.run.load import Restored, TrainedModel
from ccjax.run.rundir import BEST_CHECKPOINTS_DIR


@dataclasses.dataclass
class Scored:
    """What score_run measured: `result` (metrics.json's content), and what the report draws."""
    result: dict
    last_metrics: dict
    probs_last: np.ndarray  # [N, K] cluster probabilities of the last checkpoint
    labels: np.ndarray | None
    last: Restored


def score_run(trained: TrainedModel, dataset, anchors=None, last: Restored | None = None,
              progress: bool = True) -> Scored:
    """Metrics of the last and of the best-by-training-loss checkpoints.

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
    return Scored(result, last_metrics, probs_last, labels, last)


def print_summary(result: dict) -> None:
    """The final clustering's line, then any collapse, low-confidence or nuisance warning (stderr), as every
    command ends."""
    print(summary_line(result), flush=True)
    for warning in result.get("verdict_warnings", []) + result.get("nuisance_warnings", []):
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
