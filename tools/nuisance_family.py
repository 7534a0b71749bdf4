"""A family of image folders whose content is independent of a nuisance cue, for the nuisance probe.

    python tools/nuisance_family.py --out=/tmp/family                 # every case
    python tools/nuisance_family.py --out=/tmp/family --bases=digits --kinds=background,blur

Writes `<out>/<base>_<kind>/<label>/<i>.<ext>` (a folder dataset: `--config.dataset.name=folder:<that>`)
and `<out>/<base>_<kind>.cues.json`: per file (relative path) its label, the nuisance's discrete
level and its parameters. Bases: `digits` (scikit-learn's 1,797 8x8 handwritten digits, drawn at
16x16) and `shapes` (circle, square, triangle, cross at a random place and scale, 450 each). The
nuisance is drawn for each image independently of its label (docs/own_images.md, "The family"):

  background       white ink on one of 4 background colours
  ink_background   random ink and background colours (luma at least 60/255 apart); levels: k-means(10)
  brightness       the whole image scaled by 0.3, 0.55, 0.8 or 1
  contrast         grey around 128 with ink/background 40, 90, 150 or 220 apart
  polarity         light ink on dark, or dark ink on light
  blur             Gaussian blur sigma 0, 0.7, 1.2 or 1.8 pixels
  frame            a 2-pixel frame in one of 4 colours around the (smaller) content
  texture          background plain, striped, checked or noisy
  jpeg             saved as JPEG of quality 5, 15, 40 or 95
  file_format      PNG or JPEG (quality 20)
  size             drawn at 8, 12, 24 or 48 pixels (the folder is stored at one size)
  aspect           drawn on a canvas of aspect 1/2, 1 or 2 (stored square: the content squashed)

and clean cases that the probe must leave silent: `plain` (white on black), `one_colour` (one ink and
one background colour for every image), `labels_are_colour` (the label IS one of 4 ink colours; the
digit or shape is drawn at random). Deterministic in --seed.
"""

from __future__ import annotations

import argparse
import io
import json
import os

import numpy as np
from PIL import Image

# tools/ (this script's folder) is first on sys.path
from shape_drawing import SHAPES, inside_shape

SIZE = 16  # the side most cases are drawn at (and stored at by the commands in docs/own_images.md)
SHAPES_PER_CLASS = 450
PALETTE = ((200, 40, 40), (40, 170, 60), (50, 70, 220), (220, 190, 40))  # red, green, blue, yellow
DARK_PALETTE = ((130, 25, 25), (25, 100, 35), (30, 40, 140), (120, 100, 20))
COLOUR_NAMES = ("red", "green", "blue", "yellow")
NUISANCE_KINDS = ("background", "ink_background", "brightness", "contrast", "polarity", "blur", "frame",
                  "texture", "jpeg", "file_format", "size", "aspect")
CLEAN_KINDS = ("plain", "one_colour", "labels_are_colour")
KINDS = NUISANCE_KINDS + CLEAN_KINDS
LEVELS = {"background": 4, "ink_background": 10, "brightness": 4, "contrast": 4, "polarity": 2, "blur": 4,
          "frame": 4, "texture": 4, "jpeg": 4, "file_format": 2, "size": 4, "aspect": 3,
          "plain": 1, "one_colour": 1, "labels_are_colour": 4}
_GRAY = np.array([0.299, 0.587, 0.114])


# ----------------------------------------------------------------------------- content: an alpha mask


def digits_content() -> tuple[np.ndarray, list[str]]:
    """(ink [1797, 8, 8] float in [0, 1], label names '0'..'9' per image)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images / 16.0, [str(int(t)) for t in d.target]


def digit_mask(ink8: np.ndarray, height: int, width: int) -> np.ndarray:
    """The 8x8 ink resized (bilinear) to [height, width] in [0, 1]."""
    im = Image.fromarray(ink8.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR)
    return np.clip(np.asarray(im), 0.0, 1.0)


def shape_mask(shape: str, height: int, width: int, place: np.ndarray) -> np.ndarray:
    """[height, width] in [0, 1]: one filled shape, 4x supersampled; place = (cy, cx, r) as fractions."""
    ss = 4
    yy, xx = np.mgrid[0:height * ss, 0:width * ss].astype(np.float64) / ss
    side = min(height, width)
    cy, cx = place[0] * height, place[1] * width
    r = place[2] * side
    m = inside_shape(shape, yy - cy, xx - cx, r)
    return m.reshape(height, ss, width, ss).mean((1, 3))


class Content:
    """The base images: mask(i, height, width) and label(i)."""

    def __init__(self, base: str, seed: int):
        self.base = base
        if base == "digits":
            self.ink, self.labels = digits_content()
        elif base == "shapes":
            rng = np.random.default_rng([seed, 7])
            self.labels = [s for s in SHAPES for _ in range(SHAPES_PER_CLASS)]
            self.places = np.stack([rng.uniform(0.4, 0.6, len(self.labels)), rng.uniform(0.4, 0.6, len(self.labels)),
                                    rng.uniform(0.25, 0.35, len(self.labels))], 1)
        else:
            raise SystemExit(f"unknown base {base!r}: digits or shapes")

    def __len__(self) -> int:
        return len(self.labels)

    def mask(self, i: int, height: int = SIZE, width: int = SIZE) -> np.ndarray:
        if self.base == "digits":
            return digit_mask(self.ink[i], height, width)
        return shape_mask(self.labels[i], height, width, self.places[i])


# ----------------------------------------------------------------------------- the nuisances


def compose(mask: np.ndarray, ink, background) -> np.ndarray:
    """float [H, W, 3] in 0..255: ink where the mask is 1, background (a colour or [H, W, 3]) where 0."""
    a = mask[..., None]
    return np.asarray(ink, np.float64) * a + np.asarray(background, np.float64) * (1.0 - a)


def texture(kind: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """[H, W, 3] background around grey 60: plain, stripes, checks or noise (kind 0..3), amplitude 35."""
    yy, xx = np.mgrid[0:height, 0:width]
    phase = rng.integers(0, 4)
    if kind == 0:
        t = np.zeros((height, width))
    elif kind == 1:
        t = np.where(((yy + phase) // 2) % 2 == 0, 1.0, -1.0)
    elif kind == 2:
        t = np.where(((yy + phase) // 2 + (xx + phase) // 2) % 2 == 0, 1.0, -1.0)
    else:
        t = rng.uniform(-1.0, 1.0, (height, width))
    return np.repeat((60.0 + 35.0 * t)[..., None], 3, axis=2)


def random_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ink and background colours uniform in RGB, their luma at least 60 apart (the content stays visible)."""
    while True:
        ink, bg = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        if abs((ink - bg) @ _GRAY) >= 60:
            return ink, bg


def render(content: Content, kind: str, i: int, rng: np.random.Generator) -> tuple[Image.Image, dict]:
    """One image of the case and its record: {'level', 'params', 'ext', 'quality', 'label'}."""
    white, black = 235.0 + rng.uniform(-10, 10), 20.0 + rng.uniform(-10, 10)
    label = content.labels[i]
    ext, quality, params = "png", None, []
    if kind == "labels_are_colour":
        level = int(rng.integers(4))
        label = COLOUR_NAMES[level]
        j = int(rng.integers(len(content)))  # the content: any image of the base, independent of the colour
        img, params = compose(content.mask(j), PALETTE[level], (black,) * 3), list(PALETTE[level])
    elif kind in ("plain", "jpeg", "file_format"):
        level = 0
        img = compose(content.mask(i), (white,) * 3, (black,) * 3)
        if kind == "jpeg":
            level = int(rng.integers(4))
            ext, quality = "jpg", (5, 15, 40, 95)[level]
        elif kind == "file_format":
            level = int(rng.integers(2))
            ext, quality = ("png", None) if level == 0 else ("jpg", 20)
        params = [quality or 100]
    elif kind == "one_colour":
        level, img = 0, compose(content.mask(i), PALETTE[3], DARK_PALETTE[2])
    elif kind == "background":
        level = int(rng.integers(4))
        img, params = compose(content.mask(i), (white,) * 3, DARK_PALETTE[level]), list(DARK_PALETTE[level])
    elif kind == "ink_background":
        ink, bg = random_pair(rng)
        level, img, params = -1, compose(content.mask(i), ink, bg), [*ink, *bg]  # level: k-means, after
    elif kind == "brightness":
        level = int(rng.integers(4))
        f = (0.3, 0.55, 0.8, 1.0)[level]
        img, params = f * compose(content.mask(i), (white,) * 3, (black,) * 3), [f]
    elif kind == "contrast":
        level = int(rng.integers(4))
        c = (40, 90, 150, 220)[level]
        img, params = compose(content.mask(i), (128 + c / 2,) * 3, (128 - c / 2,) * 3), [c]
    elif kind == "polarity":
        level = int(rng.integers(2))
        ink, bg = (white, black) if level == 0 else (black, white)
        img, params = compose(content.mask(i), (ink,) * 3, (bg,) * 3), [ink - bg]
    elif kind == "blur":
        level = int(rng.integers(4))
        sigma = (0.0, 0.7, 1.2, 1.8)[level]
        img = compose(content.mask(i), (white,) * 3, (black,) * 3)
        if sigma:
            from scipy.ndimage import gaussian_filter

            img = gaussian_filter(img, sigma=(sigma, sigma, 0), mode="nearest")
        params = [sigma]
    elif kind == "frame":
        level = int(rng.integers(4))
        inner = np.zeros((SIZE, SIZE))
        inner[3:SIZE - 3, 3:SIZE - 3] = content.mask(i, SIZE - 6, SIZE - 6)
        img = compose(inner, (white,) * 3, (black,) * 3)
        img[:2], img[-2:], img[:, :2], img[:, -2:] = (PALETTE[level],) * 4
        params = list(PALETTE[level])
    elif kind == "texture":
        level = int(rng.integers(4))
        img, params = compose(content.mask(i), (230.0,) * 3, texture(level, SIZE, SIZE, rng)), [level]
    elif kind == "size":
        level = int(rng.integers(4))
        side = (8, 12, 24, 48)[level]
        img, params = compose(content.mask(i, side, side), (white,) * 3, (black,) * 3), [side]
    elif kind == "aspect":
        level = int(rng.integers(3))
        h, w = ((2 * SIZE, SIZE), (SIZE, SIZE), (SIZE, 2 * SIZE))[level]
        canvas = np.zeros((h, w))
        top, left = (h - SIZE) // 2, (w - SIZE) // 2
        canvas[top:top + SIZE, left:left + SIZE] = content.mask(i)
        img, params = compose(canvas, (white,) * 3, (black,) * 3), [np.log2(w / h)]
    else:
        raise SystemExit(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    pil = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return pil, {"level": level, "params": [float(p) for p in params], "ext": ext, "quality": quality,
                 "label": label}


def kmeans_levels(params: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Discrete levels [n] of continuous nuisance parameters [n, d]: k-means of the standardised values."""
    from sklearn.cluster import KMeans

    x = (params - params.mean(0)) / np.maximum(params.std(0), 1e-9)
    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)


def write_case(out: str, base: str, kind: str, seed: int) -> str:
    """Writes the case folder and its .cues.json; returns the folder."""
    content = Content(base, seed)
    folder = os.path.join(out, f"{base}_{kind}")
    rng = np.random.default_rng([seed, KINDS.index(kind), 0 if base == "digits" else 1])
    records = {}
    for i in range(len(content)):
        img, rec = render(content, kind, i, rng)
        rel = os.path.join(rec["label"], f"{i:05d}.{rec['ext']}")
        os.makedirs(os.path.join(folder, rec["label"]), exist_ok=True)
        buf = io.BytesIO()
        if rec["ext"] == "jpg":
            img.save(buf, format="JPEG", quality=rec["quality"])
        else:
            img.save(buf, format="PNG")
        with open(os.path.join(folder, rel), "wb") as f:
            f.write(buf.getvalue())
        records[rel] = rec
    if kind == "ink_background":
        rels = sorted(records)
        levels = kmeans_levels(np.array([records[r]["params"] for r in rels]), LEVELS[kind], seed)
        for r, lv in zip(rels, levels):
            records[r]["level"] = int(lv)
    tmp = folder + ".cues.json.tmp"
    with open(tmp, "w") as f:
        json.dump({"base": base, "kind": kind, "nuisance": kind in NUISANCE_KINDS, "levels": LEVELS[kind],
                   "files": records}, f)
    os.replace(tmp, folder + ".cues.json")
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--bases", default="digits,shapes")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    for base in a.bases.split(","):
        for kind in a.kinds.split(","):
            print(write_case(a.out, base, kind, a.seed), flush=True)


if __name__ == "__main__":
    main()
