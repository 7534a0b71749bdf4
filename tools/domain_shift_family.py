"""Domain-shift datasets for the small-scale claims (docs/results.md, "Claims at small scale"): digits
drawn over a nuisance independent of the digit, with each image's object mask saved beside it.

    python tools/domain_shift_family.py --out=runs/claims-small/data                       # every kind
    python tools/domain_shift_family.py --out=/tmp/ds --kinds=background,gradient --limit=300

Writes, per kind, `<out>/digits_<kind>/<label>/<i>.png` (a folder dataset:
`--config.dataset.name=folder:<that>`, stored 16x16 RGB), `<out>/digits_<kind>.cues.json` (per file its
label, the nuisance's level and parameters: tools/nuisance_family.py's format) and
`<out>/digits_<kind>.masks.npz` (`files`: the relative paths; `masks`: float32 [n, 16, 16] in [0, 1], the
object's coverage of each pixel, i.e. the alpha the digit was drawn with). A case already written is
kept (the .masks.npz is written last). The kinds (GeCC's Fig. 1: "domain-specific feature such as the
background"), each level drawn per image from the seed alone, never from the label:

  background   white ink on one of 4 dark background colours
  texture      white ink over a plain, striped, checked or noisy grey background
  frame        a 2-pixel frame in one of 4 colours around the (smaller) digit
  tone         the whole image (ink and background) tinted by one of 4 colour casts
  gradient     white ink over a dark-to-light illumination ramp running in one of 4 directions
               (a nuisance that varies within the image)

Each image is `paint(kind, object_mask, nuisance)`; `paint(kind, zeros, nuisance)` is the nuisance alone
(tests/test_domain_shift_family.py checks the masks and the independence against both).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os

import numpy as np
from PIL import Image

# tools/ (this script's folder) is first on sys.path
from nuisance_family import DARK_PALETTE, PALETTE, SIZE, Content, compose, texture

KINDS = ("background", "texture", "frame", "tone", "gradient")
LEVELS = 4  # every kind has 4 levels
TINTS = ((1.0, 0.45, 0.35), (0.35, 1.0, 0.45), (0.4, 0.5, 1.0), (1.0, 0.95, 0.4))  # red, green, blue, yellow casts
FRAME = 2  # frame width (pixels); the digit is drawn in the inner SIZE - 6 square
INK = 235.0


@dataclasses.dataclass(frozen=True)
class Nuisance:
    """One image's nuisance: its discrete level, the parameters recorded, and (texture) its background."""

    level: int
    params: tuple
    background: np.ndarray | None = None  # [H, W, 3] for texture


def draw_nuisance(kind: str, rng: np.random.Generator) -> Nuisance:
    """The nuisance of one image, from `rng` alone (independent of the content)."""
    if kind not in KINDS:
        raise SystemExit(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    level = int(rng.integers(LEVELS))
    if kind == "background":
        return Nuisance(level, tuple(DARK_PALETTE[level]))
    if kind == "texture":
        return Nuisance(level, (level,), texture(level, SIZE, SIZE, rng))
    if kind == "frame":
        return Nuisance(level, tuple(PALETTE[level]))
    if kind == "tone":
        return Nuisance(level, TINTS[level])
    return Nuisance(level, (level,))  # gradient: the ramp's direction


def object_mask(content: Content, i: int, kind: str) -> np.ndarray:
    """[SIZE, SIZE] in [0, 1]: where image i's digit is drawn in `kind` (frame: inside the frame)."""
    if kind != "frame":
        return content.mask(i)
    inner = np.zeros((SIZE, SIZE))
    m = FRAME + 1
    inner[m:SIZE - m, m:SIZE - m] = content.mask(i, SIZE - 2 * m, SIZE - 2 * m)
    return inner


def _ramp(direction: int) -> np.ndarray:
    """[SIZE, SIZE] grey 20..150 rising left->right, right->left, top->bottom or bottom->top."""
    t = np.linspace(0.0, 1.0, SIZE)
    r = np.broadcast_to(t[None, :] if direction < 2 else t[:, None], (SIZE, SIZE))
    r = r[:, ::-1] if direction == 1 else (r[::-1, :] if direction == 3 else r)
    return 20.0 + 130.0 * r


def paint(kind: str, mask: np.ndarray, nz: Nuisance) -> np.ndarray:
    """float [SIZE, SIZE, 3] in 0..255: the digit of coverage `mask` over the nuisance `nz`."""
    if kind == "background":
        return compose(mask, (INK,) * 3, nz.params)
    if kind == "texture":
        return compose(mask, (INK,) * 3, nz.background)
    if kind == "frame":
        img = compose(mask, (INK,) * 3, (20.0,) * 3)
        img[:FRAME], img[-FRAME:], img[:, :FRAME], img[:, -FRAME:] = (nz.params,) * 4
        return img
    if kind == "tone":
        return compose(mask, (INK,) * 3, (40.0,) * 3) * np.asarray(nz.params)
    return compose(mask, (INK,) * 3, np.repeat(_ramp(nz.level)[..., None], 3, axis=2))


def render(content: Content, kind: str, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, Nuisance]:
    """(uint8 image [SIZE, SIZE, 3], object mask float32 [SIZE, SIZE], its nuisance) of image i."""
    nz = draw_nuisance(kind, rng)
    mask = object_mask(content, i, kind)
    img = np.clip(np.rint(paint(kind, mask, nz)), 0, 255).astype(np.uint8)
    return img, mask.astype(np.float32), nz


def case_name(kind: str) -> str:
    return f"digits_{kind}"


def write_case(out: str, kind: str, seed: int = 0, limit: int | None = None) -> str:
    """Writes the case's folder, .cues.json and .masks.npz (last); returns the folder. Kept if written."""
    folder = os.path.join(out, case_name(kind))
    if os.path.exists(folder + ".masks.npz"):
        return folder
    content = Content("digits", seed)
    rng = np.random.default_rng([seed, KINDS.index(kind), 32])
    n = len(content) if limit is None else min(limit, len(content))
    files, masks, records = [], [], {}
    for i in range(n):
        img, mask, nz = render(content, kind, i, rng)
        label = content.labels[i]
        rel = os.path.join(label, f"{i:05d}.png")
        os.makedirs(os.path.join(folder, label), exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        with open(os.path.join(folder, rel), "wb") as f:
            f.write(buf.getvalue())
        files.append(rel)
        masks.append(mask)
        records[rel] = {"level": nz.level, "params": [float(p) for p in nz.params], "ext": "png", "quality": None,
                        "label": label}
    _write_atomic_json(folder + ".cues.json", {"base": "digits", "kind": kind, "nuisance": True, "levels": LEVELS,
                                              "files": records})
    tmp = folder + ".masks.tmp.npz"
    np.savez_compressed(tmp, files=np.array(files), masks=np.stack(masks))
    os.replace(tmp, folder + ".masks.npz")
    return folder


def _write_atomic_json(path: str, obj) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.replace(path + ".tmp", path)


def read_masks(folder: str) -> dict[str, np.ndarray]:
    """{relative file: object mask [H, W]} of a case written by write_case."""
    with np.load(folder.rstrip("/") + ".masks.npz") as d:
        return dict(zip(d["files"].tolist(), d["masks"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="only the first N digits (tests)")
    a = p.parse_args()
    for kind in a.kinds.split(","):
        print(write_case(a.out, kind, a.seed, a.limit), flush=True)


if __name__ == "__main__":
    main()
