"""The report page's size and build time (docs/benchmarks.md, "The report page").

    python tools/report_page_benchmark.py --workdir=runs/cc_digits                 # a real run
    python tools/report_page_benchmark.py --folder=/data/shapes60k --clusters=10,100 --scratch=/tmp/pages

--workdir rebuilds a finished run's page (as `python -m ccjax report`, the dataset already opened)
and reports the time and the bytes written. --folder opens an image folder as a ccjax dataset (it
is prepared once, like training does) and, for each K, SYNTHESISES an assignment instead of
training: each image's probabilities drawn from a Dirichlet(0.3) over K clusters, then writes
assignments.csv, a minimal config.json/run.json/metrics.json into `<scratch>/k<K>` and times the
page build there. The page never holds one <img> per image: it grows with K (one sprite of at most
16 thumbnails per cluster), not with the number of images.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's ccjax, also when another one is installed


def folder_bytes(report_dir: str) -> tuple[int, int, int]:
    """(index.html bytes, thumbs/ bytes, thumbs/ files)."""
    thumbs = os.path.join(report_dir, "thumbs")
    files = [os.path.join(thumbs, f) for f in os.listdir(thumbs)] if os.path.isdir(thumbs) else []
    return os.path.getsize(os.path.join(report_dir, "index.html")), sum(map(os.path.getsize, files)), len(files)


def measure(workdir: str, dataset, label: str) -> dict:
    """Times write_page_for_dataset; the modules it uses are imported first (a run has them already)."""
    import ccjax.eval.metrics  # noqa: F401  (scikit-learn: seconds to import)
    import ccjax.report.html  # noqa: F401
    from ccjax.report.page import write_page_for_dataset

    t = time.perf_counter()
    path = write_page_for_dataset(workdir, dataset)
    seconds = time.perf_counter() - t
    html, thumbs, files = folder_bytes(os.path.dirname(path))
    with open(path) as f:
        imgs = len(re.findall(r"<img ", f.read()))
    row = {"case": label, "images": dataset.num_examples, "seconds": round(seconds, 2), "html_kB": html // 1024,
           "thumbs_kB": thumbs // 1024, "thumb_files": files, "img_elements": imgs}
    print(json.dumps(row), flush=True)
    return row


def synthetic_run(scratch: str, dataset, folder: str, k: int, seed: int = 0) -> str:
    """A workdir holding what a run's report would: a synthesised assignment over K clusters."""
    from ccjax.config import get_base_config
    from ccjax.eval.metrics import label_free_diagnostics
    from ccjax.report.report import write_assignments
    from ccjax.run.rundir import write_json_atomic

    workdir = os.path.join(scratch, f"k{k}")
    os.makedirs(os.path.join(workdir, "report"), exist_ok=True)
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.3), dataset.num_examples).astype(np.float32)  # [N, K]
    c = get_base_config()
    c.dataset.name, c.dataset.num_clusters = f"folder:{folder}", k
    write_json_atomic(os.path.join(workdir, "config.json"), json.loads(c.to_json_best_effort()))
    write_json_atomic(os.path.join(workdir, "run.json"), {"dataset": dataset.name, "num_clusters": k,
                                                          "num_examples": dataset.num_examples})
    write_json_atomic(os.path.join(workdir, "report", "metrics.json"), {"last": label_free_diagnostics(probs)})
    ids = dataset.example_ids(np.arange(dataset.num_examples))
    write_assignments(os.path.join(workdir, "report", "assignments.csv"), probs, ids, None, None)
    return workdir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", help="A finished run: rebuild its page.")
    p.add_argument("--folder", help="An image folder: synthesised assignments over it.")
    p.add_argument("--clusters", default="10,100", help="K values for --folder.")
    p.add_argument("--image_size", type=int, default=64, help="The side the folder is stored at.")
    p.add_argument("--data_dir", default=None, help="Where the prepared folder is kept.")
    p.add_argument("--scratch", default="/tmp/ccjax_page_benchmark")
    a = p.parse_args()
    from ccjax.data import open_dataset
    from ccjax.run.rundir import load_run_config

    if a.workdir:
        measure(a.workdir, open_dataset(load_run_config(a.workdir).dataset), os.path.basename(os.path.normpath(a.workdir)))
    if a.folder:
        from ccjax.config import get_base_config

        c = get_base_config()
        c.dataset.name, c.dataset.image_size = f"folder:{a.folder}", a.image_size
        if a.data_dir:
            c.dataset.data_dir = a.data_dir
        t = time.perf_counter()
        dataset = open_dataset(c.dataset)
        print(json.dumps({"opened": dataset.num_examples, "seconds": round(time.perf_counter() - t, 1),
                          "how": dataset.how_opened}), flush=True)
        for k in [int(v) for v in a.clusters.split(",")]:
            measure(synthetic_run(a.scratch, dataset, a.folder, k), dataset, f"folder, K = {k} (synthesised)")


if __name__ == "__main__":
    main()
