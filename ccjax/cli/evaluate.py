"""Evaluate a trained run: `python -m ccjax.evaluate --workdir=runs/cc_digits [--suggest_k=2:30]`.

Restores the run's last checkpoint and its best-by-training-loss checkpoint
(never best by the labels), assigns every example to a cluster with each, and
writes `<workdir>/metrics.json` and the report in `<workdir>/report/` (with the
"What do the clusters follow?" probe). `--suggest_k=LO:HI` instead clusters the
learned features for each K in LO..HI and prints a label-free criterion per K
(ccjax/eval/suggest_k.py).
"""

from __future__ import annotations

import os

from absl import app, flags

from ccjax.cli.flags import parse_flags_or_exit
from ccjax.errors import UserError, exit_on_user_error
from ccjax.run.rundir import REPORT_DIR

_WORKDIR = flags.DEFINE_string("workdir", None, "A run directory written by ccjax.main.")
_SUGGEST_K = flags.DEFINE_string("suggest_k", None, "LO:HI: suggest a number of clusters from the learned "
                                 "features (silhouette and stability per K) instead of evaluating.")


@exit_on_user_error
def run_cli(argv) -> None:
    if not _WORKDIR.value:
        raise UserError("pass --workdir=<a run directory written by ccjax.main>")
    from ccjax.runtime import distributed

    distributed.maybe_initialize()
    if _SUGGEST_K.value:
        from ccjax.eval.suggest_k import format_table, parse_range, suggest_k_for_run

        rows, trained_k = suggest_k_for_run(_WORKDIR.value, parse_range(_SUGGEST_K.value))
        print(format_table(rows, trained_k))
        print(f"ccjax: suggest_k.json and suggest_k.png written to {os.path.join(_WORKDIR.value, REPORT_DIR)}")
        return
    from ccjax.eval.evaluation import evaluate_workdir, print_summary

    result = evaluate_workdir(_WORKDIR.value)
    print_summary(result)
    if "best_by_train_loss" in result and "acc" in result:
        b = result["best_by_train_loss"]
        print(f"ccjax: best-by-training-loss checkpoint (step {b['step']}): "
              f"ACC {b['acc']:.4f}  NMI {b['nmi']:.4f}  ARI {b['ari']:.4f}")
    print(f"ccjax: report written to {os.path.join(_WORKDIR.value, REPORT_DIR)}")


def main() -> None:
    app.run(run_cli, flags_parser=parse_flags_or_exit)


if __name__ == "__main__":
    main()
