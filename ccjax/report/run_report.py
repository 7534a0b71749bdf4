"""Evaluate a run and write what it leaves: `<workdir>/metrics.json` and everything under `<workdir>/report/`.

The scores are ccjax/eval/evaluation.py's; the files are report.py (metrics, confusion, clusters,
curves, assignments), nuisance.py (what the clusters follow, probed by ccjax/explain/nuisance.py)
cam_figures.py (report/cams.png, where the model looks for each cluster's most confident images),
verdicts.py (collapse, low confidence) and page.py (the browsable report/index.html).
Training calls evaluate_run at its end; `python -m ccjax evaluate` calls evaluate_workdir.
"""

from __future__ import annotations

import os

from ccjax.data import open_dataset
from ccjax.eval.evaluation import score_run
from ccjax.explain.nuisance import nuisance_report
from ccjax.features import run_inputs
from ccjax.report.cam_figures import write_report_cams
from ccjax.report.nuisance import write_nuisance
from ccjax.report.page import run_verdicts, write_page_for_dataset
from ccjax.report.report import write_report
from ccjax.run.load import Restored, TrainedModel, load_trained
from ccjax.run.rundir import METRICS, write_json_atomic
from ccjax.runtime.distributed import is_main_process


def evaluate_run(trained: TrainedModel, dataset, anchors=None, last: Restored | None = None,
                 progress: bool = True) -> dict:
    """Metrics of the last and of the best-by-training-loss checkpoints; writes metrics.json and the report.

    `dataset` (and `anchors` [N, A] for a run with the CLIP anchor, TEMI's features [N, D]) is the training data;
    `last` the final variables when the caller has them (training), else the newest checkpoint's.
    """
    scored = score_run(trained, dataset, anchors, last, progress)
    result = scored.result
    if is_main_process():
        write_json_atomic(os.path.join(trained.workdir, METRICS), result)
        report_metrics = {"last": scored.last_metrics}
        if "best_by_train_loss" in result:
            report_metrics["best_by_train_loss"] = result["best_by_train_loss"]
        write_report(trained.workdir, dataset, scored.probs_last, report_metrics, scored.labels)
        config = trained.config
        verdict = run_verdicts(trained.workdir, scored.probs_last.shape[1])  # collapse, low confidence
        nuisance = nuisance_report(dataset, scored.probs_last, scored.labels, config.dataset.name,
                                   seed=int(config.seed), collapsed=verdict["degenerate"])
        write_nuisance(trained.workdir, nuisance)
        if config.get("method") != "temi":  # a head on frozen features has no image layers to explain
            write_report_cams(trained.workdir, trained.module, scored.last.variables, config, dataset,
                              scored.probs_last, anchors)
        write_page_for_dataset(trained.workdir, dataset, verdict)  # report/index.html, after every figure
        result["verdict_warnings"] = verdict["lines"]
        result["nuisance_warnings"] = nuisance["warnings"]
    return result


def evaluate_workdir(workdir: str, progress: bool = True) -> dict:
    """`python -m ccjax evaluate`: the run in `workdir` re-evaluated on its training data (cached anchors,
    or for method=temi its cached features)."""
    trained = load_trained(workdir)  # the model only: no training batches, no optimiser
    dataset = open_dataset(trained.config.dataset)
    anchors = run_inputs(trained.config, dataset, trained.mesh)
    return evaluate_run(trained, dataset, anchors, progress=progress)
