"""report/nuisance.json and report/nuisance.png: the nuisance probe's result (ccjax/explain/nuisance.py) drawn."""

from __future__ import annotations

import os

import numpy as np

from ccjax.explain.nuisance import WARN_BEYOND_LABELS, WARN_SCORE
from ccjax.report.figures import pyplot, save_figure
from ccjax.run.rundir import REPORT_DIR, write_json_atomic


def write_nuisance(workdir: str, result: dict) -> None:
    """report/nuisance.json, and report/nuisance.png: per cue family, its score alone for the clusters
    beside the labels'; above them all cues together and (labels known) what they add to the labels;
    the warning level on the row its rule reads."""
    out = os.path.join(workdir, REPORT_DIR)
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "nuisance.json"), result)
    plt = pyplot()
    clusters, labels, beyond = result["clusters"], result.get("labels"), result.get("beyond_labels")
    families = clusters.get("families", {})
    ranked = sorted(families, key=lambda f: -families[f]["alone"])
    names = (["beyond the labels"] if beyond else []) + ["all cues"] + ranked
    mine = ([beyond["score"]] if beyond else []) + [clusters.get("score") or 0.0] + [families[f]["alone"] for f in ranked]
    theirs = None
    if labels and labels.get("score") is not None:
        lf = labels.get("families", {})
        theirs = ([np.nan] if beyond else []) + [labels["score"]] + [lf.get(f, {}).get("alone", 0.0) for f in ranked]
    fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.32 * len(names)))
    y = np.arange(len(names))
    h = 0.4 if theirs else 0.7
    warned = bool(result["warnings"])
    colours = ["#d62728" if warned and (i <= int(bool(beyond)) or names[i] in result["named"]) else "#1f77b4"
               for i in range(len(names))]
    ax.barh(y - (h / 2 if theirs else 0), mine, height=h, color=colours, label="clusters")
    if theirs:
        ax.barh(y + h / 2, theirs, height=h, color="#2ca02c", label="labels (reference)")
    level = WARN_BEYOND_LABELS if beyond else WARN_SCORE  # the rule that applies, on the row it applies to
    ax.vlines(level, -0.5, 0.5, color="#d62728", linestyle=":", linewidth=1.5, label=f"warning level {level}")
    ax.set_yticks(y, [n.replace("_", " ") for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(min(0.0, *mine, *[t for t in theirs or [0.0] if np.isfinite(t)]), 1.0)
    ax.set_xlabel("predictable from the cue (0 = chance, 1 = exactly; cross-validated)", fontsize=8)
    why = clusters.get("reason")
    title = "What do the clusters follow? (red: warned)" if why is None else f"Not measured: {why}"
    if result.get("collapsed"):
        title = "No cue named: the clustering collapsed\n(these scores say nothing about what the model learnt)"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, os.path.join(out, "nuisance.png"), dpi=110)
    plt.close(fig)
