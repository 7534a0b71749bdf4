"""Assign new images to the clusters of a trained run.

    python -m ccjax.predict --workdir=runs/cc_digits my_images/ extra.png [--out=predictions.csv]

Loads the run's last checkpoint, reads each image (folders are searched
recursively), converts it to the training data's storage format (channels and
size, as preparation does), and prints a summary and writes a CSV of
(file, cluster, probability). Unreadable files are reported and skipped. When
the run's method uses a CLIP anchor, the CLIP encoder embeds the new images.
"""

from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np

from ccjax.errors import UserError, exit_on_user_error, parse_flags_or_exit

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


def load_image(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """One image as uint8 [H, W, C] in the training storage format; raises on unreadable files."""
    from PIL import Image

    h, w, c = image_shape
    with Image.open(path) as im:
        im.load()
        im = im.convert("L" if c == 1 else "RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=None)
        arr = np.asarray(im, np.uint8)
    return arr.reshape(h, w, c)


def load_images(files: list[str], image_shape) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """(images [n,H,W,C], the files read, [(file, reason)] skipped)."""
    images, ok, skipped = [], [], []
    for f in files:
        try:
            images.append(load_image(f, image_shape))
            ok.append(f)
        except Exception as e:  # any decoding failure: report and go on
            skipped.append((f, f"{type(e).__name__}: {e}".splitlines()[0][:160]))
    arr = np.stack(images) if images else np.zeros((0,) + tuple(image_shape), np.uint8)
    return arr, ok, skipped


class ImageList:
    """Loaded images behind the ImageDataset interface, for the evaluation batches."""

    def __init__(self, images: np.ndarray, files: list[str]):
        self.name = "predict"
        self.images = images
        self.files = files
        self.num_examples = len(images)
        self.image_shape = tuple(images.shape[1:])
        self.num_classes = None
        self.class_names = None

    def read(self, indices):
        indices = np.asarray(indices)
        return {"image": self.images[indices], "label": np.full(len(indices), -1, np.int32),
                "index": indices.astype(np.int32)}

    def example_ids(self, indices):
        return [self.files[int(i)] for i in indices]


def predict_files(workdir: str, paths: list[str], batch_size: int = 256):
    """(probabilities [n, K], files read, skipped) for the images under `paths`."""
    from ccjax.assign import assign_clusters
    from ccjax.evaluation import load_run_config, restore_latest
    from ccjax.sharding import make_mesh
    from ccjax.train import RUN_INFO, Model

    config = load_run_config(workdir)
    info_path = os.path.join(workdir, RUN_INFO)
    if not os.path.exists(info_path):
        raise UserError(f"{workdir!r} has no {RUN_INFO}; it was not written by ccjax.main")
    with open(info_path) as f:
        info = json.load(f)
    files = find_images(paths)
    if not files:
        raise UserError(f"no image files found in {', '.join(paths)}")
    images, ok, skipped = load_images(files, info["image_shape"])
    if not ok:
        return np.zeros((0, info["num_clusters"]), np.float32), ok, skipped
    mesh = make_mesh()
    n_dev = mesh.devices.size
    data = ImageList(images, ok)
    anchors = None
    if config.anchor.enabled:
        from ccjax.anchors import embed_images

        anchors = embed_images(config, images, mesh)
    model = Model(config, info["num_clusters"], info["image_shape"], info["anchor_dim"], mesh)
    restored = restore_latest(workdir, "checkpoints", model)
    if restored is None:
        raise UserError(f"no complete checkpoint in {os.path.join(workdir, 'checkpoints')}; train first")
    config.unlock()
    config.eval.batch_size = -(-min(batch_size, max(len(ok), 1)) // n_dev) * n_dev
    probs = assign_clusters(restored[0], model.model, config, data, mesh, anchors, progress=False)
    return probs, ok, skipped


def write_predictions(path: str, probs: np.ndarray, files: list[str]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "cluster", "probability"])
        for p, file in zip(probs, files):
            w.writerow([file, int(p.argmax()), f"{p.max():.6f}"])
    os.replace(tmp, path)


def _define_flags():
    """The command line's flags, defined only when it runs: importing the library defines none
    (so other absl programs, the attention CLI or a notebook, can import predict_files)."""
    from absl import flags

    return (
        flags.DEFINE_string("workdir", None, "A run directory written by ccjax.main."),
        flags.DEFINE_string("out", None, "CSV to write (default: <workdir>/predictions.csv)."),
        flags.DEFINE_integer("batch_size", 256, "Images per step (rounded up to the device count)."),
    )


@exit_on_user_error
def run(argv, workdir: str | None, out_path: str | None, batch_size: int) -> None:
    """Predicts the images and folders in argv[1:] with the run in `workdir`; prints and writes the CSV."""
    paths = argv[1:]
    if not workdir or not paths:
        raise UserError("usage: python -m ccjax.predict --workdir=<run> IMAGE_OR_FOLDER [...]")
    probs, ok, skipped = predict_files(workdir, paths, batch_size)
    for f, why in skipped:
        print(f"ccjax: skipped {f}: {why}", file=sys.stderr)
    if not ok:
        raise UserError(f"none of the {len(skipped)} image files could be read; give PNG/JPEG/... images "
                        "that PIL can open")
    out = out_path or os.path.join(workdir, "predictions.csv")
    write_predictions(out, probs, ok)
    k = probs.shape[1]
    counts = np.bincount(probs.argmax(1), minlength=k) if len(ok) else np.zeros(k, int)
    print(f"ccjax: assigned {len(ok)} images ({len(skipped)} unreadable, skipped) to {k} clusters; "
          f"sizes {counts.tolist()}")
    for f, p in list(zip(ok, probs))[:10]:
        print(f"  {f}: cluster {int(p.argmax())} (p={p.max():.3f})")
    if len(ok) > 10:
        print(f"  ... {len(ok) - 10} more in {out}")
    print(f"ccjax: predictions written to {out}")


def main() -> None:
    from absl import app

    workdir, out, batch = _define_flags()
    app.run(lambda argv: run(argv, workdir.value, out.value, batch.value), flags_parser=parse_flags_or_exit)


if __name__ == "__main__":
    main()
