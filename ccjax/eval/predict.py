"""Assigning new images to a trained run's clusters (library side of `ccjax.predict`).

Each image is decoded as preparation does (ccjax.data.images.load_image) into
the training data's storage format; unreadable files are skipped and reported.
When the run's method uses a CLIP anchor, the CLIP encoder embeds the new images.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from ccjax.data.dataset import ImageDataset
from ccjax.data.images import load_image
from ccjax.errors import UserError
from ccjax.run.rundir import write_atomic

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm")


def find_images(paths: list[str]) -> list[str]:
    """Files given directly, plus image files found recursively in given folders (sorted)."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files.extend(os.path.join(root, n) for n in sorted(names) if n.lower().endswith(IMAGE_EXTENSIONS))
        elif os.path.exists(p):
            files.append(p)
        else:
            raise UserError(f"{p!r} does not exist; give image files or folders of images")
    return sorted(files)


def load_images(files: list[str], image_shape) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """(images uint8 [n, H, W, C], the files read, [(file, reason)] skipped)."""
    images, ok, skipped = [], [], []
    for f in files:
        try:
            images.append(load_image(f, image_shape))
            ok.append(f)
        except Exception as e:  # any decoding failure: report and go on
            skipped.append((f, f"{type(e).__name__}: {e}".splitlines()[0][:160]))
    arr = np.stack(images) if images else np.zeros((0,) + tuple(image_shape), np.uint8)
    return arr, ok, skipped


def predict_files(workdir: str, paths: list[str], batch_size: int = 256):
    """(probabilities [n, K], files read, skipped) for the images under `paths`, with the run's last checkpoint."""
    from ccjax.eval.assign import assign_clusters
    from ccjax.run.load import load_trained

    trained = load_trained(workdir)
    files = find_images(paths)
    if not files:
        raise UserError(f"no image files found in {', '.join(paths)}")
    images, ok, skipped = load_images(files, trained.image_shape)
    k = int(trained.info["num_clusters"])
    if not ok:
        return np.zeros((0, k), np.float32), ok, skipped
    restored = trained.restore_latest()
    anchors = None
    if trained.config.anchor.enabled:
        from ccjax.clip import embed_images

        anchors = embed_images(trained.config, images, trained.mesh)
    n_dev = trained.mesh.devices.size
    config = trained.config
    config.unlock()
    config.eval.batch_size = -(-min(batch_size, max(len(ok), 1)) // n_dev) * n_dev
    data = ImageDataset("predict", images, None, None, ids=ok)
    probs = assign_clusters(trained.module, restored.variables, config, data, trained.mesh, anchors, progress=False)
    return probs, ok, skipped


def write_predictions(path: str, probs: np.ndarray, files: list[str]) -> None:
    """A CSV of (file, cluster, probability), written atomically."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["file", "cluster", "probability"])
    for p, file in zip(probs, files):
        w.writerow([file, int(p.argmax()), f"{p.max():.6f}"])
    write_atomic(path, lambda f: f.write(buf.getvalue().encode()))
