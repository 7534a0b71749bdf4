"""The small-scale claims' runs and measurements, for `launch/reproduce.sh small` (docs/results.md, "Claims at
small scale"; the plan is ccjax/results/small_plan.py).

    python tools/claims_small.py commands [--root=runs/claims-small] [--seeds=5] [--extra='--config.x=y']
    python tools/claims_small.py measure  [--root=runs/claims-small] [--seeds=5]

`commands` prints one `python -m ccjax train ...` line per planned run, `# done: <workdir>` for a finished one;
past small_plan.FIRST_SEEDS seeds, only the runs of the cells whose spreads overlap now (small_collect.open_cells,
from the runs finished and measured so far: run it again after `measure` to narrow it);
`measure` writes the CAM mass and nuisance NMI of every finished domain-shift run and the k-means floor
(ccjax/results/small_measure.py), keeping what is already measured.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))  # this checkout's ccjax

from ccjax.results.small_plan import FIRST_SEEDS, ROOT, SEEDS, commands_text  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("commands", "measure"))
    p.add_argument("--root", default=ROOT)
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--extra", default="")
    a = p.parse_args()
    if a.command == "commands":
        keep = None
        if a.seeds > FIRST_SEEDS:
            from ccjax.results.small_collect import collect_small, open_cells

            still_open = open_cells(collect_small(a.root, a.seeds))
            keep = lambda run: run.seed < FIRST_SEEDS or (run.row, run.dataset) in still_open  # noqa: E731
        for line in commands_text(a.root, a.seeds, a.extra, keep):
            print(line, flush=True)
    else:
        from ccjax.results.small_measure import measure_all

        measure_all(a.root, a.seeds)


if __name__ == "__main__":
    main()
