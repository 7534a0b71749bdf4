"""On-device augmentation against independent oracles (PIL, colorsys, scipy, numpy transcriptions)."""

import colorsys
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from jax.sharding import NamedSharding, PartitionSpec as P
from PIL import Image

from ccjax import augment as A
from ccjax.config import augment_config
from ccjax.errors import UserError
from ccjax.runtime.mesh import make_mesh

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
OFF = dict(
    crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0,
    blur_p=0.0, solarize_p=0.0, noise_std=0.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
)


FULL = augment_config(image_size=8, blur_p=0.5, solarize_p=0.2, noise_std=0.1)  # every step on


def cfg(**kw):
    """A pipeline with every random step off, then `kw`."""
    return augment_config(**{**OFF, **kw})


def images(b, h, w, c, seed=0):
    return jnp.asarray(np.random.default_rng(seed).integers(0, 256, (b, h, w, c), dtype=np.uint8))


_augment = jax.jit(A.augment_batch, static_argnums=2)  # one compile per (params, shape, sharding)
_eval = jax.jit(A.preprocess_eval, static_argnums=1)


def run(imgs, key, c):
    return _augment(imgs, key, A.AugmentParams.from_config(c))


def evaluate(imgs, c):
    """preprocess_eval, compiled once per (size, mean, std, shape): the only fields it reads."""
    return _eval(imgs, A.AugmentParams.from_config(cfg(image_size=c.image_size, mean=c.mean, std=c.std)))


# --- shapes, determinism, the deterministic limit ---------------------------------


def test_shape_dtype_determinism_and_keys():
    c = FULL
    x = images(8, 16, 12, 3)
    out = run(x, jax.random.key(0), c)
    assert out.shape == (8, 8, 8, 3) and out.dtype == jnp.float32
    assert np.isfinite(np.asarray(out)).all()
    np.testing.assert_array_equal(out, run(x, jax.random.key(0), c))
    assert not np.allclose(out, run(x, jax.random.key(1), c))
    # Samples of one batch get different randomness (their own keys).
    same = jnp.broadcast_to(x[:1], x.shape)
    o = run(same, jax.random.key(0), c)
    assert not np.allclose(o[0], o[1])


@pytest.mark.parametrize("side,channels", [(12, 3), (5, 1)])  # shrink (antialiased) and enlarge
def test_all_randomness_off_equals_preprocess_eval(side, channels):
    c = cfg(image_size=8, mean=MEAN, std=STD)
    x = images(2, side, side, channels)
    out = run(x, jax.random.key(7), c)
    ref = evaluate(x, c)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    # ... and the steps switched off are not in the program at all: only the
    # two resampling matmuls, no switch over jitter orders, no normal draws.
    jaxpr = str(jax.make_jaxpr(lambda a, k: A.augment_batch(a, k, c))(x, jax.random.key(0)))
    assert jaxpr.count("dot_general") == 2
    assert " cond[" not in jaxpr and "erf_inv" not in jaxpr


# --- resampling against PIL ----------------------------------------------------------


def pil_resize(a2d, size, box=None):
    """PIL's float bilinear resize (antialiased when shrinking), after an optional crop."""
    im = Image.fromarray(a2d.astype(np.float32), mode="F")
    if box is not None:
        top, left, h, w = box
        im = im.crop((left, top, left + w, top + h))
    return np.asarray(im.resize((size, size), Image.BILINEAR))


@pytest.mark.parametrize("h,w", [(20, 13), (4, 6)])
def test_preprocess_eval_matches_pil_and_normalises(h, w):
    x = images(1, h, w, 3, seed=1)
    out = np.asarray(evaluate(x, cfg(image_size=9, mean=MEAN, std=STD)))
    for ch in range(3):
        ref = pil_resize(np.asarray(x[0, :, :, ch], np.float32), 9) / 255.0
        np.testing.assert_allclose(out[0, :, :, ch] * STD[ch] + MEAN[ch], ref, atol=1e-4)
    jr = jax.image.resize(x.astype(jnp.float32) / 255, (1, 9, 9, 3), "linear", antialias=True)
    np.testing.assert_allclose(out * np.array(STD) + np.array(MEAN), jr, atol=1e-5)


@pytest.mark.parametrize("box", [(3, 5, 10, 7), (0, 0, 3, 4), (12, 2, 8, 16)])
def test_crop_resize_matches_pil_crop_then_resize(box):
    src = np.random.default_rng(2).uniform(0, 255, (20, 18)).astype(np.float32)
    top, left, h, w = box
    wy = A.interp_matrix(top, h, 20, 11)
    wx = A.interp_matrix(left, w, 18, 11)
    out = np.asarray(A.resample(jnp.asarray(src)[:, :, None], wy, wx))[:, :, 0]
    np.testing.assert_allclose(out, pil_resize(src, 11, box), atol=2e-3)


# --- random resized crop -----------------------------------------------------------------


def torchvision_crop(rng, height, width, scale, ratio):
    """numpy transcription of torchvision RandomResizedCrop.get_params."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return rng.integers(0, height - h + 1), rng.integers(0, width - w + 1), h, w, False
    t, l, h, w = A.fallback_crop(height, width, ratio)
    return t, l, h, w, True


def sample_boxes(n, height, width, scale, ratio):
    keys = jax.random.split(jax.random.key(11), n)
    f = jax.jit(jax.vmap(lambda k: A.sample_crop_box(
        jax.random.uniform(k, (A.CROP_UNIFORMS,)), height, width, scale, ratio)))
    return np.asarray(f(keys))


def test_crop_boxes_follow_torchvision_statistics():
    n, side, scale, ratio = 4000, 32, (0.08, 1.0), (3 / 4, 4 / 3)
    top, left, h, w = sample_boxes(n, side, side, scale, ratio).T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= side).all() and (left + w <= side).all()
    area = h * w / side**2
    slack = (h + w) / side**2  # rounding w and h to integers
    assert (area >= scale[0] - slack).all() and (area <= scale[1] + slack).all()
    aspect = w / h
    assert (aspect >= ratio[0] * (1 - 1 / h) - 1 / h).all() and (aspect <= ratio[1] * (1 + 1 / h) + 1 / h).all()
    rng = np.random.default_rng(0)
    ref = np.array([torchvision_crop(rng, side, side, scale, ratio)[:4] for _ in range(n)])
    ref_area = ref[:, 2] * ref[:, 3] / side**2
    se = ref_area.std() / math.sqrt(n)
    assert abs(area.mean() - ref_area.mean()) < 5 * math.sqrt(2) * se
    # Positions uniform over the free range.
    free = side - h
    u = top[free > 0] / free[free > 0]
    assert abs(u.mean() - 0.5) < 0.03


def test_crop_attempts_and_fallback_match_torchvision():
    # Wide ratios on a small image: many attempts fail, some samples fall back.
    n, hgt, wid, scale, ratio = 3000, 16, 24, (0.5, 1.0), (0.2, 5.0)
    boxes = sample_boxes(n, hgt, wid, scale, ratio)
    fb = A.fallback_crop(hgt, wid, ratio)
    rng = np.random.default_rng(1)
    ref = [torchvision_crop(rng, hgt, wid, scale, ratio) for _ in range(n)]
    ref_fallback = np.mean([r[4] for r in ref])
    assert 0.01 < ref_fallback < 0.5  # the setting does exercise the fallback
    # A sample falling back is the central crop (a non-fallback box can coincide: count ref the same way).
    ours = np.mean((boxes == np.asarray(fb)).all(1))
    theirs = np.mean([tuple(r[:4]) == fb for r in ref])
    se = math.sqrt(theirs * (1 - theirs) / n)
    assert abs(ours - theirs) < 5 * math.sqrt(2) * se
    # Impossible scale: always the central crop (torchvision's rule, by hand: 20x40, ratio <= 4/3 -> 20x27).
    assert A.fallback_crop(20, 40, (3 / 4, 4 / 3)) == (0, 6, 20, 27)
    assert A.fallback_crop(40, 20, (3 / 4, 4 / 3)) == (6, 0, 27, 20)
    always = sample_boxes(5, 20, 40, (1.5, 2.0), (3 / 4, 4 / 3))
    assert (always == np.array([0, 6, 20, 27])).all()


# --- flip ---------------------------------------------------------------------------------


def test_flip_probability_and_mirror():
    x = jnp.broadcast_to(images(1, 8, 8, 1, seed=3), (400, 8, 8, 1))
    out = np.asarray(run(x, jax.random.key(5), cfg(image_size=8, flip_p=0.3)))
    ref = np.asarray(evaluate(x[:1], cfg(image_size=8)))[0]
    flipped = np.array([np.allclose(o, ref[:, ::-1], atol=1e-6) for o in out])
    kept = np.array([np.allclose(o, ref, atol=1e-6) for o in out])
    assert (flipped ^ kept).all()
    assert abs(flipped.mean() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 400)


# --- colour, against numpy / colorsys --------------------------------------------------


def np_gray(x):
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


PIXELS = np.array(
    [[[0.2, 0.5, 0.9], [1.0, 0.0, 0.0], [0.3, 0.3, 0.3], [0.9, 0.8, 0.1]],
     [[0.0, 0.0, 0.0], [0.6, 0.1, 0.7], [0.05, 0.95, 0.5], [1.0, 1.0, 1.0]]],
    np.float32,
)  # [2, 4, 3]


def test_brightness_contrast_saturation_match_torchvision_formulas():
    x = PIXELS
    for f in (0.0, 0.6, 1.4):
        np.testing.assert_allclose(A.adjust_brightness(x, f), np.clip(f * x, 0, 1), atol=1e-6)
        m = np_gray(x).mean()
        np.testing.assert_allclose(A.adjust_contrast(x, f), np.clip(f * x + (1 - f) * m, 0, 1), atol=1e-6)
        g = np_gray(x)[..., None]
        np.testing.assert_allclose(A.adjust_saturation(x, f), np.clip(f * x + (1 - f) * g, 0, 1), atol=1e-6)
    one = x[..., :1]
    np.testing.assert_allclose(A.adjust_contrast(one, 0.5), np.clip(0.5 * one + 0.5 * one.mean(), 0, 1), atol=1e-6)
    np.testing.assert_allclose(A.grayscale(x)[..., 0], np_gray(x), atol=1e-6)


@pytest.mark.parametrize("shift", [0.0, 0.1, -0.1, 0.5, -0.37])
def test_hue_matches_colorsys(shift):
    x = PIXELS.reshape(-1, 3)
    ref = []
    for r, g, b in x:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        ref.append(colorsys.hsv_to_rgb((h + shift) % 1.0, s, v))
    np.testing.assert_allclose(A.adjust_hue(x, shift), np.array(ref), atol=1e-5)
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in x])
    np.testing.assert_allclose(A.rgb_to_hsv(x), hsv, atol=1e-5)


def np_jitter(x, order, factors, ops):
    for pos in order:
        op, f = ops[pos], factors[ops[pos]]
        if op == A.BRIGHTNESS:
            x = np.clip(f * x, 0, 1)
        elif op == A.CONTRAST:
            x = np.clip(f * x + (1 - f) * np_gray(x).mean(), 0, 1)
        elif op == A.SATURATION:
            x = np.clip(f * x + (1 - f) * np_gray(x)[..., None], 0, 1)
        else:
            x = np.array([colorsys.hsv_to_rgb((h + f) % 1.0, s, v)
                          for h, s, v in (colorsys.rgb_to_hsv(*p) for p in x.reshape(-1, 3))]).reshape(x.shape)
    return x


def test_jitter_random_order_and_factor_ranges():
    p = A.AugmentParams.from_config(augment_config(brightness=0.4, contrast=0.3, saturation=1.5, hue=0.1))
    ops = p.jitter_ops(3)
    assert ops == (0, 1, 2, 3) and p.jitter_ops(1) == (0, 1)
    keys = jax.random.split(jax.random.key(2), 300)
    orders, factors = jax.jit(jax.vmap(lambda k: A.sample_jitter(jax.random.uniform(k, (A.JITTER_UNIFORMS,)), p, ops)))(keys)
    orders, factors = np.asarray(orders), np.asarray(factors)
    assert len({tuple(o) for o in orders}) == 24  # every order occurs
    lo, hi = np.array([0.6, 0.7, 0.0, -0.1]), np.array([1.4, 1.3, 2.5, 0.1])
    assert (factors >= lo - 1e-6).all() and (factors <= hi + 1e-6).all()
    assert (factors.min(0) < lo + 0.05).all() and (factors.max(0) > hi - 0.05).all()
    apply = jax.jit(lambda x, o, f: A.apply_jitter(x, o, f, ops))
    for i in range(4):
        got = apply(PIXELS, orders[i], factors[i])
        np.testing.assert_allclose(got, np_jitter(PIXELS, orders[i], factors[i], ops), atol=1e-5)


def test_jitter_probability_and_one_channel_noops():
    x = jnp.broadcast_to(images(1, 6, 6, 3, seed=4), (200, 6, 6, 3))
    c = cfg(image_size=6, jitter_p=0.5, brightness=0.4, contrast=0.0, saturation=0.0, hue=0.0)
    out = np.asarray(run(x, jax.random.key(1), c))
    ref = np.asarray(evaluate(x[:1], c))[0]
    inside = (ref > 0.01) & (ref < 0.5)  # never clipped by a factor <= 1.4
    ratio = out[:, inside] / ref[inside]
    assert np.allclose(ratio, ratio[:, :1], atol=1e-4)  # one factor per image
    f = ratio[:, 0]
    assert (f >= 0.6 - 1e-4).all() and (f <= 1.4 + 1e-4).all()
    changed = np.abs(f - 1) > 1e-4
    assert abs(changed.mean() - 0.5) < 4 * math.sqrt(0.25 / 200)
    # Saturation, hue and grayscale do nothing to one-channel images (here: a batch of one, a legacy uint32 key).
    g = images(1, 6, 6, 1)
    c1 = cfg(image_size=6, jitter_p=1.0, brightness=0.0, contrast=0.0, saturation=0.9, hue=0.4, grayscale_p=1.0)
    np.testing.assert_allclose(run(g, jax.random.PRNGKey(3), c1), evaluate(g, c1), atol=1e-6)


def test_random_grayscale_uses_luma_weights():
    x = images(64, 6, 6, 3, seed=5)
    c = cfg(image_size=6, grayscale_p=0.5)
    out = np.asarray(run(x, jax.random.key(3), c))
    ref = np.asarray(evaluate(x, c))
    gray = np.all(np.abs(out - out[..., :1]) < 1e-6, axis=(1, 2, 3))
    np.testing.assert_allclose(out[gray][..., 0], np_gray(ref[gray]), atol=1e-5)
    np.testing.assert_allclose(out[~gray], ref[~gray], atol=1e-6)
    assert 0.25 < gray.mean() < 0.75


# --- blur, solarize, noise ----------------------------------------------------------


def test_blur_of_a_delta_is_a_normalised_gaussian():
    side, sigma = 50, 0.9  # kernel int(5.0) -> 5 taps
    assert A.AugmentParams.from_config(cfg(image_size=side)).blur_kernel_size() == 5
    x = np.zeros((1, side, side, 1), np.uint8)
    x[0, 25, 25, 0] = 255
    c = cfg(image_size=side, blur_p=1.0, blur_sigma=(sigma, sigma))
    out = np.asarray(run(jnp.asarray(x), jax.random.key(0), c))[0, :, :, 0]
    t = np.arange(-2, 3)
    g = np.exp(-(t**2) / (2 * sigma**2))
    g /= g.sum()
    np.testing.assert_allclose(out[23:28, 23:28], np.outer(g, g), atol=1e-6)
    assert abs(out.sum() - 1.0) < 1e-5 and np.count_nonzero(out > 1e-9) == 25


def test_gray_blur_solarize_match_scipy_with_reflect101_borders():
    side, sigma = 30, 1.3  # 3 taps
    x = images(1, side, side, 3, seed=6)
    # Grayscale, then blur, then solarize (the order matters: solarize does not commute with blur).
    c = cfg(image_size=side, grayscale_p=1.0, blur_p=1.0, blur_sigma=(sigma, sigma), solarize_p=1.0)
    out = np.asarray(run(x, jax.random.key(0), c))[0]
    src = np_gray(np.asarray(x[0], np.float64) / 255.0)
    ref = scipy.ndimage.gaussian_filter(src, sigma=sigma, mode="mirror", radius=1)  # mirror = reflect-101
    ref = np.where(ref >= 0.5, 1 - ref, ref)
    np.testing.assert_allclose(out, np.repeat(ref[..., None], 3, -1), atol=1e-5)
    # Random sigma and probability: some blurred, some not.
    c2 = cfg(image_size=side, blur_p=0.5, blur_sigma=(0.5, 2.0))
    many = np.asarray(run(jnp.broadcast_to(x, (40, side, side, 3)), jax.random.key(1), c2))
    plain = np.asarray(evaluate(x, c2))[0]
    kept = np.all(np.abs(many - plain) < 1e-6, axis=(1, 2, 3))
    assert 0.2 < kept.mean() < 0.8


def test_solarize_and_noise():
    x = images(64, 7, 7, 3, seed=8)
    c = cfg(image_size=7, mean=MEAN, std=STD)
    ref = np.asarray(evaluate(x, c)) * STD + MEAN  # [0, 1]
    sol = np.asarray(run(x, jax.random.key(0), cfg(image_size=7, solarize_p=1.0, mean=MEAN, std=STD))) * STD + MEAN
    np.testing.assert_allclose(sol, np.where(ref >= 0.5, 1 - ref, ref), atol=1e-5)
    d = np.asarray(run(x, jax.random.key(0), cfg(image_size=7, noise_std=0.1, mean=MEAN, std=STD))) - np.asarray(evaluate(x, c))
    assert abs(d.std() - 0.1) < 0.005 and abs(d.mean()) < 0.005


# --- remedies for content-free cues: inversion, frames, standardisation, always gray ----------


def np_border(x, width, colour):
    """numpy transcription: the outer `width` rows and columns of x [S, S, C] set to colour [C]."""
    out = x.copy()
    out[:width], out[-width:], out[:, :width], out[:, -width:] = colour, colour, colour, colour
    return out


def np_standardize(x):
    return (x - x.mean()) / max(x.std(), 1.0 / np.sqrt(x.size))


def test_paint_border_and_standardize_match_numpy():
    x = np.random.default_rng(9).uniform(size=(7, 7, 3)).astype(np.float32)
    colour = np.array([0.1, 0.9, 0.4], np.float32)
    for width in (1, 2, 3):
        np.testing.assert_allclose(A.paint_border(x, width, colour), np_border(x, width, colour), atol=0)
    np.testing.assert_allclose(A.standardize(x), np_standardize(x.astype(np.float64)), atol=1e-5)
    flat = np.full((4, 4, 1), 0.3, np.float32)  # constant: the guard keeps it finite (all zeros)
    np.testing.assert_array_equal(A.standardize(flat), np.zeros_like(flat))
    np.testing.assert_allclose(A.invert(x), 1.0 - x, atol=1e-7)


def test_inversion_leaves_the_other_steps_randomness_unchanged():
    x = images(64, 10, 10, 3, seed=10)
    common = dict(image_size=8, crop_scale=(0.3, 1.0), flip_p=0.5, jitter_p=0.8, grayscale_p=0.3)
    plain = np.asarray(run(x, jax.random.key(2), cfg(**common)))
    always = np.asarray(run(x, jax.random.key(2), cfg(**common, invert_p=1.0)))
    np.testing.assert_allclose(always, 1.0 - plain, atol=1e-5)  # same crops, flips, jitter: only inverted
    half = np.asarray(run(x, jax.random.key(2), cfg(**common, invert_p=0.5)))
    inverted = np.all(np.abs(half - always) < 1e-5, axis=(1, 2, 3))
    kept = np.all(np.abs(half - plain) < 1e-5, axis=(1, 2, 3))
    assert (inverted ^ kept).all() and 0.25 < inverted.mean() < 0.75


def test_random_frames_have_one_colour_and_a_width_in_range():
    side, widest = 8, 2  # border_width 0.25 of 8 pixels
    x = jnp.broadcast_to(images(1, side, side, 3, seed=11), (300, side, side, 3))
    ref = np.asarray(evaluate(x[:1], cfg(image_size=side)))[0]
    out = np.asarray(run(x, jax.random.key(3), cfg(image_size=side, border_p=0.5, border_width=0.25)))
    widths = []
    for o in out:
        if np.allclose(o, ref, atol=1e-6):
            widths.append(0)
            continue
        colour = o[0, 0]
        width = next(w for w in range(widest, 0, -1) if np.allclose(o, np_border(ref, w, colour), atol=1e-6))
        assert np.allclose(o, np_border(ref, width, colour), atol=1e-6)
        widths.append(width)
    widths = np.array(widths)
    framed = widths > 0
    assert abs(framed.mean() - 0.5) < 4 * math.sqrt(0.25 / 300)
    assert set(widths[framed].tolist()) == {1, 2}  # every width from 1 to round(0.25 * 8), no wider
    colours = out[framed][:, 0, 0]  # uniform in [0, 1]^3
    assert colours.min() >= 0 and colours.max() <= 1 and abs(colours.mean() - 0.5) < 0.06


def test_always_gray_and_standardize_apply_to_views_and_to_the_evaluation_input():
    x = images(16, 9, 9, 3, seed=12)
    common = dict(image_size=6, crop_scale=(0.5, 1.0), jitter_p=1.0, always_gray=True, mean=MEAN, std=STD)
    view = np.asarray(run(x, jax.random.key(4), cfg(**common, standardize=True))) * STD + MEAN  # undo the
    gray = np.asarray(run(x, jax.random.key(4), cfg(**common))) * STD + MEAN  # dataset's normalisation
    ev = np.asarray(_eval(x, A.AugmentParams.from_config(cfg(**common, standardize=True)))) * STD + MEAN
    plain = np.asarray(evaluate(x, cfg(image_size=6)))  # [0, 1], colour
    for out in (view, gray, ev):
        np.testing.assert_allclose(out, np.repeat(out[..., :1], 3, -1), atol=1e-5)  # gray
    for i in range(16):  # the same view (standardising draws nothing), then standardised
        np.testing.assert_allclose(view[i], np_standardize(gray[i].astype(np.float64)), atol=1e-4)
        want = np_standardize(np.repeat(np_gray(plain[i].astype(np.float64))[..., None], 3, -1))
        np.testing.assert_allclose(ev[i], want, atol=1e-4)


# --- sharding, config, description ---------------------------------------------------


def test_sharded_batch_stays_sharded_and_matches():
    mesh = make_mesh()
    assert mesh.devices.size == 4
    x = images(8, 16, 12, 3)  # the shape and pipeline of the first test: its compile is reused
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    out = run(xs, jax.random.key(4), FULL)
    assert out.sharding.is_equivalent_to(NamedSharding(mesh, P("data")), out.ndim)
    np.testing.assert_allclose(out, run(x, jax.random.key(4), FULL), atol=1e-5)


def test_config_checks_and_description():
    with pytest.raises(UserError):
        A.AugmentParams.from_config(augment_config(flip_p=1.5))
    with pytest.raises(UserError):
        A.AugmentParams.from_config(augment_config(crop_scale=(1.0, 0.5)))
    with pytest.raises(UserError):
        A.AugmentParams.from_config(augment_config(hue=0.7))
    with pytest.raises(UserError):
        A.AugmentParams.from_config(augment_config(jitter_p=None))
    with pytest.raises(UserError):
        A.AugmentParams.from_config(augment_config(mean=(0.1, 0.2)))
    with pytest.raises(UserError, match="invert_p"):
        A.AugmentParams.from_config(augment_config(invert_p=1.5))
    with pytest.raises(UserError, match="border_width"):
        A.AugmentParams.from_config(augment_config(border_p=0.5, border_width=0.7))
    with pytest.raises(UserError, match="always_gray"):
        A.AugmentParams.from_config(augment_config(always_gray="yes"))
    with pytest.raises(UserError):
        A.preprocess_eval(images(1, 4, 4, 3).astype(jnp.float32), augment_config())
    with pytest.raises(UserError):
        A.augment_batch(images(1, 4, 4, 2), jax.random.key(0), augment_config())
    p = A.AugmentParams.from_config(augment_config(crop_scale=[0.2, 1.0]))  # lists from the CLI
    assert p.crop_scale == (0.2, 1.0) and hash(p) == hash(A.AugmentParams.from_config(p))
    d = A.describe(augment_config(image_size=224, blur_p=0.5))
    assert d.startswith("crop224 scale(0.08,1)") and "jitter p=0.8 b=0.4 c=0.4 s=0.4 h=0.1" in d
    assert "blur p=0.5 sigma(0.1,2) k=23" in d and "solarize" not in d and "noise" not in d
    assert A.describe(cfg(image_size=32)) == "crop32 scale(1,1) ratio(1,1) | normalise mean(0,0,0) std(1,1,1)"
    d = A.describe(cfg(image_size=32, always_gray=True, invert_p=0.5, border_p=0.5, standardize=True))
    assert "always gray | invert p=0.5 | border p=0.5 width<=8 | standardize | normalise" in d
