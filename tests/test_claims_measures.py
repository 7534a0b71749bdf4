"""The small-scale claims' measures: CAM mass (ccjax/results/cam_mass.py) on models whose attention is known,
and the verdict rule (ccjax/results/verdict.py) on hand-computed cases."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.explain.cam import grad_cam
from ccjax.models import ClusteringHeads, ClusteringModel
from ccjax.results.cam_mass import mass_inside, resize_masks, summarise
from ccjax.results.verdict import combine, compare, welch_interval

INK, BACKGROUND = np.array([1.0, 1.0, 1.0]), np.array([0.6, 0.1, 0.1])  # white object on a red ground


class ColourNet(nn.Module):
    """Its only stage is ReLU(x . w) per pixel (a fixed 1x1 filter, no bias), at full resolution, then global
    average pooling (8 channels: that map times 1..8): w = (-1, 1, 1) responds to the white object only (the
    red ground gives -0.4), w = (1, -1, -1) to the red ground only (white gives -1), w = 0 plus a constant 1
    to every pixel alike."""

    weights: tuple[float, float, float]

    @nn.compact
    def __call__(self, x, *, train, shift_hook=None):
        w = jnp.asarray(self.weights, jnp.float32)
        a = nn.relu(jnp.einsum("nhwc,c->nhw", x, w))[..., None]
        if not any(self.weights):
            a = jnp.ones_like(a)
        a = a * jnp.arange(1.0, 9.0)  # 8 channels, so that the heads' first ReLU layer passes some gradient
        if shift_hook is not None:
            a = shift_hook(a, 0)
        return a.mean(axis=(1, 2))


@pytest.fixture(scope="module")
def objects():
    """12 images 16x16: a digit-like blob of random place and size (binary mask), white on red."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]
    masks = np.stack([((yy - rng.uniform(4, 12)) ** 2 / rng.uniform(4, 16) + (xx - rng.uniform(4, 12)) ** 2
                       / rng.uniform(4, 16)) <= 1.0 for _ in range(12)]).astype(np.float64)
    images = masks[..., None] * INK + (1 - masks[..., None]) * BACKGROUND
    return jnp.asarray(images, jnp.float32), masks


def _cam_of(weights, images):
    model = ClusteringModel(backbone=ColourNet(weights), heads=ClusteringHeads(feature_dim=4, num_clusters=2))
    variables = model.init(jax.random.key(0), [images], train=False)
    # The explained cluster: the one whose map has positive mass (the K signed maps of an image sum to 0).
    signed = np.stack([grad_cam(model, variables, images, target=np.full(len(images), k))["signed"].sum((1, 2))
                       for k in range(2)])
    return grad_cam(model, variables, images, target=signed.argmax(0))["cam"]


@pytest.mark.parametrize("weights,expected", [((-1.0, 1.0, 1.0), "one"), ((1.0, -1.0, -1.0), "zero"),
                                              ((0.0, 0.0, 0.0), "area")])
def test_cam_mass_of_models_with_known_attention(objects, weights, expected):
    """Grad-CAM (ccjax/explain/cam.py) of a model that sees only the object puts all its mass in the mask (1), of
    one that sees only the ground none (0), of one that sees every pixel alike the object's share of the image.
    Catches a measure normalised by the mask instead of the map, or the mask's complement used."""
    images, masks = objects
    inside, area = mass_inside(_cam_of(weights, images), masks)
    target = {"one": np.ones(len(masks)), "zero": np.zeros(len(masks)), "area": masks.mean((1, 2))}[expected]
    np.testing.assert_allclose(inside, target, atol=1e-6)
    np.testing.assert_allclose(area, masks.mean((1, 2)))
    s = summarise(inside, area)
    assert s["images"] == len(masks) and s["empty_maps"] == 0
    np.testing.assert_allclose(s["ratio"], target.mean() / area.mean(), rtol=1e-6)


def test_cam_mass_by_hand_and_edge_cases():
    """A 2x2 hand case (mass 3 of 4 inside, soft mask weights its pixel), an all-zero map left out and counted,
    and the masks resampled as evaluation resamples images (a half-covered 2x upsample keeps the share)."""
    maps = np.array([[[1.0, 2.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    masks = np.array([[[1.0, 1.0], [0.0, 0.5]], [[1.0, 0.0], [0.0, 0.0]]])
    inside, area = mass_inside(maps, masks)
    assert inside[0] == pytest.approx(3.0 / 4.0) and np.isnan(inside[1])
    np.testing.assert_allclose(area, [0.625, 0.25])
    s = summarise(inside, area)
    assert s["images"] == 1 and s["empty_maps"] == 1 and s["inside"] == pytest.approx(0.75)
    with pytest.raises(ValueError):
        mass_inside(-maps, masks)
    half = np.zeros((1, 8, 8))
    half[0, :, :4] = 1.0
    up = resize_masks(half, 16)
    assert up.shape == (1, 16, 16) and up.mean() == pytest.approx(0.5, abs=1e-6)
    assert (up[0, :, :7] == 1).all() and (up[0, :, 9:] == 0).all()


# ----------------------------------------------------------------------------- the verdict rule

CLEAR_A = [0.90, 0.91, 0.92, 0.93, 0.94]
CLEAR_B = [0.80, 0.81, 0.82, 0.83, 0.84]


def test_welch_interval_by_hand_and_against_scipy():
    """d = 0.10; s^2 = 0.00025 per side -> se = 0.01, df = 8, t_.975,8 = 2.306004: [0.07694, 0.12306]; t = 10,
    p = 2 P(T_8 > 10) = 8.50e-6 (tables). scipy's Welch test gives the same interval and p. Catches pooled
    variances, ddof=0, or a one-sided quantile."""
    from scipy import stats

    d, low, high, p = welch_interval(CLEAR_A, CLEAR_B)
    assert d == pytest.approx(0.10) and low == pytest.approx(0.10 - 0.02306004, abs=1e-7)
    assert high == pytest.approx(0.10 + 0.02306004, abs=1e-7) and p == pytest.approx(8.50e-6, rel=0.01)
    a, b = [0.90, 0.95, 0.85, 0.92, 0.88], [0.89, 0.93, 0.86, 0.91, 0.70, 0.95, 0.90]
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    d, low, high, p = welch_interval(a, b)
    assert (low, high, p) == pytest.approx((ci.low, ci.high, ref.pvalue), rel=1e-9)


def test_verdicts_on_hand_cases():
    """A clear difference holds (and its reverse does not hold); overlapping spreads are inconclusive; n = 1
    is inconclusive whatever the gap; 'comparable' within a margin: A = B - 0.002 with se 0.001 (interval
    [-0.0043, +0.0003]) holds against margin 0.01, is inconclusive as a strict 'greater'. Catches a rule that
    calls any positive mean difference a win, or that ignores the direction."""
    assert compare(CLEAR_A, CLEAR_B, "greater").verdict == "holds"
    assert compare(CLEAR_B, CLEAR_A, "greater").verdict == "does not hold"
    assert compare(CLEAR_B, CLEAR_A, "less").verdict == "holds"
    # means 0.900 vs 0.892, se 0.0213: t = 0.38
    over = compare([0.90, 0.95, 0.85, 0.92, 0.88], [0.89, 0.93, 0.86, 0.91, 0.87], "greater")
    assert over.verdict == "inconclusive" and over.low < 0 < over.high
    assert over.text().startswith("inconclusive at 5 seeds")
    one = compare([0.99], [0.10], "greater")
    assert one.verdict == "inconclusive" and one.text() == "inconclusive at 1 seeds"
    b = [0.900, 0.901, 0.902, 0.903, 0.904]
    a = [x - 0.002 for x in b]
    assert compare(a, b, "not_less", margin=0.01).verdict == "holds"
    assert compare(a, b, "greater").verdict == "inconclusive"
    assert compare([x - 0.05 for x in b], b, "not_less", margin=0.01).verdict == "does not hold"
    with pytest.raises(ValueError):
        compare(a, b, "greater", margin=0.01)


def test_a_claim_of_several_comparisons():
    """All hold -> holds; any does not hold -> does not hold; else inconclusive; n is the smallest."""
    win, loss, tie = compare(CLEAR_A, CLEAR_B), compare(CLEAR_B, CLEAR_A), compare([0.9, 0.8], [0.85, 0.86])
    assert combine([win, win]) == "holds at 5 seeds"
    assert combine([win, loss, tie]) == "does not hold at 2 seeds"
    assert combine([win, tie]) == "inconclusive at 2 seeds"


def test_cam_mass_of_a_written_run_and_the_nuisance_nmi(tmp_path):
    """The run path (ccjax/results/cam_mass.cam_mass_of_run, small_measure.nuisance_nmi) on a run folder as
    `ccjax train` leaves it (a ConvNet, 8x8 images seen at 12x12): a mask covering every pixel holds all the mass,
    an empty one none, a half mask's area is resampled to the view (0.5). Catches masks left at the stored size
    or the maps taken from another image."""
    import os

    from test_attention import write_run
    from test_report import load_config

    from ccjax.results.cam_mass import cam_mass_of_model, cam_mass_of_run
    from ccjax.results.small_measure import nuisance_nmi
    from ccjax.run.load import load_trained

    c = load_config("cc_digits")
    c.model.convnet_width = 4
    c.dataset.num_clusters = 3
    c.progress_bar = False
    c.seed = 1  # seed 0's initial heads make every predicted cluster's map all negative (nothing to place)
    workdir = str(tmp_path / "run")
    write_run(workdir, c)
    images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 1)).astype(np.uint8)
    full = cam_mass_of_run(workdir, images, np.ones((6, 8, 8)))
    trained = load_trained(workdir)
    variables = trained.restore_latest().variables
    empty = cam_mass_of_model(trained.module, variables, trained.config, images, np.zeros((6, 8, 8)))
    half = np.zeros((6, 8, 8))
    half[:, :, :4] = 1.0
    halved = cam_mass_of_model(trained.module, variables, trained.config, images, half)
    assert full["images"] + full["empty_maps"] == 6 and full["images"] > 0
    assert full["inside"] == pytest.approx(1.0) and empty["inside"] == 0.0 and halved["area"] == pytest.approx(0.5)
    assert 0.0 <= halved["inside"] <= 1.0 and full["step"] == 0 and "stage 3" in full["where"]
    os.makedirs(os.path.join(workdir, "report"))
    with open(os.path.join(workdir, "report", "assignments.csv"), "w") as f:
        f.write("id,cluster\n" + "".join(f"{i}.png,{i % 2}\n" for i in range(8)))
    assert nuisance_nmi(workdir, {f"{i}.png": i % 2 for i in range(8)}) == pytest.approx(1.0)
    assert nuisance_nmi(workdir, {f"{i}.png": int(i >= 4) for i in range(8)}) == pytest.approx(0.0, abs=1e-9)
