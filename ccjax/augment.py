"""On-device image augmentation: CC / SimCLR views of a uint8 batch, under jit.

`augment_batch` turns a global uint8 batch [B, H, W, C] into one float32 view
[B, S, S, C]. Each sample gets its own key (`jax.random.split(rng, B)`), draws
all its random decisions as one vector of uniforms (plus the noise), and the
per-sample pipeline is vmapped: nothing loops in Python over images, there are
no host callbacks, and a batch sharded over the 'data' mesh axis stays
sharded. The order is CC's (torchvision transforms on PIL images) with the
SimCLR extras:

1. random resized crop (torchvision's `RandomResizedCrop.get_params`: ten
   (scale, log-uniform ratio) attempts, vectorised, first valid one wins, else
   the central crop), resampled to S x S straight from the uint8 source in one
   pass: bilinear, antialiased when shrinking (PIL's triangle filter, support
   clipped to the crop box), as two per-sample interpolation matrices
   [S, H] and [S, W] applied with einsum;
2. horizontal flip (folded into the [S, W] matrix: it costs nothing);
3. colour jitter with probability `jitter_p`: brightness, contrast,
   saturation, hue (torchvision's float-tensor formulas) in a random order per
   sample; on one-channel images only brightness and contrast;
4. random grayscale (L = 0.299 R + 0.587 G + 0.114 B, PIL's weights, kept as
   three channels);
5. Gaussian blur with probability `blur_p`, sigma ~ U(blur_sigma), kernel size
   int(0.1 S) made odd (SimCLR / CC), reflect-101 borders (cv2's and
   torchvision's default), as one [S, S] matrix per sample applied on both axes;
6. solarize with probability `solarize_p` (x >= 0.5 -> 1 - x on [0, 1]);
7. normalisation (x - mean) / std, then additive Gaussian noise of standard
   deviation `noise_std` in the normalised space (0 = off).

Values stay float32 between steps (no uint8 rounding as PIL does). Every
random step whose probability (or strength) is 0 is left out at trace time.
With no randomness at all (crop_scale (1, 1), crop_ratio (1, 1), every
probability 0, noise 0) a square image's view equals `preprocess_eval`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.errors import UserError

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # PIL's "L" conversion (ITU-R 601-2 luma)
_CROP_ATTEMPTS = 10  # torchvision RandomResizedCrop
_HI = jax.lax.Precision.HIGHEST  # the resampling matmuls: no TF32 / bf16 passes

# Colour jitter operations, in torchvision's numbering.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


def _pair(value: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"augment.{name} must be a pair (lo, hi) of numbers, got {value!r}") from None
    if lo > hi:
        raise UserError(f"augment.{name}={value!r} has lo > hi; give it as (lo, hi)")
    return lo, hi


def _num(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"augment.{name} must be a number, got {value!r}") from None


def _floats(value: Any, name: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"augment.{name} must be a tuple of 1 or 3 numbers, got {value!r}") from None
    if len(out) not in (1, 3):
        raise UserError(f"augment.{name} must have 1 or 3 entries (one per channel), got {value!r}")
    return out


@dataclasses.dataclass(frozen=True)
class AugmentParams:
    """The static (trace-time) description of one view's pipeline; hashable."""

    image_size: int
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    flip_p: float
    jitter_p: float
    brightness: float
    contrast: float
    saturation: float
    hue: float
    grayscale_p: float
    blur_p: float
    blur_sigma: tuple[float, float]
    solarize_p: float
    noise_std: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_config(cls, cfg: Any) -> "AugmentParams":
        """Reads and checks the augmentation fields of `cfg` (a ConfigDict or any attribute object)."""
        if isinstance(cfg, cls):
            return cfg
        missing = [f.name for f in dataclasses.fields(cls) if not hasattr(cfg, f.name)]
        if missing:
            raise UserError(
                f"the augmentation config lacks the fields {missing}; "
                "start it from ccjax.config_base.augment_config()"
            )
        size = cfg.image_size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise UserError(f"augment.image_size must be a positive integer, got {size!r}")
        p = cls(
            image_size=int(size),
            crop_scale=_pair(cfg.crop_scale, "crop_scale"),
            crop_ratio=_pair(cfg.crop_ratio, "crop_ratio"),
            flip_p=_num(cfg.flip_p, "flip_p"),
            jitter_p=_num(cfg.jitter_p, "jitter_p"),
            brightness=_num(cfg.brightness, "brightness"),
            contrast=_num(cfg.contrast, "contrast"),
            saturation=_num(cfg.saturation, "saturation"),
            hue=_num(cfg.hue, "hue"),
            grayscale_p=_num(cfg.grayscale_p, "grayscale_p"),
            blur_p=_num(cfg.blur_p, "blur_p"),
            blur_sigma=_pair(cfg.blur_sigma, "blur_sigma"),
            solarize_p=_num(cfg.solarize_p, "solarize_p"),
            noise_std=_num(cfg.noise_std, "noise_std"),
            mean=_floats(cfg.mean, "mean"),
            std=_floats(cfg.std, "std"),
        )
        p._check()
        return p

    def _check(self) -> None:
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise UserError(f"augment.{name}={v} is a probability: set it in [0, 1]")
        if self.crop_scale[0] <= 0:
            raise UserError(f"augment.crop_scale={self.crop_scale} must be positive area fractions")
        if self.crop_ratio[0] <= 0:
            raise UserError(f"augment.crop_ratio={self.crop_ratio} must be positive aspect ratios")
        for name in ("brightness", "contrast", "saturation", "noise_std"):
            if getattr(self, name) < 0:
                raise UserError(f"augment.{name}={getattr(self, name)} must be >= 0")
        if not 0.0 <= self.hue <= 0.5:
            raise UserError(f"augment.hue={self.hue} must be in [0, 0.5] (a fraction of a full turn)")
        if self.blur_p > 0 and self.blur_sigma[0] <= 0:
            raise UserError(f"augment.blur_sigma={self.blur_sigma} must be positive")
        if min(self.std) <= 0:
            raise UserError(f"augment.std={self.std} must be positive")

    # --- what runs (trace-time decisions) ---------------------------------

    def jitter_ops(self, channels: int) -> tuple[int, ...]:
        """The colour-jitter operations that do something, in torchvision's numbering."""
        if self.jitter_p == 0:
            return ()
        strengths = (self.brightness, self.contrast, self.saturation, self.hue)
        ops = tuple(i for i, s in enumerate(strengths) if s > 0)
        return ops if channels == 3 else tuple(i for i in ops if i in (BRIGHTNESS, CONTRAST))

    def blur_kernel_size(self) -> int:
        """int(0.1 S), made odd (SimCLR / CC); 1 means no blur."""
        k = int(0.1 * self.image_size)
        return k + 1 if k % 2 == 0 else k

    def blur_on(self) -> bool:
        return self.blur_p > 0 and self.blur_kernel_size() > 1

    def channel_stats(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """mean, std as float32 [C]; one-channel images use the first entries."""

        def pick(v: tuple[float, ...]) -> np.ndarray:
            v = v[:1] if channels == 1 else (v * 3 if len(v) == 1 else v)
            return np.asarray(v, np.float32)

        return pick(self.mean), pick(self.std)


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
    n = _CROP_ATTEMPTS
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


def _resample(img: jax.Array, wy: jax.Array, wx: jax.Array) -> jax.Array:
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


# --- the pipeline ---------------------------------------------------------------


# Layout of the uniforms each sample draws at once (one counter-based draw per
# sample instead of one per decision). Fixed, so switching a step on or off
# leaves the randomness of the others unchanged.
CROP_UNIFORMS = 2 * _CROP_ATTEMPTS + 2
JITTER_UNIFORMS = 8
_U_CROP = 0
_U_FLIP = _U_CROP + CROP_UNIFORMS
_U_JITTER_P = _U_FLIP + 1
_U_JITTER = _U_JITTER_P + 1
_U_GRAY = _U_JITTER + JITTER_UNIFORMS
_U_BLUR_P = _U_GRAY + 1
_U_SIGMA = _U_BLUR_P + 1
_U_SOLARIZE = _U_SIGMA + 1
_NUM_UNIFORMS = _U_SOLARIZE + 1


def _augment_one(img: jax.Array, key: jax.Array, p: AugmentParams) -> jax.Array:
    """One uint8 image [H, W, C] -> float32 view [S, S, C]."""
    height, width, channels = img.shape
    size = p.image_size
    k_u, k_noise = jax.random.split(key)
    u = jax.random.uniform(k_u, (_NUM_UNIFORMS,))  # [U]

    top, left, h, w = sample_crop_box(u[_U_CROP:_U_FLIP], height, width, p.crop_scale, p.crop_ratio)
    wy = interp_matrix(top, h, height, size) * (1.0 / 255.0)  # [S, H], also scales to [0, 1]
    wx = interp_matrix(left, w, width, size)  # [S, W]
    if p.flip_p > 0:
        wx = wx[::-1] if p.flip_p >= 1 else jnp.where(u[_U_FLIP] < p.flip_p, wx[::-1], wx)
    x = _resample(img, wy, wx)  # [S, S, C] in [0, 1]

    ops = p.jitter_ops(channels)
    if ops:
        order, factors = sample_jitter(u[_U_JITTER:_U_GRAY], p, ops)
        jittered = apply_jitter(x, order, factors, ops)
        x = jittered if p.jitter_p >= 1 else jnp.where(u[_U_JITTER_P] < p.jitter_p, jittered, x)
    if channels == 3 and p.grayscale_p > 0:
        gray = jnp.broadcast_to(grayscale(x), x.shape)
        x = gray if p.grayscale_p >= 1 else jnp.where(u[_U_GRAY] < p.grayscale_p, gray, x)
    if p.blur_on():
        lo, hi = p.blur_sigma
        g = blur_matrix(lo + (hi - lo) * u[_U_SIGMA], size, p.blur_kernel_size())  # [S, S]
        blurred = _resample(x, g, g)
        x = blurred if p.blur_p >= 1 else jnp.where(u[_U_BLUR_P] < p.blur_p, blurred, x)
    if p.solarize_p > 0:
        solarized = jnp.where(x >= 0.5, 1.0 - x, x)
        x = solarized if p.solarize_p >= 1 else jnp.where(u[_U_SOLARIZE] < p.solarize_p, solarized, x)

    mean, std = p.channel_stats(channels)
    x = (x - mean) / std
    if p.noise_std > 0:
        x = x + p.noise_std * jax.random.normal(k_noise, x.shape, jnp.float32)
    return x


def _check_images(images: jax.Array) -> None:
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise UserError(
            f"images must be [B, H, W, C] with C = 1 or 3, got shape {tuple(images.shape)}; "
            "convert them to L or RGB"
        )
    if images.dtype != jnp.uint8:
        raise UserError(f"images must be uint8 (0..255), got {images.dtype}")


def augment_batch(images: jax.Array, rng: jax.Array, cfg: Any) -> jax.Array:
    """One random view of every image: uint8 [B, H, W, C] -> float32 [B, S, S, C], normalised.

    `cfg` holds the augmentation fields (ConfigDict, AugmentParams, any
    attribute object); it is read at trace time. Sample b uses key
    `jax.random.split(rng, B)[b]`.
    """
    _check_images(images)
    p = AugmentParams.from_config(cfg)
    keys = jax.random.split(rng, images.shape[0])
    return jax.vmap(lambda im, k: _augment_one(im, k, p))(images, keys)


def preprocess_eval(images: jax.Array, cfg: Any) -> jax.Array:
    """Deterministic view: the whole image resized to S x S, scaled to [0, 1], normalised.

    uint8 [B, H, W, C] -> float32 [B, S, S, C]; the same resampler as
    `augment_batch` (bilinear, antialiased when shrinking).
    """
    _check_images(images)
    p = AugmentParams.from_config(cfg)
    _, height, width, channels = images.shape
    wy = interp_matrix(0, height, height, p.image_size) * (1.0 / 255.0)  # [S, H]
    wx = interp_matrix(0, width, width, p.image_size)  # [S, W]
    x = jax.vmap(lambda im: _resample(im, wy, wx))(images)
    mean, std = p.channel_stats(channels)
    return (x - mean) / std


def describe(cfg: Any) -> str:
    """One line naming the steps of the pipeline that run, with their settings."""
    p = AugmentParams.from_config(cfg)

    def pr(v: tuple[float, ...]) -> str:
        return "(" + ",".join(f"{x:g}" for x in v) + ")"

    parts = [f"crop{p.image_size} scale{pr(p.crop_scale)} ratio{pr(p.crop_ratio)}"]
    if p.flip_p > 0:
        parts.append(f"flip p={p.flip_p:g}")
    ops = p.jitter_ops(3)
    if ops:
        names = ("b", "c", "s", "h")
        vals = (p.brightness, p.contrast, p.saturation, p.hue)
        parts.append(f"jitter p={p.jitter_p:g} " + " ".join(f"{names[i]}={vals[i]:g}" for i in ops))
    if p.grayscale_p > 0:
        parts.append(f"gray p={p.grayscale_p:g}")
    if p.blur_on():
        parts.append(f"blur p={p.blur_p:g} sigma{pr(p.blur_sigma)} k={p.blur_kernel_size()}")
    if p.solarize_p > 0:
        parts.append(f"solarize p={p.solarize_p:g}")
    parts.append(f"normalise mean{pr(p.mean)} std{pr(p.std)}")
    if p.noise_std > 0:
        parts.append(f"noise std={p.noise_std:g}")
    return " | ".join(parts)
