"""Gradients of every custom differentiable piece against an independent derivative.

The oracle is a central finite difference in float64: of a numpy transcription of the
equations (CDSM and DSU: tests/test_domain_shift.py; GeCC and CC: tests/gecc_paper_oracle.py,
written from the papers), or of the model itself run in float64 (the fusing ViT). A forward
test cannot see a wrongly placed stop-gradient; these can. Where the gradient flows, as the
papers and docs/gecc.md state it:

- CDSM / DSU (GeCC Eqs. 1-5): through mu, sigma, Sigma_mu, Sigma_sigma and the normalisation
  (DSU's code detaches nothing); the noise eps ~ N(0, 1) is a draw, and the pseudo labels
  (argmax of view 1's cluster head) are constants.
- W_z and W_c (Eqs. 6-7, 10): stopped. They weight the loss terms; the encoder gets no
  gradient through them.
- The losses (CC Eqs. 1-8, GeCC Eqs. 8-14): through everything else, the reference view d
  included (through CDSM into its features) and the normalisation of the cluster columns.
- The fusing ViT (MFAVBs-CC Eqs. 1-2): concatenation and split are plain reshapes, so through
  a fused block each branch's output depends on (and passes gradient to) both branches' inputs;
  with fusion='none' only on its own.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.config import get_base_config
from ccjax.methods import cc
from ccjax.methods.gecc import domain_shift as ds
from ccjax.methods.gecc import losses as gl
from ccjax.methods.gecc import objective
from ccjax.models.vit import FusingViT
from fakes import tiny_grayscale_augment
from gecc_paper_oracle import _entropy_term, _nt_xent, _pair_loss, _unit_columns, attention_weights
from test_domain_shift import np_cdsm, np_dsu

TAU_I, TAU_C = 0.5, 1.0


def central_differences(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d x for a float64 function f of an array, one entry at a time: (f(x + e) - f(x - e)) / 2e."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        g[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return g


def assert_gradient(got, want, rtol=1e-4, err_msg=""):
    """jax's float32 gradient against the float64 finite difference, to float32 accuracy."""
    want = np.asarray(want, np.float64)
    scale = np.abs(want).max()
    assert scale > 1e-3, f"{err_msg}: the oracle's gradient vanishes, so the test would show nothing"
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=rtol * scale, err_msg=err_msg)


# ----------------------------------------------------------------------------- CDSM and DSU (Eqs. 1-5)
# 8 samples in 3 clusters of 3, 3 and 2 members: every Sigma > 0, so every statistic carries gradient.
LABELS = np.array([0, 1, 0, 2, 1, 0, 1, 2], np.int32)
K = 3


def shift_inputs(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * rng.uniform(0.5, 2.0, size=shape[-1]) + rng.normal(size=shape[-1])
    noise = rng.normal(size=(2, shape[0], shape[-1]))
    probe = rng.normal(size=shape)  # the scalar tested is sum(probe * shift(x)): every output entry counts
    return x, noise, probe


@pytest.mark.parametrize("shape", [(8, 2, 3, 3), (8, 4, 3)])  # CNN [B, H, W, U] and ViT [B, T, U] features
@pytest.mark.parametrize("method", ["cdsm", "dsu"])
def test_domain_shift_gradient_flows_through_every_statistic(method, shape):
    """d/dx and d/d(noise) of sum(G * shift(x)) against finite differences of Eqs. 1-5 in float64:
    a detached mu, sigma or Sigma (or normalisation) changes the derivative, not the value."""
    x, noise, probe = shift_inputs(shape, seed=3)

    def ours(x_, noise_):
        if method == "cdsm":
            out = ds.cdsm_with_noise(x_, jnp.asarray(LABELS), K, noise_)
        else:
            out = ds.dsu_with_noise(x_, noise_)
        return jnp.sum(jnp.asarray(probe, jnp.float32) * out)

    def oracle(x_, noise_):
        out = np_cdsm(x_, LABELS, K, noise_) if method == "cdsm" else np_dsu(x_, noise_)
        return float(np.sum(probe * out))

    g_x, g_noise = jax.grad(ours, argnums=(0, 1))(jnp.asarray(x, jnp.float32), jnp.asarray(noise, jnp.float32))
    assert_gradient(g_x, central_differences(lambda v: oracle(v, noise), x), err_msg="d/d features")
    assert_gradient(g_noise, central_differences(lambda v: oracle(x, v), noise), err_msg="d/d noise")


# ----------------------------------------------------------------------------- W_z and W_c (Eqs. 6-7, 10)
def test_attention_weights_pass_no_gradient_though_they_depend_on_every_view():
    """W_z and W_c are under stop_gradient: jax's derivative is exactly 0 while the oracle's weights
    change with each of v1, v2, vd (so a zero from a flat function is excluded)."""
    rng = np.random.default_rng(4)
    views = [rng.normal(size=(5, 4)) for _ in range(3)]
    probe = rng.normal(size=(5, 5))
    for name, fn, items in (("W_z", gl.attention_weights, views),
                            ("W_c", gl.distribution_attention_weights, [v.T for v in views])):
        for i in range(3):
            def ours(v, i=i, fn=fn, items=items):
                args = [jnp.asarray(a, jnp.float32) for a in items]
                args[i] = v
                return jnp.sum(jnp.asarray(probe, jnp.float32) * fn(*args))

            g = jax.grad(ours)(jnp.asarray(items[i], jnp.float32))
            np.testing.assert_array_equal(np.asarray(g), 0.0, err_msg=f"{name} passes gradient to view {i}")

            def oracle(v, i=i, items=items, columns=name == "W_c"):
                args = list(items)
                args[i] = v
                return float(np.sum(probe * attention_weights(*[a.T if columns else a for a in args])))

            assert np.abs(central_differences(oracle, items[i])).max() > 1e-2, (name, i)


# ----------------------------------------------------------------------------- the objectives, end to end
B, M, F, T = 6, 4, 4, 3
_RNG = np.random.default_rng(11)
Z1, Z2 = _RNG.normal(size=(B, M)), _RNG.normal(size=(B, M))
# View 1's cluster logits give pseudo labels 0, 0, 1, 1, 2, 2 with wide margins (constant under the
# finite-difference steps): CDSM's clusters all have two members.
L1 = np.eye(K)[[0, 0, 1, 1, 2, 2]] * 3.0 + _RNG.normal(size=(B, K)) * 0.3
L2 = _RNG.normal(size=(B, K))
FEAT = _RNG.normal(size=(B, T, F))  # the reference view's backbone features, before the shift hook
HEAD_Z, HEAD_C = _RNG.normal(size=(F, M)), _RNG.normal(size=(F, K)) * 2
NOISE = _RNG.normal(size=(2, B, F))
PARAMS = {"z1": Z1, "z2": Z2, "l1": L1, "l2": L2, "feat": FEAT}


def _unit(x):
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


class OutputsAreParameters(nn.Module):
    """A model whose outputs are its parameters (so d loss / d params = d loss / d outputs):
    views 1 and 2 from the two-view call; the reference view from the one-view call, as features
    [B, T, F] that go through the shift hook, are averaged over T and projected by fixed heads."""

    @nn.compact
    def __call__(self, views: Sequence[jax.Array], anchors=None, *, train: bool, shift_hook=None):
        p = {k: self.param(k, lambda _, v=v: jnp.asarray(v, jnp.float32)) for k, v in PARAMS.items()}
        if len(views) == 2:
            return [dict(z=_unit(p["z1"]), c=jax.nn.softmax(p["l1"])), dict(z=_unit(p["z2"]), c=jax.nn.softmax(p["l2"]))]
        x = p["feat"]
        if shift_hook is not None:
            x = shift_hook(x, 0)
        h = jnp.mean(x, axis=1)  # [B, F]
        return [dict(z=_unit(h @ jnp.asarray(HEAD_Z, jnp.float32)), c=jax.nn.softmax(h @ jnp.asarray(HEAD_C, jnp.float32)))]


def np_unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def objective_gradient(method: str, reference: str = "cdsm"):
    """jax.grad of the method's real loss_fn (config-driven wiring) w.r.t. the stand-in's parameters."""
    c = get_base_config()
    c.method = method
    c.num_epochs = 10
    c.augment = tiny_grayscale_augment()
    c.loss.instance_temperature, c.loss.cluster_temperature = TAU_I, TAU_C
    c.gecc.reference, c.gecc.weights = reference, "both"
    c.gecc.schedule_stages = 1  # t = 1: the hook shifts at every call
    c.gecc.lambda_instance, c.gecc.lambda_cluster = 0.7, 1.3
    model = OutputsAreParameters()
    images = jnp.asarray(np.random.default_rng(0).integers(0, 255, (B, 8, 8, 1)), jnp.uint8)
    params = model.init(jax.random.key(0), [images], train=False)["params"]
    method_module = objective if method == "gecc" else cc

    def loss(p):
        return method_module.loss_fn(p, {}, model=model, config=c, images=images, anchors=None,
                                     rng=jax.random.key(1), epoch=jnp.int32(0))[0]

    return jax.device_get(jax.jit(jax.grad(loss))(params))


def np_gecc_total(p: dict, reference: str, w_z: np.ndarray, w_c: np.ndarray, labels: np.ndarray) -> float:
    """Eq. 14 in float64 (tests/gecc_paper_oracle.py's terms) with W_z, W_c and the labels given (constants)."""
    z1, z2 = np_unit(p["z1"]), np_unit(p["z2"])
    c1, c2 = np_softmax(p["l1"]), np_softmax(p["l2"])
    x = np_cdsm(p["feat"], labels, K, NOISE) if reference == "cdsm" else np_dsu(p["feat"], NOISE)
    h = x.mean(1)
    zd, cd = np_unit(h @ HEAD_Z), np_softmax(h @ HEAD_C)
    u1, u2, ud = _unit_columns(c1), _unit_columns(c2), _unit_columns(cd)
    instance = _pair_loss(z1, z2, w_z, TAU_I, "row") + _pair_loss(z1, zd, w_z, TAU_I, "row")
    cluster = _pair_loss(u1, u2, w_c, TAU_C, "row") + _pair_loss(u1, ud, w_c, TAU_C, "row")
    entropy = _entropy_term(c1) + _entropy_term(c2) + _entropy_term(cd)
    return 0.7 * instance + 1.3 * (cluster + entropy)


@pytest.mark.parametrize("reference", ["cdsm", "dsu"])
def test_gecc_objective_gradient_holds_the_weights_and_labels_constant_and_flows_through_the_shift(
        reference, monkeypatch):
    """GeCC's loss_fn (view 1, 2 and the shifted reference view, weights, losses as the objective wires
    them) against the finite difference of Eq. 14 with W_z, W_c and the pseudo labels frozen at the
    evaluation point and everything else live, CDSM/DSU included."""
    monkeypatch.setattr(ds, "statistics_noise", lambda rng, features: jnp.asarray(NOISE, jnp.float32))
    got = objective_gradient("gecc", reference)
    labels = np.argmax(L1, axis=1)
    base = PARAMS
    h = (np_cdsm(FEAT, labels, K, NOISE) if reference == "cdsm" else np_dsu(FEAT, NOISE)).mean(1)
    zd, cd = np_unit(h @ HEAD_Z), np_softmax(h @ HEAD_C)
    w_z = attention_weights(np_unit(Z1), np_unit(Z2), zd)
    w_c = attention_weights(np_softmax(L1).T, np_softmax(L2).T, cd.T)
    for name in PARAMS:
        def total(v, name=name):
            return np_gecc_total({**base, name: v}, reference, w_z, w_c, labels)

        assert_gradient(got[name], central_differences(total, base[name]), rtol=2e-4, err_msg=name)


def test_cc_objective_gradient_matches_the_finite_difference_of_cc():
    """CC's loss_fn (instance and cluster NT-Xent, entropy terms) against CC's equations in float64."""
    got = objective_gradient("cc")

    def total(p):
        z1, z2 = np_unit(p["z1"]), np_unit(p["z2"])
        c1, c2 = np_softmax(p["l1"]), np_softmax(p["l2"])
        return (_nt_xent(z1, z2, TAU_I) + _nt_xent(_unit_columns(c1), _unit_columns(c2), TAU_C)
                + _entropy_term(c1) + _entropy_term(c2))

    for name in ("z1", "z2", "l1", "l2"):
        want = central_differences(lambda v, name=name: total({**PARAMS, name: v}), PARAMS[name])
        assert_gradient(got[name], want, err_msg=name)
    np.testing.assert_array_equal(got["feat"], 0.0)  # CC has no reference view


# ----------------------------------------------------------------------------- the fusing ViT's split
VIT = dict(embed_dim=8, depth=2, num_heads=2, patch_size=2, mlp_ratio=2.0)  # block 0 per branch, block 1 fused


def float64_attention(q, k, v):
    """softmax(q k^T / sqrt(D)) v per head, in the inputs' dtype: jax.nn.dot_product_attention takes
    its softmax in float32 whatever the inputs, which would drown a float64 finite difference."""
    logits = jnp.einsum("nthd,nshd->nhts", q, k) / np.sqrt(q.shape[-1])
    return jnp.einsum("nhts,nshd->nthd", jax.nn.softmax(logits, axis=-1), v)


def vit_branch_outputs(fusion: str):
    """f(variables, view_a, view_b) -> the final LayerNorm's output per branch [B, 2, E] in float64
    (before the model's float32 cast), BatchNorm on batch statistics; and float64 variables and views."""
    model = FusingViT(**VIT, num_fusing_blocks=1, fusion=fusion, dtype=jnp.float64)
    rng = np.random.default_rng(2)
    views = [rng.normal(size=(2, 4, 4, 1)) for _ in range(2)]
    variables = model.init(jax.random.key(0), [jnp.asarray(v) for v in views], None, train=False)
    variables = jax.tree.map(lambda w: np.asarray(w, np.float64) + 0.1 * rng.normal(size=w.shape), variables)

    def f(v, a, b):
        _, state = model.apply(v, [a, b], None, train=True, mutable=["batch_stats", "intermediates"],
                               capture_intermediates=lambda mdl, _: mdl.name == "norm")
        (out,) = state["intermediates"]["norm"]["__call__"]  # [2B, E], rows 2m and 2m + 1: branches a, b
        return out.reshape(-1, 2, out.shape[-1])

    return f, variables, views


@pytest.mark.parametrize("fusion", ["tokens", "none"])
def test_fusing_vit_gradient_reaches_both_branches_through_the_fused_block_only(fusion, monkeypatch):
    """d/d(view a, view b) of each branch's output, and the derivative along a random direction of all
    parameters, against float64 finite differences of the model. Through the fused block
    (Cat -> f -> Spl) branch a's output takes gradient from view b and the reverse; with
    fusion='none' that cross-branch derivative is exactly 0."""
    monkeypatch.setattr(jax.nn, "dot_product_attention", float64_attention)
    with jax.enable_x64(True):
        f, variables, views = vit_branch_outputs(fusion)
        probe = jnp.asarray(np.random.default_rng(5).normal(size=(2, 2, VIT["embed_dim"])))
        a, b = (jnp.asarray(v) for v in views)

        def per_branch(v, a, b):  # [2]: sum(probe * output) of branch a, of branch b
            return jnp.sum(probe * f(v, a, b), axis=(0, 2))

        jac = jax.jit(jax.jacrev(per_branch, argnums=(1, 2)))(variables, a, b)  # per view: [branch, B, S, S, C]
        # Every entry of both views perturbed by +-eps, as one vmapped batch of forward passes.
        eps, n = 1e-5, a.size
        steps = jnp.eye(2 * n).reshape(2 * n, 2, *a.shape) * eps  # [2n, 2 views, B, S, S, C]
        batched = jax.jit(jax.vmap(per_branch, in_axes=(None, 0, 0)))
        fd = (batched(variables, a + steps[:, 0], b + steps[:, 1])
              - batched(variables, a - steps[:, 0], b - steps[:, 1])) / (2 * eps)  # [2n, branch]
        fd = np.asarray(fd).T.reshape(2, 2, *a.shape)  # [branch, view, B, S, S, C]
        for branch in (0, 1):
            for view in (0, 1):
                got, want = np.asarray(jac[view][branch]), fd[branch, view]
                if fusion == "none" and view != branch:
                    np.testing.assert_array_equal(got, 0.0, err_msg=f"branch {branch}, view {view}")
                    assert np.abs(want).max() < 1e-8
                else:
                    assert np.abs(want).max() > 1e-3
                    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7 * np.abs(want).max(),
                                               err_msg=f"branch {branch}, view {view}")
        # Along a random direction of all parameters at once (every block's weights, the stem's, ...).
        direction = jax.tree.map(lambda w: np.random.default_rng(6).normal(size=w.shape), variables)
        along = jax.jit(lambda t: per_branch(jax.tree.map(lambda w, d: w + t * d, variables, direction), a, b))
        _, analytic = jax.jit(lambda v, d: jax.jvp(lambda v_: per_branch(v_, a, b), (v,), (d,)))(variables, direction)
        np.testing.assert_allclose(analytic, (along(1e-5) - along(-1e-5)) / 2e-5, rtol=1e-6)
