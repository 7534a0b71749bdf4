"""Writes a labelled image folder of any size, for the streaming benchmark (docs/benchmarks.md).

    python tools/make_image_folder.py --out=/data/shapes300k --num_images=300000 --size=64

`<out>/<class>/<i>.png`: each image is a random-coloured disc, square or
triangle (the class is shape x size band, 10 classes) on a random-coloured
background, with noise so that PNG cannot shrink it to nothing. Deterministic
in --seed; already written files are kept, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os

import numpy as np
from PIL import Image, ImageDraw

NUM_CLASSES = 10


def draw(i: int, size: int, seed: int) -> tuple[int, Image.Image]:
    rng = np.random.default_rng([seed, i])
    label = i % NUM_CLASSES
    shape, band = divmod(label, 4) if label < 8 else (label - 6, 3)  # 3 shapes x up to 4 size bands
    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 256, 3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    r = size * (0.15 + 0.08 * band) * rng.uniform(0.9, 1.1)
    cx, cy = rng.uniform(r, size - r, 2)
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == 0:
        d.ellipse(box, fill=fg)
    elif shape == 1:
        d.rectangle(box, fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    noisy = np.asarray(img, np.int16) + rng.integers(-12, 13, (size, size, 3))
    return label, Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def write_range(args) -> int:
    out, start, stop, size, seed = args
    for i in range(start, stop):
        label, img = draw(i, size, seed)
        path = os.path.join(out, f"class_{label}", f"{i:07d}.png")
        if not os.path.exists(path):
            tmp = path + ".tmp"
            img.save(tmp, format="PNG")
            os.replace(tmp, path)
    return stop - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, default=argparse.SUPPRESS,
                   help="Folder to write <out>/class_<c>/<i>.png into (required).")
    p.add_argument("--num_images", type=int, default=300_000, help="How many images in all (10 classes).")
    p.add_argument("--size", type=int, default=64, help="Image side in pixels.")
    p.add_argument("--seed", type=int, default=0, help="Seed: the same seed writes the same images.")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Processes drawing images.")
    a = p.parse_args()
    for c in range(NUM_CLASSES):
        os.makedirs(os.path.join(a.out, f"class_{c}"), exist_ok=True)
    step = 2000
    jobs = [(a.out, s, min(s + step, a.num_images), a.size, a.seed) for s in range(0, a.num_images, step)]
    from tqdm import tqdm

    with multiprocessing.Pool(a.workers) as pool, tqdm(total=a.num_images, unit="img") as bar:
        for n in pool.imap_unordered(write_range, jobs):
            bar.update(n)


if __name__ == "__main__":
    main()
