"""Cheap, content-free descriptors of each image, grouped into cue families (the nuisance probe's input).

A cue is something that tells images apart without saying what they show. Each
image is described by its *background* (the outer ring of pixels), its *ink*
(the pixels that differ most from that background: at least 3/4 of the largest
luma difference) and its dominant (median) colour, never by how much ink there
is, so that the shape or amount of the content leaks as little as possible:

  colour      opponent chroma (R - G, (R + G) / 2 - B) of the ink and of the median colour   (RGB only)
  border      the outer ring's mean colour (a frame, a scanner margin, a background colour)
  brightness  luma of the ink and of the median colour
  contrast    |ink luma - border luma|
  polarity    whether the ink is lighter (1) or darker (-1) than the border (0: no contrast)
  saturation  saturation of the ink and of the border colour                                     (RGB only)
  sharpness   the steepest 1-pixel luma step over the contrast and over the steepest 2-pixel step
              (blur, resampling, JPEG: an edge's profile, not how many edges there are)
  texture     luma spread and mean step of the background away from the ink (noise, patterns)

and, for image folders, from the files (`source_cues`): source_size (log2 height and width),
aspect_ratio (log2 width / height), file_format (one-hot), jpeg_quality (log2 of the quality
estimated from the quantisation table; 100 for lossless files) and subfolder (one-hot, when sub-folders are not
the labels). Every family is a float array [n, d].
"""

from __future__ import annotations

import collections
import os

import numpy as np

from ccjax.data.images import ImageSkipped, _open
from ccjax.data.streaming import read_ahead

_GRAY = np.array([0.299, 0.587, 0.114], np.float32)
_CHUNK = 256  # images measured at a time
_EPS = 0.02  # luma (0..1) below which a contrast counts as none
SUBFOLDER_LIMIT = 30  # one-hot columns of the most common sub-folders; the rest share one
PIXEL_FAMILIES = ("colour", "border", "brightness", "contrast", "polarity", "saturation", "sharpness", "texture")
SOURCE_FAMILIES = ("source_size", "aspect_ratio", "file_format", "jpeg_quality", "subfolder")


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] -> [..., 2]: R - G and (R + G) / 2 - B (no luma in them)."""
    return np.stack([rgb[..., 0] - rgb[..., 1], 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]], -1)


def _saturation(rgb: np.ndarray) -> np.ndarray:
    hi, lo = rgb.max(-1), rgb.min(-1)
    return np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-6), 0.0)


def _steps(luma: np.ndarray, gap: int) -> np.ndarray:
    """[n, H, W] -> [n, H - gap, W - gap]: the larger of the vertical and horizontal luma steps over `gap` pixels."""
    h, w = luma.shape[1:]
    dy = np.abs(luma[:, gap:, :w - gap] - luma[:, :h - gap, :w - gap])
    dx = np.abs(luma[:, :h - gap, gap:] - luma[:, :h - gap, :w - gap])
    return np.maximum(dx, dy)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[n, ...] means over the True entries of mask (0 where none)."""
    axes = tuple(range(1, values.ndim))
    return (values * mask).sum(axes) / np.maximum(mask.sum(axes), 1)


def pixel_cues(images: np.ndarray) -> dict[str, np.ndarray]:
    """uint8 [n, H, W, C] (C = 1 or 3) -> {family: float32 [n, d]}; colour and saturation only for C = 3."""
    x = images.astype(np.float32) / 255.0  # [n, H, W, C]
    n, h, w, c = x.shape
    luma = x[..., 0] if c == 1 else x @ _GRAY  # [n, H, W]
    ring = np.zeros((h, w), bool)
    ring[0], ring[-1], ring[:, 0], ring[:, -1] = True, True, True, True
    border = x[:, ring].mean(1)  # [n, C]
    border_luma = luma[:, ring].mean(1)  # [n]
    diff = np.abs(luma - border_luma[:, None, None])  # [n, H, W]
    top = diff.reshape(n, -1).max(1)[:, None, None]  # [n, 1, 1]
    ink_mask = diff >= 0.75 * top  # never empty; 0.75: edge pixels that are mostly background stay out
    ink = (x * ink_mask[..., None]).sum((1, 2)) / ink_mask.sum((1, 2))[:, None]  # [n, C]
    ink_luma = ink[:, 0] if c == 1 else ink @ _GRAY
    median = np.median(x.reshape(n, -1, c), axis=1)  # [n, C]
    median_luma = median[:, 0] if c == 1 else median @ _GRAY
    step = ink_luma - border_luma
    contrast = np.abs(step)
    # Background: far from the ink, and so are its 4 neighbours (no antialiased edge of the content in it).
    bg = (diff < 0.25 * top) | (top < _EPS)
    core = bg.copy()
    core[:, 1:] &= bg[:, :-1]
    core[:, :-1] &= bg[:, 1:]
    core[:, :, 1:] &= bg[:, :, :-1]
    core[:, :, :-1] &= bg[:, :, 1:]
    bg_mean = _masked_mean(luma, core)
    bg_spread = np.sqrt(np.maximum(_masked_mean(luma**2, core) - bg_mean**2, 0.0))
    one = _steps(luma, 1) if min(h, w) > 1 else np.zeros((n, 1, 1), np.float32)
    two = _steps(luma, 2) if min(h, w) > 2 else one
    bg_step = _masked_mean(one, core[:, :one.shape[1], :one.shape[2]])
    steepest = one.reshape(n, -1).max(1)
    out = {
        "border": border,
        "brightness": np.stack([ink_luma, median_luma], 1),
        "contrast": contrast[:, None],
        "polarity": np.where(contrast >= _EPS, np.sign(step), 0.0)[:, None],
        # the steepest 1-pixel step over the contrast, and over the steepest 2-pixel step (an edge's profile,
        # whatever the content's shape: 1 for a sharp edge, lower the wider the blur)
        "sharpness": np.stack([steepest / np.maximum(contrast, _EPS),
                               steepest / np.maximum(two.reshape(n, -1).max(1), _EPS)], 1),
        "texture": np.stack([bg_spread, bg_step], 1),
    }
    if c == 3:
        out["colour"] = np.concatenate([_chroma(ink), _chroma(median)], 1)
        out["saturation"] = np.stack([_saturation(ink), _saturation(border)], 1)
    return {f: out[f].astype(np.float32) for f in PIXEL_FAMILIES if f in out}


class _ChunkCues:
    """Chunk number -> the pixel cues of those images (picklable: runs in grain workers)."""

    def __init__(self, dataset, indices: np.ndarray, chunk_size: int):
        self.dataset = dataset
        self.indices = indices
        self.chunk_size = chunk_size  # carried: a worker's own module globals are not this process's

    def __call__(self, chunk: int) -> dict[str, np.ndarray]:
        idx = self.indices[chunk * self.chunk_size:(chunk + 1) * self.chunk_size]
        return pixel_cues(self.dataset.read(idx)["image"])


def image_cues(dataset, indices: np.ndarray) -> dict[str, np.ndarray]:
    """The pixel cues of the stored images `indices` (in that order), family by family [n, d].

    A streamed dataset is read and measured in its grain workers, chunk by chunk (the same
    read-ahead path as training and evaluation); an in-memory one in this thread.
    """
    indices = np.asarray(indices, np.int64)
    measure = _ChunkCues(dataset, indices, _CHUNK)
    parts = collections.defaultdict(list)
    for cues in read_ahead(measure, range(-(-len(indices) // _CHUNK)), dataset):
        for k, v in cues.items():
            parts[k].append(v)
    return {k: np.concatenate(parts[k]) for k in PIXEL_FAMILIES if k in parts}  # (grain sorts dict keys)


def jpeg_quality(table: list[int] | np.ndarray) -> float:
    """The IJG quality (1..100) whose scaled standard luminance table is closest to `table` (64 entries).

    libjpeg's table is clip(round(base x percent / 100), 1, 255) with percent = 5000 / q below quality 50
    and 200 - 2 q above; the scale is fitted on the entries below the clip."""
    t = np.sort(np.asarray(table, np.float64))  # the order (zigzag or not) does not matter here
    base = np.sort(_IJG_LUMA)
    free = t < 255
    t, base = (t[free], base[free]) if free.any() else (t, base)
    scale = float(t @ base / (base @ base))  # percent / 100
    percent = 100.0 * scale
    quality = 5000.0 / percent if percent > 100 else (200.0 - percent) / 2.0
    return float(np.clip(quality, 1.0, 100.0))


# The standard JPEG luminance quantisation table (ITU-T T.81, Annex K.1), which IJG libjpeg scales by quality.
_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                      92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)


def _read_header(path: str) -> tuple[float, float, float]:
    """(height, width, jpeg quality) from the file's header; NaN sizes when unreadable; quality 100 unless JPEG."""
    try:
        img = _open(path)
    except ImageSkipped:
        return np.nan, np.nan, 100.0
    try:
        tables = getattr(img, "quantization", None) if img.format == "JPEG" else None
        quality = jpeg_quality(tables[0]) if tables and 0 in tables else 100.0
        return float(img.height), float(img.width), quality
    finally:
        img.close()


def source_cues(root: str, files: list[str], subfolders_are_labels: bool) -> dict[str, np.ndarray]:
    """For a folder dataset: {family: float32 [n, d]} from the files' names and headers.

    `files` are paths relative to `root`. An unreadable header gives the median size (it says nothing).
    """
    head = np.array([_read_header(os.path.join(root, f)) for f in files], np.float64).reshape(-1, 3)
    sizes = np.log2(head[:, :2])
    ok = np.isfinite(sizes).all(1)
    sizes[~ok] = np.median(sizes[ok], axis=0) if ok.any() else 0.0
    formats = np.array([os.path.splitext(f)[1].lower().lstrip(".").replace("jpeg", "jpg") or "none" for f in files])
    out = {"source_size": sizes, "aspect_ratio": sizes[:, 1:2] - sizes[:, 0:1],
           "file_format": _one_hot(formats), "jpeg_quality": np.log2(head[:, 2:3])}
    depth = 2 if subfolders_are_labels else 1  # class/sub/x.png: 'sub' matters; flat/sub/x.png: 'sub'
    parts = [f.split(os.sep) for f in files]
    folders = np.array([os.path.join(*p[:depth]) if len(p) > depth else "" for p in parts])
    if len(set(folders.tolist())) > 1:
        out["subfolder"] = _one_hot(folders, SUBFOLDER_LIMIT)
    return {k: v.astype(np.float32) for k, v in out.items()}


def _one_hot(values: np.ndarray, limit: int | None = None) -> np.ndarray:
    """[n] strings -> [n, m] one-hot of the (at most `limit`) most common values; the rest share one column."""
    names, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if limit is not None and len(names) > limit:
        keep = np.argsort(-counts, kind="stable")[:limit]
        remap = np.full(len(names), limit)
        remap[keep] = np.arange(limit)
        inverse = remap[inverse]
    return np.eye(inverse.max() + 1, dtype=np.float32)[inverse]
