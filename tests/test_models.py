"""Tests of ccjax.models: shapes, parameter counts, blocks against numpy, heads, hooks, views, dtypes.

ResNet initialisation compiles slowly on CPU (one RNG kernel per parameter),
so ResNet tests use eval_shape or parameters filled from numpy; the real
initialisers are checked on the small ConvNet, which shares them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.config import get_base_config
from ccjax.errors import UserError
from ccjax.models import build_model, check_model_config, count_params
from ccjax.models.layers import STEM_LAYER
from ccjax.models.resnet import BasicBlock, Bottleneck

K = 7  # clusters
D = 16  # instance feature dim used in most tests


def make_config(backbone: str, stem: str = "small", dtype: str = "float32", width: int = 8, feature_dim: int = D):
    c = get_base_config()
    c.model.backbone = backbone
    c.model.stem = stem
    c.model.convnet_width = width
    c.model.feature_dim = feature_dim
    c.dtype = dtype
    return c


def abstract_variables(model, views):
    """The variables' ShapeDtypeStructs, without running (or compiling) any initialiser."""
    return jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), views)


def numpy_variables(model, views, seed: int = 0):
    """Variables of the right shapes filled from numpy: kernels ~ N(0, 1/fan_in), BN at its init."""
    rng = np.random.default_rng(seed)

    def fill(path, s):
        name = jax.tree_util.keystr(path)
        if "batch_stats" in name:
            return jnp.full(s.shape, 1.0 if "'var'" in name else 0.0, s.dtype)
        if "'scale'" in name:
            return jnp.asarray(1.0 + 0.1 * rng.normal(size=s.shape), s.dtype)
        if "'bias'" in name:
            return jnp.asarray(0.1 * rng.normal(size=s.shape), s.dtype)
        fan_in = int(np.prod(s.shape[:-1]))
        return jnp.asarray(rng.normal(size=s.shape) / np.sqrt(fan_in), s.dtype)

    return jax.tree_util.tree_map_with_path(fill, abstract_variables(model, views))


def images(seed: int, b: int, s: int, c: int) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=(b, s, s, c)), jnp.float32)


def check_outputs(out: dict, b: int, f: int, d: int = D, k: int = K) -> None:
    assert out["z"].shape == (b, d) and out["c"].shape == (b, k) and out["h"].shape == (b, f)
    assert out["z"].dtype == jnp.float32 and out["c"].dtype == jnp.float32
    np.testing.assert_allclose(np.linalg.norm(np.asarray(out["z"]), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out["c"]).sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(np.asarray(out["c"]) >= 0)


# ---------------------------------------------------------------- parameter counts


def torchvision_resnet_params(stage_sizes, bottleneck: bool) -> int:
    """torchvision's ResNet parameter count without fc, from the layer list (convs have no bias)."""
    def conv(k, cin, cout):
        return k * k * cin * cout

    def bn(c):
        return 2 * c  # weight and bias

    total = conv(7, 3, 64) + bn(64)  # stem
    cin = 64
    for i, n in enumerate(stage_sizes):
        w = 64 * 2**i
        for j in range(n):
            stride = 2 if (i > 0 and j == 0) else 1
            if bottleneck:
                cout = 4 * w
                total += conv(1, cin, w) + bn(w) + conv(3, w, w) + bn(w) + conv(1, w, cout) + bn(cout)
            else:
                cout = w
                total += conv(3, cin, w) + bn(w) + conv(3, w, w) + bn(w)
            if stride != 1 or cin != cout:
                total += conv(1, cin, cout) + bn(cout)  # projection shortcut
            cin = cout
    return total


@pytest.mark.parametrize(
    "backbone,stages,bottleneck,torchvision_total,fc",
    [
        # torchvision's published totals (with fc to 1000 classes), minus that fc.
        ("resnet18", (2, 2, 2, 2), False, 11_689_512, 512 * 1000 + 1000),
        ("resnet34", (3, 4, 6, 3), False, 21_797_672, 512 * 1000 + 1000),
        ("resnet50", (3, 4, 6, 3), True, 25_557_032, 2048 * 1000 + 1000),
    ],
)
def test_resnet_parameter_counts_match_torchvision(backbone, stages, bottleneck, torchvision_total, fc):
    expected = torchvision_resnet_params(stages, bottleneck)
    assert expected == torchvision_total - fc
    model = build_model(make_config(backbone, stem="imagenet"), K)
    params = abstract_variables(model, [jnp.zeros((2, 32, 32, 3))])["params"]
    assert count_params(params["backbone"]) == expected
    f = 2048 if bottleneck else 512
    heads = (f * f + f + f * D + D) + (f * f + f + f * K + K)  # two Linear-ReLU-Linear MLPs
    assert count_params(params["heads"]) == heads
    assert count_params(params) == expected + heads


def test_count_params_counts_scalars():
    assert count_params({"a": jnp.zeros((3, 4)), "b": {"c": jnp.zeros((5,))}, "d": jnp.zeros(())}) == 18


# ---------------------------------------------------------------- blocks against numpy


def np_conv(x, w, stride, pad):
    """torch.nn.Conv2d semantics (zero padding `pad`, no bias); x [B,H,W,Ci], w [k,k,Ci,Co]."""
    k = w.shape[0]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho = (x.shape[1] + 2 * pad - k) // stride + 1
    wo = (x.shape[2] + 2 * pad - k) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, w.shape[3]))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]  # [B,k,k,Ci]
            out[:, i, j, :] = np.einsum("bxyc,xyco->bo", patch, w)
    return out


def np_bn_train(x, p):
    """BatchNorm with batch statistics (biased variance), eps 1e-5."""
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + 1e-5) * p["scale"] + p["bias"]


def relu(x):
    return np.maximum(x, 0.0)


def np_basic_block(x, p, stride):
    y = relu(np_bn_train(np_conv(x, p["conv1"]["kernel"], stride, 1), p["bn1"]))
    y = np_bn_train(np_conv(y, p["conv2"]["kernel"], 1, 1), p["bn2"])
    sc = np_bn_train(np_conv(x, p["downsample_conv"]["kernel"], stride, 0), p["downsample_bn"])
    return relu(y + sc)


def np_bottleneck(x, p, stride):
    y = relu(np_bn_train(np_conv(x, p["conv1"]["kernel"], 1, 0), p["bn1"]))
    y = relu(np_bn_train(np_conv(y, p["conv2"]["kernel"], stride, 1), p["bn2"]))
    y = np_bn_train(np_conv(y, p["conv3"]["kernel"], 1, 0), p["bn3"])
    sc = np_bn_train(np_conv(x, p["downsample_conv"]["kernel"], stride, 0), p["downsample_bn"])
    return relu(y + sc)


@pytest.mark.parametrize("block,oracle,out_channels", [(BasicBlock, np_basic_block, 4), (Bottleneck, np_bottleneck, 16)])
def test_block_matches_numpy_torch_semantics(block, oracle, out_channels):
    # Even input side with stride 2: torch pads 1 on both sides, 'SAME' would pad (0, 1).
    x = images(1, 2, 6, 3)
    module = block(4, 2)
    shapes = jax.eval_shape(functools.partial(module.init, train=False), jax.random.key(0), x)
    rng = np.random.default_rng(2)
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), jnp.float32), shapes["params"])
    stats = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes["batch_stats"])
    got, _ = jax.jit(functools.partial(module.apply, train=True, mutable=["batch_stats"]))(
        {"params": params, "batch_stats": stats}, x
    )
    want = oracle(np.asarray(x, np.float64), jax.tree.map(lambda a: np.asarray(a, np.float64), params), 2)
    assert got.shape == (2, 3, 3, out_channels) == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_block_identity_shortcut_has_no_projection():
    shapes = jax.eval_shape(functools.partial(BasicBlock(8, 1).init, train=False), jax.random.key(0), jnp.zeros((1, 4, 4, 8)))
    assert set(shapes["params"]) == {"conv1", "bn1", "conv2", "bn2"}


# ---------------------------------------------------------------- ResNet forward, stems, hooks


@pytest.mark.parametrize(
    "stem,size,stage_sides",
    [("small", 32, (32, 16, 8, 4)), ("imagenet", 64, (16, 8, 4, 2))],
)
def test_resnet18_outputs_and_hook(stem, size, stage_sides):
    model = build_model(make_config("resnet18", stem=stem), K)
    b = 2
    x = [images(3, b, size, 3)]
    variables = numpy_variables(model, x)
    calls = []

    def apply(variables, views, factor):
        def hook(f, i):  # multiplies the last stage's features by `factor`
            calls.append((i, f.shape))
            return f * jnp.where(i == 3, factor, 1.0).astype(f.dtype)

        return model.apply(variables, views, train=True, shift_hook=hook, mutable=["batch_stats"])

    apply = jax.jit(apply)
    (out,), state = apply(variables, x, 1.0)
    # After the stem (STEM_LAYER, the stem's output: stage 0's shape), then once per stage, traced once.
    stem = (STEM_LAYER, (b, stage_sides[0], stage_sides[0], 64))
    assert calls == [stem] + [(i, (b, s, s, 64 * 2**i)) for i, s in enumerate(stage_sides)]
    check_outputs(out, b, 512)
    assert set(state) == {"batch_stats"}
    (zeroed,), _ = apply(variables, x, 0.0)
    assert len(calls) == 5  # no retrace
    np.testing.assert_array_equal(np.asarray(zeroed["h"]), 0.0)  # the hook acts before pooling
    assert not np.allclose(np.asarray(zeroed["z"]), np.asarray(out["z"]), atol=1e-3)


@pytest.mark.parametrize("backbone,f", [("resnet34", 512), ("resnet50", 2048)])
def test_deeper_resnets_shapes(backbone, f):
    model = build_model(make_config(backbone, stem="imagenet"), K)
    b = 2
    x = [jnp.zeros((b, 32, 32, 3))] * 2
    variables = abstract_variables(model, x)
    calls = []

    def hook(feat, i):
        calls.append((i, feat.shape))
        return feat

    outs = jax.eval_shape(
        lambda v, views: model.apply(v, views, train=False, shift_hook=hook), variables, x
    )
    expansion = f // 512
    sides = (8, 4, 2, 1)  # 32 -> stem /4 -> stages /1 /2 /2 /2
    per_view = [(STEM_LAYER, (b, 8, 8, 64))] + [(i, (b, s, s, 64 * 2**i * expansion)) for i, s in enumerate(sides)]
    assert calls == per_view * 2
    assert len(outs) == 2
    for o in outs:
        assert o["z"].shape == (b, D) and o["c"].shape == (b, K) and o["h"].shape == (b, f)
        assert o["z"].dtype == o["c"].dtype == o["h"].dtype == jnp.float32


# ---------------------------------------------------------------- ConvNet: init, heads, views


@pytest.fixture(scope="module")
def convnet():
    """A real (initialised) ConvNet model with width 32 on 8x8 grayscale digits."""
    model = build_model(make_config("convnet", width=32), K)
    x = [images(10, 8, 8, 1)]
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), x)
    return model, variables


def test_initialisation_follows_torch(convnet):
    _, variables = convnet
    p = variables["params"]
    kernel = np.asarray(p["backbone"]["conv3"]["kernel"])  # [3, 3, 64, 128]
    fan_out = 3 * 3 * 128
    assert kernel.shape == (3, 3, 64, 128)
    assert abs(kernel.std() / np.sqrt(2.0 / fan_out) - 1) < 0.03  # kaiming normal, fan_out
    assert abs(kernel.mean()) < 0.003
    assert np.abs(kernel).max() > 3.5 * np.sqrt(2.0 / fan_out)  # untruncated normal
    np.testing.assert_array_equal(np.asarray(p["backbone"]["bn3"]["scale"]), 1.0)
    np.testing.assert_array_equal(np.asarray(p["backbone"]["bn3"]["bias"]), 0.0)
    assert set(p["backbone"]) == {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3"}  # convs without bias
    np.testing.assert_array_equal(np.asarray(variables["batch_stats"]["backbone"]["bn1"]["var"]), 1.0)
    fc1 = p["heads"]["instance_projector"]["fc1"]
    bound = 1 / np.sqrt(128)  # fan_in = F = 4w
    for leaf in (fc1["kernel"], fc1["bias"]):
        a = np.abs(np.asarray(leaf))
        assert a.max() <= bound and a.max() > 0.9 * bound  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))


def test_heads_match_numpy(convnet):
    model, variables = convnet
    x = [images(11, 8, 8, 1)]
    (out,) = jax.jit(functools.partial(model.apply, train=False))(variables, x)
    check_outputs(out, 8, 128)
    h = np.asarray(out["h"], np.float64)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"]["heads"])

    def mlp(q, v):
        return relu(v @ q["fc1"]["kernel"] + q["fc1"]["bias"]) @ q["fc2"]["kernel"] + q["fc2"]["bias"]

    z = mlp(p["instance_projector"], h)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    logits = mlp(p["cluster_projector"], h)
    c = np.exp(logits - logits.max(axis=1, keepdims=True))
    c /= c.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(out["z"]), z, atol=2e-5)
    np.testing.assert_allclose(np.asarray(out["c"]), c, atol=2e-5)


def test_convnet_hook_shapes_and_zeroing(convnet):
    model, variables = convnet
    x = [images(12, 4, 16, 1)]
    calls = []

    def hook(f, i):
        calls.append((i, f.shape))
        return jnp.zeros_like(f) if i == 1 else f

    (out,) = jax.jit(lambda v, views: model.apply(v, views, train=False, shift_hook=hook))(variables, x)
    assert calls == [(0, (4, 8, 8, 32)), (1, (4, 4, 4, 64)), (2, (4, 4, 4, 128))]
    (plain,) = jax.jit(functools.partial(model.apply, train=False))(variables, x)
    check_outputs(plain, 4, 128)
    assert not np.allclose(np.asarray(out["h"]), np.asarray(plain["h"]), atol=1e-4)
    # Block 2 sees a zero input: its conv gives 0, so h is relu(BN(0)) per channel, the same for every image.
    np.testing.assert_allclose(np.asarray(out["h"]), np.asarray(out["h"])[:1].repeat(4, 0), atol=1e-6)


def test_views_run_separately(convnet):
    model, variables = convnet
    x1, x2, x3 = images(20, 8, 8, 1), images(21, 8, 8, 1), images(22, 8, 8, 1)
    state = {"batch_stats": variables["batch_stats"]}
    params = variables["params"]

    @functools.partial(jax.jit, static_argnames="train")
    def run(views, train):
        if train:
            return model.apply({"params": params, **state}, views, train=True, mutable=["batch_stats"])
        return model.apply({"params": params, **state}, views, train=False), state

    # Eval mode: view 1's output does not depend on view 2.
    a, _ = run([x1, x2], False)
    b, _ = run([x1, x3], False)
    for key in ("z", "c", "h"):
        np.testing.assert_array_equal(np.asarray(a[0][key]), np.asarray(b[0][key]))
    # Train mode: BatchNorm statistics are per view ...
    both, s12 = run([x1, x2], True)
    (one,), s1 = run([x1], True)
    (two,), s2 = run([x2], True)
    np.testing.assert_allclose(np.asarray(both[0]["z"]), np.asarray(one["z"]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(both[1]["z"]), np.asarray(two["z"]), atol=1e-6)
    (joint,), _ = run([jnp.concatenate([x1, x2])], True)  # ... which a joint batch would not give
    assert not np.allclose(np.asarray(joint["z"][:8]), np.asarray(one["z"]), atol=1e-3)
    # ... and each view updates the running averages in turn (momentum 0.9, from mean 0 / var 1):
    # after [x1, x2]: mean = 0.9 (0.1 m1) + 0.1 m2, var = 0.9 (0.9 + 0.1 v1) + 0.1 v2.
    for layer in ("bn1", "bn2", "bn3"):
        st = {k: s["batch_stats"]["backbone"][layer] for k, s in (("12", s12), ("1", s1), ("2", s2))}
        np.testing.assert_allclose(st["12"]["mean"], 0.9 * st["1"]["mean"] + st["2"]["mean"], atol=1e-6)
        np.testing.assert_allclose(st["12"]["var"], 0.9 * st["1"]["var"] + st["2"]["var"] - 0.9, atol=1e-5)


def test_anchors_are_ignored(convnet):
    model, variables = convnet
    x = [images(30, 4, 8, 1)]
    apply = jax.jit(functools.partial(model.apply, train=False))
    (a,) = apply(variables, x, None)
    (b,) = apply(variables, x, jnp.ones((4, 5)))
    np.testing.assert_array_equal(np.asarray(a["z"]), np.asarray(b["z"]))


# ---------------------------------------------------------------- mixed precision


def test_bfloat16_keeps_params_and_outputs_float32(convnet):
    model32, variables = convnet
    model16 = build_model(make_config("convnet", width=32, dtype="bfloat16"), K)
    x = [images(40, 8, 8, 1)]
    v16 = abstract_variables(model16, x)
    assert {a.dtype for a in jax.tree.leaves(v16)} == {jnp.dtype(jnp.float32)}  # params and batch_stats
    train_apply = functools.partial(jax.jit, static_argnums=0)(
        lambda model, v, views: model.apply(v, views, train=True, mutable=["batch_stats"])
    )
    (out16,), st16 = train_apply(model16, variables, x)
    (out32,), _ = train_apply(model32, variables, x)
    check_outputs(out16, 8, 128)
    assert {a.dtype for a in jax.tree.leaves(st16)} == {jnp.dtype(jnp.float32)}
    # Same parameters, bfloat16 activations: close to float32 but not bit-identical.
    np.testing.assert_allclose(np.asarray(out16["z"]), np.asarray(out32["z"]), atol=0.05)
    assert not np.array_equal(np.asarray(out16["z"]), np.asarray(out32["z"]))
    # The ResNet's convolutions run in bfloat16 with float32 parameters.
    resnet = build_model(make_config("resnet18", dtype="bfloat16"), K)
    x = [jnp.zeros((2, 32, 32, 3))]
    abstract = abstract_variables(resnet, x)
    assert {a.dtype for a in jax.tree.leaves(abstract)} == {jnp.dtype(jnp.float32)}
    jaxpr = jax.make_jaxpr(lambda v: resnet.apply(v, x, train=False))(abstract)
    convs = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    assert convs and all(e.outvars[0].aval.dtype == jnp.bfloat16 for e in convs)
    outs = jax.eval_shape(lambda v: resnet.apply(v, x, train=False), abstract)
    assert outs[0]["z"].dtype == outs[0]["c"].dtype == outs[0]["h"].dtype == jnp.float32


# ---------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    "field,value,names",
    [
        ("backbone", "resnet101", ["resnet18", "resnet34", "resnet50", "convnet", "vit"]),
        ("stem", "tiny", ["imagenet", "small"]),
        ("dtype", "float16", ["float32", "bfloat16"]),
    ],
)
def test_bad_config_raises_user_error(field, value, names):
    c = make_config("resnet18")
    if field == "dtype":
        c.dtype = value
    else:
        c.model[field] = value
    with pytest.raises(UserError) as e:
        check_model_config(c)
    msg = str(e.value)
    assert repr(value) in msg and all(n in msg for n in names) and "\n" not in msg


def test_bad_sizes_raise_user_error():
    with pytest.raises(UserError, match="convnet_width"):
        check_model_config(make_config("convnet", width=0))
