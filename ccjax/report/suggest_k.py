"""report/suggest_k.json and report/suggest_k.png: the table of ccjax/eval/suggest_k.py drawn."""

from __future__ import annotations

import os

from ccjax.eval.suggest_k import best_k
from ccjax.report.figures import pyplot, save_figure
from ccjax.run.rundir import REPORT_DIR, write_json_atomic


def write_suggest_k(workdir: str, rows: list[dict]) -> str:
    """report/suggest_k.json and report/suggest_k.png; returns the folder."""
    out = os.path.join(workdir, REPORT_DIR)
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "suggest_k.json"), {"rows": rows, "suggested_k": best_k(rows)})
    plt = pyplot()
    ks = [r["k"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(ks, [r["stability"] for r in rows], marker="s", label="stability (ARI between halves; suggested: max)")
    ax.plot(ks, [r["silhouette"] for r in rows], marker="o", label="silhouette (context)")
    ax.axvline(best_k(rows), color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("number of clusters K")
    ax.set_title("Choosing K: k-means of the learned features", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, os.path.join(out, "suggest_k.png"), dpi=110)
    plt.close(fig)
    return out

