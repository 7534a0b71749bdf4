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
7. the remedies for content-free cues (docs/own_images.md, "What do the
   clusters follow?"): `always_gray` (with step 4: every view in grayscale),
   inversion 1 - x with probability `invert_p`, a frame of random colour
   (uniform in [0, 1] per channel) and random width (1 to
   round(border_width S) pixels) over the edge with probability `border_p`,
   then `standardize`: (x - mean) / max(std, 1/sqrt(S S C)) over the image;
8. normalisation (x - mean) / std, then additive Gaussian noise of standard
   deviation `noise_std` in the normalised space (0 = off).

`always_gray` and `standardize` are deterministic and apply to the evaluation
input too (`preprocess_eval`): the model never sees what it was not trained on.

Values stay float32 between steps (no uint8 rounding as PIL does). Every
random step whose probability (or strength) is 0 is left out at trace time.
With no randomness at all (crop_scale (1, 1), crop_ratio (1, 1), every
probability 0, noise 0) a square image's view equals `preprocess_eval`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ccjax.augment.ops import (
    CROP_ATTEMPTS, apply_jitter, blur_matrix, grayscale, interp_matrix, invert, paint_border, resample,
    sample_crop_box, sample_jitter, standardize,
)
from ccjax.augment.params import AugmentParams
from ccjax.errors import UserError


# --- the pipeline ---------------------------------------------------------------


# Layout of the uniforms each sample draws at once (one counter-based draw per
# sample instead of one per decision). Fixed, so switching a step on or off
# leaves the randomness of the others unchanged.
CROP_UNIFORMS = 2 * CROP_ATTEMPTS + 2
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
# The remedies' uniforms come from their own key (fold_in(key, 1)), drawn only when one is on, so that
# adding them left every other step's randomness as it was.
_V_INVERT, _V_BORDER_P, _V_BORDER_WIDTH, _V_BORDER_COLOUR = 0, 1, 2, 3
_NUM_REMEDY_UNIFORMS = _V_BORDER_COLOUR + 3


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
    x = resample(img, wy, wx)  # [S, S, C] in [0, 1]

    ops = p.jitter_ops(channels)
    if ops:
        order, factors = sample_jitter(u[_U_JITTER:_U_GRAY], p, ops)
        jittered = apply_jitter(x, order, factors, ops)
        x = jittered if p.jitter_p >= 1 else jnp.where(u[_U_JITTER_P] < p.jitter_p, jittered, x)
    if channels == 3 and (p.grayscale_p > 0 or p.always_gray):
        gray = jnp.broadcast_to(grayscale(x), x.shape)
        x = gray if p.grayscale_p >= 1 or p.always_gray else jnp.where(u[_U_GRAY] < p.grayscale_p, gray, x)
    if p.blur_on():
        lo, hi = p.blur_sigma
        g = blur_matrix(lo + (hi - lo) * u[_U_SIGMA], size, p.blur_kernel_size())  # [S, S]
        blurred = resample(x, g, g)
        x = blurred if p.blur_p >= 1 else jnp.where(u[_U_BLUR_P] < p.blur_p, blurred, x)
    if p.solarize_p > 0:
        solarized = jnp.where(x >= 0.5, 1.0 - x, x)
        x = solarized if p.solarize_p >= 1 else jnp.where(u[_U_SOLARIZE] < p.solarize_p, solarized, x)
    x = _remedies(x, key, p)

    mean, std = p.channel_stats(channels)
    x = (x - mean) / std
    if p.noise_std > 0:
        x = x + p.noise_std * jax.random.normal(k_noise, x.shape, jnp.float32)
    return x


def _remedies(x: jax.Array, key: jax.Array, p: AugmentParams) -> jax.Array:
    """Step 7 on one view x [S, S, C] in [0, 1] (always_gray is applied with the grayscale step)."""
    if p.invert_p > 0 or p.border_p > 0:
        v = jax.random.uniform(jax.random.fold_in(key, 1), (_NUM_REMEDY_UNIFORMS,))
        if p.invert_p > 0:
            x = invert(x) if p.invert_p >= 1 else jnp.where(v[_V_INVERT] < p.invert_p, invert(x), x)
        if p.border_p > 0:
            widest = p.border_max_width()
            width = 1 + jnp.minimum(jnp.floor(v[_V_BORDER_WIDTH] * widest).astype(jnp.int32), widest - 1)
            colour = v[_V_BORDER_COLOUR:_V_BORDER_COLOUR + x.shape[-1]]  # [C]
            framed = paint_border(x, width, colour)
            x = framed if p.border_p >= 1 else jnp.where(v[_V_BORDER_P] < p.border_p, framed, x)
    return standardize(x) if p.standardize else x


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
    x = jax.vmap(lambda im: resample(im, wy, wx))(images)
    if channels == 3 and p.always_gray:
        x = jnp.broadcast_to(grayscale(x), x.shape)
    if p.standardize:
        x = jax.vmap(standardize)(x)
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
    if p.always_gray:
        parts.append("always gray")
    if p.invert_p > 0:
        parts.append(f"invert p={p.invert_p:g}")
    if p.border_p > 0:
        parts.append(f"border p={p.border_p:g} width<={p.border_max_width()}")
    if p.standardize:
        parts.append("standardize")
    parts.append(f"normalise mean{pr(p.mean)} std{pr(p.std)}")
    if p.noise_std > 0:
        parts.append(f"noise std={p.noise_std:g}")
    return " | ".join(parts)
