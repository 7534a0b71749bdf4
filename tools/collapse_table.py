"""The collapse verdict's figures for finished runs, as a markdown table (docs/own_images.md, "Collapsed runs").

    python tools/collapse_table.py runs/cc_digits runs/lr1e4 ...

Per run, from its report/assignments.csv and metrics.json (no model): ACC/NMI where labels exist, the
largest cluster's share and its excess over an equal share, the empty clusters, the share of images
whose top probability is near 1/K, the share that is unsure, the mean top probability, and the verdict
today's ccjax/report/verdicts.py gives.
"""

from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's ccjax, also when another one is installed

from ccjax.report.page import read_assignments  # noqa: E402
from ccjax.report.verdicts import verdicts  # noqa: E402


def row(workdir: str) -> str:
    report = os.path.join(workdir, "report")
    with open(os.path.join(report, "metrics.json")) as f:
        last = json.load(f).get("last", {})
    a = read_assignments(report)
    k = int(last.get("num_clusters") or a["cluster"].max() + 1)
    v = verdicts(a["cluster"], a["prob"], k)
    s = v["state"]
    quality = f"{last['acc']:.3f} / {last['nmi']:.3f}" if "acc" in last else "no labels"
    said = ("collapse: " + ", ".join(v["kinds"])) if v["collapsed"] else ("low confidence" if v["lines"] else "none")
    return (f"| {os.path.basename(os.path.normpath(workdir))} | {k} | {quality} | {s['largest_share']:.2f} "
            f"({s['largest_excess']:.2f}) | {s['num_empty']} | {s['near_uniform_share']:.2f} | {s['unsure_share']:.2f} "
            f"| {s['mean_top_prob']:.2f} | {said} |")


def main() -> None:
    print("| run | K | ACC / NMI | largest cluster: share (excess) | empty | near 1/K | unsure | mean top p | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for workdir in sys.argv[1:]:
        if os.path.exists(os.path.join(workdir, "report", "assignments.csv")):
            print(row(workdir))


if __name__ == "__main__":
    main()
