"""Assigning new images to a trained run's clusters (library side of `ccjax predict`).

Each image is decoded as preparation does (ccjax.data.images.load_image) into
the training data's storage format; unreadable files are skipped and reported.
When the run's method uses a CLIP anchor, the CLIP encoder embeds the new images; for method=temi,
the run's frozen encoder (features.source) does.
`format_warning` says when the new images are not like the training images (colour
against grayscale, or a very different size where the training images kept their own),
and `low_confidence` marks images that no cluster claims much more than a uniform guess.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np
from PIL import Image

from ccjax.data.catalog import TFDS_CATALOG
from ccjax.data.dataset import ImageDataset
from ccjax.data.images import load_image
from ccjax.errors import UserError
from ccjax.eval.assign import assign_clusters
from ccjax.features import new_image_inputs
from ccjax.run.load import load_trained
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
    trained = load_trained(workdir)
    files = find_images(paths)
    if not files:
        raise UserError(f"no image files found in {', '.join(paths)}")
    images, ok, skipped = load_images(files, trained.image_shape)
    k = int(trained.info["num_clusters"])
    if not ok:
        return np.zeros((0, k), np.float32), ok, skipped
    restored = trained.restore_latest()
    anchors = new_image_inputs(trained.config, images, trained.mesh)  # TEMI's encoder's features, or CLIP anchors
    n_dev = trained.mesh.devices.size
    config = trained.config
    config.unlock()
    config.eval.batch_size = -(-min(batch_size, max(len(ok), 1)) // n_dev) * n_dev
    data = ImageDataset("predict", images, None, None, ids=ok)
    probs = assign_clusters(trained.module, restored.variables, config, data, trained.mesh, anchors, progress=False)
    return probs, ok, skipped


# An image is "low confidence" when its top probability is within this share of the way from a uniform
# guess (1/K) to certainty (1): no cluster claims it much more than any other.
LOW_CONFIDENCE_SHARE = 0.1


def low_confidence_threshold(k: int) -> float:
    """The top probability below which an image is low confidence: 1/K + 0.1 (1 - 1/K), e.g. 0.19 for K = 10."""
    return 1.0 / k + LOW_CONFIDENCE_SHARE * (1.0 - 1.0 / k)


def low_confidence(probs: np.ndarray) -> np.ndarray:
    """bool [n]: probs [n, K]'s top probability is below low_confidence_threshold(K)."""
    return probs.max(axis=1) < low_confidence_threshold(probs.shape[1])


def write_predictions(path: str, probs: np.ndarray, files: list[str]) -> None:
    """A CSV of (id, cluster, probability, low_confidence), with assignments.csv's column names; atomic."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["id", "cluster", "probability", "low_confidence"])
    for p, file, low in zip(probs, files, low_confidence(probs)):
        w.writerow([file, int(p.argmax()), f"{p.max():.6f}", "yes" if low else "no"])
    write_atomic(path, lambda f: f.write(buf.getvalue().encode()))


GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def source_format(path: str) -> tuple[int, int, str] | None:
    """(width, height, PIL mode) from an image file's header, or None when it cannot be read."""
    try:
        with Image.open(path) as im:
            return im.width, im.height, im.mode
    except Exception:  # unreadable files are reported by load_images
        return None


def format_warning(files: list[str], image_shape, dataset_name: str) -> str | None:
    """One line when the images at `files` differ from the training images (uint8 [H, W, C] as stored):
    colour ones for a grayscale run or the reverse, or (for a dataset stored at its own size, such as the
    digits or CIFAR, not resized when prepared) sides more than twice or less than half the stored ones."""
    h, w, c = (int(d) for d in image_shape)
    native = dataset_name == "digits" or dataset_name in TFDS_CATALOG
    odd, example = 0, None
    for f in files:
        fmt = source_format(f)
        if fmt is None:
            continue
        fw, fh, mode = fmt
        colour = mode not in GRAY_MODES
        reasons = []
        if c == 1 and colour:
            reasons.append(f"in colour ({mode})")
        elif c == 3 and not colour:
            reasons.append(f"grayscale ({mode})")
        if native and not (0.5 <= fh / h <= 2 and 0.5 <= fw / w <= 2):
            reasons.append(f"{fw}x{fh}")
        if reasons:
            odd += 1
            example = example or f"{os.path.basename(f)} is {' and '.join(reasons)}"
    if not odd:
        return None
    kind = "grayscale" if c == 1 else "RGB"
    return (f"ccjax: warning: {odd} of {len(files)} images are unlike the run's training images ({w}x{h} {kind}; "
            f"e.g. {example}): each is converted to {w}x{h} {kind}, so its cluster may say little about it")
