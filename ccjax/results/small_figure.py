"""The claims' CAM-mass figure (docs/results.md, "Claims at small scale"): GeCC's Fig. 1 as numbers, per method
and domain-shift set. One panel per ds_* set; a bar per row (mean share of Grad-CAM mass inside the digit over the
seeds, a dot per seed) beside a dashed line at the share of the image the digit covers (what a model that looks
everywhere alike would score). Written next to the table by `python -m ccjax tables runs/claims-small`.
"""

from __future__ import annotations

import numpy as np

from ccjax.report.figures import new_figure, save_figure
from ccjax.results.small_collect import Collected, per_seed
from ccjax.results.small_plan import CHECK_ROWS, CHECK_SETS, ROW_LABELS, SHIFT_ROWS, SHIFT_SETS


SHORT = {"ours_first": "GeCC: CDSM\nfirst block", "ours_t1": "GeCC: t = 1", "ours_clean": "GeCC: clean\nreference"}


def panels(col: Collected) -> list[tuple[str, list[tuple[str, list[float]]], float | None]]:
    """[(dataset, [(row label, CAM mass inside per seed)], mean object area)] for every domain-shift set; the
    check rows join the sets they ran on."""
    out = []
    for ds in SHIFT_SETS:
        rows = list(SHIFT_ROWS) + ([r for r in CHECK_ROWS] if ds in CHECK_SETS else [])
        bars = [(SHORT.get(r, ROW_LABELS[r]), per_seed(col, r, ds, "cam_inside")) for r in rows]
        areas = [a for r in rows for a in per_seed(col, r, ds, "cam_area")]
        out.append((ds, bars, float(np.mean(areas)) if areas else None))
    return out


def cam_mass_figure(col: Collected, path: str) -> None:
    data = panels(col)
    fig = new_figure(2.2 + 1.1 * sum(len(b) for _, b, _ in data) / 2, 4.6)
    axes = fig.subplots(1, len(data), sharey=True, gridspec_kw={"width_ratios": [len(b) for _, b, _ in data]})
    for ax, (ds, bars, area) in zip(np.atleast_1d(axes), data):
        for i, (label, vals) in enumerate(bars):
            if vals:
                ax.bar(i, float(np.mean(vals)), color="C0" if i < len(SHIFT_ROWS) else "C2", alpha=0.75)
                ax.plot([i] * len(vals), vals, "k.", markersize=4)
        if area is not None:
            ax.axhline(area, color="C3", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(bars)), [f"{label}\n(n={len(v)})" for label, v in bars], rotation=45, ha="right",
                      fontsize=7)
        ax.set_title(ds, fontsize=9)
        ax.set_ylim(0, 1)
    np.atleast_1d(axes)[0].set_ylabel("Grad-CAM mass inside the digit")
    fig.suptitle("Where the models look: Grad-CAM mass inside the digit, a dot per seed (dashed: the digit's share "
                 "of the image)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
