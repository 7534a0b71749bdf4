"""Figures of where models look (ccjax/explain/cam.py): several runs side by side (GeCC's Fig. 1,
`python -m ccjax explain`), and the small per-cluster grid in every run's report (report/cams.png).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ccjax.clip import embed_images
from ccjax.data import open_dataset
from ccjax.data.images import ImageSkipped, load_image
from ccjax.data.labels import dataset_labels
from ccjax.errors import UserError
from ccjax.explain.cam import Explained, explain_images, local_copy
from ccjax.report.figures import pyplot, save_figure
from ccjax.report.thumbnails import write_cam_strips
from ccjax.run.load import load_trained
from ccjax.run.rundir import REPORT_DIR

REPORT_FILE = "cams.png"
REPORT_CLUSTERS = 10  # the largest clusters drawn in the report
REPORT_PER_CLUSTER = 4  # the most confident images of each


def _overlay(ax, view: np.ndarray, heat: np.ndarray, title: str = "") -> None:
    """A view [S, S, C] in [0, 1] under a heat map [S, S] in [0, 1] (jet: red high, blue low)."""
    if view.shape[-1] == 1:
        ax.imshow(view[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(view[..., :3], interpolation="nearest")
    ax.imshow(heat, cmap="jet", alpha=0.4, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=6)
    ax.axis("off")


def _show(ax, view: np.ndarray, title: str = "") -> None:
    if view.shape[-1] == 1:
        ax.imshow(view[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(view[..., :3], interpolation="nearest")
    ax.set_title(title, fontsize=6)
    ax.axis("off")


def draw_runs(path: str, runs: Sequence[tuple[str, Explained]], image_names: Sequence[str]) -> None:
    """One row per image, its view then one column per run (same images in every column): the
    run's map over the run's own view, titled with its predicted cluster and probability."""
    plt = pyplot()
    n, k = len(image_names), len(runs)
    fig, axes = plt.subplots(n, k + 1, figsize=(1.35 * (k + 1), 1.35 * n + 0.5), squeeze=False)
    for i, name in enumerate(image_names):
        _show(axes[i, 0], runs[0][1].views[i], name)
        for j, (_, ex) in enumerate(runs, start=1):
            _overlay(axes[i, j], ex.views[i], ex.maps[i], f"cluster {ex.cluster[i]} p={ex.prob[i]:.2f}")
    for j, (label, ex) in enumerate(runs, start=1):
        axes[0, j].set_title(f"{label}\n{ex.kind}\ncluster {ex.cluster[0]} p={ex.prob[0]:.2f}", fontsize=6)
    fig.tight_layout(pad=0.3)
    save_figure(fig, path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- the report's grid


def confident_examples(probs: np.ndarray, clusters: int = REPORT_CLUSTERS,
                       per_cluster: int = REPORT_PER_CLUSTER) -> list[tuple[int, np.ndarray]]:
    """[(cluster, its most confident example indices, most confident first)] for the largest clusters."""
    pred, conf = probs.argmax(1), probs.max(1)
    sizes = np.bincount(pred, minlength=probs.shape[1])
    chosen = [c for c in np.argsort(-sizes, kind="stable")[:clusters] if sizes[c]]
    out = []
    for c in sorted(chosen):
        members = np.flatnonzero(pred == c)
        out.append((int(c), members[np.argsort(-conf[members], kind="stable")][:per_cluster]))
    return out


def write_report_cams(workdir: str, module, variables: dict, config, dataset, probs: np.ndarray,
                      anchors: np.ndarray | None = None) -> str:
    """report/cams.png: per cluster (the largest REPORT_CLUSTERS) its REPORT_PER_CLUSTER most confident
    images with where the model looks (Grad-CAM, or token attention for a ViT). Returns the path.

    Computed on this process's devices alone from its replica of `variables` (process 0 draws the report)."""
    picks = confident_examples(probs)
    idx = np.concatenate([m for _, m in picks]) if picks else np.zeros(0, np.int64)
    order = np.argsort(idx, kind="stable")  # read in index order (a streamed dataset reads them in one pass)
    images = np.empty((len(idx), *dataset.image_shape), np.uint8)
    images[order] = dataset.read(idx[order])["image"]
    ex = explain_images(module, local_copy(variables), config, images,
                        None if anchors is None else np.asarray(anchors)[idx])
    write_cam_strips(os.path.join(workdir, REPORT_DIR), picks, ex)  # the page's strips beside each cluster
    plt = pyplot()
    cols = REPORT_PER_CLUSTER
    fig, axes = plt.subplots(max(len(picks), 1), cols, figsize=(0.95 * cols, 0.95 * max(len(picks), 1) + 0.4),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    pos = 0
    for row, (c, members) in enumerate(picks):
        for j in range(len(members)):
            _overlay(axes[row, j], ex.views[pos], ex.maps[pos], f"c{c} p={ex.prob[pos]:.2f}")
            pos += 1
    fig.suptitle(f"{ex.kind}: {ex.where}\n(red: where the model looks)", fontsize=7)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    path = os.path.join(workdir, REPORT_DIR, REPORT_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- several runs


def _default_indices(dataset, count: int) -> np.ndarray:
    """The first example of each class (up to `count`), or `count` evenly spaced examples without labels."""
    labels = dataset_labels(dataset)
    if labels is None:
        return np.unique(np.linspace(0, dataset.num_examples - 1, min(count, dataset.num_examples)).astype(np.int64))
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels[labels >= 0])]
    return np.asarray(firsts[:count], np.int64)


def explain_runs(workdirs: Sequence[str], out: str, files: Sequence[str] = (), indices: Sequence[int] = (),
                 count: int = 8) -> list[str]:
    """Draws the runs in `workdirs` side by side on the same images to `out` (a PNG); returns the image names.

    Images: `files` (decoded in each run's stored format), else the examples `indices` of the runs'
    dataset, else the first example of each class (at most `count`). The last checkpoint of each run.
    """
    if not workdirs:
        raise UserError("pass at least one --workdir=<a run directory written by `ccjax train`>")
    trained = [load_trained(w) for w in workdirs]
    datasets = {(t.config.dataset.name, t.image_shape) for t in trained}
    if not files and len(datasets) > 1:
        raise UserError(f"the runs were trained on different data ({', '.join(sorted(str(d) for d in datasets))}); "
                        "pass --images=<files> to draw them on the same images")
    if files:
        names = [os.path.basename(f) for f in files]
        per_run = [_load_files(files, t.image_shape) for t in trained]
    else:
        dataset = open_dataset(trained[0].config.dataset)
        idx = np.asarray(indices, np.int64) if len(indices) else _default_indices(dataset, count)
        if len(idx) and (idx.min() < 0 or idx.max() >= dataset.num_examples):
            raise UserError(f"--indices must be in 0..{dataset.num_examples - 1} ({dataset.name} has "
                            f"{dataset.num_examples} examples)")
        images = dataset.read(idx)["image"]
        names = [f"#{i} {n}" for i, n in zip(idx, dataset.example_ids(idx))]
        per_run = [images] * len(trained)
    columns = []
    for t, images in zip(trained, per_run):
        variables = t.restore_latest().variables
        anchors = None
        if t.config.anchor.enabled:  # the frozen CLIP embedding of each un-augmented image
            anchors = np.asarray(embed_images(t.config, images, t.mesh))
        label = f"{os.path.basename(os.path.normpath(t.workdir))}: {t.config.method}, {t.config.model.backbone}"
        columns.append((label, explain_images(t.module, variables, t.config, images, anchors)))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    draw_runs(out, columns, names)
    return names


def _load_files(files: Sequence[str], image_shape) -> np.ndarray:
    out = []
    for f in files:
        if not os.path.isfile(f):
            raise UserError(f"{f!r} does not exist; pass --images=<image files, comma-separated>")
        try:
            out.append(load_image(f, image_shape))
        except ImageSkipped as e:
            raise UserError(f"cannot read {f!r} as an image ({e}); pass PNG/JPEG files") from None
    return np.stack(out)
