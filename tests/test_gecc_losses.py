"""GeCC's weights and losses (ccjax.methods.gecc.losses) against float64 numpy transcriptions of Eqs. 6-14."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ccjax.methods import contrastive
from ccjax.methods.gecc import losses as gl
from ccjax.methods.cc import cc_losses

B, M, K = 8, 5, 3
TAU_I, TAU_C = 0.5, 1.0


# ----------------------------------------------------------------------------- numpy oracles
def np_weights(v1, v2, vd):
    """Eqs. 6-7 (and 10 on columns), element by element."""
    v1, v2, vd = (np.asarray(v, np.float64) for v in (v1, v2, vd))
    n = len(v1)
    w = np.zeros((n, n))
    for i in range(n):
        d2 = [math.dist(v1[i], v2[k]) for k in range(n)]
        dd = [math.dist(v1[i], vd[k]) for k in range(n)]
        for j in range(n):
            a = d2[j] / max(d2)  # Eq. 7
            b = dd[j] / max(dd)
            w[i, j] = 1 + b / (a + b)  # Eq. 6
    return w


def cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def np_pair_terms(a, b, w, tau):
    """sum_i sum_{m in {a, b}} l_i^m of Eq. 8 (or 11), one anchor at a time; l = log(num / den)."""
    n = len(a)
    total = 0.0
    for anchor_view, other_view in ((a, b), (b, a)):
        for i in range(n):
            num = w[i, i] * math.exp(cos(anchor_view[i], other_view[i]) / tau)
            den = 0.0
            for j in range(n):
                if j != i:
                    den += w[i, j] * math.exp(cos(anchor_view[i], anchor_view[j]) / tau)  # in-view negatives
                den += w[i, j] * math.exp(cos(anchor_view[i], other_view[j]) / tau)  # all cross-view pairs
            total += math.log(num / den)
    return total


def np_R(cs):
    """Eq. 12: sum over views and clusters of H log H, H_i = sum_b c_ib / ||C||_1."""
    r = 0.0
    for c in cs:
        c = np.asarray(c, np.float64)
        for i in range(c.shape[1]):
            h = c[:, i].sum() / np.abs(c).sum()
            r += h * math.log(h)
    return r


def np_gecc(z1, z2, zd, c1, c2, cd, wz, wc, lam1=1.0, lam2=1.0):
    """Eqs. 8-14 transcribed (R(C) plus 3 log K, the documented constant)."""
    z1, z2, zd, c1, c2, cd = (np.asarray(v, np.float64) for v in (z1, z2, zd, c1, c2, cd))
    l_ins = -(np_pair_terms(z1, z2, wz, TAU_I) + np_pair_terms(z1, zd, wz, TAU_I)) / (2 * len(z1))  # Eq. 9
    contrast = -(np_pair_terms(c1.T, c2.T, wc, TAU_C) + np_pair_terms(c1.T, cd.T, wc, TAU_C)) / (2 * c1.shape[1])
    r = np_R([c1, c2, cd]) + 3 * math.log(c1.shape[1])
    return {"instance": l_ins, "cluster": contrast, "entropy": r, "total": lam1 * l_ins + lam2 * (contrast + r)}


def np_cc(z1, z2, c1, c2):
    """CC (Li et al. 2021) transcribed: NT-Xent over 2B features and 2K columns, plus log K - H(Y) per view."""

    def nt_xent(u, v, tau):
        x = np.concatenate([u, v]).astype(np.float64)
        n = len(u)
        loss = 0.0
        for i in range(2 * n):
            pos = (i + n) % (2 * n)
            logits = [cos(x[i], x[j]) / tau for j in range(2 * n) if j != i]
            loss += -cos(x[i], x[pos]) / tau + math.log(sum(math.exp(l) for l in logits))
        return loss / (2 * n)

    def ent(c):
        p = np.asarray(c, np.float64).sum(0)
        p = p / p.sum()
        return math.log(len(p)) + float((p * np.log(p)).sum())

    return {
        "instance": nt_xent(z1, z2, TAU_I),
        "cluster": nt_xent(np.asarray(c1).T, np.asarray(c2).T, TAU_C),
        "entropy": ent(c1) + ent(c2),
    }


def views(seed=0, b=B):
    rng = np.random.default_rng(seed)

    def unit(x):
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def softmax(x):
        e = np.exp(x - x.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    z = [unit(rng.normal(size=(b, M))) for _ in range(3)]
    c = [softmax(2 * rng.normal(size=(b, K))) for _ in range(3)]
    return z, c


# ----------------------------------------------------------------------------- weights
def test_domain_and_distribution_weights_match_eqs_6_7_10():
    (z1, z2, zd), (c1, c2, cd) = views(1)
    wz = gl.attention_weights(z1, z2, zd)
    wc = gl.distribution_attention_weights(c1, c2, cd)
    assert wz.shape == (B, B) and wc.shape == (K, K)
    np.testing.assert_allclose(wz, np_weights(z1, z2, zd), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wc, np_weights(c1.T, c2.T, cd.T), rtol=1e-5, atol=1e-6)
    assert np.all((np.asarray(wz) >= 1) & (np.asarray(wz) <= 2))


def test_weights_hand_computed_case():
    # 1-D points: v1 = (0, 3), v2 = (1, 3), vd = (2, 7)
    v1, v2, vd = (jnp.asarray(x, jnp.float32)[:, None] for x in ([0, 3], [1, 3], [2, 7]))
    # D(v1_0, v2) = (1, 3) -> (1/3, 1); D(v1_0, vd) = (2, 7) -> (2/7, 1)
    # D(v1_1, v2) = (2, 0) -> (1, 0);   D(v1_1, vd) = (1, 4) -> (1/4, 1)
    expect = 1 + np.array([[(2 / 7) / (1 / 3 + 2 / 7), 0.5], [(1 / 4) / (1 + 1 / 4), 1.0]])
    np.testing.assert_allclose(gl.attention_weights(v1, v2, vd), expect, rtol=1e-6)


def test_weights_are_finite_when_views_coincide_and_carry_no_gradient():
    (z1, z2, _), _ = views(2)
    # reference view identical to view 1 (CDSM with t = 0): D_hat(z1_i, zd_i) = 0 -> w_ii = 1
    w = gl.attention_weights(z1, z2, z1)
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(np.diag(w), 1.0)
    # all three views equal: every ratio 0/0 -> 1/2
    np.testing.assert_allclose(gl.attention_weights(z1, z1, z1)[0, 0], 1.5)
    g = jax.grad(lambda a: gl.attention_weights(a, z2, a * 0.9).sum())(jnp.asarray(z1))
    np.testing.assert_array_equal(g, 0.0)


# ----------------------------------------------------------------------------- losses
def test_weighted_losses_match_numpy_transcription():
    (z1, z2, zd), (c1, c2, cd) = views(3)
    wz = np_weights(z1, z2, zd)
    wc = np_weights(c1.T, c2.T, cd.T)
    out = gl.gecc_losses(z1, z2, zd, c1, c2, cd, TAU_I, TAU_C, w_z=jnp.asarray(wz, jnp.float32),
                         w_c=jnp.asarray(wc, jnp.float32), lambda_instance=0.7, lambda_cluster=1.3)
    ref = np_gecc(z1, z2, zd, c1, c2, cd, wz, wc, 0.7, 1.3)
    for key in ("instance", "cluster", "entropy", "total"):
        np.testing.assert_allclose(out[key], ref[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(out["instance_12"] + out["instance_1d"], out["instance"], rtol=1e-6)


def test_entropy_regularizer_is_eq_12_plus_constant():
    _, cs = views(4)
    np.testing.assert_allclose(gl.entropy_regularizer(cs), np_R(cs) + 3 * math.log(K), rtol=1e-5)
    uniform = [np.full((B, K), 1 / K, np.float32)] * 3
    np.testing.assert_allclose(gl.entropy_regularizer(uniform), 0.0, atol=1e-6)


def test_reduces_to_cc_with_unit_weights_and_no_reference_view():
    (z1, z2, _), (c1, c2, _) = views(5)
    ours_none = gl.gecc_losses(z1, z2, None, c1, c2, None, TAU_I, TAU_C)
    ours_ones = gl.gecc_losses(z1, z2, None, c1, c2, None, TAU_I, TAU_C,
                               w_z=jnp.ones((B, B)), w_c=jnp.ones((K, K)))
    cc = cc_losses(z1, z2, c1, c2, TAU_I, TAU_C)
    ref = np_cc(z1, z2, c1, c2)
    for key in ("instance", "cluster", "entropy"):
        np.testing.assert_allclose(ours_none[key], ref[key], rtol=1e-5, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(ours_ones[key], ref[key], rtol=1e-5, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(ours_none[key], cc[key], rtol=1e-5, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(ours_ones["total"], cc["total"], rtol=1e-5, atol=1e-5)
    # and with the reference view equal to view 2, GeCC's unweighted loss is twice CC's contrastive part
    doubled = gl.gecc_losses(z1, z2, z2, c1, c2, c2, TAU_I, TAU_C)
    np.testing.assert_allclose(doubled["instance"], 2 * cc["instance"], rtol=1e-5)
    np.testing.assert_allclose(doubled["cluster"], 2 * cc["cluster"], rtol=1e-5)


def test_gradients_do_not_flow_through_the_weights():
    (z1, z2, zd), (c1, c2, cd) = views(6)

    def loss(z1_, live):
        wz = gl.attention_weights(z1_, z2, zd)
        if not live:
            wz = jnp.asarray(np.asarray(gl.attention_weights(z1, z2, zd)))
        return gl.gecc_losses(z1_, z2, zd, c1, c2, cd, TAU_I, TAU_C, w_z=wz)["total"]

    g_live = jax.grad(loss)(jnp.asarray(z1), True)
    g_const = jax.grad(loss)(jnp.asarray(z1), False)
    np.testing.assert_allclose(g_live, g_const, rtol=1e-6, atol=1e-7)
    assert np.abs(np.asarray(g_live)).max() > 0


def test_losses_and_weights_on_a_4_device_mesh_equal_unsharded():
    assert len(jax.devices()) == 4, "tests/conftest.py sets 4 CPU devices"
    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    (z1, z2, zd), (c1, c2, cd) = views(7)

    def f(z1, z2, zd, c1, c2, cd):
        wz = gl.attention_weights(z1, z2, zd)
        wc = gl.distribution_attention_weights(c1, c2, cd)
        out = gl.gecc_losses(z1, z2, zd, c1, c2, cd, TAU_I, TAU_C, w_z=wz, w_c=wc)
        return out["total"], wz, wc

    f = jax.jit(f)
    single = f(z1, z2, zd, c1, c2, cd)
    sharding = NamedSharding(mesh, P("data"))
    sharded_in = [jax.device_put(a, sharding) for a in (z1, z2, zd, c1, c2, cd)]
    assert len(sharded_in[0].sharding.device_set) == 4
    sharded = f(*sharded_in)
    for a, b in zip(sharded, single):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    ref = np_gecc(z1, z2, zd, c1, c2, cd, np_weights(z1, z2, zd), np_weights(c1.T, c2.T, cd.T))
    np.testing.assert_allclose(sharded[0], ref["total"], rtol=1e-5)


@pytest.mark.parametrize("b", [8])
def test_no_nan_with_empty_clusters(b):
    (z1, z2, zd), _ = views(8, b)
    # cluster 2 receives (almost) no mass in any view: its column is ~0
    c = np.zeros((b, K), np.float32)
    c[:, 0] = np.linspace(0.2, 0.8, b)
    c[:, 1] = 1 - c[:, 0]
    grads = jax.grad(
        lambda c1: gl.gecc_losses(z1, z2, zd, c1, c, c * 0.5 + 0.5 / K, TAU_I, TAU_C,
                                  w_c=gl.distribution_attention_weights(c1, c, c * 0.5 + 0.5 / K))["total"]
    )(jnp.asarray(c))
    assert np.all(np.isfinite(grads))


def test_a_pair_loss_passes_no_gradient_to_its_weights():
    """nt_xent treats W as constants (attention weights on the terms, docs/gecc.md), also when the
    caller's W carries a gradient: d loss / d W is exactly zero, while d loss / d a is not."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 4))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = rng.normal(size=(6, 4))
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    w = jnp.asarray(1.0 + rng.uniform(size=(6, 6)), jnp.float32)
    g_w = jax.grad(lambda w_: contrastive.nt_xent(jnp.asarray(a), jnp.asarray(b), TAU_I, w_))(w)
    np.testing.assert_array_equal(np.asarray(g_w), 0.0)
    g_a = jax.grad(lambda a_: contrastive.nt_xent(a_, jnp.asarray(b), TAU_I, w))(jnp.asarray(a, jnp.float32))
    assert np.abs(np.asarray(g_a)).max() > 1e-3
