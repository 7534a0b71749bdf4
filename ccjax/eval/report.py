"""The evaluation report a run leaves in `<workdir>/report/`.

- metrics.json: ACC/NMI/ARI (or label-free diagnostics) of the last checkpoint and,
  separately, of the best-by-training-loss checkpoint (never best by the labels);
- confusion.png: clusters (Hungarian-matched order) against classes (the largest 40 of each when
  there are more); confusion.csv: the whole matrix;
- clusters.png: each cluster's most confident images and its size (the largest 40 clusters);
- curves.png: training losses per component and, where evaluated, ACC/NMI/ARI per epoch;
- assignments.csv: example id, cluster, probability, label where known (empty for
  unlabelled examples, whose label is -1; the confusion matrix counts labelled ones only).
Only process 0 calls this.
"""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from ccjax.eval.metrics import confusion_matrix, hungarian_match
from ccjax.run.rundir import HISTORY, METRICS, REPORT_DIR, write_atomic, write_figure, write_json_atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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


def plot_confusion(path: str, y_true, y_pred, num_clusters: int, class_names: list[str]) -> np.ndarray:
    """Writes the cluster x class confusion matrix; returns it (all clusters) in plotted order [K, C].

    With more than MAX_DRAWN clusters or classes only the largest are drawn (the title says so),
    so the figure stays readable and fast for any K; write_confusion_csv keeps the whole matrix.
    """
    plt = _pyplot()
    cm = confusion_matrix(y_true, y_pred, len(class_names), num_clusters)
    order = cluster_order(y_true, y_pred, num_clusters)
    cm = cm[order]
    rows = largest(cm.sum(1))
    cols = largest(cm.sum(0))
    shown = cm[np.ix_(rows, cols)]
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * len(cols), 1.0 + 0.4 * len(rows)))
    ax.imshow(shown, cmap="Blues")
    ax.set_xticks(range(len(cols)), [class_names[j] for j in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"cluster {order[i]}" for i in rows], fontsize=8)
    ax.set_xlabel("class")
    if shown.size <= 900:
        hi = shown.max() if shown.size else 1
        for i in range(shown.shape[0]):
            for j in range(shown.shape[1]):
                if shown[i, j]:
                    ax.text(j, i, int(shown[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if shown[i, j] > hi / 2 else "black")
    title = "clusters vs classes (Hungarian-matched order)"
    if len(rows) < cm.shape[0] or len(cols) < cm.shape[1]:
        title += (f"\nthe largest {len(rows)} of {cm.shape[0]} clusters and {len(cols)} of {cm.shape[1]} "
                  "classes; all in confusion.csv")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    write_figure(fig, path, dpi=110)
    plt.close(fig)
    return cm


def write_confusion_csv(path: str, cm: np.ndarray, order: list[int], class_names: list[str]) -> None:
    """The whole confusion matrix [K, C] as CSV: a row per cluster (plotted order), a column per class."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["cluster"] + list(class_names))
    for k, row in zip(order, cm):
        w.writerow([k] + [int(v) for v in row])
    write_atomic(path, lambda f: f.write(buf.getvalue().encode()))


def plot_clusters(path: str, probs: np.ndarray, read_images, per_cluster: int = 8) -> None:
    """A row per cluster (the largest MAX_DRAWN): its `per_cluster` most confident images, titled with its size."""
    plt = _pyplot()
    pred, conf = probs.argmax(1), probs.max(1)
    k = probs.shape[1]
    drawn = largest(np.bincount(pred, minlength=k))
    fig, axes = plt.subplots(len(drawn), per_cluster, figsize=(per_cluster * 0.9, len(drawn) * 0.95),
                             squeeze=False)
    for row, c in enumerate(drawn):
        members = np.flatnonzero(pred == c)
        top = members[np.argsort(-conf[members])][:per_cluster]
        imgs = read_images(np.sort(top)) if len(top) else []
        by_index = dict(zip(np.sort(top).tolist(), imgs))
        for j in range(per_cluster):
            ax = axes[row, j]
            ax.axis("off")
            if j < len(top):
                img = by_index[int(top[j])]
                if img.shape[-1] == 1:  # uint8 levels as stored: no per-image contrast stretch
                    ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                else:
                    ax.imshow(img, interpolation="nearest")
        axes[row, 0].set_title(f"cluster {c}: {len(members)}", fontsize=7, loc="left")
    if len(drawn) < k:
        fig.suptitle(f"the largest {len(drawn)} of {k} clusters", fontsize=8)
    fig.tight_layout(pad=0.2)
    write_figure(fig, path, dpi=100)
    plt.close(fig)


def plot_curves(path: str, history: list[dict]) -> None:
    """Loss components per epoch, and ACC/NMI/ARI per epoch where they were evaluated."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    skip = {"epoch", "step", "seconds", "grad_norm"}
    loss_keys = [k for k in (history[0] if history else {}) if k not in skip and not k.startswith("eval_")
                 and k not in ("t", "mean_wz", "mean_wc")]
    eval_keys = [k for k in ("eval_acc", "eval_nmi", "eval_ari") if any(k in h for h in history)]
    ncols = 2 if eval_keys else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 3.6), squeeze=False)
    ax = axes[0, 0]
    for k in loss_keys:
        ax.plot(epochs, [h.get(k, np.nan) for h in history], label=k)
    ax.set_xlabel("epoch")
    ax.set_title("training losses")
    ax.legend(fontsize=7)
    if eval_keys:
        ax = axes[0, 1]
        for k in eval_keys:
            pts = [(h["epoch"], h[k]) for h in history if k in h]
            ax.plot(*zip(*pts), marker="o", label=k[5:].upper())
        ax.set_ylim(0, 1)
        ax.set_xlabel("epoch")
        ax.set_title("clustering quality during training")
        ax.legend(fontsize=7)
    fig.tight_layout()
    write_figure(fig, path, dpi=110)
    plt.close(fig)


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
    if known is not None and known.any():
        y, p = labels[known], pred[known]
        names = dataset.class_names or [str(i) for i in range(int(y.max()) + 1)]
        cm = plot_confusion(os.path.join(out, "confusion.png"), y, p, k, names)
        write_confusion_csv(os.path.join(out, "confusion.csv"), cm, cluster_order(y, p, k), names)
        metrics = {**metrics, "confusion_matrix": cm.tolist(),
                   "confusion_cluster_order": cluster_order(y, p, k), "class_names": names,
                   "confusion_num_examples": int(known.sum())}
    plot_clusters(os.path.join(out, "clusters.png"), probs_last, lambda idx: dataset.read(idx)["image"])
    history = read_history(workdir)
    if history:
        plot_curves(os.path.join(out, "curves.png"), history)
    ids = dataset.example_ids(np.arange(dataset.num_examples))
    write_assignments(os.path.join(out, "assignments.csv"), probs_last, ids, labels, dataset.class_names)
    write_json_atomic(os.path.join(out, METRICS), metrics)
    return out
