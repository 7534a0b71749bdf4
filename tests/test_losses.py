"""CC's losses against a direct float64 numpy transcription of the paper's equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ccjax.errors import UserError
from ccjax.methods.cc import cc_losses, cluster_contrastive_loss
from ccjax.methods.contrastive import nt_xent as instance_contrastive_loss  # CC's L_ins is NT-Xent on z
from ccjax.methods.contrastive import cluster_entropy_term, weighted_nt_xent

B, D, K = 8, 16, 4
TAU_I, TAU_C = 0.5, 1.0


# ---------------------------------------------------------------- numpy oracle (float64, loops)

def np_nt_xent(a, b, tau, sim, include_self=False):
    """Mean over the 2N anchors of -log(exp(s(anchor, positive)/tau) / sum_{j != anchor} exp(s(anchor, j)/tau))."""
    x = np.concatenate([a, b]).astype(np.float64)
    n = len(a)
    per_anchor = []
    for i in range(2 * n):
        pos = i + n if i < n else i - n
        num = np.exp(sim(x[i], x[pos]) / tau)
        den = sum(np.exp(sim(x[i], x[j]) / tau) for j in range(2 * n) if j != i or include_self)
        per_anchor.append(-np.log(num / den))
    return float(np.sum(per_anchor) / (2 * n)), np.array(per_anchor)


def dot(u, v):
    return float(np.dot(u, v))


def cosine(u, v):
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


def np_instance(z_a, z_b, tau, **kw):
    return np_nt_xent(z_a, z_b, tau, dot, **kw)[0]


def np_cluster(c_a, c_b, tau):
    return np_nt_xent(c_a.T, c_b.T, tau, cosine)[0]


def np_entropy_term(c):
    c = c.astype(np.float64)
    p = c.sum(0) / c.sum()
    return float(np.log(c.shape[1]) + sum(pk * np.log(pk) for pk in p))


def random_inputs(seed, b=B, d=D, k=K):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(2, b, d))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    logits = rng.normal(size=(2, b, k)) * 2.0
    c = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return z[0].astype(np.float32), z[1].astype(np.float32), c[0].astype(np.float32), c[1].astype(np.float32)


# ---------------------------------------------------------------- equality with the oracle

@pytest.mark.parametrize("seed", [0, 1])
def test_losses_match_numpy_transcription(seed):
    z_a, z_b, c_a, c_b = random_inputs(seed)
    out = cc_losses(z_a, z_b, c_a, c_b, TAU_I, TAU_C)
    ref_inst = np_instance(z_a, z_b, TAU_I)
    ref_clu = np_cluster(c_a, c_b, TAU_C)
    ref_ent = np_entropy_term(c_a) + np_entropy_term(c_b)
    np.testing.assert_allclose(float(out["instance"]), ref_inst, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(out["cluster"]), ref_clu, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(out["entropy"]), ref_ent, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(out["total"]), ref_inst + ref_clu + ref_ent, rtol=1e-5, atol=1e-5)
    for v in out.values():
        assert v.dtype == jnp.float32 and v.shape == ()
    # The individual functions agree with the dict.
    np.testing.assert_allclose(float(instance_contrastive_loss(z_a, z_b, TAU_I)), ref_inst, rtol=1e-5)
    np.testing.assert_allclose(float(cluster_contrastive_loss(c_a, c_b, TAU_C)), ref_clu, rtol=1e-5)
    np.testing.assert_allclose(float(cluster_entropy_term(c_a)), np_entropy_term(c_a), rtol=1e-5, atol=1e-6)


def test_self_similarity_is_excluded():
    z_a, z_b, _, _ = random_inputs(3)
    got = float(instance_contrastive_loss(z_a, z_b, TAU_I))
    with_self = np_instance(z_a, z_b, TAU_I, include_self=True)
    # Including exp(1/tau) in every denominator would change the loss by far more than the tolerance.
    assert abs(with_self - got) > 1e-2
    np.testing.assert_allclose(got, np_instance(z_a, z_b, TAU_I), rtol=1e-5)


def test_hand_computed_small_case():
    # B = 1, tau = 1: with self excluded each anchor's only candidate is its positive -> loss 0.
    z_a = np.array([[1.0, 0.0]], np.float32)
    z_b = np.array([[0.0, 1.0]], np.float32)
    assert abs(float(instance_contrastive_loss(z_a, z_b, 1.0))) < 1e-7
    # B = 2, identical views e1, e2: anchor a_1 sees b_1 (s=1), a_2 (s=0), b_2 (s=0):
    # loss = -log(e / (e + 2)) for every anchor.
    z = np.eye(2, dtype=np.float32)
    np.testing.assert_allclose(float(instance_contrastive_loss(z, z, 1.0)), -np.log(np.e / (np.e + 2)), rtol=1e-6)
    # Entropy term: uniform assignment -> 0; all mass on one of K=4 clusters -> log 4.
    assert abs(float(cluster_entropy_term(np.full((3, 4), 0.25, np.float32)))) < 1e-6
    one_hot = np.tile(np.array([[1.0, 0.0, 0.0, 0.0]], np.float32), (3, 1))
    np.testing.assert_allclose(float(cluster_entropy_term(one_hot)), np.log(4), rtol=1e-6)


def test_permutation_of_batch_leaves_losses_unchanged():
    z_a, z_b, c_a, c_b = random_inputs(4)
    perm = np.random.default_rng(0).permutation(B)
    a = cc_losses(z_a, z_b, c_a, c_b, TAU_I, TAU_C)
    b = cc_losses(z_a[perm], z_b[perm], c_a[perm], c_b[perm], TAU_I, TAU_C)
    for key in a:
        np.testing.assert_allclose(float(a[key]), float(b[key]), rtol=1e-5, atol=1e-6)


def test_bfloat16_inputs_are_computed_in_float32():
    z_a, z_b, c_a, c_b = random_inputs(5)
    low = [jnp.asarray(x, jnp.bfloat16) for x in (z_a, z_b, c_a, c_b)]
    out = cc_losses(*low, TAU_I, TAU_C)
    ref = cc_losses(*[np.asarray(x.astype(jnp.float32)) for x in low], TAU_I, TAU_C)
    for key in out:
        assert out[key].dtype == jnp.float32
        np.testing.assert_allclose(float(out[key]), float(ref[key]), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- sharding and gradients

def test_sharded_jit_equals_single_device():
    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    sharding = NamedSharding(mesh, P("data"))
    inputs = random_inputs(6)
    sharded = [jax.device_put(x, sharding) for x in inputs]
    assert len(sharded[0].addressable_shards) == 4 and sharded[0].addressable_shards[0].data.shape == (B // 4, D)
    fn = jax.jit(lambda za, zb, ca, cb: cc_losses(za, zb, ca, cb, TAU_I, TAU_C))
    got = fn(*sharded)
    single = [jax.device_put(x, jax.devices()[0]) for x in inputs]
    ref = fn(*single)
    for key in ref:
        np.testing.assert_allclose(float(got[key]), float(ref[key]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(float(got["total"]), np_instance(*inputs[:2], TAU_I) + np_cluster(*inputs[2:], TAU_C)
                               + np_entropy_term(inputs[2]) + np_entropy_term(inputs[3]), rtol=1e-5)


def test_gradients_are_finite_even_for_extreme_inputs():
    z_a, z_b, c_a, c_b = random_inputs(7)
    # A cluster no sample uses at all (exact zero column) and a sharp temperature.
    c_a = c_a.copy()
    c_a[:, 0] = 0.0
    c_a /= c_a.sum(1, keepdims=True)

    def total(za, zb, ca, cb):
        return cc_losses(za, zb, ca, cb, 0.05, 0.05)["total"]

    value, grads = jax.value_and_grad(total, argnums=(0, 1, 2, 3))(z_a, z_b, c_a, c_b)
    assert np.isfinite(float(value))
    for g in grads:
        assert np.isfinite(np.asarray(g)).all()
        assert np.abs(np.asarray(g)).sum() > 0


# ---------------------------------------------------------------- the weighted primitive

def test_weighted_nt_xent_with_unit_weights_is_unweighted_nt_xent():
    z_a, z_b, _, _ = random_inputs(8)
    _, ref_per_anchor = np_nt_xent(z_a, z_b, TAU_I, dot)  # [2B]: view-a anchors first
    s_ab, s_aa = z_a @ z_b.T, z_a @ z_a.T
    ones_n, ones_nn = np.ones(B, np.float32), np.ones((B, B), np.float32)
    default = weighted_nt_xent(s_ab, s_aa, TAU_I)
    explicit = weighted_nt_xent(s_ab, s_aa, TAU_I, ones_n, ones_nn, ones_nn)
    assert default.shape == (B,) and default.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(default), ref_per_anchor[:B], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(explicit), ref_per_anchor[:B], rtol=1e-5)
    view_b = weighted_nt_xent(s_ab.T, z_b @ z_b.T, TAU_I)
    np.testing.assert_allclose(np.asarray(view_b), ref_per_anchor[B:], rtol=1e-5)
    np.testing.assert_allclose(float((default.sum() + view_b.sum()) / (2 * B)),
                               float(instance_contrastive_loss(z_a, z_b, TAU_I)), rtol=1e-6)


def test_weighted_nt_xent_matches_its_formula():
    rng = np.random.default_rng(9)
    n, tau = 5, 0.3
    s_ab, s_aa = rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))
    p, w, v = rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, (n, n)), rng.uniform(0.5, 2, (n, n))
    w[0, 3] = 0.0  # a zero weight removes that term
    expected = []
    for i in range(n):
        num = p[i] * np.exp(s_ab[i, i] / tau)
        den = sum(w[i, j] * np.exp(s_ab[i, j] / tau) for j in range(n))
        den += sum(v[i, j] * np.exp(s_aa[i, j] / tau) for j in range(n) if j != i)
        expected.append(-np.log(num / den))
    args = [x.astype(np.float32) for x in (s_ab, s_aa)]
    got = weighted_nt_xent(*args, tau, p.astype(np.float32), w.astype(np.float32), v.astype(np.float32))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)
    grads = jax.grad(lambda w_: weighted_nt_xent(*args, tau, None, w_, None).sum())(w.astype(np.float32))
    assert np.isfinite(np.asarray(grads)).all()


def test_non_positive_temperature_is_a_user_error():
    """The temperatures are checked once, with the config (cc.check_config, which GeCC's calls too): a check
    that lets 0 through would train on inf/nan logits."""
    from ccjax.config import get_base_config
    from ccjax.methods import check_method_config

    for method in ("cc", "gecc"):
        for field in ("instance_temperature", "cluster_temperature"):
            config = get_base_config()
            config.method = method
            config.loss[field] = 0.0
            with pytest.raises(UserError, match=f"loss.{field}=0.0 must be > 0"):
                check_method_config(config)


# ---------------------------------------------------------------- CC's objective: which views reach the losses


def test_cc_objective_hands_view_1_and_view_2_to_the_losses():
    """View 1 is config.augment's pipeline, view 2 config.augment + augment2 (here: solarized); the
    losses get (view 1, view 2) in that order. Deterministic pipelines make both views known exactly."""
    import flax.linen as nn

    from ccjax.augment import preprocess_eval
    from ccjax.config import get_base_config, view_augment_config
    from ccjax.methods import cc

    c = get_base_config()
    c.augment.update(image_size=4, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0,
                     grayscale_p=0.0, blur_p=0.0, solarize_p=0.0, noise_std=0.0, mean=(0.0,), std=(1.0,))
    c.augment2.solarize_p = 1.0  # view 2 = view 1 solarized (x >= 0.5 -> 1 - x)
    images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (B, 4, 4, 1)), jnp.uint8)
    x1, x2 = cc.two_views(images, jax.random.key(0), c)
    want1 = np.asarray(preprocess_eval(images, view_augment_config(c, 1)))
    np.testing.assert_allclose(np.asarray(x1), want1, atol=1e-6)
    np.testing.assert_allclose(np.asarray(x2), np.where(want1 >= 0.5, 1.0 - want1, want1), atol=1e-6)

    class ViewModel(nn.Module):  # z and c are fixed functions of each view's pixels
        @nn.compact
        def __call__(self, views, anchors=None, *, train):
            w = self.param("w", lambda k: jax.random.normal(k, (16, D + K)))
            outs = []
            for v in views:
                y = v.reshape(v.shape[0], -1) @ w
                outs.append(dict(z=y[:, :D] / jnp.linalg.norm(y[:, :D], axis=1, keepdims=True),
                                 c=jax.nn.softmax(y[:, D:]), h=y))
            return outs

    model = ViewModel()
    params = model.init(jax.random.key(1), [x1], train=False)["params"]
    loss, (metrics, _) = cc.loss_fn(params, {}, model=model, config=c, images=images, anchors=None,
                                    rng=jax.random.key(0), epoch=0)
    a, b = model.apply({"params": params}, [jnp.asarray(want1), jnp.asarray(np.asarray(x2))], train=False)
    want = cc.cc_losses(a["z"], b["z"], a["c"], b["c"], c.loss.instance_temperature, c.loss.cluster_temperature)
    for k in ("instance", "cluster", "entropy", "total"):
        np.testing.assert_allclose(float(metrics[k]), float(want[k]), rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(want["total"]), rtol=1e-5)
