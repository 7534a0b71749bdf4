"""The contrastive primitives CC and GeCC share, as pure functions of global arrays.

CC's own losses are in ccjax/methods/cc.py, GeCC's in ccjax/methods/gecc/losses.py.

Every function here is written on whole (global) arrays: under `jax.jit` with
inputs sharded over Mesh('data') XLA inserts the gathers, so the negatives of
each anchor always span the global batch, whatever the device count.

All arithmetic is in float32 whatever the input dtype, and every log-softmax
is a `logsumexp` with self-similarities masked to -inf, never `exp` then `log`.

Reductions follow CC's reference code (Yunfan-Li/Contrastive-Clustering,
modules/contrastive_loss.py): a cross-entropy summed over the 2N anchors and
divided by 2N, which equals the paper's mean of l_i^a + l_i^b over i, / 2.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


# Below this norm a cluster column is treated as having norm `COS_EPS` (as
# torch.nn.CosineSimilarity, which CC's reference uses, clamps with eps=1e-8).
COS_EPS = 1e-8


def unit_rows(x: jax.Array) -> jax.Array:
    """x / max(||x||, eps) row-wise; finite gradient even for an all-zero row."""
    sq = jnp.sum(x * x, axis=1, keepdims=True)  # [N, 1]
    return x * jax.lax.rsqrt(jnp.maximum(sq, COS_EPS**2))


def _log_weight(w: jax.Array | None, shape: tuple[int, ...]) -> jax.Array:
    """log(w) in float32 (0 where `w` is None); w == 0 gives -inf with a zero, not NaN, gradient."""
    if w is None:
        return jnp.zeros(shape, jnp.float32)
    w = jnp.broadcast_to(jnp.asarray(w, jnp.float32), shape)
    positive = w > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, w, 1.0)), -jnp.inf)


def weighted_nt_xent(
    sim_ab: jax.Array,
    sim_aa: jax.Array,
    temperature: float,
    pos_weight: jax.Array | None = None,
    neg_weight_ab: jax.Array | None = None,
    neg_weight_aa: jax.Array | None = None,
) -> jax.Array:
    """Per-anchor weighted NT-Xent for the N anchors of view a; returns float32 [N].

    With s_ab = `sim_ab` [N, N] (s_ab[i, j] = s(a_i, b_j): anchor i of view a
    against sample j of view b; the positive of anchor i is b_i), s_aa =
    `sim_aa` [N, N] (within view a), tau = `temperature`, p = `pos_weight` [N],
    W = `neg_weight_ab` [N, N], V = `neg_weight_aa` [N, N]:

        loss_i = -log( p_i exp(s_ab[i,i]/tau)
                       / ( sum_{j}     W[i,j] exp(s_ab[i,j]/tau)
                         + sum_{j!=i}  V[i,j] exp(s_aa[i,j]/tau) ) )

    The cross-view sum runs over all j, so it contains the positive pair
    (j = i, weight W[i,i]); the in-view sum excludes the self-similarity j = i
    (masked to -inf, whatever V[i,i] is). A weight left as None is all ones;
    with all weights one this is exactly the softmax cross-entropy of
    NT-Xent/SimCLR/CC for one anchor view: logits [s_ab[i,i], the 2N-2 other
    similarities] / tau, target the first.

    GeCC's Eq. (8) is this with p_i = w_ii, W = V = W_z (for l_{i,12}: sim_ab =
    s(z^1, z^2), sim_aa = s(z^m, z^m)). Weights must be >= 0; a zero weight
    removes that term. Computed in float32 as logsumexp(log w + s / tau). `temperature` > 0: the config's
    loss.*_temperature, checked once by validate (ccjax/methods/cc.py's check_config).
    """
    sim_ab = jnp.asarray(sim_ab, jnp.float32)  # [N, N]
    sim_aa = jnp.asarray(sim_aa, jnp.float32)  # [N, N]
    n = sim_ab.shape[0]
    if sim_ab.shape != (n, n) or sim_aa.shape != (n, n):
        raise ValueError(f"weighted_nt_xent needs square [N, N] similarities, got {sim_ab.shape} and {sim_aa.shape}")
    inv_t = 1.0 / jnp.asarray(temperature, jnp.float32)
    logits_ab = sim_ab * inv_t + _log_weight(neg_weight_ab, (n, n))  # [N, N]
    logits_aa = sim_aa * inv_t + _log_weight(neg_weight_aa, (n, n))  # [N, N]
    logits_aa = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, logits_aa)  # no self-similarity
    log_denominator = jax.nn.logsumexp(jnp.concatenate([logits_ab, logits_aa], axis=1), axis=1)  # [N]
    log_numerator = jnp.diagonal(sim_ab) * inv_t + _log_weight(pos_weight, (n,))  # [N]
    return log_denominator - log_numerator


def nt_xent(u: jax.Array, v: jax.Array, temperature: float, weights: jax.Array | None = None) -> jax.Array:
    """Symmetric NT-Xent over the 2N rows of `u` [N, D] and `v` [N, D], similarity = dot product.

    u_i and v_i are positives; every anchor's negatives are the other 2N - 2
    rows of both views. Returns sum over the 2N anchors / 2N (scalar, float32):
    CC's L_ins on instance features, and on unit cluster columns its cluster loss.

    `weights` [N, N] (GeCC's W_z or W_c, Eqs. 8/11, averaged as Eqs. 9/13): anchor
    u_i's positive is weighted by w_ii and its negatives u_j (j != i) and v_j by
    w_ij; anchor v_i uses the same row i. The weights are constants (under
    stop_gradient: attention weights on the terms, docs/gecc.md). None = all ones.
    """
    u = jnp.asarray(u, jnp.float32)
    v = jnp.asarray(v, jnp.float32)
    if u.ndim != 2 or u.shape != v.shape:
        raise ValueError(f"nt_xent needs two [N, D] arrays of one shape, got {u.shape} and {v.shape}")
    s_uv = u @ v.T  # [N, N]
    s_uu = u @ u.T  # [N, N]
    s_vv = v @ v.T  # [N, N]
    if weights is None:
        pos = w = None
    else:
        w = jax.lax.stop_gradient(jnp.asarray(weights, jnp.float32))  # [N, N]
        pos = jnp.diagonal(w)  # [N]
    loss_u = weighted_nt_xent(s_uv, s_uu, temperature, pos, w, w)  # [N] anchors of view u
    loss_v = weighted_nt_xent(s_uv.T, s_vv, temperature, pos, w, w)  # [N] anchors of view v
    return (loss_u.sum() + loss_v.sum()) / (2 * u.shape[0])


def cluster_entropy_term(c: jax.Array) -> jax.Array:
    """CC's entropy term of one view: log K - H(Y), with P(y_k) = sum_b c[b,k] / sum c.

    c: [B, K] cluster probabilities. The paper subtracts the entropy H(Y)
    from the cluster loss; the reference code adds log K so the term is >= 0 and 0 at the
    uniform distribution: same gradients. 0 log 0 is taken as 0 (with a zero
    gradient there). Scalar float32.
    """
    c = jnp.asarray(c, jnp.float32)
    p = c.sum(axis=0)  # [K]
    p = p / p.sum()
    positive = p > 0
    p_log_p = jnp.where(positive, p * jnp.log(jnp.where(positive, p, 1.0)), 0.0)  # [K]
    return math.log(c.shape[1]) + p_log_p.sum()
