"""The per-image operations of the augmentation pipeline, on device (see ccjax/augment/pipeline.py).

Random resized crop and resampling, colour jitter, grayscale and blur, each a
pure function of arrays, written for one image and vmapped by the pipeline.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.augment.params import BRIGHTNESS, CONTRAST, HUE, SATURATION, AugmentParams
from ccjax.errors import UserError

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # PIL's "L" conversion (ITU-R 601-2 luma)
CROP_ATTEMPTS = 10  # torchvision RandomResizedCrop
_HI = jax.lax.Precision.HIGHEST  # the resampling matmuls: no TF32 / bf16 passes


# --- random resized crop + resampling ---------------------------------------


def fallback_crop(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """torchvision's central crop when no attempt fits: (top, left, h, w), static ints."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_crop_box(
    u: jax.Array, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> jax.Array:
    """One crop box (top, left, h, w), int32 [4], by torchvision's RandomResizedCrop.get_params.

    u: float32 [CROP_UNIFORMS] uniforms on [0, 1). The ten attempts are drawn
    at once; the first whose rounded (w, h) fits the image wins, and then
    top/left are uniform over the valid positions; else the central crop.
    """
    n = CROP_ATTEMPTS
    area = float(height * width)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[:n])  # [10]
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = jnp.exp(lo + (hi - lo) * u[n : 2 * n])  # log-uniform
    w = jnp.round(jnp.sqrt(target * aspect)).astype(jnp.int32)  # [10]
    h = jnp.round(jnp.sqrt(target / aspect)).astype(jnp.int32)
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = jnp.argmax(fits)
    found = fits[first]
    f_top, f_left, f_h, f_w = fallback_crop(height, width, ratio)
    h = jnp.where(found, h[first], f_h)
    w = jnp.where(found, w[first], f_w)
    top = jnp.where(found, _randint(u[2 * n], height - h + 1), f_top)
    left = jnp.where(found, _randint(u[2 * n + 1], width - w + 1), f_left)
    return jnp.stack([top, left, h, w]).astype(jnp.int32)


def _randint(u: jax.Array, n: jax.Array) -> jax.Array:
    """Uniform integer in [0, n) from a uniform u on [0, 1)."""
    return jnp.minimum(jnp.floor(u * n).astype(jnp.int32), n - 1)


def interp_matrix(start: jax.Array | float, length: jax.Array | float, in_size: int, out_size: int) -> jax.Array:
    """Resampling weights [out_size, in_size] of the window [start, start + length) to out_size pixels.

    Bilinear with half-pixel centres; when shrinking, the triangle is widened
    by the shrink factor (antialiasing, as PIL and jax.image.resize do). Only
    pixels inside the window contribute, each row renormalised to sum 1
    (crop-then-resize semantics, edges clamped).
    """
    start = jnp.asarray(start, jnp.float32)
    length = jnp.asarray(length, jnp.float32)
    step = length / out_size  # input pixels per output pixel
    centres = start + (jnp.arange(out_size, dtype=jnp.float32) + 0.5) * step - 0.5  # [out]
    k = jnp.arange(in_size, dtype=jnp.float32)  # [in]
    support = jnp.maximum(step, 1.0)
    w = jnp.maximum(0.0, 1.0 - jnp.abs(k[None, :] - centres[:, None]) / support)  # [out, in]
    inside = (k >= start) & (k < start + length)
    w = jnp.where(inside[None, :], w, 0.0)
    return w / jnp.sum(w, axis=1, keepdims=True)  # every row holds a pixel within 0.5: sum > 0


def resample(img: jax.Array, wy: jax.Array, wx: jax.Array) -> jax.Array:
    """img [H, W, C] (any real dtype) -> wy @ img @ wx^T per channel, float32 [Sy, Sx, C]."""
    x = img.astype(jnp.float32)
    (sy, h), (sx, w) = wy.shape, wx.shape
    if sy * w * (h + sx) <= sx * h * (w + sy):  # contract the rows first when cheaper
        x = jnp.einsum("sh,hwc->swc", wy, x, precision=_HI)
        return jnp.einsum("tw,swc->stc", wx, x, precision=_HI)
    x = jnp.einsum("tw,hwc->htc", wx, x, precision=_HI)
    return jnp.einsum("sh,htc->stc", wy, x, precision=_HI)


# --- colour -----------------------------------------------------------------


def grayscale(x: jax.Array) -> jax.Array:
    """Luma [H, W, 1] of an RGB image [H, W, 3] (0.299, 0.587, 0.114)."""
    r, g, b = x[..., 0:1], x[..., 1:2], x[..., 2:3]
    return _GRAY_WEIGHTS[0] * r + _GRAY_WEIGHTS[1] * g + _GRAY_WEIGHTS[2] * b


def _blend(a: jax.Array, b: jax.Array, factor: jax.Array) -> jax.Array:
    return jnp.clip(factor * a + (1.0 - factor) * b, 0.0, 1.0)


def adjust_brightness(x: jax.Array, factor: jax.Array) -> jax.Array:
    """Blend with black: clip(f x, 0, 1)."""
    return jnp.clip(factor * x, 0.0, 1.0)


def adjust_contrast(x: jax.Array, factor: jax.Array) -> jax.Array:
    """Blend with the mean grey level of the whole image (the channel mean when C = 1)."""
    g = grayscale(x) if x.shape[-1] == 3 else x
    return _blend(x, jnp.mean(g), factor)


def adjust_saturation(x: jax.Array, factor: jax.Array) -> jax.Array:
    """Blend with the image's own grayscale (RGB only)."""
    return _blend(x, grayscale(x), factor)


def rgb_to_hsv(x: jax.Array) -> jax.Array:
    """[..., 3] RGB in [0, 1] -> HSV in [0, 1] (torchvision's _rgb2hsv)."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    maxc = jnp.max(x, axis=-1)
    minc = jnp.min(x, axis=-1)
    grey = maxc == minc
    cr = maxc - minc
    s = cr / jnp.where(grey, 1.0, maxc)
    div = jnp.where(grey, 1.0, cr)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    h = jnp.where(is_r, bc - gc, jnp.where(is_g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = jnp.where(grey, 0.0, h)
    h = jnp.mod(h / 6.0 + 1.0, 1.0)
    return jnp.stack([h, s, maxc], axis=-1)


def hsv_to_rgb(x: jax.Array) -> jax.Array:
    """[..., 3] HSV in [0, 1] -> RGB: c_n = v - v s clip(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6."""
    h, s, v = x[..., 0:1], x[..., 1:2], x[..., 2:3]
    n = jnp.asarray([5.0, 3.0, 1.0], x.dtype)  # R, G, B
    k = jnp.mod(n + 6.0 * h, 6.0)  # [..., 3]
    return v - v * s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)


def adjust_hue(x: jax.Array, shift: jax.Array) -> jax.Array:
    """Rotate the HSV hue by `shift` of a full turn (RGB only)."""
    hsv = rgb_to_hsv(x)
    hsv = hsv.at[..., 0].set(jnp.mod(hsv[..., 0] + shift, 1.0))
    return hsv_to_rgb(hsv)


def sample_jitter(u: jax.Array, params: AugmentParams, ops: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """(order int32 [len(ops)] positions into `ops`, factors float32 [4] by op id).

    u: float32 [JITTER_UNIFORMS] uniforms on [0, 1). Factors as torchvision:
    brightness/contrast/saturation ~ U[max(0, 1 - s), 1 + s], hue ~ U[-h, h];
    unused entries hold the identity (1, 1, 1, 0). The order is the argsort of
    i.i.d. uniforms: a uniformly random permutation.
    """
    s = (params.brightness, params.contrast, params.saturation)
    lo = np.asarray([max(0.0, 1.0 - v) for v in s] + [-params.hue], np.float32)
    hi = np.asarray([1.0 + v for v in s] + [params.hue], np.float32)
    used = np.zeros(4, bool)
    used[list(ops)] = True
    factors = jnp.where(used, lo + (hi - lo) * u[:4], np.asarray([1.0, 1.0, 1.0, 0.0], np.float32))
    order = jnp.argsort(u[4 : 4 + len(ops)]).astype(jnp.int32)
    return order, factors


def apply_jitter(x: jax.Array, order: jax.Array, factors: jax.Array, ops: tuple[int, ...]) -> jax.Array:
    """Applies ops[order[0]], ops[order[1]], ... with their factors to x [H, W, C].

    Brightness, contrast and saturation are one blend clip(f x + (1 - f) ref)
    with ref = 0, the mean grey level, or the grayscale image. The (costly)
    hue rotation runs once: the blends ordered before it, then hue, then the
    blends ordered after it.
    """
    n = len(ops)
    op_at = jnp.asarray(ops, jnp.int32)[order]  # [n] op id of each step
    blends = [op for op in ops if op != HUE]

    def blend_step(y: jax.Array, step: int) -> jax.Array:
        op = op_at[step]
        g = grayscale(y) if y.shape[-1] == 3 else y  # [H, W, 1] ([H, W, 1] too when C = 1)
        refs = {BRIGHTNESS: jnp.zeros_like(g), CONTRAST: jnp.broadcast_to(jnp.mean(g), g.shape), SATURATION: g}
        ref = refs[blends[-1]]
        for b in blends[:-1]:
            ref = jnp.where(op == b, refs[b], ref)
        return _blend(y, ref, factors[op])

    if HUE not in ops:
        for step in range(n):
            x = blend_step(x, step)
        return x
    hue_step = jnp.argmax(op_at == HUE)
    for step in range(n - 1):  # the blends before the hue step
        x = jnp.where(step < hue_step, blend_step(x, step), x)
    x = adjust_hue(x, factors[HUE])
    for step in range(1, n):  # the blends after it
        x = jnp.where(step > hue_step, blend_step(x, step), x)
    return x


# --- remedies for content-free cues ----------------------------------------------


def invert(x: jax.Array) -> jax.Array:
    """1 - x on [0, 1]: light ink on dark and dark ink on light become alike."""
    return 1.0 - x


def paint_border(x: jax.Array, width: jax.Array, colour: jax.Array) -> jax.Array:
    """x [S, S, C] with its outer `width` pixels (int, >= 1) on every side set to `colour` [C]."""
    size = x.shape[0]
    i = jnp.arange(size)
    edge = (i < width) | (i >= size - width)  # [S]
    ring = edge[:, None] | edge[None, :]  # [S, S]
    return jnp.where(ring[..., None], colour, x)


def standardize(x: jax.Array) -> jax.Array:
    """Per-image standardisation: (x - mean) / max(std, 1 / sqrt(x.size)) over all pixels and channels
    (tf.image.per_image_standardization's guard: a constant image stays finite, all zeros)."""
    mean = jnp.mean(x)
    std = jnp.sqrt(jnp.mean(jnp.square(x - mean)))
    return (x - mean) / jnp.maximum(std, 1.0 / math.sqrt(x.size))


# --- blur ---------------------------------------------------------------------


def blur_matrix(sigma: jax.Array, size: int, ksize: int) -> jax.Array:
    """[size, size] matrix of a normalised ksize-tap Gaussian with reflect-101 borders.

    G[i, j] sums the taps t (|t| <= r) that land on j from i: j = i + t directly,
    j = -(i + t) past the top, j = 2 (size - 1) - (i + t) past the bottom.
    """
    r = ksize // 2
    if r >= size:
        raise UserError(f"blur kernel of {ksize} taps does not fit a {size}-pixel image")
    sigma = jnp.asarray(sigma, jnp.float32)
    t = jnp.arange(-r, r + 1, dtype=jnp.float32)
    norm = jnp.sum(jnp.exp(-0.5 * (t / sigma) ** 2))

    def tap(d: jax.Array) -> jax.Array:
        return jnp.where(jnp.abs(d) <= r, jnp.exp(-0.5 * (d / sigma) ** 2), 0.0)

    i = jnp.arange(size, dtype=jnp.float32)[:, None]
    j = jnp.arange(size, dtype=jnp.float32)[None, :]
    g = tap(j - i)
    g = g + jnp.where(j > 0, tap(-j - i), 0.0)
    g = g + jnp.where(j < size - 1, tap(2.0 * (size - 1) - i - j), 0.0)
    return g / norm
