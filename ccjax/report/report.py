"""The evaluation report a run leaves in `<workdir>/report/`.

- metrics.json: ACC/NMI/ARI (or label-free diagnostics) of the last checkpoint and,
  separately, of the best-by-training-loss checkpoint (never best by the labels);
- confusion.png: clusters (Hungarian-matched order) against classes (the largest 40 of each when
  there are more), with ACC/NMI/ARI and a colour bar; confusion.csv: the whole matrix;
- clusters.png: each cluster's most confident images and its size (the largest 40 clusters), rows
  in confusion.png's order;
- curves.png: training losses per component and ACC/NMI/ARI per epoch where evaluated, with the
  final evaluation at the last epoch (or a sentence saying why there is none);
- assignments.csv: example id, cluster, probability, label where known (empty for
  unlabelled examples, whose label is -1; the confusion matrix counts labelled ones only).

Each figure is built by a `*_figure` function that returns the matplotlib Figure (tests read its
texts with figure_texts) and written by `plot_*`. Only process 0 calls this.
"""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from ccjax.eval.metrics import confusion_matrix, hungarian_match
from ccjax.report.figures import new_figure, save_figure
from ccjax.run.rundir import HISTORY, METRICS, REPORT_DIR, write_atomic, write_json_atomic


def cluster_order(y_true: np.ndarray, y_pred: np.ndarray, num_clusters: int) -> list[int]:
    """Clusters sorted by the class they are matched to (unmatched ones last)."""
    match = hungarian_match(y_true, y_pred)
    return sorted(range(num_clusters), key=lambda k: (match.get(k, 10**9), k))


MAX_DRAWN = 40  # clusters (and classes) drawn in a figure; the CSV and metrics.json hold them all


def largest(counts: np.ndarray, limit: int = MAX_DRAWN) -> np.ndarray:
    """Indices of the `limit` largest entries of `counts`, in their original order."""
    if len(counts) <= limit:
        return np.arange(len(counts))
    return np.sort(np.argsort(-counts, kind="stable")[:limit])


def quality_line(metrics: dict | None) -> str:
    """'ACC 0.936  NMI 0.892  ARI 0.871' of the last checkpoint, or '' without them."""
    return "   ".join(f"{m.upper()} {metrics[m]:.3f}" for m in ("acc", "nmi", "ari") if m in (metrics or {}))


def confusion_figure(cm: np.ndarray, order: list[int], class_names: list[str], metrics: dict | None = None):
    """The cluster x class counts [K, C], rows already in the matched `order`, as a heat map with a colour
    bar, the number of images, ACC/NMI/ARI in the title; only the largest MAX_DRAWN rows and columns."""
    rows, cols = largest(cm.sum(1)), largest(cm.sum(0))
    shown = cm[np.ix_(rows, cols)]
    fig = new_figure(2.6 + 0.45 * len(cols), 1.6 + 0.4 * len(rows))
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02).set_label("images", fontsize=8)
    ax.set_xticks(range(len(cols)), [class_names[j] for j in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"cluster {order[i]}" for i in rows], fontsize=8)
    ax.set_xlabel("true class")
    ax.set_ylabel("cluster, in the order of the class\nit is matched to (Hungarian)", fontsize=8)
    if shown.size <= 900:
        hi = shown.max() if shown.size else 1
        for i in range(shown.shape[0]):
            for j in range(shown.shape[1]):
                if shown[i, j]:
                    ax.text(j, i, int(shown[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if shown[i, j] > hi / 2 else "black")
    title = f"Clusters against true classes: {int(cm.sum())} labelled images, K = {cm.shape[0]}"
    if quality_line(metrics):
        title += f"\nlast checkpoint: {quality_line(metrics)}"
    if len(rows) < cm.shape[0] or len(cols) < cm.shape[1]:
        title += (f"\nthe largest {len(rows)} of {cm.shape[0]} clusters and {len(cols)} of {cm.shape[1]} "
                  "classes; all in confusion.csv")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_confusion(path: str, y_true, y_pred, num_clusters: int, class_names: list[str],
                   metrics: dict | None = None) -> np.ndarray:
    """Writes confusion.png; returns the matrix (all clusters) in the matched order [K, C]."""
    cm = confusion_matrix(y_true, y_pred, len(class_names), num_clusters)
    order = cluster_order(y_true, y_pred, num_clusters)
    cm = cm[order]
    save_figure(confusion_figure(cm, order, class_names, metrics), path)
    return cm


def write_confusion_csv(path: str, cm: np.ndarray, order: list[int], class_names: list[str]) -> None:
    """The whole confusion matrix [K, C] as CSV: a row per cluster (plotted order), a column per class."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["cluster"] + list(class_names))
    for k, row in zip(order, cm):
        w.writerow([k] + [int(v) for v in row])
    write_atomic(path, lambda f: f.write(buf.getvalue().encode()))


def clusters_figure(probs: np.ndarray, read_images, order: list[int] | None = None, per_cluster: int = 8):
    """A row per cluster (the largest MAX_DRAWN, in `order`: confusion.png's when labels are known):
    its `per_cluster` images of highest cluster probability, labelled with its size; an empty cluster
    says so. `read_images(sorted indices)` -> uint8 images [n, H, W, C]."""
    pred, conf = probs.argmax(1), probs.max(1)
    k = probs.shape[1]
    order = list(range(k)) if order is None else list(order)
    sizes = np.bincount(pred, minlength=k)
    drawn = [order[i] for i in largest(sizes[order])]
    width, height = 1.4 + per_cluster * 0.9, 0.75 + len(drawn) * 0.9
    fig = new_figure(width, height)
    axes = fig.subplots(len(drawn), per_cluster + 1, squeeze=False,
                        gridspec_kw={"width_ratios": [1.5] + [1] * per_cluster})
    for row, c in enumerate(drawn):
        members = np.flatnonzero(pred == c)
        top = members[np.argsort(-conf[members])][:per_cluster]
        by_index = dict(zip(np.sort(top).tolist(), read_images(np.sort(top)) if len(top) else []))
        for ax in axes[row]:
            ax.axis("off")
        label = f"cluster {c}\n{len(members)} image{'s' if len(members) > 1 else ''}" if len(members) \
            else f"cluster {c}\nempty"
        axes[row, 0].text(0.0, 0.5, label, fontsize=7, va="center", transform=axes[row, 0].transAxes)
        if not len(members):
            axes[row, 1].text(0.0, 0.5, "no image has its highest probability in this cluster", fontsize=7,
                              va="center", transform=axes[row, 1].transAxes)
        for j, i in enumerate(top.tolist()):
            img = by_index[i]
            if img.shape[-1] == 1:  # uint8 levels as stored: no per-image contrast stretch
                axes[row, j + 1].imshow(img[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            else:
                axes[row, j + 1].imshow(img, interpolation="nearest")
    where = "rows in confusion.png's order" if order != list(range(k)) else "rows by cluster number"
    notes = [f"{len(pred)} images, K = {k}", where]
    if len(drawn) < k:
        notes.append(f"the largest {len(drawn)} of {k} clusters")
    empty = int((sizes == 0).sum())
    if empty:
        notes.append(f"{empty} of {k} clusters are empty")
    fig.suptitle(f"Each cluster's {per_cluster} most confident images (highest cluster probability)\n"
                 + "; ".join(notes), fontsize=8, y=1 - 0.08 / height, va="top")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.55 / height, wspace=0.06, hspace=0.12)
    return fig


def plot_clusters(path: str, probs: np.ndarray, read_images, per_cluster: int = 8,
                  order: list[int] | None = None) -> None:
    """Writes clusters.png (see clusters_figure)."""
    save_figure(clusters_figure(probs, read_images, order, per_cluster), path, dpi=100)


# The loss terms a history records, as the curves' legend names them (others: their key).
LOSS_NAMES = {
    "loss": "total (what the optimiser minimises)",
    "instance": "instance: the two views of an image vs other images",
    "cluster": "cluster: a cluster's columns in the two views vs other clusters",
    "entropy": "entropy term: log K - entropy of the mean cluster probabilities (0: equal sizes)",
}
NOT_LOSSES = {"epoch", "step", "seconds", "grad_norm", "t", "w_z_mean", "w_c_mean", "mean_wz", "mean_wc"}


def curves_figure(history: list[dict], final: dict | None = None):
    """Training losses per epoch, and ACC/NMI/ARI per epoch where evaluated plus the final evaluation
    (`final`: the last checkpoint's metrics) at the last epoch; a sentence where there is nothing to plot."""
    # matplotlib loads only for a command that draws
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    loss_keys = [k for k in (history[0] if history else {}) if k not in NOT_LOSSES and not k.startswith("eval_")]
    fig = new_figure(11, 3.8)
    ax, qa = fig.subplots(1, 2)
    for k in loss_keys:
        ax.plot(epochs, [h.get(k, np.nan) for h in history], marker="." if len(epochs) < 30 else None,
                label=LOSS_NAMES.get(k, k))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean over the epoch's steps)", fontsize=8)
    ax.set_title(f"Training losses, {len(epochs)} epochs", fontsize=9)
    ax.legend(fontsize=6)
    eval_keys = [k for k in ("eval_acc", "eval_nmi", "eval_ari") if any(k in h for h in history)]
    has_final = bool(quality_line(final)) and bool(epochs)
    for k in eval_keys:
        line, = qa.plot(*zip(*[(h["epoch"], h[k]) for h in history if k in h]), marker="o",
                        label=f"{k[5:].upper()} during training")
        if has_final and k[5:] in final:
            qa.plot([epochs[-1]], [final[k[5:]]], marker="*", markersize=11, color=line.get_color())
    if has_final and not eval_keys:
        for name in ("acc", "nmi", "ari"):
            if name in final:
                qa.plot([epochs[-1]], [final[name]], marker="*", markersize=11, linestyle="", label=name.upper())
    if has_final:
        qa.plot([], [], marker="*", color="gray", linestyle="", label="final evaluation (last checkpoint)")
        lowest = min([0.0] + [float(final[m]) for m in ("acc", "nmi", "ari") if m in final] +
                     [float(h[k]) for h in history for k in eval_keys if k in h])
        qa.set_ylim(lowest - 0.03 if lowest < 0 else 0.0, 1.0)  # ARI can be below 0
        qa.set_xlabel("epoch")
        qa.legend(fontsize=7)
        qa.set_title("Clustering quality against the true classes" + (
            "" if eval_keys else "\nevaluated at the end only (--config.eval.every_epochs=N: also every N epochs)"),
            fontsize=9)
        qa.set_xlim(ax.get_xlim())
    else:
        qa.axis("off")
        why = ("the images have no labels, so there is no ACC/NMI/ARI" if final is not None
               else "no evaluation recorded for this run")
        qa.text(0.5, 0.5, f"Clustering quality: not drawn\n({why})", ha="center", va="center", fontsize=9,
                transform=qa.transAxes)
    for a in (ax, qa):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def plot_curves(path: str, history: list[dict], final: dict | None = None) -> None:
    """Writes curves.png (see curves_figure)."""
    save_figure(curves_figure(history, final), path)


def write_assignments(path: str, probs: np.ndarray, ids: list[str], labels: np.ndarray | None,
                      class_names: list[str] | None) -> None:
    pred, conf = probs.argmax(1), probs.max(1)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["id", "cluster", "probability"] + (["label", "class"] if labels is not None else []))
    for i in range(len(pred)):
        row = [ids[i], int(pred[i]), f"{conf[i]:.6f}"]
        if labels is not None:
            lb = int(labels[i])
            if lb < 0:  # an unlabelled example (e.g. STL-10's unlabelled split): label unknown
                row += ["", ""]
            else:
                row += [lb, class_names[lb] if class_names else str(lb)]
        w.writerow(row)
    write_atomic(path, lambda f: f.write(buf.getvalue().encode()))


def read_history(workdir: str) -> list[dict]:
    path = os.path.join(workdir, HISTORY)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.read().splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:  # a torn last line (a kill mid-write): the training loop drops it on resume
            continue
    return records


def write_report(workdir: str, dataset, probs_last: np.ndarray, metrics: dict,
                 labels: np.ndarray | None) -> str:
    """Writes every report file; `metrics` is {'last': {...}, 'best_by_train_loss': {...}}."""
    out = os.path.join(workdir, REPORT_DIR)
    os.makedirs(out, exist_ok=True)
    pred = probs_last.argmax(1)
    k = probs_last.shape[1]
    known = None if labels is None else labels >= 0  # labels -1: unlabelled examples, not in the confusion
    order = None
    if known is not None and known.any():
        y, p = labels[known], pred[known]
        names = dataset.class_names or [str(i) for i in range(int(y.max()) + 1)]
        order = cluster_order(y, p, k)
        cm = plot_confusion(os.path.join(out, "confusion.png"), y, p, k, names, metrics.get("last"))
        write_confusion_csv(os.path.join(out, "confusion.csv"), cm, order, names)
        metrics = {**metrics, "confusion_matrix": cm.tolist(),
                   "confusion_cluster_order": order, "class_names": names,
                   "confusion_num_examples": int(known.sum())}
    plot_clusters(os.path.join(out, "clusters.png"), probs_last, lambda idx: dataset.read(idx)["image"],
                  order=order)
    history = read_history(workdir)
    if history:
        plot_curves(os.path.join(out, "curves.png"), history, metrics.get("last", {}))
    ids = dataset.example_ids(np.arange(dataset.num_examples))
    write_assignments(os.path.join(out, "assignments.csv"), probs_last, ids, labels, dataset.class_names)
    write_json_atomic(os.path.join(out, METRICS), metrics)
    return out
