"""What do the clusters follow? A label-free probe of nuisance cues (report/nuisance.json, nuisance.png).

Contrastive clustering latches onto the easiest cue that tells images apart;
when that is colour, brightness, the image size or the camera, the report
still shows tidy, confident clusters. This probe measures, for cheap per-image
statistics that should not matter, how much each one determines the cluster
assignment:

- continuous statistics (mean colour per channel, brightness, contrast,
  saturation; for folders the source width, height and aspect ratio): each is
  standardised and grouped by k-means into K groups (K = the run's number of
  clusters), and the score is the NMI between the clusters and those groups;
- categorical ones (for folders: the file format, and the sub-folder an image
  came from when sub-folders are not the labels): the NMI with the category;
- beside each score, `chance`: the same NMI for the clusters shuffled across
  the images (same sizes, no relation to anything); where labels are known,
  `labels` gives the NMI of the clusters with the labels: the reference a
  nuisance statistic should stay far below.

A statistic is flagged when its score is at least WARN_NMI and at least
WARN_OVER_CHANCE above chance (docs/own_images.md, "What do the clusters
follow?", says how these were chosen); the warning names the augmentation
flags that take that cue away. Runs on at most MAX_EXAMPLES images (an even
subsample beyond that).
"""

from __future__ import annotations

import collections
import os

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from ccjax.run.rundir import REPORT_DIR, write_figure, write_json_atomic

WARN_NMI = 0.5  # a statistic explaining the clusters at least this well is flagged ...
WARN_OVER_CHANCE = 0.3  # ... when it is also this far above the shuffled-cluster chance level
MAX_EXAMPLES = 20000
_CHUNK = 256  # images measured at a time (float32 copies: about 4 x 256 x H x W x C x 4 bytes)
_GRAY = np.array([0.299, 0.587, 0.114])

# statistic -> (what a cluster that follows it means, the settings that remove the cue)
REMEDIES = {
    "colour": ("the clusters follow the images' colours",
               "--config.augment.jitter_p=0.8 --config.augment.saturation=0.4 --config.augment.hue=0.1 "
               "--config.augment.grayscale_p=0.2"),
    "brightness": ("the clusters follow how bright the images are",
                   "--config.augment.jitter_p=0.8 --config.augment.brightness=0.4"),
    "contrast": ("the clusters follow the images' contrast",
                 "--config.augment.jitter_p=0.8 --config.augment.contrast=0.4"),
    "saturation": ("the clusters follow how colourful the images are",
                   "--config.augment.jitter_p=0.8 --config.augment.saturation=0.4 --config.augment.grayscale_p=0.2"),
    "source_size": ("the clusters follow the original image size (resizing leaves a different blur)",
                    "--config.augment.blur_p=0.5 --config.augment.crop_scale='(0.2, 1.0)'"),
    "aspect_ratio": ("the clusters follow the original aspect ratio (stretching when stored)",
                     "--config.augment.crop_ratio='(0.75, 1.3333)' --config.augment.crop_scale='(0.2, 1.0)'"),
    "file_format": ("the clusters follow the file format (JPEG artefacts, PNG sharpness)",
                    "--config.augment.blur_p=0.5 --config.augment.noise_std=0.05"),
    "subfolder": ("the clusters follow the sub-folder the images came from (a camera, a source, a date?)",
                  "look at report/clusters.png; strong colour/blur augmentation often helps: "
                  "--config.augment.jitter_p=0.8 --config.augment.blur_p=0.5"),
}


def image_statistics(dataset, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image statistics of the stored images (uint8 [H, W, C], C = 1 or 3), in `indices` order.

    colour [n, 3] mean per channel in [0, 1] (RGB only); brightness [n] mean luma; contrast [n]
    luma std; saturation [n] (RGB only) mean of (max - min) / max over the pixels. A streamed
    dataset is read and measured in its grain workers, chunk by chunk.
    """
    from ccjax.data.streaming import read_ahead

    measure = _ChunkStatistics(dataset, np.asarray(indices, np.int64), _CHUNK)
    parts = collections.defaultdict(list)
    for stats in read_ahead(measure, range(-(-len(indices) // _CHUNK)), dataset):
        for k, v in stats.items():
            parts[k].append(v)
    order = ("colour", "brightness", "contrast", "saturation")  # (grain hands dicts back key-sorted)
    return {k: np.concatenate(parts[k]) for k in order if k in parts}


class _ChunkStatistics:
    """Chunk number -> the statistics of those images (picklable: runs in grain workers)."""

    def __init__(self, dataset, indices: np.ndarray, chunk_size: int):
        self.dataset = dataset
        self.indices = indices
        self.chunk_size = chunk_size  # carried: a worker's own module globals are not this process's

    def __call__(self, chunk: int) -> dict[str, np.ndarray]:
        idx = self.indices[chunk * self.chunk_size:(chunk + 1) * self.chunk_size]
        img = self.dataset.read(idx)["image"].astype(np.float32) / 255.0  # [n, H, W, C]
        n, c = img.shape[0], img.shape[-1]
        luma = img[..., 0] if c == 1 else img @ _GRAY.astype(np.float32)  # [n, H, W]
        out = {"colour": img.reshape(n, -1, c).mean(1)} if c == 3 else {}  # (gray: its one channel is brightness)
        out.update(brightness=luma.reshape(n, -1).mean(1), contrast=luma.reshape(n, -1).std(1))
        if c == 3:
            hi, lo = img.max(-1), img.min(-1)
            sat = np.where(hi > 0, (hi - lo) / np.where(hi > 0, hi, 1.0), 0.0)
            out["saturation"] = sat.reshape(n, -1).mean(1)
        return out


def source_statistics(root: str, files: list[str], subfolders_are_labels: bool) -> dict[str, np.ndarray]:
    """For a folder dataset: source size and aspect, file format, sub-folder (when not the labels).

    `files` are paths relative to `root`; unreadable headers give NaN sizes (left out of the groups).
    """
    from ccjax.data.images import ImageSkipped, image_size

    sizes = np.full((len(files), 2), np.nan)
    for i, rel in enumerate(files):
        try:
            sizes[i] = image_size(os.path.join(root, rel))
        except ImageSkipped:
            pass
    out = {"source_size": sizes, "aspect_ratio": sizes[:, 1:2] / sizes[:, 0:1],
           "file_format": np.array([os.path.splitext(f)[1].lower().lstrip(".") or "none" for f in files])}
    depth = 2 if subfolders_are_labels else 1  # class/sub/x.png: 'sub' matters; flat/sub/x.png: 'sub'
    folders = np.array([os.path.join(*p.split(os.sep)[:depth]) if len(p.split(os.sep)) > depth else ""
                        for p in files])
    if len(set(folders.tolist())) > 1:
        out["subfolder"] = folders
    return out


def _groups(values: np.ndarray, k: int, seed: int) -> np.ndarray | None:
    """Group ids [n] of a statistic: its categories, or a k-means of the standardised values into <= k groups."""
    if values.dtype.kind in "US":
        return np.unique(values, return_inverse=True)[1]
    x = values.reshape(len(values), -1).astype(np.float64)
    ok = np.isfinite(x).all(1)
    if not ok.any():
        return None
    x = np.where(ok[:, None], x, np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0))
    std = x.std(0)
    x = (x - x.mean(0)) / np.where(std > 0, std, 1.0)
    distinct = len(np.unique(np.round(x, 6), axis=0))
    if distinct < 2:
        return None  # a constant statistic explains nothing
    km = KMeans(n_clusters=min(k, distinct), n_init=3, random_state=seed)
    return km.fit_predict(x)


def probe(pred: np.ndarray, num_clusters: int, statistics: dict[str, np.ndarray],
          labels: np.ndarray | None = None, seed: int = 0) -> dict:
    """{'statistics': {name: {'nmi', 'chance', 'flagged'}}, 'labels': {'nmi', 'chance'} | None, 'warnings': [...]}."""
    rng = np.random.default_rng(seed)
    shuffled = [rng.permutation(pred) for _ in range(3)]

    def score(groups):
        nmi = float(normalized_mutual_info_score(groups, pred))
        chance = float(np.mean([normalized_mutual_info_score(groups, s) for s in shuffled]))
        return nmi, chance

    out = {"statistics": {}, "labels": None, "warnings": [], "num_examples": int(len(pred)),
           "thresholds": {"nmi": WARN_NMI, "over_chance": WARN_OVER_CHANCE}}
    for name, values in statistics.items():
        groups = _groups(values, num_clusters, seed)
        if groups is None:
            continue
        nmi, chance = score(groups)
        flagged = nmi >= WARN_NMI and nmi - chance >= WARN_OVER_CHANCE
        out["statistics"][name] = {"nmi": nmi, "chance": chance, "flagged": flagged}
        if flagged:
            what, fix = REMEDIES[name]
            out["warnings"].append(
                f"ccjax: warning: {what} (NMI {nmi:.2f} between the clusters and the images' {name.replace('_', ' ')}, "
                f"{chance:.2f} by chance): the model may have learnt that cue instead of the content; "
                f"retrain with {fix}")
    if labels is not None and (labels >= 0).any():
        known = labels >= 0
        nmi = float(normalized_mutual_info_score(labels[known], pred[known]))
        chance = float(np.mean([normalized_mutual_info_score(labels[known], s[known]) for s in shuffled]))
        out["labels"] = {"nmi": nmi, "chance": chance}
    return out


def nuisance_report(dataset, probs: np.ndarray, labels: np.ndarray | None, dataset_name: str,
                    seed: int = 0) -> dict:
    """The probe of a run's final assignment `probs` [N, K] on its training `dataset`."""
    from ccjax.data.catalog import FOLDER_PREFIX

    n = dataset.num_examples
    idx = np.arange(n) if n <= MAX_EXAMPLES else np.linspace(0, n - 1, MAX_EXAMPLES).astype(np.int64)
    stats = image_statistics(dataset, idx)
    if dataset_name.startswith(FOLDER_PREFIX):
        root = os.path.abspath(os.path.expanduser(dataset_name[len(FOLDER_PREFIX):]))
        files = dataset.example_ids(idx)
        if os.path.isdir(root) and all(os.path.exists(os.path.join(root, f)) for f in files[:20]):
            stats.update(source_statistics(root, files, dataset.num_classes is not None))
    return probe(probs[idx].argmax(1), probs.shape[1], stats, None if labels is None else labels[idx], seed)


def write_nuisance(workdir: str, result: dict) -> None:
    """report/nuisance.json and report/nuisance.png: a bar per statistic, chance beside it, the labels' line."""
    out = os.path.join(workdir, REPORT_DIR)
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "nuisance.json"), result)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["statistics"])
    nmi = [result["statistics"][k]["nmi"] for k in names]
    chance = [result["statistics"][k]["chance"] for k in names]
    fig, ax = plt.subplots(figsize=(1.4 + 0.9 * max(len(names), 1), 3.6))
    x = np.arange(len(names))
    colours = ["#d62728" if result["statistics"][k]["flagged"] else "#1f77b4" for k in names]
    ax.bar(x, nmi, color=colours, label="clusters vs statistic (NMI)")
    ax.scatter(x, chance, color="black", marker="_", s=300, zorder=3, label="shuffled clusters (chance)")
    ax.axhline(WARN_NMI, color="#d62728", linestyle=":", linewidth=1, label=f"warning level {WARN_NMI}")
    if result.get("labels"):
        ax.axhline(result["labels"]["nmi"], color="green", linestyle="--", linewidth=1,
                   label=f"clusters vs labels ({result['labels']['nmi']:.2f})")
    ax.set_xticks(x, [k.replace("_", " ") for k in names], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("NMI")
    ax.set_title("What do the clusters follow? (red: flagged)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    write_figure(fig, os.path.join(out, "nuisance.png"), dpi=110)
    plt.close(fig)
