"""GeCC's objective end to end against an independent float64 oracle written from the paper alone
(tests/gecc_paper_oracle.py, Eqs. 6-14), for every ablation switch.

The stand-in model's outputs are fixed arrays the test chooses: view 1 and view 2 come from the
two-view call, the reference view d from the one-view call (built from features the test also
knows, passed through the shift hook). The hook factories and the third augmentation are replaced
by deterministic recorders, so the test knows exactly what view d is and which pseudo labels CDSM
was given. Views 2 and d differ everywhere they enter, so handing one in place of the other,
weighting with the wrong views, or dropping a term fails.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.config import get_base_config
from ccjax.methods.gecc import objective
from gecc_paper_oracle import gecc_step_losses

B, M, K, F = 6, 5, 3, 4
TAU_I, TAU_C = 0.5, 1.0
RNG = np.random.default_rng(7)
Z1, Z2 = RNG.normal(size=(B, M)), RNG.normal(size=(B, M))
L1, L2 = RNG.normal(size=(B, K)) * 2, RNG.normal(size=(B, K)) * 2  # cluster logits of views 1, 2
FEAT = RNG.normal(size=(B, F))  # the reference view's features before the hook
WZ, WC = RNG.normal(size=(F, M)), RNG.normal(size=(F, K)) * 2  # its heads
SHIFT = RNG.normal(size=(K, F))  # the stand-in hooks add SHIFT[label] (CDSM) or a constant (DSU)


def _unit(x):
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


class ControlledModel(nn.Module):
    """Follows the model contract; its outputs are the fixed arrays above (times 1 + 0 * a parameter)."""

    @nn.compact
    def __call__(self, views: Sequence[jax.Array], anchors=None, *, train: bool, shift_hook=None):
        # Both of the objective's passes must run in training mode (BatchNorm on batch statistics, as
        # the views are trained); an evaluation-mode pass would hand the losses other outputs.
        one = (1.0 if train else -1.0) + 0.0 * self.param("s", nn.initializers.zeros, ())
        if len(views) == 2:
            return [dict(z=_unit(jnp.asarray(z, jnp.float32) * one), c=nn.softmax(jnp.asarray(l, jnp.float32) * one))
                    for z, l in ((Z1, L1), (Z2, L2))]
        # One view: the reference view. Its features carry the view's mean (so 'aug' matters).
        x = jnp.asarray(FEAT, jnp.float32) * one + jnp.mean(views[0], axis=(1, 2, 3))[:, None]  # [B, F]
        if shift_hook is not None:
            x = shift_hook(x, 0)
        return [dict(z=_unit(x @ jnp.asarray(WZ, jnp.float32)), c=nn.softmax(x @ jnp.asarray(WC, jnp.float32)))]


def expected_reference(reference: str, view_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """(zd, cd) in float64 as the oracle's inputs: the features the stand-in hooks produce."""
    x = FEAT + view_mean
    if reference == "cdsm":
        x = x + SHIFT[np.argmax(L1, axis=1)]  # view 1's pseudo labels, not view 2's
    elif reference == "dsu":
        x = x + 0.5
    z = x @ WZ
    logits = x @ WC
    c = np.exp(logits - logits.max(1, keepdims=True))
    return z / np.linalg.norm(z, axis=1, keepdims=True), c / c.sum(1, keepdims=True)


def softmax(l):
    e = np.exp(l - l.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.fixture
def recorded(monkeypatch):
    """Deterministic stand-ins for the hook factories and the third augmentation; records their inputs."""
    calls = {}

    def cdsm_hook(labels, num_clusters, rng, probability, positions="stages"):
        calls["cdsm"] = (np.asarray(labels), num_clusters, float(probability), positions)
        return lambda x, layer: x + jnp.asarray(SHIFT, jnp.float32)[labels]

    def dsu_hook(rng, probability, positions="stages"):
        calls["dsu"] = (float(probability), positions)
        return lambda x, layer: x + 0.5

    def third_view(images, rng, cfg):
        calls["aug"] = cfg
        return jnp.full((images.shape[0], 8, 8, 1), 0.25, jnp.float32)

    def two_views(images, rng, config):  # views 1 and 2 as known constants: view d must come from view 1
        calls["two_views"] = True
        return jnp.full((images.shape[0], 8, 8, 1), 0.1), jnp.full((images.shape[0], 8, 8, 1), 0.6)

    monkeypatch.setattr(objective, "two_views", two_views)
    monkeypatch.setattr(objective, "make_cdsm_hook", cdsm_hook)
    monkeypatch.setattr(objective, "make_dsu_hook", dsu_hook)
    monkeypatch.setattr(objective, "augment_batch", third_view)
    return calls


def run_objective(reference: str, weights: str):
    c = get_base_config()
    c.method = "gecc"
    c.num_epochs = 10
    c.augment.image_size = 8
    c.gecc.reference, c.gecc.weights = reference, weights
    c.gecc.lambda_instance, c.gecc.lambda_cluster = 0.7, 1.3
    c.loss.instance_temperature, c.loss.cluster_temperature = TAU_I, TAU_C
    model = ControlledModel()
    images = jnp.zeros((B, 8, 8, 1), jnp.uint8)
    params = model.init(jax.random.key(0), [jnp.zeros((B, 8, 8, 1))], train=False)["params"]
    loss, (metrics, _) = objective.loss_fn(params, {}, model=model, config=c, images=images, anchors=None,
                                           rng=jax.random.key(1), epoch=jnp.int32(3))
    return float(loss), {k: float(v) for k, v in metrics.items()}


@pytest.mark.parametrize("reference", ["cdsm", "dsu", "aug"])
@pytest.mark.parametrize("weights", ["both", "none", "wz", "wc"])
def test_objective_matches_the_paper_oracle(recorded, reference, weights):
    loss, got = run_objective(reference, weights)
    # The reference view is view 1 (mean 0.1) shifted, for cdsm and dsu; the third augmentation for aug.
    zd, cd = expected_reference(reference, 0.25 if reference == "aug" else 0.1)
    want = gecc_step_losses(_np_unit(Z1), _np_unit(Z2), zd, softmax(L1), softmax(L2), cd, TAU_I, TAU_C,
                            weights=weights, lambda_instance=0.7, lambda_cluster=1.3)
    for k in ("instance_12", "instance_1d", "instance", "cluster_12", "cluster_1d", "cluster", "entropy", "total"):
        assert got[k] == pytest.approx(want[k], rel=2e-5, abs=2e-5), k
    assert loss == pytest.approx(want["total"], rel=2e-5)
    assert got["w_z_mean"] == pytest.approx(want["w_z"].mean(), rel=1e-5)
    assert got["w_c_mean"] == pytest.approx(want["w_c"].mean(), rel=1e-5)
    assert got["t"] == pytest.approx(0.4)  # epoch 3 of 10 with 10 stages: t = (3 // 1 + 1) / 10
    if reference == "cdsm":  # CDSM got view 1's argmax as pseudo labels, all K clusters, probability t
        labels, k, t, positions = recorded["cdsm"]
        np.testing.assert_array_equal(labels, np.argmax(L1, axis=1))
        assert (k, t, positions) == (K, pytest.approx(0.4), "stages")
    assert set(recorded) == {reference, "two_views"}  # exactly the reference view asked for


def _np_unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_oracle_distinguishes_view_2_from_view_d_and_pins_the_row_reading():
    """Swapping views 2 and d, or reading Eq. 8's second anchor with column i of W, changes every term;
    ccjax reads row i (the paper writes w_ij for both anchors of l_i; docs/gecc.md)."""
    zd, cd = expected_reference("cdsm", 0.0)
    args = (_np_unit(Z1), _np_unit(Z2), zd, softmax(L1), softmax(L2), cd, TAU_I, TAU_C)
    base = gecc_step_losses(*args)
    swapped = gecc_step_losses(args[0], args[2], args[1], args[3], args[5], args[4], TAU_I, TAU_C)
    column = gecc_step_losses(*args, second_anchor_weights="column")
    for k in ("instance_12", "instance_1d", "cluster_12", "cluster_1d"):
        assert abs(base[k] - swapped[k]) > 1e-4, k
    for k in ("instance", "cluster"):
        assert abs(base[k] - column[k]) > 1e-6, k
    _, got = run_objective_plain()
    assert got["total"] == pytest.approx(base["total"], rel=2e-5)
    assert abs(got["total"] - column["total"]) > 1e-6


def run_objective_plain():
    """The objective with the real CDSM hook replaced as in `recorded`, outside the fixture."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(objective, "make_cdsm_hook",
                   lambda labels, k, rng, p, positions="stages": (lambda x, layer: x + jnp.asarray(SHIFT, jnp.float32)[labels]))
        c = get_base_config()
        c.method = "gecc"
        c.num_epochs = 10
        c.augment.image_size = 8
        c.loss.instance_temperature, c.loss.cluster_temperature = TAU_I, TAU_C
        model = ControlledModel()
        params = model.init(jax.random.key(0), [jnp.zeros((B, 8, 8, 1))], train=False)["params"]
        loss, (metrics, _) = objective.loss_fn(params, {}, model=model, config=c,
                                               images=jnp.zeros((B, 8, 8, 1), jnp.uint8), anchors=None,
                                               rng=jax.random.key(1), epoch=jnp.int32(3))
        return float(loss), {k: float(v) for k, v in metrics.items()}
    finally:
        mp.undo()
