"""GeCC's attention weights and weighted contrastive losses (Chen et al., AAAI 2025, Eqs. 6-14).

Pure functions of global arrays (see ccjax/methods/contrastive.py for the conventions):
the weights W_z [B, B] and W_c [K, K] (Eqs. 6, 7, 10), the weighted instance
loss (Eqs. 8-9), the weighted cluster loss with the regulariser R(C)
(Eqs. 11-13) and the total (Eq. 14). The interpretations of the paper's
ambiguous points are listed in docs/gecc.md; in short:

- D is the Euclidean distance between the raw rows (instance features z, which
  the model L2-normalises) or the raw columns (cluster assignments c) of the
  views; Eq. 7 divides each row of D by its own row maximum, separately for
  D(., view 2) and D(., view d).
- Eq. 8 is a weighted NT-Xent for each view pair (1, 2) and (1, d) and each
  anchor view m of the pair: the positive is w_ii exp(s(a_i, b_i)/tau); the
  denominator sums w_ij exp(s/tau) over the in-view negatives j != i and over
  all cross-view pairs (a_i, b_j). The anchor of view 2 (or d) uses the same
  row i of W as the anchor of view 1, as the paper writes w_ij in both terms.
- Eq. 9's 1/2B (Eq. 13's 1/2K) averages over the 2B (2K) anchors of one pair,
  so L_ins = NT-Xent_W(1, 2) + NT-Xent_W(1, d): with all weights 1 and the
  d-view dropped, L_ins and the contrastive part of L_cls are CC's exactly.
- R(C) (Eq. 12) is written here, like CC's entropy term, as
  sum_m (log K + sum_k p_k^m log p_k^m): Eq. 12 plus the constant 3 log K,
  so it is >= 0 and 0 at uniform marginals; the gradients are Eq. 12's.
- The weights are computed under stop_gradient: they are attention weights on
  the loss terms, not something the encoder should optimise.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from ccjax.methods.contrastive import cluster_entropy_term, nt_xent, unit_rows



def euclidean_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """D[i, j] = ||a_i - b_j||_2 for a [N, D], b [M, D]; float32 [N, M].

    Direct differences (not the Gram identity), so a distance between equal
    rows is exactly 0; XLA fuses the [N, M, D] difference into the reduction.
    """
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    sq = jnp.sum(jnp.square(a[:, None, :] - b[None, :, :]), axis=-1)  # [N, M]
    positive = sq > 0  # sqrt with a zero (not NaN) gradient at 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def normalized_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """Eq. 7: D_hat(a_i, b_j) = D(a_i, b_j) / max_k D(a_i, b_k); float32 [N, M].

    A row whose distances are all 0 is all 0 (not 0/0).
    """
    d = euclidean_distances(a, b)  # [N, M]
    row_max = jnp.max(d, axis=1, keepdims=True)  # [N, 1]
    return d / jnp.where(row_max > 0, row_max, 1.0)


def attention_weights(v1: jax.Array, v2: jax.Array, vd: jax.Array) -> jax.Array:
    """Eqs. 6/10: w_ij = 1 + D_hat(v1_i, vd_j) / (D_hat(v1_i, v2_j) + D_hat(v1_i, vd_j)).

    v1, v2, vd: [N, D] the items (rows) of view 1, view 2 and the reference
    view d: the instance features z^1, z^2, z^d [B, M] give W_z (Eqs. 6-7);
    the cluster columns give W_c (`distribution_attention_weights`). Returns float32 [N, N] in [1, 2], under stop_gradient. Where both
    normalised distances are 0 the ratio is taken as 1/2 (its value whenever
    the two distances are equal).
    """
    v1, v2, vd = (jax.lax.stop_gradient(jnp.asarray(v, jnp.float32)) for v in (v1, v2, vd))
    d2 = normalized_distances(v1, v2)  # [N, N]
    dd = normalized_distances(v1, vd)  # [N, N]
    total = d2 + dd
    ratio = jnp.where(total > 0, dd / jnp.where(total > 0, total, 1.0), 0.5)
    return 1.0 + ratio


def distribution_attention_weights(c1: jax.Array, c2: jax.Array, cd: jax.Array) -> jax.Array:
    """W_c (Eq. 10) from the assignment columns of c^1, c^2, c^d [B, K]; float32 [K, K].

    Item i is cluster i's column c_i in R^B (C^m in R^{K x B} in the paper).
    """
    return attention_weights(jnp.asarray(c1).T, jnp.asarray(c2).T, jnp.asarray(cd).T)


def weighted_instance_loss(
    z1: jax.Array, z2: jax.Array, zd: jax.Array | None, w_z: jax.Array | None, temperature: float
) -> dict[str, jax.Array]:
    """L_ins (Eqs. 8-9) over z^1, z^2, z^d [B, M] (L2-normalised) with W_z [B, B] or None.

    Returns {'instance_12', 'instance_1d', 'instance'}; zd None drops the
    (1, d) term (then 'instance_1d' is 0 and, with w_z None, this is CC's L_ins).
    """
    l12 = nt_xent(z1, z2, temperature, w_z)
    l1d = jnp.zeros((), jnp.float32) if zd is None else nt_xent(z1, zd, temperature, w_z)
    return {"instance_12": l12, "instance_1d": l1d, "instance": l12 + l1d}


def weighted_cluster_contrastive_loss(
    c1: jax.Array, c2: jax.Array, cd: jax.Array | None, w_c: jax.Array | None, temperature: float
) -> dict[str, jax.Array]:
    """The contrastive part of L_cls (Eqs. 11, 13) over the columns of c^m [B, K], W_c [K, K] or None.

    Similarity of columns is the cosine similarity (as CC). Returns
    {'cluster_12', 'cluster_1d', 'cluster'}.
    """
    cols = [None if c is None else unit_rows(jnp.asarray(c, jnp.float32).T) for c in (c1, c2, cd)]  # [K, B]
    l12 = nt_xent(cols[0], cols[1], temperature, w_c)
    l1d = jnp.zeros((), jnp.float32) if cd is None else nt_xent(cols[0], cols[2], temperature, w_c)
    return {"cluster_12": l12, "cluster_1d": l1d, "cluster": l12 + l1d}


def entropy_regularizer(cs: Sequence[jax.Array]) -> jax.Array:
    """R(C) (Eq. 12) over the views' assignments c^m [B, K], plus the constant M log K.

    sum_m (log K + sum_k H_k^m log H_k^m), H_k^m = sum_b c^m_bk / ||C^m||_1
    (each view's term is CC's entropy term). Scalar float32.
    """
    return sum(cluster_entropy_term(c) for c in cs)


def gecc_losses(
    z1: jax.Array,
    z2: jax.Array,
    zd: jax.Array | None,
    c1: jax.Array,
    c2: jax.Array,
    cd: jax.Array | None,
    tau_i: float,
    tau_c: float,
    w_z: jax.Array | None = None,
    w_c: jax.Array | None = None,
    lambda_instance: float = 1.0,
    lambda_cluster: float = 1.0,
) -> dict[str, jax.Array]:
    """GeCC's objective L = lambda1 L_ins + lambda2 L_cls (Eq. 14).

    z*: [B, M] instance features, c*: [B, K] cluster probabilities of views 1,
    2 and d (zd/cd None: the d-view is dropped, as CC); w_z [B, B], w_c [K, K]
    or None (all ones). L_cls = cluster contrastive + R(C) over the views given.
    Returns float32 scalars: instance(_12, _1d), cluster(_12, _1d) (contrastive
    parts), entropy (R(C)), total.
    """
    out = weighted_instance_loss(z1, z2, zd, w_z, tau_i)
    out.update(weighted_cluster_contrastive_loss(c1, c2, cd, w_c, tau_c))
    out["entropy"] = entropy_regularizer([c for c in (c1, c2, cd) if c is not None])
    out["total"] = lambda_instance * out["instance"] + lambda_cluster * (out["cluster"] + out["entropy"])
    return out
