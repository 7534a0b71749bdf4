"""What the small-scale claims need beyond the training runs' own metrics (ccjax/results/small_plan.py).

- Per finished run on a domain-shift set: `claims.json` in the run folder with its CAM mass
  (ccjax/results/cam_mass.py, over every image of the set) and the NMI of its final clusters with the
  nuisance's level (tools/domain_shift_family.py's .cues.json), at the run's step; rewritten only when
  the run's step changed.
- The k-means floor: scikit-learn's KMeans (k = the classes, 10 restarts, random_state = the seed) on the
  pixels the runs train on (the dataset as opened for training, uint8 / 255, flattened), ACC/NMI/ARI in
  <root>/kmeans/<dataset>/seed<k>/metrics.json.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from ccjax.results.small_plan import SHIFT_SETS, cells, dataset_overrides, is_finished
from ccjax.run.rundir import read_json_or_none, write_atomic

CLAIMS_FILE = "claims.json"
KMEANS_SETS = ("digits",) + SHIFT_SETS


def _write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, lambda fh: fh.write(json.dumps(obj, indent=1).encode()))



def shift_set(root: str, dataset: str) -> dict:
    """{'files', 'images' uint8 [n, 16, 16, 3], 'masks' [n, 16, 16], 'level' {file: level}} of a ds_<kind> set."""
    from PIL import Image

    folder = os.path.join(root, "data", "digits_" + dataset[3:])
    with np.load(folder + ".masks.npz") as d:
        files, masks = d["files"].tolist(), d["masks"]
    with open(folder + ".cues.json") as f:
        level = {k: v["level"] for k, v in json.load(f)["files"].items()}
    images = np.stack([np.asarray(Image.open(os.path.join(folder, r)).convert("RGB")) for r in files])
    return {"files": files, "images": images, "masks": masks, "level": level}


def nuisance_nmi(workdir: str, level: dict) -> float:
    """NMI of the run's final clusters (report/assignments.csv) with the nuisance's level per file."""
    from ccjax.eval.metrics import normalized_mutual_info

    with open(os.path.join(workdir, "report", "assignments.csv")) as f:
        rows = list(csv.DictReader(f))
    return float(normalized_mutual_info(np.array([level[r["id"]] for r in rows]),
                                        np.array([int(r["cluster"]) for r in rows])))


def measure_run(workdir: str, data: dict) -> dict | None:
    """claims.json of a finished run (computed, or kept when it is of the run's current step)."""
    from ccjax.results.cam_mass import cam_mass_of_run

    if not is_finished(workdir):
        return None
    step = int(read_json_or_none(os.path.join(workdir, "metrics.json"))["step"])
    path = os.path.join(workdir, CLAIMS_FILE)
    old = read_json_or_none(path)
    if old is not None and old.get("step") == step:
        return old
    cam = cam_mass_of_run(workdir, data["images"], data["masks"])
    out = {"step": step, "nuisance_nmi": nuisance_nmi(workdir, data["level"]), "cam_inside": cam["inside"],
           "cam_area": cam["area"], "cam_ratio": cam["ratio"], "cam_images": cam["images"],
           "cam_empty_maps": cam["empty_maps"], "cam_where": cam["where"]}
    _write_json(path, out)
    return out


def kmeans_pixels(root: str, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels float [n, H*W*C] in [0, 1], labels [n]) of `dataset` as the runs open it."""
    from ccjax.config import get_base_config
    from ccjax.data import open_dataset

    cfg = get_base_config().dataset
    for k, v in dataset_overrides(dataset, root).items():
        if k.startswith("dataset."):
            cfg[k[len("dataset."):]] = v
    ds = open_dataset(cfg)
    batch = ds.read(np.arange(ds.num_examples))
    return batch["image"].reshape(ds.num_examples, -1).astype(np.float64) / 255.0, np.asarray(batch["label"])


def measure_kmeans(root: str, dataset: str, seeds: int) -> None:
    from sklearn.cluster import KMeans

    from ccjax.eval.metrics import clustering_metrics

    done = [read_json_or_none(os.path.join(root, "kmeans", dataset, f"seed{s}", "metrics.json")) for s in range(seeds)]
    todo = [s for s in range(seeds) if done[s] is None]
    if not todo:
        return
    x, labels = kmeans_pixels(root, dataset)
    k = int(labels.max()) + 1
    for s in todo:
        pred = KMeans(n_clusters=k, n_init=10, random_state=s).fit_predict(x)
        m = clustering_metrics(labels, pred)
        _write_json(os.path.join(root, "kmeans", dataset, f"seed{s}", "metrics.json"),
                    {**{key: float(m[key]) for key in ("acc", "nmi", "ari")}, "num_examples": int(len(x)), "seed": s})
        print(f"kmeans {dataset} seed {s}: NMI {m['nmi']:.3f}", flush=True)


def measure_all(root: str, seeds: int) -> None:
    """Every measurement the claims need that is not done yet (see the module docstring)."""
    for dataset in SHIFT_SETS:
        data = None
        for row, ds in cells():
            if ds != dataset:
                continue
            for s in range(seeds):
                wd = os.path.join(root, row, ds, f"seed{s}")
                if not is_finished(wd):
                    continue
                data = data or shift_set(root, dataset)
                r = measure_run(wd, data)
                print(f"{wd}: CAM inside {r['cam_inside']:.3f} (area {r['cam_area']:.3f}), "
                      f"nuisance NMI {r['nuisance_nmi']:.3f}", flush=True)
    for dataset in KMEANS_SETS:
        measure_kmeans(root, dataset, seeds)
