"""CDSM / DSU (ccjax.methods.gecc.domain_shift) against float64 numpy transcriptions of GeCC's Eqs. 1-5."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ccjax.methods.gecc import domain_shift as ds

EPS = 1e-6


# ----------------------------------------------------------------------------- numpy oracles
def np_channel_stats(x):
    """Eq. 1, one sample and channel at a time."""
    b, u = x.shape[0], x.shape[-1]
    flat = x.reshape(b, -1, u).astype(np.float64)
    mu = np.zeros((b, u))
    sd = np.zeros((b, u))
    for i in range(b):
        for c in range(u):
            v = flat[i, :, c]
            mu[i, c] = v.sum() / v.size
            sd[i, c] = np.sqrt(((v - mu[i, c]) ** 2).sum() / v.size + EPS)
    return mu, sd


def np_cluster_std(values, labels, k):
    """Eq. 5 with an explicit loop over clusters: Sigma_k = population std over the members."""
    out = np.zeros((k, values.shape[1]))
    counts = np.zeros(k)
    for c in range(k):
        members = values[labels == c]
        counts[c] = len(members)
        if len(members) == 0:
            continue
        centre = members.sum(0) / len(members)
        out[c] = np.sqrt(((members - centre) ** 2).sum(0) / len(members))
    return out, counts


def np_shift(x, mu, sd, s_mu, s_sd, noise):
    """Eqs. 3-4 for per-sample Sigma [B, U]."""
    beta = mu + noise[0] * s_mu
    gamma = sd + noise[1] * s_sd
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
    return gamma.reshape(shape) * (x - mu.reshape(shape)) / sd.reshape(shape) + beta.reshape(shape)


def np_cdsm(x, labels, k, noise):
    x = x.astype(np.float64)
    mu, sd = np_channel_stats(x)
    s_mu_k, _ = np_cluster_std(mu, labels, k)
    s_sd_k, _ = np_cluster_std(sd, labels, k)
    s_mu = np.stack([s_mu_k[l] for l in labels])
    s_sd = np.stack([s_sd_k[l] for l in labels])
    return np_shift(x, mu, sd, s_mu, s_sd, noise)


def np_dsu(x, noise):
    """Eq. 2: one Sigma over the whole batch."""
    x = x.astype(np.float64)
    mu, sd = np_channel_stats(x)
    s_mu = np.sqrt(((mu - mu.mean(0)) ** 2).mean(0))
    s_sd = np.sqrt(((sd - sd.mean(0)) ** 2).mean(0))
    return np_shift(x, mu, sd, np.broadcast_to(s_mu, mu.shape), np.broadcast_to(s_sd, sd.shape), noise)


# ----------------------------------------------------------------------------- fixtures
# 8 samples, 5 clusters: cluster 0 has 4 members, 1 has 3, 2 has one, 3 and 4 are empty.
LABELS = np.array([0, 1, 0, 2, 1, 0, 1, 0], np.int32)
K = 5


def features(shape, seed=0):
    rng = np.random.default_rng(seed)
    # channel-specific scales and offsets so the statistics differ between samples
    return (rng.normal(size=shape) * rng.uniform(0.5, 2.0, size=shape[-1]) + rng.normal(size=shape[-1])).astype(np.float32)


def noise_for(x, seed=1):
    return np.random.default_rng(seed).normal(size=(2, x.shape[0], x.shape[-1])).astype(np.float32)


# ----------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("shape", [(8, 3, 4, 6), (8, 5, 6)])  # CNN [B,H,W,U] and ViT [B,T,U]
def test_channel_statistics_match_eq1(shape):
    x = features(shape)
    mu, sd = ds.channel_statistics(jnp.asarray(x))
    ref_mu, ref_sd = np_channel_stats(x)
    np.testing.assert_allclose(mu, ref_mu, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sd, ref_sd, rtol=1e-5, atol=1e-5)


def test_cluster_std_matches_per_cluster_loop_with_empty_and_singletons():
    v = features((8, 6), seed=3)
    sigma, counts = ds.cluster_std(jnp.asarray(v), jnp.asarray(LABELS), K)
    ref, ref_counts = np_cluster_std(v.astype(np.float64), LABELS, K)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_allclose(sigma, ref, rtol=1e-5, atol=1e-6)
    assert ref_counts.tolist() == [4, 3, 1, 0, 0]
    np.testing.assert_array_equal(np.asarray(sigma)[2:], 0.0)  # singleton and empty: exactly 0


def test_batch_std_matches_eq2():
    v = features((8, 6), seed=4).astype(np.float64)
    ref = np.sqrt(((v - v.mean(0)) ** 2).sum(0) / len(v))
    np.testing.assert_allclose(ds.batch_std(jnp.asarray(v, jnp.float32)), ref, rtol=1e-5)


# ----------------------------------------------------------------------------- shifted features
@pytest.mark.parametrize("shape", [(8, 3, 4, 6), (8, 5, 6)])
def test_cdsm_matches_numpy(shape):
    x = features(shape, seed=5)
    noise = noise_for(x)
    out = ds.cdsm_with_noise(jnp.asarray(x), jnp.asarray(LABELS), K, jnp.asarray(noise))
    ref = np_cdsm(x, LABELS, K, noise.astype(np.float64))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    # the single member of cluster 2 is not shifted (Sigma = 0 -> beta = mu, gamma = sigma)
    np.testing.assert_allclose(np.asarray(out)[3], x[3], rtol=1e-5, atol=1e-5)
    # the others are
    assert np.abs(np.asarray(out)[0] - x[0]).max() > 1e-2


def test_cdsm_draws_its_noise_from_the_key():
    x = jnp.asarray(features((8, 3, 4, 6), seed=6))
    key = jax.random.key(3)
    a = ds.cdsm(x, jnp.asarray(LABELS), K, key)
    b = ds.cdsm_with_noise(x, jnp.asarray(LABELS), K, ds.statistics_noise(key, x))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, ds.cdsm(x, jnp.asarray(LABELS), K, jax.random.key(4)))


@pytest.mark.parametrize("shape", [(8, 3, 4, 6), (8, 5, 6)])
def test_dsu_matches_numpy(shape):
    x = features(shape, seed=7)
    noise = noise_for(x, seed=2)
    out = ds.dsu_with_noise(jnp.asarray(x), jnp.asarray(noise))
    np.testing.assert_allclose(out, np_dsu(x, noise.astype(np.float64)), rtol=1e-4, atol=1e-4)


def test_dsu_is_cdsm_with_one_cluster():
    x = jnp.asarray(features((8, 5, 6), seed=8))
    noise = jnp.asarray(noise_for(x))
    np.testing.assert_allclose(
        ds.dsu_with_noise(x, noise), ds.cdsm_with_noise(x, jnp.zeros(8, jnp.int32), 1, noise), rtol=1e-6, atol=1e-6
    )


def test_no_nan_in_values_or_gradients_with_empty_singleton_and_constant_channels():
    x = features((8, 3, 4, 6), seed=9)
    x[:, :, :, 2] = 0.0  # a dead (all-zero) channel: sigma = sqrt(eps)
    x[4] = 1.5  # a constant sample
    labels = jnp.asarray([0, 0, 2, 2, 3, 0, 2, 0], jnp.int32)  # cluster 3 singleton, 1/4/5 empty
    noise = jnp.asarray(noise_for(x))

    def f(x_):
        return jnp.sum(jnp.sin(ds.cdsm_with_noise(x_, labels, 6, noise)))

    val, grad = jax.value_and_grad(f)(jnp.asarray(x))
    assert np.isfinite(val) and np.all(np.isfinite(grad))
    g_dsu = jax.grad(lambda x_: jnp.sum(jnp.sin(ds.dsu_with_noise(x_, noise))))(jnp.asarray(x))
    assert np.all(np.isfinite(g_dsu))
    # all samples in one singleton cluster each: nothing moves, gradient is finite
    out = ds.cdsm_with_noise(jnp.asarray(x), jnp.arange(8), 8, noise)
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_bfloat16_features_keep_their_dtype():
    x = jnp.asarray(features((8, 3, 4, 6)), jnp.bfloat16)
    out = ds.cdsm(x, jnp.asarray(LABELS), K, jax.random.key(0))
    assert out.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(out, np.float32)))


# ----------------------------------------------------------------------------- hooks and schedule
def test_hooks_with_probability_zero_are_the_identity_and_one_always_shift():
    x = jnp.asarray(features((8, 3, 4, 6), seed=10))
    key = jax.random.key(0)
    for make in (lambda p: ds.make_cdsm_hook(jnp.asarray(LABELS), K, key, p), lambda p: ds.make_dsu_hook(key, p)):
        off, on = make(0.0), make(1.0)
        for layer in range(4):
            np.testing.assert_array_equal(off(x, layer), x)
            assert np.abs(np.asarray(on(x, layer)) - np.asarray(x)).max() > 1e-2
    # different layers get different noise
    on = ds.make_cdsm_hook(jnp.asarray(LABELS), K, key, 1.0)
    assert not np.allclose(on(x, 0), on(x, 1))


def test_hook_applies_to_the_whole_batch_with_probability_t_per_layer():
    x = jnp.asarray(features((8, 2, 2, 3), seed=11))
    hook = ds.make_dsu_hook(jax.random.key(5), 0.3)
    outs = jax.jit(jax.vmap(lambda layer: hook(x, layer)))(jnp.arange(200))  # [200, B, ...], traced index
    moved = np.abs(np.asarray(outs) - np.asarray(x)[None]).max(axis=(2, 3, 4)) > 1e-4  # [200, B]
    assert np.all(moved.all(1) | ~moved.any(1))  # one coin for the whole batch
    applied = moved.all(1)
    assert 0.2 < np.mean(applied) < 0.4  # Binomial(200, 0.3): sd 0.032


def test_probability_schedule():
    t = lambda e, n, s=10: float(ds.probability_schedule(jnp.int32(e), n, s))  # noqa: E731
    # the paper: E = 1000, t = 0.1 * (epoch // 100 + 1)
    assert [t(e, 1000) for e in (0, 99, 100, 550, 899, 900, 999)] == pytest.approx([0.1, 0.1, 0.2, 0.6, 0.9, 1.0, 1.0])
    assert t(1500, 1000) == pytest.approx(1.0)  # capped
    # E = 15: stage length max(1, 15 // 10) = 1, t reaches 1 at epoch 9
    assert [t(e, 15) for e in (0, 1, 8, 9, 14)] == pytest.approx([0.1, 0.2, 0.9, 1.0, 1.0])
    assert [t(e, 100, 4) for e in (0, 24, 25, 75, 99)] == pytest.approx([0.25, 0.25, 0.5, 1.0, 1.0])
    assert t(999, 1000) == 1.0  # exactly
    # One stage (gecc.schedule_stages=1): t = 1 from the first epoch; no stages at all is an error.
    assert [t(e, 10, 1) for e in (0, 5, 9)] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="stages must be >= 1"):
        t(0, 10, 0)


# ----------------------------------------------------------------------------- sharding
def test_cdsm_on_a_4_device_mesh_equals_unsharded():
    devices = jax.devices()
    assert len(devices) == 4, "tests/conftest.py sets 4 CPU devices"
    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    x = features((8, 3, 4, 6), seed=12)
    key = jax.random.key(7)
    f = jax.jit(lambda x_, l_: ds.make_cdsm_hook(l_, K, key, 1.0)(x_, 2))
    g = jax.jit(lambda x_: ds.make_dsu_hook(key, 1.0)(x_, 1))
    single = f(jnp.asarray(x), jnp.asarray(LABELS))
    single_dsu = g(jnp.asarray(x))
    sharding = NamedSharding(mesh, P("data"))
    xs = jax.device_put(x, sharding)
    ls = jax.device_put(LABELS, sharding)
    sharded = f(xs, ls)
    assert len(sharded.sharding.device_set) == 4
    np.testing.assert_allclose(sharded, single, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g(xs), single_dsu, rtol=1e-6, atol=1e-6)
    # and both equal the numpy oracle on the global batch
    ref = np_cdsm(x, LABELS, K, np.asarray(ds.statistics_noise(jax.random.split(jax.random.fold_in(key, 2))[1], x), np.float64))
    np.testing.assert_allclose(sharded, ref, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- pseudo labels and positions


def test_each_samples_shift_follows_its_own_clusters_spread():
    """Eqs. 3-5: the shifted per-sample mean is mu_b + eps_b * Sigma_mu(cluster of b), with Sigma_mu the
    std over that cluster's members only. Cluster 0's members have nearly equal means, cluster 1's very
    different ones, so the labels CDSM is given decide every sample's shift (oracle: numpy stds here)."""
    rng = np.random.default_rng(3)
    b, u = 12, 3
    labels = np.array([0, 1] * (b // 2))
    offsets = np.where(labels[:, None] == 0, rng.normal(0, 0.01, (b, u)), rng.normal(0, 3.0, (b, u)))
    x = 0.05 * rng.normal(size=(b, 5, 5, u)) + offsets[:, None, None, :]
    noise = np.stack([rng.normal(size=(b, u)), np.zeros((b, u))])  # only eps_mu: the spread of beta
    out = np.asarray(ds.cdsm_with_noise(jnp.asarray(x, jnp.float32), jnp.asarray(labels), 2,
                                        jnp.asarray(noise, jnp.float32)))
    mu = x.mean(axis=(1, 2))  # [B, U]
    sigma_mu = np.stack([mu[labels == k].std(axis=0) for k in (0, 1)])  # [K, U], population std
    want = mu + noise[0] * sigma_mu[labels]
    np.testing.assert_allclose(out.mean(axis=(1, 2)), want, rtol=1e-4, atol=1e-4)
    shift = np.abs(out.mean(axis=(1, 2)) - mu).mean(axis=1)
    assert shift[labels == 0].max() < 0.1 < shift[labels == 1].mean()  # small for the tight cluster
    # The same batch with one cluster (DSU) or another partition (first half / second half) shifts otherwise.
    dsu = np.asarray(ds.dsu_with_noise(jnp.asarray(x, jnp.float32), jnp.asarray(noise, jnp.float32)))
    one = np.asarray(ds.cdsm_with_noise(jnp.asarray(x, jnp.float32), jnp.zeros(b, jnp.int32), 1,
                                        jnp.asarray(noise, jnp.float32)))
    np.testing.assert_allclose(one, dsu, rtol=1e-5, atol=1e-5)  # one cluster is DSU
    assert np.abs(out - dsu).max() > 0.5  # real labels are not DSU
    halves = (np.arange(b) >= b // 2).astype(np.int32)
    wrong = np.asarray(ds.cdsm_with_noise(jnp.asarray(x, jnp.float32), jnp.asarray(halves), 2,
                                          jnp.asarray(noise, jnp.float32)))
    assert np.abs(wrong - out).max() > 0.5


def test_positions_switch_decides_which_layers_are_shifted():
    from ccjax.models.layers import STEM_LAYER

    x = jnp.asarray(features((8, 3, 4, 6), seed=12))
    key = jax.random.key(0)
    for positions in ds.POSITIONS:
        for hook in (ds.make_cdsm_hook(jnp.asarray(LABELS), K, key, 1.0, positions),
                     ds.make_dsu_hook(key, 1.0, positions)):
            stem_moved = np.abs(np.asarray(hook(x, STEM_LAYER)) - np.asarray(x)).max() > 1e-2
            assert stem_moved == (positions == "stem_and_stages")
            assert np.abs(np.asarray(hook(x, 0)) - np.asarray(x)).max() > 1e-2
            later_moved = np.abs(np.asarray(hook(x, 1)) - np.asarray(x)).max() > 1e-2
            assert later_moved == (positions != "first_stage")  # first_stage: after stage 0 only
    with pytest.raises(ValueError, match="positions"):
        ds.make_dsu_hook(key, 1.0, "everywhere")


@pytest.mark.parametrize("backbone", ["resnet18", "vit"])
def test_backbones_offer_the_stem_then_every_stage_to_the_hook(backbone):
    from ccjax.config import get_base_config
    from ccjax.models import build_model
    from ccjax.models.layers import STEM_LAYER

    c = get_base_config()
    c.model.backbone = backbone
    c.model.stem = "small"
    c.model.vit.embed_dim, c.model.vit.depth, c.model.vit.num_heads, c.model.vit.patch_size = 8, 3, 2, 4
    model = build_model(c, 3)
    x = jnp.zeros((2, 8, 8, 3))
    seen = []

    def hook(features, layer):
        seen.append(layer)
        return features

    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), [x], train=False))
    jax.eval_shape(lambda v: model.apply(v, [x], train=False, shift_hook=hook), variables)
    stages = 4 if backbone == "resnet18" else 3
    assert seen == [STEM_LAYER, *range(stages)]
