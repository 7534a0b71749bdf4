"""What the nuisance probe costs on a large dataset (docs/own_images.md, "What does the probe cost?").

    python tools/nuisance_benchmark.py --num_images=60000 --size=32        # in memory, generated
    python tools/nuisance_benchmark.py --folder=/data/shapes60k --size=32  # a prepared folder (streamed
                                                                           # with --streamed: grain workers)

Runs `ccjax.explain.nuisance.nuisance_report` (the probe every run ends with) on a dataset with a random
10-cluster assignment and 10 labels, and prints its wall-clock and CPU seconds, split into reading
and measuring the images (the cues), reading the files' headers (folders), and the cross-validated
fits (the clusters' and the labels'). The generated images are random-coloured discs and squares on
random backgrounds (tools/make_image_folder.py's drawing, in memory).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tools")]  # this checkout's ccjax; make_image_folder


def generated(num: int, size: int):
    from make_image_folder import draw

    from ccjax.data.dataset import ImageDataset

    images = np.stack([np.asarray(draw(i, size, 0)[1]) for i in range(num)])
    labels = np.arange(num) % 10
    return ImageDataset("generated", images, labels, [str(i) for i in range(10)]), "generated"


def prepared(folder: str, size: int, streamed: bool):
    from ml_collections import ConfigDict

    from ccjax.data import open_dataset

    cfg = ConfigDict(dict(name=f"folder:{folder}", data_dir=None, image_size=size, manual_dir=None,
                          in_memory="false" if streamed else "true", memory_share=0.5, stream_workers=-1,
                          stream_buffer=2, use_unlabeled=False, num_clusters=-1))
    return open_dataset(cfg), cfg.name


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num_images", type=int, default=60000)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--folder", default=None)
    p.add_argument("--streamed", action="store_true")
    a = p.parse_args()
    from ccjax.explain import nuisance
    from ccjax.explain.cues import image_cues, source_cues
    from ccjax.explain.predictability import predictability

    dataset, name = prepared(a.folder, a.size, a.streamed) if a.folder else generated(a.num_images, a.size)
    n = dataset.num_examples
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), n).astype(np.float32)
    labels = np.asarray(getattr(dataset, "labels", None) if dataset.num_classes else rng.integers(0, 10, n))
    with Clock() as total:
        nuisance.nuisance_report(dataset, probs, labels, name)
    idx = np.linspace(0, n - 1, min(n, nuisance.MAX_EXAMPLES)).astype(np.int64)
    with Clock() as read:
        cues = image_cues(dataset, idx)
    header = Clock()
    header.wall = header.cpu = 0.0
    if a.folder:
        with Clock() as header:
            cues.update(source_cues(a.folder, dataset.example_ids(idx), True))
    with Clock() as fit:
        predictability(cues, probs[idx].argmax(1))
        predictability(cues, labels[idx])
    print(f"{n} images of {tuple(dataset.image_shape)} ({'streamed' if dataset.streams else 'in memory'}), "
          f"probe on {len(idx)}: total {total.wall:.1f} s wall, {total.cpu:.1f} s CPU (this process); "
          f"cues {read.wall:.1f} s wall / {read.cpu:.1f} s CPU, headers {header.wall:.1f} / {header.cpu:.1f}, "
          f"fits (clusters + labels) {fit.wall:.1f} / {fit.cpu:.1f}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
