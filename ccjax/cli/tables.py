"""The runs of a paper's table beside the paper's numbers (the library is ccjax/results/).

    python -m ccjax tables runs/gecc-table3 [--seeds=3] [--checkpoint=last|best] [--ignore=num_epochs]
                           [--format=markdown|csv|latex] [--out=PREFIX]

Reads the run folders `launch/reproduce.sh TABLE --run [--seeds=N]` wrote (runs/<table>/<row>/<dataset>
[/seed<k>]), prints the table (Markdown by default) and writes PREFIX.md, PREFIX.csv and PREFIX.tex
(default PREFIX: runs/<table>/table). Cells: mean ± sample standard deviation (ddof=1) over n seeds,
the paper's number and the difference; unfinished, missing and flagged runs (a config other than the
table's: other epochs, backbone, ...) are listed and never averaged. runs/claims-small (`launch/reproduce.sh
small`) gives each claim its verdict instead (Markdown only; docs/results.md, "Claims at small scale").
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ccjax.cli.flags import run_command
from ccjax.errors import UserError, exit_on_user_error

FORMATS = {"markdown": ".md", "csv": ".csv", "latex": ".tex"}


def _define_flags():
    from absl import flags

    return dict(
        table=flags.DEFINE_string("table", None, "The table (default: the folder's name, runs/<table>)."),
        seeds=flags.DEFINE_integer("seeds", None, "Seeds each cell should have (default: as many as the "
                                   "seed<k> folders show); the others are listed as missing."),
        checkpoint=flags.DEFINE_enum("checkpoint", "last", ["last", "best"],
                                     "last (what the papers report) or best (lowest training loss)."),
        ignore=flags.DEFINE_list("ignore", [], "Config fields whose differences do not flag a run, e.g. "
                                 "num_epochs for a table run shortened on purpose."),
        configs=flags.DEFINE_string("configs", None, "The configs folder (default: the checkout's configs/)."),
        format=flags.DEFINE_enum("format", "markdown", list(FORMATS), "What to print."),
        out=flags.DEFINE_string("out", None, "Write PREFIX.md, PREFIX.csv and PREFIX.tex (default: "
                                "<folder>/table); --out= writes nothing."),
    )


def main() -> None:
    f = _define_flags()

    @exit_on_user_error
    def run(argv: Any) -> None:
        if len(argv) != 2:
            raise UserError("usage: python -m ccjax tables runs/<table> (the folder launch/reproduce.sh TABLE "
                            "--run wrote)")
        # imported when the command runs: its --help answers without loading the library
        from ccjax.results.collect import collect
        from ccjax.results.render import csv_text, latex, markdown
        from ccjax.run.rundir import write_atomic

        root = argv[1]
        if (f["table"].value or os.path.basename(os.path.normpath(root))) == "claims-small":
            _claims_table(root, f)
            return
        ct = collect(root, f["table"].value, f["configs"].value, f["checkpoint"].value, f["seeds"].value,
                     f["ignore"].value)
        texts = {"markdown": markdown(ct), "csv": csv_text(ct), "latex": latex(ct)}
        print(texts[f["format"].value], end="")
        prefix = os.path.join(root, "table") if f["out"].value is None else f["out"].value
        if prefix:
            for fmt, ext in FORMATS.items():
                write_atomic(prefix + ext, lambda fh, text=texts[fmt]: fh.write(text.encode()))
            print(f"ccjax: written {', '.join(prefix + ext for ext in FORMATS.values())}", file=sys.stderr)

    run_command(run, __doc__, tuple(f.values()))


def _claims_table(root: str, f: dict) -> None:
    """runs/claims-small (launch/reproduce.sh small): the claims with their verdicts, Markdown only."""
    from ccjax.results.small_collect import collect_small, markdown
    from ccjax.results.small_figure import cam_mass_figure
    from ccjax.results.small_plan import SEEDS
    from ccjax.run.rundir import write_atomic

    if not os.path.isdir(root):
        raise UserError(f"{root!r} is not a folder; run launch/reproduce.sh small --run first")
    col = collect_small(root, f["seeds"].value or SEEDS, f["configs"].value)
    text = markdown(col)
    print(text, end="")
    prefix = os.path.join(root, "table") if f["out"].value is None else f["out"].value
    if prefix:
        write_atomic(prefix + ".md", lambda fh: fh.write(text.encode()))
        cam_mass_figure(col, prefix + "_cam_mass.png")
        print(f"ccjax: written {prefix}.md and {prefix}_cam_mass.png", file=sys.stderr)


if __name__ == "__main__":
    main()
