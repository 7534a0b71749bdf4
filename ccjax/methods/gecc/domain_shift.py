"""Feature-statistics domain shifts: GeCC's CDSM (Alg. 1, Eqs. 1, 3-5) and DSU (Eq. 2).

Pure functions of global arrays, plus factories for the backbone's
`shift_hook(features, layer_index) -> features`. Features are `[B, H, W, U]`
(CNN stage outputs) or `[B, T, U]` (ViT blocks); statistics are taken over all
axes between the batch axis and the channel axis (spatial positions, or
tokens). Under `jax.jit` with a batch-sharded input, the batch reductions
below become cross-device reductions, so the per-cluster statistics always
span the global batch.

Numerical choices (docs/gecc.md, "CDSM"):
- Eq. 1 and Eqs. 2/5 use the population (1/n) moments the paper writes; DSU's
  reference code uses PyTorch's unbiased `var`.
- The per-sample std is `sqrt(var + STD_EPS)` (DSU's code: eps 1e-6 inside
  the sqrt), so a constant channel does not divide by zero.
- The std of the statistics (Sigma in Eqs. 2/5) has no epsilon: a cluster with
  zero or one member has Sigma = 0 exactly and its members are not shifted
  (DSU's code adds 1e-6 there too, which would still shift them by ~1e-3).
  The square root is guarded so that its gradient at 0 is 0, not NaN.
- Nothing is detached, as in DSU's code: the gradient flows through mu, sigma,
  Sigma and the normalisation. Only the pseudo labels are constants (argmax).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ccjax.models.layers import STEM_LAYER, ShiftHook

STD_EPS = 1e-6  # inside the sqrt of the per-sample variance (Eq. 1), as DSU's code

_HIGHEST = jax.lax.Precision.HIGHEST  # TPU/GPU f32 matmuls default to reduced precision


def _safe_sqrt(x: jax.Array) -> jax.Array:
    """sqrt(x) for x >= 0 whose gradient at x == 0 is 0 instead of inf/NaN."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def channel_statistics(features: jax.Array, eps: float = STD_EPS) -> tuple[jax.Array, jax.Array]:
    """Eq. 1: per-sample, per-channel mean and std over spatial positions (or tokens).

    features: [B, ..., U]. Returns (mu, sigma), each float32 [B, U], with
    sigma = sqrt(population variance + eps).
    """
    if features.ndim < 3:
        raise ValueError(f"domain shifts need features [B, ..., U] with a spatial/token axis, got {features.shape}")
    x = features.astype(jnp.float32)
    axes = tuple(range(1, x.ndim - 1))
    mu = jnp.mean(x, axis=axes)  # [B, U]
    var = jnp.mean(jnp.square(x - jnp.expand_dims(mu, axes)), axis=axes)  # [B, U]
    return mu, jnp.sqrt(var + eps)


def cluster_std(values: jax.Array, labels: jax.Array, num_clusters: int) -> tuple[jax.Array, jax.Array]:
    """Eq. 5: per-cluster std (over the cluster's members) of a per-sample statistic.

    values: [B, U] float; labels: int [B] in [0, K). Returns (Sigma [K, U], counts [K]),
    Sigma_k = sqrt((1/b_k) sum_{b in k} (v_b - mean_k)^2); Sigma_k = 0 when b_k <= 1.
    Two-pass (mean, then squared deviations) via one-hot matmuls: no loop over clusters.
    A label outside [0, K) belongs to no cluster.
    """
    values = values.astype(jnp.float32)
    onehot = jax.nn.one_hot(labels, num_clusters, dtype=jnp.float32)  # [B, K]
    counts = jnp.sum(onehot, axis=0)  # [K]
    denom = jnp.maximum(counts, 1.0)[:, None]  # [K, 1]; empty clusters: 0 / 1
    means = jnp.einsum("bk,bu->ku", onehot, values, precision=_HIGHEST) / denom  # [K, U]
    member_mean = jnp.einsum("bk,ku->bu", onehot, means, precision=_HIGHEST)  # [B, U]
    sq_dev = jnp.square(values - member_mean)  # [B, U]
    var = jnp.einsum("bk,bu->ku", onehot, sq_dev, precision=_HIGHEST) / denom  # [K, U]
    return _safe_sqrt(var), counts


def batch_std(values: jax.Array) -> jax.Array:
    """Eq. 2: std over the whole batch of a per-sample statistic. values [B, U] -> [U]."""
    values = values.astype(jnp.float32)
    var = jnp.mean(jnp.square(values - jnp.mean(values, axis=0, keepdims=True)), axis=0)
    return _safe_sqrt(var)


def renormalize(
    features: jax.Array,
    mu: jax.Array,
    sigma: jax.Array,
    sigma_mu: jax.Array,
    sigma_sigma: jax.Array,
    noise: jax.Array,
) -> jax.Array:
    """Eqs. 3-4 with given noise: gamma * (P - mu) / sigma + beta.

    features [B, ..., U]; mu, sigma, sigma_mu, sigma_sigma [B, U] (the last two
    broadcast per sample from its cluster, or from the batch); noise [2, B, U]
    the standard normal draws eps_mu, eps_sigma (one per sample and channel, as
    DSU's `randn_like`). beta = mu + eps_mu * Sigma_mu, gamma = sigma +
    eps_sigma * Sigma_sigma. Returns features of the input's dtype.
    """
    beta = mu + noise[0] * sigma_mu  # [B, U]  Eq. 3
    gamma = sigma + noise[1] * sigma_sigma  # [B, U]
    shape = (features.shape[0],) + (1,) * (features.ndim - 2) + (features.shape[-1],)
    x = features.astype(jnp.float32)
    out = gamma.reshape(shape) * (x - mu.reshape(shape)) / sigma.reshape(shape) + beta.reshape(shape)  # Eq. 4
    return out.astype(features.dtype)


def statistics_noise(rng: jax.Array, features: jax.Array) -> jax.Array:
    """The standard normal draws (eps_mu, eps_sigma) of Eq. 3 for `features` [B, ..., U]: [2, B, U]."""
    return jax.random.normal(rng, (2, features.shape[0], features.shape[-1]), jnp.float32)


def cdsm_with_noise(features: jax.Array, labels: jax.Array, num_clusters: int, noise: jax.Array) -> jax.Array:
    """Cluster-guided domain shift (Alg. 1) with given noise [2, B, U]: DSU with per-cluster Sigma (Eq. 5).

    features [B, ..., U]; labels int [B] pseudo labels (treated as constants).
    Returns the shifted features, same shape and dtype.
    """
    labels = jax.lax.stop_gradient(labels)
    mu, sigma = channel_statistics(features)  # [B, U] each
    onehot = jax.nn.one_hot(labels, num_clusters, dtype=jnp.float32)  # [B, K]
    s_mu, _ = cluster_std(mu, labels, num_clusters)  # [K, U]
    s_sigma, _ = cluster_std(sigma, labels, num_clusters)  # [K, U]
    sigma_mu = jnp.einsum("bk,ku->bu", onehot, s_mu, precision=_HIGHEST)  # [B, U]: its cluster's
    sigma_sigma = jnp.einsum("bk,ku->bu", onehot, s_sigma, precision=_HIGHEST)
    return renormalize(features, mu, sigma, sigma_mu, sigma_sigma, noise)


def cdsm(features: jax.Array, labels: jax.Array, num_clusters: int, rng: jax.Array) -> jax.Array:
    """CDSM with noise drawn from `rng` (see `cdsm_with_noise`)."""
    return cdsm_with_noise(features, labels, num_clusters, statistics_noise(rng, features))


def dsu_with_noise(features: jax.Array, noise: jax.Array) -> jax.Array:
    """DSU (Li et al. 2022; GeCC's 'w DSU' ablation) with given noise: one Sigma for the batch (Eq. 2)."""
    mu, sigma = channel_statistics(features)  # [B, U] each
    sigma_mu = jnp.broadcast_to(batch_std(mu), mu.shape)  # [B, U]
    sigma_sigma = jnp.broadcast_to(batch_std(sigma), sigma.shape)
    return renormalize(features, mu, sigma, sigma_mu, sigma_sigma, noise)


def dsu(features: jax.Array, rng: jax.Array) -> jax.Array:
    """DSU with noise drawn from `rng` (see `dsu_with_noise`)."""
    return dsu_with_noise(features, statistics_noise(rng, features))


def probability_schedule(epoch: jax.Array, num_epochs: int, stages: int = 10) -> jax.Array:
    """GeCC's probability t = 0.1 * (epoch // (E/10) + 1), scaled to `num_epochs` E.

    With `stages` S (10 in the paper): t = min(1, (epoch // L + 1) / S),
    L = max(1, E // S) (floor, so t reaches 1 within training; the paper's
    E = 1000 gives L = 100). Returns a float32 scalar; `epoch` may be traced.
    """
    if stages < 1:
        raise ValueError(f"schedule stages must be >= 1, got {stages}")
    stage_len = max(1, int(num_epochs) // int(stages))
    stage = jnp.asarray(epoch, jnp.int32) // stage_len + 1
    return jnp.minimum(stage, stages).astype(jnp.float32) / stages


POSITIONS = ("stages", "stem_and_stages", "first_stage")


def _random_hook(shift: Callable[[jax.Array, jax.Array], jax.Array], rng: jax.Array, probability,
                 positions: str = "stages") -> ShiftHook:
    """hook(features, layer) that applies `shift(features, key)` to the whole batch with prob. t.

    One Bernoulli(t) draw per layer per call (DSU's module draws once per
    forward), from a key folded with the layer index, so every layer has its
    own coin and noise. `positions`: 'stages' acts after each backbone stage
    only; 'stem_and_stages' also after the stem (layer STEM_LAYER), as DSU's
    own ResNet code does; 'first_stage' after the first stage (layer 0) only,
    the low-level statistics (a check, not a reading of the paper; docs/gecc.md,
    "Where CDSM acts"). Layer indices are Python ints.
    """
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")

    def hook(features: jax.Array, layer_index: int) -> jax.Array:
        stem = isinstance(layer_index, int) and layer_index == STEM_LAYER
        if (stem and positions != "stem_and_stages") or (positions == "first_stage" and layer_index != 0):
            return features
        index = 2**31 - 1 if stem else layer_index  # fold_in takes non-negative data
        k_coin, k_shift = jax.random.split(jax.random.fold_in(rng, index))
        active = jax.random.bernoulli(k_coin, probability)
        return jnp.where(active, shift(features, k_shift), features)

    return hook


def make_cdsm_hook(labels: jax.Array, num_clusters: int, rng: jax.Array, probability,
                   positions: str = "stages") -> ShiftHook:
    """The backbone shift hook for GeCC's reference view: CDSM at each layer with prob. `probability`."""
    labels = jax.lax.stop_gradient(labels)

    def shift(features: jax.Array, key: jax.Array) -> jax.Array:
        if features.shape[0] != labels.shape[0]:
            raise ValueError(f"CDSM hook got {features.shape[0]} samples for {labels.shape[0]} pseudo labels")
        return cdsm(features, labels, num_clusters, key)

    return _random_hook(shift, rng, probability, positions)


def make_dsu_hook(rng: jax.Array, probability, positions: str = "stages") -> ShiftHook:
    """The backbone shift hook for the 'w DSU' ablation: DSU at each layer with prob. `probability`."""
    return _random_hook(dsu, rng, probability, positions)
