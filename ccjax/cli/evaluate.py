"""Evaluate a trained run: `python -m ccjax.evaluate --workdir=runs/cc_digits`.

Restores the run's last checkpoint and its best-by-training-loss checkpoint
(never best by the labels), assigns every example to a cluster with each, and
writes `<workdir>/metrics.json` and the report in `<workdir>/report/`.
"""

from __future__ import annotations

import os

from absl import app, flags

from ccjax.cli.flags import parse_flags_or_exit
from ccjax.errors import UserError, exit_on_user_error
from ccjax.run.rundir import REPORT_DIR

_WORKDIR = flags.DEFINE_string("workdir", None, "A run directory written by ccjax.main.")


@exit_on_user_error
def run_cli(argv) -> None:
    if not _WORKDIR.value:
        raise UserError("pass --workdir=<a run directory written by ccjax.main>")
    from ccjax.runtime import distributed

    distributed.maybe_initialize()
    from ccjax.eval.evaluation import evaluate_workdir, summary_line

    result = evaluate_workdir(_WORKDIR.value)
    print(summary_line(result))
    if "best_by_train_loss" in result and "acc" in result:
        b = result["best_by_train_loss"]
        print(f"ccjax: best-by-training-loss checkpoint (step {b['step']}): "
              f"ACC {b['acc']:.4f}  NMI {b['nmi']:.4f}  ARI {b['ari']:.4f}")
    print(f"ccjax: report written to {os.path.join(_WORKDIR.value, REPORT_DIR)}")


def main() -> None:
    app.run(run_cli, flags_parser=parse_flags_or_exit)


if __name__ == "__main__":
    main()
