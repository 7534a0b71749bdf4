"""Evaluate a trained run again and rewrite its report, or suggest a number of clusters:

    python -m ccjax evaluate --workdir=runs/cc_digits
    python -m ccjax evaluate --workdir=runs/cc_digits --suggest_k=2:30

(also `ccjax evaluate` and `python -m ccjax evaluate`). Restores the run's last checkpoint and its
best-by-training-loss checkpoint (never best by the labels), assigns every example to a cluster with
each, and writes <workdir>/metrics.json and the report in <workdir>/report/ (with the "What do the
clusters follow?" probe). --suggest_k=LO:HI instead clusters the learned features for each K in
LO..HI and prints a label-free criterion per K (ccjax/eval/suggest_k.py).
"""

from __future__ import annotations

import os
import sys

from ccjax.cli.flags import run_command
from ccjax.errors import UserError, exit_on_user_error


def _define_flags():
    """The command line's flags, defined only when it runs (importing this module defines none)."""
    from absl import flags

    return (
        flags.DEFINE_string("workdir", None, "A run directory written by `ccjax train` (required)."),
        flags.DEFINE_string("suggest_k", None, "LO:HI, e.g. 2:30: suggest a number of clusters from the learned "
                            "features (silhouette and stability per K) instead of evaluating (default: not set, "
                            "evaluate)."),
    )


def evaluate(workdir: str | None, suggest_k: str | None) -> None:
    if not workdir:
        raise UserError("pass --workdir=<a run directory written by `ccjax train`>")
    # imported when the command runs: its --help answers without loading the library
    from ccjax.run.rundir import REPORT_DIR
    from ccjax.runtime import distributed

    distributed.maybe_initialize()
    if suggest_k:
        # imported when the command runs: its --help answers without loading the library
        from ccjax.eval.suggest_k import best_k, format_table, parse_range, suggest_k_for_run

        # imported when the command runs: its --help answers without loading the library
        from ccjax.report.suggest_k import write_suggest_k

        rows, trained_k = suggest_k_for_run(workdir, parse_range(suggest_k))
        write_suggest_k(workdir, rows)
        print(format_table(rows, trained_k))
        print(f"ccjax: suggest_k.json and suggest_k.png written to {os.path.join(workdir, REPORT_DIR)}")
        # imported when the command runs: its --help answers without loading the library
        from ccjax.report.suggest_k_advice import record, suggest_k_verdict
        from ccjax.run.command_line import recluster_advice
        from ccjax.run.rundir import load_run_config

        verdict = suggest_k_verdict(workdir, best_k(rows), trained_k)  # the cue probe's flag, when it warned
        record(workdir, verdict)
        fast = recluster_advice(workdir, best_k(rows), trained_k, load_run_config(workdir).get("method"))
        if fast and not verdict["flagged"]:  # a flagged run's features follow the cue: re-clustering them would too
            print(fast)
        print(verdict["line"] + (f"\n  {verdict['command']}" if verdict["command"] else ""),
              file=sys.stderr if verdict["flagged"] else sys.stdout)
        return
    # imported when the command runs: its --help answers without loading the library
    from ccjax.eval.evaluation import print_summary
    from ccjax.report.run_report import evaluate_workdir

    result = evaluate_workdir(workdir)
    print_summary(result)
    if "best_by_train_loss" in result and "acc" in result:
        b = result["best_by_train_loss"]
        print(f"ccjax: best-by-training-loss checkpoint (step {b['step']}): "
              f"ACC {b['acc']:.4f}  NMI {b['nmi']:.4f}  ARI {b['ari']:.4f}")
    print(f"ccjax: report written to {os.path.join(workdir, REPORT_DIR)}")


def main() -> None:
    workdir, suggest_k = _define_flags()

    @exit_on_user_error
    def run(argv) -> None:
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {argv[1:]}; flags are --workdir, --suggest_k")
        evaluate(workdir.value, suggest_k.value)

    run_command(run, __doc__, (workdir, suggest_k))


if __name__ == "__main__":
    main()
