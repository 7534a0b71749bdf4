"""The ViT family: VTCC's ViT, MFAVBs' fusing-augmenting blocks (Eqs. 1-2), the CLIP anchor token."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P
from scipy.special import erf

from ccjax.config import get_base_config
from ccjax.errors import UserError
from ccjax.models import build_model, check_model_config
from ccjax.models.layers import STEM_LAYER
from ccjax.models.vit import Block, ConvStem, VTCCHeads, build_vit_model, sincos_position_embedding
from ccjax.runtime.mesh import make_mesh


def vit_config(e=16, depth=2, heads=2, patch=8, n=1, fusion="tokens", anchor=False, project=False, dtype="float32"):
    c = get_base_config()
    c.model.backbone = "vit"
    c.model.feature_dim = 8
    c.model.vit.update(embed_dim=e, depth=depth, num_heads=heads, patch_size=patch, num_fusing_blocks=n,
                       fusion=fusion)
    c.anchor.enabled = anchor
    c.anchor.project = project
    c.dtype = dtype
    return c


# Tests share models, parameters and compiled functions: XLA compiles on CPU dominate the run time.
@functools.cache
def model_for(**kw):
    return build_vit_model(vit_config(**kw), num_clusters=3)


def key(seed=0):
    """An RBG key: XLA compiles its random bits far faster than threefry's on CPU (test time only)."""
    return jax.random.key(seed, impl="rbg")


@functools.cache
def _jit_init(model):
    return jax.jit(lambda k, vs, a: model.init(k, vs, a, train=False))


def init(model, views, anchors=None):
    """model.init under jit (one compile instead of op-by-op dispatch)."""
    return _jit_init(model)(key(), list(views), anchors)


def is_block(mdl, method):
    return isinstance(mdl, Block) and method == "__call__"


@functools.cache
def _jit_apply(model, train):
    if train:
        return jax.jit(lambda v, vs, a: model.apply(v, vs, a, train=True, mutable=["batch_stats"]))
    return jax.jit(lambda v, vs, a: model.apply(v, vs, a, train=False, capture_intermediates=is_block,
                                                mutable=["intermediates"]))


def apply(model, v, views, anchors=None, train=False):
    """model.apply under jit: train -> (outputs, {'batch_stats'}); eval -> (outputs, block outputs).

    Block outputs are [2B, T, E] (branches interleaved) or [B, 2T, E] (fused blocks).
    """
    out, st = _jit_apply(model, train)(v, list(views), anchors)
    if train:
        return out, st
    inter = st["intermediates"]["backbone"]
    return out, [inter[f"block{i}"]["__call__"][0] for i in range(len(inter))]


def images(seed, b=4, s=16, c=3):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(b, s, s, c)), jnp.float32)


def normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


# ----------------------------------------------------------------------------- oracles


def mocov3_sincos(h, w, dim, temperature=10000.0):
    """A line-by-line numpy transcription of MoCo v3's / VTCC's build_2d_sincos_position_embedding."""
    grid_w = np.arange(w, dtype=np.float32)
    grid_h = np.arange(h, dtype=np.float32)
    grid_w, grid_h = np.meshgrid(grid_w, grid_h, indexing="ij")  # torch.meshgrid's default
    pos_dim = dim // 4
    omega = np.arange(pos_dim, dtype=np.float32) / pos_dim
    omega = 1.0 / (temperature**omega)
    out_w = np.einsum("m,d->md", grid_w.flatten(), omega)
    out_h = np.einsum("m,d->md", grid_h.flatten(), omega)
    pos = np.concatenate([np.sin(out_w), np.cos(out_w), np.sin(out_h), np.cos(out_h)], axis=1)
    return np.concatenate([np.zeros((1, dim), np.float32), pos], axis=0)


def numpy_block(p, x, heads):
    """timm's pre-norm Block (LayerNorm eps 1e-6, qkv reshaped (B, N, 3, heads, hd), exact GELU) in numpy."""

    def ln(v, q):
        mu = v.mean(-1, keepdims=True)
        var = ((v - mu) ** 2).mean(-1, keepdims=True)
        return (v - mu) / np.sqrt(var + 1e-6) * q["scale"] + q["bias"]

    def dense(v, q):
        return v @ q["kernel"] + q["bias"]

    b, n, c = x.shape
    qkv = dense(ln(x, p["norm1"]), p["attn"]["qkv"]).reshape(b, n, 3, heads, c // heads).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, N, hd]
    att = q @ k.transpose(0, 1, 3, 2) * (c // heads) ** -0.5
    att = np.exp(att - att.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)
    y = (att @ v).transpose(0, 2, 1, 3).reshape(b, n, c)
    x = x + dense(y, p["attn"]["proj"])
    hdn = dense(ln(x, p["norm2"]), p["fc1"])
    hdn = 0.5 * hdn * (1 + erf(hdn / np.sqrt(2)))
    return x + dense(hdn, p["fc2"])


class PlainBackbone(nn.Module):
    """VTCC as its reference code runs it: one view at a time through stem, tokens, blocks, norm."""

    e: int
    depth: int
    heads: int
    patch: int

    @nn.compact
    def __call__(self, x, *, train):
        t = ConvStem(self.e, self.patch, name="stem")(x, train=train)  # [B, P, E]
        cls = self.param("cls_token", nn.initializers.normal(1e-6), (1, 1, self.e), jnp.float32)
        g = x.shape[1] // self.patch
        t = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, self.e)), t], 1) + sincos_position_embedding(
            g, g, self.e)
        for i in range(self.depth):
            t = Block(self.heads, name=f"block{i}")(t)
        return nn.LayerNorm(epsilon=1e-6, name="norm")(t)[:, 0]


class PlainVTCC(nn.Module):
    e: int
    depth: int
    heads: int
    patch: int
    k: int
    d: int

    @nn.compact
    def __call__(self, views, *, train):
        backbone = PlainBackbone(self.e, self.depth, self.heads, self.patch, name="backbone")
        heads = VTCCHeads(self.d, self.k, 4 * self.e, name="heads")
        outs = []
        for x in views:  # Network_VTCC.forward: vtcc(x_i), vtcc(x_j), projectors per view
            h = backbone(x, train=train)
            z, c = heads(h, train=train, num_views=1)
            outs.append(dict(z=z, c=c, h=h))
        return outs


def assert_trees_close(a, b, **kw):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


# ----------------------------------------------------------------------------- tests


def test_position_embedding_matches_mocov3():
    np.testing.assert_allclose(sincos_position_embedding(3, 3, 16), mocov3_sincos(3, 3, 16), rtol=1e-6, atol=1e-6)
    pe = sincos_position_embedding(2, 2, 8)
    np.testing.assert_array_equal(pe[0], 0.0)  # [CLS] gets a zero embedding
    assert pe.shape == (5, 8)


def test_block_matches_numpy_transcription():
    x = np.asarray(normal(3, (2, 5, 8)))
    block = Block(num_heads=2)
    p = jax.jit(block.init)(key(4), x)["params"]
    # non-trivial LayerNorm affine and biases, so their placement is checked too
    p = jax.tree.map(lambda v: v + 0.1 * np.asarray(normal(5, v.shape)), p)
    want = numpy_block(jax.tree.map(np.asarray, p), x.astype(np.float64), 2)
    np.testing.assert_allclose(np.asarray(jax.jit(block.apply)({"params": p}, x)), want, rtol=1e-4, atol=1e-5)


def test_n0_without_anchor_is_exactly_vtcc():
    model = model_for(n=0)
    plain = PlainVTCC(16, 2, 2, 8, k=3, d=8)
    xa, xb = images(0), images(1)
    v = init(model, [xa, xb])
    v_plain = jax.jit(lambda k: plain.init(k, [xa, xb], train=False))(key())
    assert_trees_close(v, v_plain, rtol=0, atol=0)  # same parameters, same initial values

    ref, st_ref = jax.jit(lambda v, a, b: plain.apply(v, [a, b], train=True, mutable=["batch_stats"]))(v, xa, xb)
    out, st = apply(model, v, [xa, xb], train=True)
    assert_trees_close(out, ref, rtol=1e-5, atol=1e-6)
    assert_trees_close(st, st_ref, rtol=1e-5, atol=1e-6)  # running averages: view a, then view b
    # fusion='none' with N > 0 runs the same per-branch stack
    out, st = apply(model_for(n=1, fusion="none"), v, [xa, xb], train=True)
    assert_trees_close(out, ref, rtol=1e-5, atol=1e-6)
    assert_trees_close(st, st_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fusion", ["tokens", "none"])
def test_fused_block_sees_both_branches(fusion):
    model = model_for(n=1, fusion=fusion)
    xa, xb = images(0), images(1)
    v = init(model_for(n=1), [xa, xb])
    out, blocks = apply(model, v, [xa, xb])
    out2, blocks2 = apply(model, v, [xa, xb + 1.0])  # perturb branch b only
    b, t = xa.shape[0], blocks[0].shape[1]
    a_rows = lambda y: np.asarray(y.reshape(b, 2, -1, y.shape[-1])[:, 0])  # branch a of interleaved rows
    np.testing.assert_array_equal(a_rows(blocks[0]), a_rows(blocks2[0]))  # block 1 is per branch
    changed = lambda u, w: float(np.max(np.abs(np.asarray(u) - np.asarray(w))))
    if fusion == "tokens":
        assert blocks[1].shape == (b, 2 * t, 16)  # block 2 runs on [B, 2T, E]
        assert changed(blocks[1][:, :t], blocks2[1][:, :t]) > 1e-4  # branch a's half of the fused output
        assert changed(out[0]["h"], out2[0]["h"]) > 1e-4 and changed(out[0]["c"], out2[0]["c"]) > 0
        # Eqs. 1-2 written out: concatenate a then b along tokens, run block 2, split back.
        y0 = blocks[0].reshape(b, 2, t, 16)
        cat = jnp.concatenate([y0[:, 0], y0[:, 1]], axis=1)  # [B, 2T, E]
        want = jax.jit(Block(2).apply)({"params": v["params"]["backbone"]["block1"]}, cat)
        np.testing.assert_allclose(np.asarray(blocks[1]), np.asarray(want), rtol=1e-5, atol=1e-6)
    else:
        assert blocks[1].shape == (2 * b, t, 16)
        for u, w in zip(blocks, blocks2):
            np.testing.assert_array_equal(a_rows(u), a_rows(w))
        for k in ("z", "c", "h"):
            np.testing.assert_array_equal(np.asarray(out[0][k]), np.asarray(out2[0][k]))
        assert changed(out[1]["h"], out2[1]["h"]) > 1e-4  # branch b itself did change


def test_token_counts_at_224_with_anchor():
    """198 tokens per branch (196 patches + [CLS] + anchor), 396 inside a fused block."""
    model = build_vit_model(vit_config(e=16, depth=2, n=1, patch=16, anchor=True), num_clusters=3)
    x = jnp.zeros((2, 224, 224, 3))
    a = jnp.zeros((2, 16))
    v = jax.eval_shape(lambda: model.init(key(), [x, x], a, train=False))
    hook_shapes = []

    def hook(f, layer):
        hook_shapes.append((layer, f.shape))
        return f

    out, st = jax.eval_shape(lambda v: model.apply(v, [x, x], a, train=False, shift_hook=hook,
                                                   capture_intermediates=is_block, mutable=["intermediates"]), v)
    inter = st["intermediates"]["backbone"]
    assert inter["block0"]["__call__"][0].shape == (4, 198, 16)  # both branches, batched
    assert inter["block1"]["__call__"][0].shape == (2, 396, 16)  # fused
    assert hook_shapes == [(STEM_LAYER, (2, 198, 16))] * 2 + [(0, (2, 198, 16)), (0, (2, 198, 16)),
                                                             (1, (2, 198, 16)), (1, (2, 198, 16))]
    assert [o["z"].shape for o in out] == [(2, 8), (2, 8)] and out[0]["h"].shape == (2, 16)
    # without the anchor: 197 tokens
    plain = build_vit_model(vit_config(e=16, depth=2, n=1, patch=16), num_clusters=3)
    _, st = jax.eval_shape(lambda: plain.init_with_output(key(), [x, x], train=False,
                                                          capture_intermediates=is_block))
    assert st["intermediates"]["backbone"]["block1"]["__call__"][0].shape == (2, 394, 16)


def test_anchor_token_layout_and_feature():
    """Token 0 is the anchor with no position embedding, token 1 [CLS] + 0, then patches + pos; h = token 0."""
    model = model_for(anchor=True)
    x = images(0, b=2)
    a = normal(9, (2, 16))
    v = init(model, [x, x], a)

    def block0_input_and_stem(v, x, a):
        seen = {}

        def grab(next_fun, args, kwargs, context):
            if isinstance(context.module, Block) and context.module.name == "block0":
                seen["in"] = args[0]
            out = next_fun(*args, **kwargs)
            if isinstance(context.module, ConvStem):
                seen["stem"] = out
            return out

        with nn.intercept_methods(grab):
            out = model.apply(v, [x], a, train=False)
        return seen["in"], seen["stem"], out[0]["h"]

    f = jax.jit(block0_input_and_stem)
    tokens, stem, h1 = f(v, x, a)
    tokens = np.asarray(tokens)  # [2B, T, E], branches interleaved (one view fed to both)
    assert tokens.shape == (4, 2 + 4, 16)
    np.testing.assert_array_equal(tokens[0::2], tokens[1::2])
    np.testing.assert_array_equal(tokens[0::2, 0], np.asarray(a))
    cls = np.asarray(v["params"]["backbone"]["cls_token"])[0, 0]
    np.testing.assert_array_equal(tokens[0::2, 1], np.broadcast_to(cls, (2, 16)))
    pos = sincos_position_embedding(2, 2, 16)
    np.testing.assert_allclose(tokens[0::2, 2:], np.asarray(stem) + pos[1:], rtol=1e-6, atol=1e-6)
    # the feature h is the final-norm output at the anchor token: it moves with the anchor
    _, _, h2 = f(v, x, a.at[0].add(jnp.linspace(-1.0, 1.0, 16)))
    assert float(jnp.abs(h1[0] - h2[0]).max()) > 1e-3
    np.testing.assert_allclose(np.asarray(h1[1]), np.asarray(h2[1]), rtol=1e-6, atol=1e-6)


def test_one_view_is_fed_to_both_branches():
    model = model_for(n=1)
    x = images(2)
    v = init(model, [x, x])
    one, _ = apply(model, v, [x])
    two, _ = apply(model, v, [x, x])
    assert len(one) == 1
    assert_trees_close(one[0], two[0], rtol=1e-6, atol=1e-6)
    # identical branches make fusion an exact no-op (attention over duplicated keys): the unfused model agrees
    none, _ = apply(model_for(n=1, fusion="none"), v, [x])
    assert_trees_close(one, none, rtol=1e-4, atol=1e-5)
    # train mode with one view: the stem's BatchNorm statistics are updated once, from that view
    _, st = apply(model, v, [x], train=True)
    kernel = v["params"]["backbone"]["stem"]["conv0"]["kernel"]  # [3, 3, C, E/2^(k-1)]
    y = jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    m0 = np.asarray(v["batch_stats"]["backbone"]["stem"]["bn0"]["mean"])
    want = 0.9 * m0 + 0.1 * np.asarray(y).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(np.asarray(st["batch_stats"]["backbone"]["stem"]["bn0"]["mean"]), want,
                               rtol=1e-5, atol=1e-6)


def test_sharded_forward_equals_single_device():
    model = model_for(anchor=True)
    xa, xb = images(0, b=8), images(1, b=8)
    a = normal(2, (8, 16))
    v = init(model, [xa[:2], xb[:2]], a[:2])

    def run(devices):
        mesh = make_mesh(jax.devices()[:devices])
        shard = NamedSharding(mesh, P("data"))
        rep = NamedSharding(mesh, P())
        f = jax.jit(lambda v, x1, x2, an: model.apply(v, [x1, x2], an, train=True, mutable=["batch_stats"]),
                    in_shardings=(rep, shard, shard, shard))
        return jax.device_get(f(v, xa, xb, a))

    assert_trees_close(run(4), run(1), rtol=1e-5, atol=1e-6)


def test_mixed_precision_keeps_params_and_outputs_float32():
    model = build_model(vit_config(n=1, dtype="bfloat16"), num_clusters=3)
    x = images(0)
    v = init(model_for(n=1), [x, x])
    assert {l.dtype for l in jax.tree.leaves(jax.eval_shape(lambda: model.init(key(), [x, x], train=False)))} == {
        jnp.dtype("float32")}
    out = jax.jit(lambda v, x: model.apply(v, [x, x], train=False))(v, x)
    ref, _ = apply(model_for(n=1), v, [x, x])
    for o, r in zip(out, ref):
        assert o["z"].dtype == o["c"].dtype == o["h"].dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(o["c"]).sum(-1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(np.asarray(o["z"]), axis=-1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(o["z"]), np.asarray(r["z"]), atol=0.1)


def test_anchor_projection_and_config_errors():
    x = images(0, b=2)
    proj = build_vit_model(vit_config(anchor=True, project=True), num_clusters=3)
    v = jax.eval_shape(lambda: proj.init(key(), [x, x], jnp.zeros((2, 24)), train=False))
    assert v["params"]["backbone"]["anchor_proj"]["kernel"].shape == (24, 16)
    with pytest.raises(UserError, match="anchor.project"):
        m = build_vit_model(vit_config(anchor=True), 3)
        jax.eval_shape(lambda: m.init(key(), [x, x], jnp.zeros((2, 24)), train=False))
    with pytest.raises(UserError, match="num_fusing_blocks"):
        check_model_config(vit_config(depth=2, n=2))
    with pytest.raises(UserError, match="fusion"):
        check_model_config(vit_config(fusion="add"))
    with pytest.raises(UserError, match="patch_size"):
        check_model_config(vit_config(patch=12))
    with pytest.raises(UserError, match="num_heads"):
        check_model_config(vit_config(e=16, heads=3))
    with pytest.raises(UserError, match="num_heads"):
        check_model_config(vit_config(e=16, heads=0))
    single = build_vit_model(vit_config(e=16, heads=1), 3)  # one head is a valid ViT
    assert jax.eval_shape(lambda: single.init(key(), [images(0, s=16)], train=False))
    with pytest.raises(UserError, match="divisible by model.vit.patch_size"):
        m = build_vit_model(vit_config(), 3)
        jax.eval_shape(lambda: m.init(key(), [images(0, s=12)], train=False))
