"""Independent numpy oracle for one GeCC training-step loss (Chen et al., AAAI 2025).

Written from the paper text only (Eqs. 6-14, Algorithm 2), not from the code under
test. float64, explicit Python loops over i and j, clarity over speed.

Row vs column for the second anchor (keyword ``second_anchor_weights``):
the paper's text supports "row". Eq. 8 reads
    "l_{i,12}^z = sum_{m={1,2}} log  w_ii^z e^{s(z_i^1,z_i^2)/tau_i} /
                  sum_{j=1}^B w_ij^z [e^{s(z_i^m,z_j^m)/tau_i} + e^{s(z_i^1,z_j^2)/tau_i}]"
i.e. the same index w_ij^z (row i of W_z) multiplies the j-th terms for BOTH
anchors m = 1 and m = 2; the weight never depends on m. (Eq. 11 is identical
with w_ij^c.) Caveat: in the paper's literal formula the cross-view term of the
m = 2 anchor is still s(z_i^1, z_j^2), i.e. exactly the pair (z_i^1, z_j^2) that
Eq. 6 defines w_ij for. Once the cross-view term of anchor b_i is read
symmetrically as s(b_i, a_j) (the convention used here), the pair (a_j, b_i) is
the one Eq. 6 assigns to w_ji, so "column" is the pair-consistent alternative;
it is not what the equation writes. Both are implemented; default is "row".
"""
import math

import numpy as np


def _dhat(a, b):
    """Eq. 7: Dhat(a_i, b_j) = D(a_i, b_j) / max_k D(a_i, b_k), D Euclidean on raw vectors.

    Eq. 7 is written only for (z^1, z^2); it is applied separately to (1,2) and (1,d),
    and to cluster-assignment columns for Eq. 10 (max over the K columns).
    PAPER DIFFERS (ambiguity): the paper later says "the Euclidean distance for a negative
    pair equals ||2 - 2s(z_i^1, z_j^2)||_F", which is the SQUARED distance of unit vectors;
    we follow the convention and use the plain (unsquared) Euclidean distance.
    A row whose max distance is 0 is set to 0 (undefined in the paper).
    """
    n = a.shape[0]
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            d[i, j] = math.sqrt(float(np.sum((a[i] - b[j]) ** 2)))
    out = np.zeros((n, n))
    for i in range(n):
        row_max = max(d[i, k] for k in range(n))
        for j in range(n):
            out[i, j] = d[i, j] / row_max if row_max > 0 else 0.0
    return out


def attention_weights(v1, v2, vd):
    """Eq. 6 / Eq. 10: w_ij = 1 + Dhat(v1_i, vd_j) / (Dhat(v1_i, v2_j) + Dhat(v1_i, vd_j)).

    v* are [N, F]: N = B rows of Z (Eq. 6) or N = K cluster columns of C (Eq. 10).
    Convention (paper undefined): if both normalised distances are 0 the ratio is 1/2.
    """
    d12, d1d = _dhat(v1, v2), _dhat(v1, vd)
    n = v1.shape[0]
    w = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            den = d12[i, j] + d1d[i, j]
            w[i, j] = 1.0 + (d1d[i, j] / den if den > 0 else 0.5)
    return w


def _pair_loss(a, b, w, tau, second_anchor_weights):
    """Eq. 8 (Eq. 11) for one view pair (a, b), averaged as in Eq. 9 (Eq. 13).

    a, b are [N, F] with unit-norm rows, so s(x, y) = x . y is the cosine similarity.
    Anchor a_i: -log( w_ii e^{s(a_i,b_i)/t} /
                      (sum_{j!=i} w_ij e^{s(a_i,a_j)/t} + sum_j w_ij e^{s(a_i,b_j)/t}) ).
    PAPER DIFFERS: Eq. 8 writes sum_{j=1}^B w_ij [e^{s(z_i^m,z_j^m)} + ...], i.e. the
    in-view sum literally includes j = i (self-similarity e^{1/tau} weighted by w_ii);
    we follow the convention (j != i, as in NT-Xent) for the in-view sum.
    PAPER DIFFERS: for the m = 2 (or d) anchor, Eq. 8 literally keeps the cross-view term
    e^{s(z_i^1, z_j^2)}; we use the swapped term s(b_i, a_j) (a, b exchanged).
    Anchor b_i uses W[i, j] ("row", the paper's literal w_ij) or W[j, i] ("column").
    Returns (1/2N) sum_i (l_i^a + l_i^b), the minus sign of Eq. 9 / 13 folded in.
    """
    if second_anchor_weights not in ("row", "column"):
        raise ValueError(second_anchor_weights)
    n = a.shape[0]
    total = 0.0
    for anchor_view, other_view, use_t in ((a, b, False), (b, a, second_anchor_weights == "column")):
        for i in range(n):
            def wt(j):
                return w[j, i] if use_t else w[i, j]
            pos = wt(i) * math.exp(float(anchor_view[i] @ other_view[i]) / tau)
            den = 0.0
            for j in range(n):
                if j != i:  # in-view negatives
                    den += wt(j) * math.exp(float(anchor_view[i] @ anchor_view[j]) / tau)
                den += wt(j) * math.exp(float(anchor_view[i] @ other_view[j]) / tau)  # includes j = i
            total += -math.log(pos / den)
    return total / (2.0 * n)


def _entropy_term(c):
    """Eq. 12 for one view: H_k = sum_b c_bk / ||C||_1; term = log K + sum_k H_k log H_k.

    PAPER DIFFERS: Eq. 12 is sum_k H log H without the constant log K; the convention adds
    log K per view so the term is >= 0 (gradients unchanged). 0 log 0 := 0.
    """
    bsz, k = c.shape
    total = sum(c[b, kk] for b in range(bsz) for kk in range(k))
    val = math.log(k)
    for kk in range(k):
        h = sum(c[b, kk] for b in range(bsz)) / total
        if h > 0:
            val += h * math.log(h)
    return val


def _unit_columns(c):
    """Cluster items are the K columns of C ([B, K]); cosine similarity = dot of unit columns."""
    cols = np.array(c, dtype=np.float64).T.copy()
    for k in range(cols.shape[0]):
        cols[k] = cols[k] / math.sqrt(float(cols[k] @ cols[k]))
    return cols


def gecc_step_losses(z1, z2, zd, c1, c2, cd, tau_i, tau_c, weights="both",
                     lambda_instance=1.0, lambda_cluster=1.0, second_anchor_weights="row"):
    """All GeCC step losses. "w_z"/"w_c" are returned as USED in the loss (ones if disabled).

    The same W_z (built from views 1, 2, d) weights both pairs (1,2) and (1,d), as Eq. 8
    writes w_ij^z in l_{i,12}^z and l_{i,1d}^z; likewise W_c in Eq. 11.
    """
    z1, z2, zd, c1, c2, cd = (np.asarray(x, dtype=np.float64) for x in (z1, z2, zd, c1, c2, cd))
    bsz, k = c1.shape
    if weights not in ("both", "none", "wz", "wc"):
        raise ValueError(weights)
    # Eq. 6-7 on raw instance rows z_i.
    w_z = attention_weights(z1, z2, zd) if weights in ("both", "wz") else np.ones((bsz, bsz))
    # Eq. 10 on raw cluster columns: paper has C^m in R^{K x B}, c_i = i-th cluster (a B-vector).
    w_c = attention_weights(c1.T, c2.T, cd.T) if weights in ("both", "wc") else np.ones((k, k))
    # Eq. 8-9: s(z_i, z_j) = z_i . z_j (rows already L2-normalised by the model, so cosine).
    ins12 = _pair_loss(z1, z2, w_z, tau_i, second_anchor_weights)
    ins1d = _pair_loss(z1, zd, w_z, tau_i, second_anchor_weights)
    # Eq. 11 / 13: cosine similarity of cluster columns.
    u1, u2, ud = _unit_columns(c1), _unit_columns(c2), _unit_columns(cd)
    cls12 = _pair_loss(u1, u2, w_c, tau_c, second_anchor_weights)
    cls1d = _pair_loss(u1, ud, w_c, tau_c, second_anchor_weights)
    # Eq. 12: R(C) over the three views 1, d, 2.
    ent = _entropy_term(c1) + _entropy_term(cd) + _entropy_term(c2)
    instance = ins12 + ins1d                    # Eq. 9
    cluster = cls12 + cls1d                     # contrastive part of Eq. 13
    total = lambda_instance * instance + lambda_cluster * (cluster + ent)  # Eq. 13 + Eq. 14
    return {"w_z": w_z, "w_c": w_c, "instance_12": ins12, "instance_1d": ins1d,
            "instance": instance, "cluster_12": cls12, "cluster_1d": cls1d,
            "cluster": cluster, "entropy": ent, "total": total}


def _nt_xent(a, b, tau):
    """Plain SimCLR NT-Xent over 2N anchors, vectorised (independent of _pair_loss)."""
    x = np.concatenate([a, b], axis=0)
    n = a.shape[0]
    logits = x @ x.T / tau
    np.fill_diagonal(logits, -np.inf)
    pos = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(2 * n), pos]))


def _self_check():
    rng = np.random.default_rng(0)
    bsz, k, dim = 6, 4, 5

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def soft(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    z1, z2, zd = (unit(rng.normal(size=(bsz, dim))) for _ in range(3))
    c1, c2, cd = (soft(rng.normal(size=(bsz, k))) for _ in range(3))
    # 1) weights="none", zd == z2 (cd == c2): contrastive parts are 2x plain NT-Xent.
    r = gecc_step_losses(z1, z2, z2, c1, c2, c2, 0.5, 1.0, weights="none")
    assert np.isclose(r["instance"], 2 * _nt_xent(z1, z2, 0.5), rtol=1e-12)
    assert np.isclose(r["cluster"], 2 * _nt_xent(_unit_columns(c1), _unit_columns(c2), 1.0), rtol=1e-12)
    # 2) all weights in [1, 2]; totals are consistent.
    r = gecc_step_losses(z1, z2, zd, c1, c2, cd, 0.5, 1.0)
    for w in (r["w_z"], r["w_c"]):
        assert w.min() >= 1.0 and w.max() <= 2.0
    assert np.isclose(r["total"], r["instance"] + r["cluster"] + r["entropy"])
    assert r["entropy"] >= 0.0
    # 3) "row" and "column" differ for a non-symmetric W_z, agree on the view-a anchors only.
    rc = gecc_step_losses(z1, z2, zd, c1, c2, cd, 0.5, 1.0, second_anchor_weights="column")
    assert not np.allclose(r["w_z"], r["w_z"].T) and not np.isclose(r["instance"], rc["instance"])
    # 4) B = 2 by hand: z1 = z2 = [e1, e2], zd = [e2, e1]. Dhat12 = [[0,1],[1,0]],
    #    Dhat1d = [[1,0],[0,1]] -> W_z = [[2,1],[1,2]] (symmetric: row == column).
    #    Pair (1,2): each anchor -log(2e^{1/t} / (1 + 2e^{1/t} + 1)) = log(1 + e^{-1/t}).
    #    Pair (1,d): each anchor -log(2 / (1 + 2 + e^{1/t})) = log((3 + e^{1/t}) / 2).
    e = np.eye(2)
    cc = np.array([[0.7, 0.3], [0.2, 0.8]])
    t = 0.5
    for mode in ("row", "column"):
        h = gecc_step_losses(e, e, e[::-1], cc, cc, cc, t, 1.0, second_anchor_weights=mode)
        assert np.allclose(h["w_z"], [[2.0, 1.0], [1.0, 2.0]])
        assert np.isclose(h["instance_12"], math.log(1 + math.exp(-1 / t)))
        assert np.isclose(h["instance_1d"], math.log((3 + math.exp(1 / t)) / 2))
        # cd == c2 == c1: Dhat12 == Dhat1d -> every ratio is 1/2 (or 0/0 -> 1/2): W_c = 1.5.
        assert np.allclose(h["w_c"], 1.5)
    # 5) R(C): uniform cluster mass -> 0; everything in one cluster -> 3 log K.
    uni = np.full((bsz, k), 1.0 / k)
    one = np.zeros((bsz, k))
    one[:, 0] = 1.0
    assert np.isclose(gecc_step_losses(z1, z2, zd, uni, uni, uni, 0.5, 1.0)["entropy"], 0.0)
    assert np.isclose(_entropy_term(one) * 3, 3 * math.log(k))
    # 6) weights switches: "wz" keeps W_c = 1, "wc" keeps W_z = 1.
    assert np.all(gecc_step_losses(z1, z2, zd, c1, c2, cd, 0.5, 1.0, weights="wz")["w_c"] == 1.0)
    assert np.all(gecc_step_losses(z1, z2, zd, c1, c2, cd, 0.5, 1.0, weights="wc")["w_z"] == 1.0)
    print("gecc_paper_oracle self-check OK")


if __name__ == "__main__":
    _self_check()
