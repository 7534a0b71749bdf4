"""Rebuild a finished run's report page, report/index.html, without recomputing features:

    python -m ccjax report --workdir=runs/cc_digits

(also `ccjax report`). Reads what `train` and `evaluate` left in <workdir>/report/ (assignments.csv,
metrics.json, nuisance.json, cams.json, the figures) and the run's config.json and run.json; opens
the run's dataset only to draw each cluster's most and least confident images as thumbnails. No
model, no checkpoint, no features. Prints the collapse or low-confidence verdict as the run did.
Open the page in any browser: it needs no server and no network.
"""

from __future__ import annotations

import os
import sys

from ccjax.cli.flags import run_command
from ccjax.errors import UserError, exit_on_user_error


def _define_flags():
    """The command line's flags, defined only when it runs (importing this module defines none)."""
    from absl import flags

    return (flags.DEFINE_string("workdir", None, "A run directory written by `ccjax train` (required)."),)


def report(workdir: str | None) -> str:
    """Rebuilds <workdir>/report/index.html; returns its path."""
    if not workdir:
        raise UserError("pass --workdir=<a run directory written by `ccjax train`>")
    from ccjax.run.rundir import REPORT_DIR, load_run_config

    config = load_run_config(workdir)  # one line when the folder is not a run
    if not os.path.exists(os.path.join(workdir, REPORT_DIR, "assignments.csv")):
        raise UserError(f"{workdir!r} has no {REPORT_DIR}/assignments.csv (the run has not been evaluated); "
                        f"run `python -m ccjax evaluate --workdir={workdir}` first")
    from ccjax.data import open_dataset
    from ccjax.report.page import run_verdicts, write_page_for_dataset
    from ccjax.run.rundir import read_run_info

    verdict = run_verdicts(workdir, int(read_run_info(workdir)["num_clusters"]))
    path = write_page_for_dataset(workdir, open_dataset(config.dataset), verdict)
    for line in verdict["lines"]:
        print(line, file=sys.stderr, flush=True)
    return path


def main() -> None:
    (workdir,) = _define_flags()

    @exit_on_user_error
    def run(argv) -> None:
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {argv[1:]}; the flag is --workdir")
        path = report(workdir.value)
        print(f"ccjax: report page written to {path} (open it in a browser: file://{os.path.abspath(path)})")

    run_command(run, __doc__, (workdir,))


if __name__ == "__main__":
    main()
