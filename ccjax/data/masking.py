"""Masked-noise datasets (MFAVBs-CC, Sec. 4.7 and Table 7): a fixed black rectangle on every image.

The paper: "before performing data augmentation, 30%-50% of each image area was masked out
(blackened) to generate a certain amount of realistic noise-corrupted samples. The model was then
retrained from scratch". It does not say what shape the masked area has, and its released code
has no masking. ccjax's reading (docs/mfavbs.md, "Masked-noise datasets"):

- ONE axis-aligned rectangle per image, set to 0 (black) in every channel of the stored uint8 image,
  before any augmentation (so crops may cut it, and the CLIP anchor sees it too);
- its area is a fraction f of the image, f uniform in [min_fraction, max_fraction] (30%-50%);
- its aspect ratio w/h log-uniform in [1/3, 3] (narrowed where needed so the rectangle fits the image),
  its position uniform over the places it fits;
- whole pixels: h = round(sqrt(f H W / r)), then w the whole number nearest f H W / h within
  [min_fraction H W / h, max_fraction H W / h], so the masked fraction h w / (H W) is always in
  [min_fraction, max_fraction] when the image is at least 1 / (max_fraction - min_fraction) pixels
  wide (5 pixels for 30-50%; else the nearest whole-pixel rectangle).

The corrupted dataset is fixed, as the paper's is: an example's rectangle is a function of
(mask seed, example index) alone (a counter-based hash, splitmix64), so it is the same in every
epoch, after a resume, in memory and streamed, whichever process or grain worker reads it and in
whatever batch. It is computed for a whole batch at once with numpy (no per-image Python), inside
`Dataset.read`, which training, evaluation, the CLIP anchor pass and the report all read through.

Config (`config.dataset.mask_noise`; absent means off): enabled, min_fraction, max_fraction, seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ccjax.errors import UserError

ASPECT_RANGE = (1.0 / 3.0, 3.0)  # w / h of the rectangle, log-uniform (narrowed to fit the image)
_U64 = np.uint64


@dataclasses.dataclass(frozen=True)
class MaskNoise:
    """One black rectangle covering a fraction in [min_fraction, max_fraction] of each image."""

    min_fraction: float = 0.3
    max_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self):
        lo, hi = self.min_fraction, self.max_fraction
        if not (0.0 < lo <= hi < 1.0):
            raise UserError(f"dataset.mask_noise fractions {lo}-{hi} must satisfy 0 < min_fraction <= "
                            "max_fraction < 1; the paper's are --config.dataset.mask_noise.min_fraction=0.3 "
                            "--config.dataset.mask_noise.max_fraction=0.5")

    def describe(self) -> str:
        return f"mask{self.min_fraction:g}-{self.max_fraction:g}s{self.seed}"


def mask_noise_of(dataset_cfg) -> MaskNoise | None:
    """The `dataset.mask_noise` settings when enabled, else None (also when the config has no such field)."""
    cfg = dataset_cfg.get("mask_noise") if hasattr(dataset_cfg, "get") else None
    if not cfg or not bool(cfg.get("enabled", False)):
        return None
    return MaskNoise(float(cfg.get("min_fraction", 0.3)), float(cfg.get("max_fraction", 0.5)), int(cfg.get("seed", 0)))


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's output function on uint64 arrays (wrapping arithmetic)."""
    z = z + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def uniforms(seed: int, indices: np.ndarray, count: int) -> np.ndarray:
    """float64 [n, count] in [0, 1): `count` numbers per example, a function of (seed, index) only."""
    idx = np.asarray(indices, np.int64).astype(_U64)[:, None]  # [n, 1]
    key = _splitmix64(_splitmix64(np.full_like(idx, seed & 0xFFFFFFFFFFFFFFFF)) ^ idx)
    z = _splitmix64(key + np.arange(count, dtype=_U64)[None, :] * _U64(0xD1B54A32D192ED03))  # [n, count]
    return (z >> _U64(11)).astype(np.float64) * 2.0**-53


def mask_boxes(indices: np.ndarray, height: int, width: int, noise: MaskNoise) -> tuple[np.ndarray, ...]:
    """(top, left, h, w), int64 [n] each: the rectangle of each example (see the module docstring)."""
    u = uniforms(noise.seed, indices, 4)  # [n, 4]: fraction, aspect, top, left
    lo, hi = noise.min_fraction, noise.max_fraction
    hw = float(height * width)
    area = (lo + (hi - lo) * u[:, 0]) * hw  # target pixels
    # w / h such that the rectangle fits: area / H^2 <= r <= W^2 / area
    r_min, r_max = np.log(area / height**2), np.log(width**2 / area)
    a, b = (np.clip(np.log(x), r_min, r_max) for x in ASPECT_RANGE)
    r = np.exp(a + (b - a) * u[:, 1])
    h = np.clip(np.rint(np.sqrt(area / r)), np.ceil(lo * height), height).astype(np.int64)
    w_lo, w_hi = np.maximum(np.ceil(lo * hw / h - 1e-9), 1), np.minimum(np.floor(hi * hw / h + 1e-9), width)
    w = np.rint(area / h)
    w = np.where(w_lo <= w_hi, np.clip(w, w_lo, w_hi), np.clip(w, 1, width)).astype(np.int64)
    top = np.floor(u[:, 2] * (height - h + 1)).astype(np.int64)
    left = np.floor(u[:, 3] * (width - w + 1)).astype(np.int64)
    return top, left, h, w


def masks(indices: np.ndarray, height: int, width: int, noise: MaskNoise) -> np.ndarray:
    """bool [n, H, W]: True where example `indices[i]`'s image is blacked out."""
    top, left, h, w = mask_boxes(indices, height, width, noise)
    rows = np.arange(height)[None, :]
    cols = np.arange(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])  # [n, H]
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])  # [n, W]
    return in_rows[:, :, None] & in_cols[:, None, :]


def apply_mask_noise(images: np.ndarray, indices: np.ndarray, noise: MaskNoise) -> np.ndarray:
    """images uint8 [n, H, W, C] of examples `indices` [n] -> a copy with each one's rectangle set to 0."""
    m = masks(indices, images.shape[1], images.shape[2], noise)
    return np.where(m[..., None], np.uint8(0), images)


class MaskedDataset:
    """A `Dataset` whose `read` returns the inner dataset's examples with their fixed black rectangle.

    Everything else (num_examples, labels, ids, how it streams) is the inner dataset's. Picklable:
    grain's workers get a copy and mask the batches they read.
    """

    def __init__(self, dataset, noise: MaskNoise):
        self.dataset = dataset
        self.noise = noise

    def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        ex = self.dataset.read(indices)
        return {**ex, "image": apply_mask_noise(ex["image"], ex["index"], self.noise)}

    def __getattr__(self, name: str):
        if name in ("dataset", "noise", "images") or name.startswith("__"):
            # the clean array is not this dataset's; `dataset` absent = mid-unpickling
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"MaskedDataset({self.dataset!r}, {self.noise})"


def with_mask_noise(dataset, dataset_cfg):
    """`dataset` itself, or wrapped in a MaskedDataset when `dataset_cfg.mask_noise.enabled`."""
    noise = mask_noise_of(dataset_cfg)
    return dataset if noise is None else MaskedDataset(dataset, noise)
