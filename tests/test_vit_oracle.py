"""MFAVBs-CC's fusing ViT against a slow, one-sample-at-a-time oracle written from the paper.

The oracle (`mfavbs_features_one`) was written from Wang et al., "Improve
Contrastive Clustering Performance by Multiple Fusing-Augmenting ViT Blocks"
(Algorithm 1, Eqs. 1-2, Section 3.4) before reading ccjax's model, and knows
nothing of its layout (views interleaved on the batch axis, the fused block as
a reshape, the anchor at token 0). It is wired to the model only through the
model's parameters: the ConvStem and each transformer `Block` are applied as
stand-alone modules, one view and one sequence at a time.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.models.vit import Block, ConvStem, build_vit_model, sincos_position_embedding
from test_vit import vit_config

E, HEADS, PATCH, SIZE, CHANNELS = 16, 2, 4, 8, 3  # 2x2 patches: T = 5 tokens (6 with the anchor)
BATCH = 3
MAX_DEPTH = 4
ANCHOR_PROJ_DIM = 24  # CLIP width != E, for anchor.project=True


# ----------------------------------------------------------------------------- the oracle (from the paper)


def mfavbs_features_one(ya, yb, block, depth, num_fusing_blocks, fusion, out_token, final_norm):
    """h^a, h^b of ONE sample, as MFAVBs-CC's paper describes the forward pass.

    ya, yb: [T, E] numpy, each branch's token sequence after the embedding stage
        (D_a, D_b of Algorithm 1: Conv stem, [CLS], position embeddings, and with
        Section 3.4 the CLIP anchor token), i.e. y_1^a and y_1^b.
    block(i, x): ViT block f_{i+1} (0-based i) applied to a single sequence x of
        shape [T, E], or [2T, E] for a fused block; the same weights serve both
        branches (shared-weight ViTs).
    out_token: which token's final output is the feature h ([CLS] = 0, or the
        anchor's position when the anchor is used, Section 3.4).
    final_norm(v): the final normalisation of a token vector [E].

    The schedule in my words. N = num_fusing_blocks fusing-augmenting blocks
    (FAVBs), 2N <= depth. For i = 1..N (Algorithm 1's loop):
      * f_{2i-1} runs on y_i^a and on y_i^b separately, with the same weights;
      * Eq. 1 (Cat): the two outputs are concatenated along the TOKEN axis,
        rows 0..T-1 from branch a, rows T..2T-1 from branch b -> y_i^new [2T, E];
      * f_{2i} runs once on the fused [2T, E] sequence -> y_i^newout (every
        token of one branch attends to every token of both);
      * Eq. 2 (Spl): rows 0..T-1 of y_i^newout become y_{i+1}^a and rows T..2T-1
        become y_{i+1}^b.
    Blocks f_{2N+1}..f_depth then run on each branch separately (shared weights;
    with N = 0 this is VTCC's plain ViT). fusion='none' is the ablation in which
    no block fuses: every block runs per branch. The result is normalised and
    h = the output at `out_token` (Algorithm 1: y_{N+1}[:, 0, :], the [CLS];
    Section 3.4: with the CLIP anchor, the final-layer anchor token instead).
    """
    t = ya.shape[0]
    assert yb.shape == ya.shape and 0 <= 2 * num_fusing_blocks <= depth
    n_fused = num_fusing_blocks if fusion == "tokens" else 0
    a, b = ya, yb
    layer = 0  # 0-based index of the next block: f_{layer+1}
    for _ in range(n_fused):  # i = 1..N
        a, b = block(layer, a), block(layer, b)  # f_{2i-1}, each branch, shared weights
        layer += 1
        fused_in = np.concatenate([a, b], axis=0)  # Eq. 1: [2T, E], a's tokens then b's
        assert fused_in.shape == (2 * t, ya.shape[1])
        fused_out = block(layer, fused_in)  # f_{2i} on the fused sequence
        layer += 1
        a, b = fused_out[:t], fused_out[t:]  # Eq. 2: first half to a, second half to b
    while layer < depth:  # the remaining blocks, per branch
        a, b = block(layer, a), block(layer, b)
        layer += 1
    return final_norm(a[out_token]), final_norm(b[out_token])


def mfavbs_features(ya, yb, **kw):
    """Batched wrapper: ya, yb [B, T, E] -> h^a, h^b [B, E], looping over the samples one by one."""
    hs = [mfavbs_features_one(ya[m], yb[m], **kw) for m in range(ya.shape[0])]
    return np.stack([h[0] for h in hs]), np.stack([h[1] for h in hs])


def embed(stem_tokens, cls, pos, anchor):
    """The embedding stage for one view: stem patches [B, P, E] -> y [B, P+1(+1), E], and h's token.

    y = [CLS; patches] + position embeddings (Section 3.1); with the anchor
    (Section 3.4) the CLIP token c^0 goes right after the ViT [CLS], with no
    position embedding of its own: [CLS, c^0, patches]. The blocks see no
    positions, so where the anchor sits cannot change any token's output; this
    oracle puts it where the paper's text does, not where ccjax does.
    """
    b = stem_tokens.shape[0]
    y = np.concatenate([np.broadcast_to(cls, (b, 1, E)), stem_tokens], axis=1) + pos[None]
    if anchor is None:
        return y, 0
    return np.concatenate([y[:, :1], anchor[:, None, :], y[:, 1:]], axis=1), 1


# ----------------------------------------------------------------------------- wiring to ccjax's modules


def rand(rng, shape, scale=1.0):
    return (scale * rng.normal(size=shape)).astype(np.float32)


@functools.cache
def variables():
    """Parameters of the deepest model, perturbed so biases, LayerNorm affines, [CLS] and BN stats all matter."""
    model = build_vit_model(vit_config(E, MAX_DEPTH, HEADS, PATCH, 0, "tokens", False, False), num_clusters=3)
    x = jnp.zeros((BATCH, SIZE, SIZE, CHANNELS))
    v = jax.jit(lambda k: model.init(k, [x, x], train=False))(jax.random.key(0, impl="rbg"))
    rng = np.random.default_rng(1)
    v = jax.tree.map(lambda w: np.asarray(w) + rand(rng, w.shape, 0.1), jax.device_get(v))
    bb = v["params"]["backbone"]
    bb["cls_token"] = rand(rng, (1, 1, E))  # VTCC's init is std 1e-6: make [CLS] a real token
    for st in v["batch_stats"]["backbone"]["stem"].values():
        st["var"] = np.abs(st["var"]) + 0.5
    bb["anchor_proj"] = {"kernel": rand(rng, (ANCHOR_PROJ_DIM, E), 0.3), "bias": rand(rng, (E,), 0.1)}
    return v


def variables_for(depth, project):
    """The shared variables cut to a model of `depth` blocks (and with/without the anchor projection)."""
    v = variables()
    bb = dict(v["params"]["backbone"])
    for i in range(depth, MAX_DEPTH):
        del bb[f"block{i}"]
    if not project:
        del bb["anchor_proj"]
    return {"params": {**v["params"], "backbone": bb}, "batch_stats": v["batch_stats"]}


@functools.cache
def _model_h(depth, n, fusion, anchor, project, num_views, train):
    model = build_vit_model(vit_config(E, depth, HEADS, PATCH, n, fusion, anchor, project), num_clusters=3)

    def h(v, views, anchors):
        out = model.apply(v, views, anchors, train=train, mutable=["batch_stats"])[0]
        return [o["h"] for o in out]

    return h  # op by op: the primitives compile once for all 28 models, instead of one XLA compile each


@functools.cache
def _block_fn():
    return jax.jit(lambda p, x: Block(HEADS).apply({"params": p}, x[None])[0])  # one sequence [T, E]


@functools.cache
def _stem_fn(train):
    def stem(v, x):  # one view at a time: its own BatchNorm statistics when training
        return ConvStem(E, PATCH).apply(v, x, train=train, mutable=["batch_stats"])[0]  # [B, P, E]

    return jax.jit(stem)


def layer_norm(v, p, eps=1e-6):
    v = v.astype(np.float64)
    return ((v - v.mean()) / np.sqrt(v.var() + eps) * p["scale"] + p["bias"]).astype(np.float32)


def oracle(v, views, anchors, depth, n, fusion, project, train):
    """h for each branch from the oracle, fed by ccjax's stem and blocks applied module by module."""
    bb = v["params"]["backbone"]
    stem_vars = {"params": bb["stem"], "batch_stats": v["batch_stats"]["backbone"]["stem"]}
    pos = sincos_position_embedding(SIZE // PATCH, SIZE // PATCH, E)  # [1 + P, E], zero row for [CLS]
    anchor = None
    if anchors is not None:
        anchor = np.asarray(anchors, np.float32)
        if project:
            anchor = anchor @ bb["anchor_proj"]["kernel"] + bb["anchor_proj"]["bias"]
    ys = []
    for x in (views if len(views) == 2 else [views[0], views[0]]):  # one view is both branches
        y, out_token = embed(np.asarray(_stem_fn(train)(stem_vars, x)), bb["cls_token"], pos, anchor)
        ys.append(y)

    calls = []

    def block(i, x):
        calls.append((i, x.shape[0]))
        return np.asarray(_block_fn()(bb[f"block{i}"], x))

    ha, hb = mfavbs_features(
        ys[0], ys[1], block=block, depth=depth, num_fusing_blocks=n, fusion=fusion, out_token=out_token,
        final_norm=lambda t: layer_norm(t, bb["norm"]))
    t = ys[0].shape[1]
    # the schedule the oracle ran for the first sample: 2 calls per per-branch block, 1 per fused block
    fused = {2 * i + 1 for i in range(n)} if fusion == "tokens" else set()
    want = []
    for i in range(depth):
        want += [(i, 2 * t)] if i in fused else [(i, t), (i, t)]
    assert calls[: len(want)] == want
    return ha, hb


def images(seed):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(BATCH, SIZE, SIZE, CHANNELS)), jnp.float32)


def anchors_for(project):
    dim = ANCHOR_PROJ_DIM if project else E
    return jnp.asarray(np.random.default_rng(7).normal(size=(BATCH, dim)), jnp.float32)


def check(depth, n, fusion, anchor, project=False, num_views=2, train=False):
    v = variables_for(depth, project)
    views = [images(10), images(11)][:num_views]  # two different views of each sample
    a = anchors_for(project) if anchor else None
    got = [np.asarray(h) for h in _model_h(depth, n, fusion, anchor, project, num_views, train)(v, views, a)]
    ha, hb = oracle(v, views, a, depth, n, fusion, project, train)
    np.testing.assert_allclose(got[0], ha, rtol=1e-5, atol=1e-5, err_msg="branch a")
    if num_views == 2:
        np.testing.assert_allclose(got[1], hb, rtol=1e-5, atol=1e-5, err_msg="branch b")
    else:
        np.testing.assert_array_equal(ha, hb)  # identical branches stay identical, fused or not
    return ha, hb


# ----------------------------------------------------------------------------- tests

SCHEDULES = [(d, n) for d in range(1, MAX_DEPTH + 1) for n in range(d // 2 + 1)]  # every 0 <= 2N <= depth


@pytest.mark.parametrize("anchor", [False, True], ids=["cls", "anchor"])
@pytest.mark.parametrize("depth,n", SCHEDULES, ids=[f"depth{d}-N{n}" for d, n in SCHEDULES])
def test_fusing_vit_matches_paper_oracle(depth, n, anchor):
    ha, hb = check(depth, n, "tokens", anchor)
    # The case can tell a swap of the branches apart, and (N >= 1) fusion from no fusion.
    assert np.abs(ha - hb).max() > 1e-2
    if n:
        v = variables_for(depth, False)
        a = anchors_for(False) if anchor else None
        ua, ub = oracle(v, [images(10), images(11)], a, depth, 0, "tokens", False, False)
        assert min(np.abs(ha - ua).max(), np.abs(hb - ub).max()) > 1e-3


@pytest.mark.parametrize("anchor", [False, True], ids=["cls", "anchor"])
@pytest.mark.parametrize("depth,n", [s for s in SCHEDULES if s[1]], ids=[f"depth{d}-N{n}" for d, n in SCHEDULES if n])
def test_fusion_none_is_the_per_branch_schedule(depth, n, anchor):
    ha, hb = check(depth, n, "none", anchor)
    v = variables_for(depth, False)
    a = anchors_for(False) if anchor else None
    ua, ub = oracle(v, [images(10), images(11)], a, depth, 0, "tokens", False, False)  # N = 0: VTCC's stack
    np.testing.assert_array_equal(ha, ua)
    np.testing.assert_array_equal(hb, ub)


@pytest.mark.parametrize("depth,n", [(3, 1), (4, 2)])
def test_projected_anchor(depth, n):
    check(depth, n, "tokens", True, project=True)


def test_one_view_fed_to_both_branches():
    check(4, 1, "tokens", True, num_views=1)


def test_train_mode_stem_statistics_per_view():
    check(4, 2, "tokens", True, train=True)
