"""ccjax against the numbers of the released code (tests/goldens/*.npz), stage by stage; no PyTorch here.

The goldens are written by tools/official_goldens.py from Yunfan-Li/Contrastive-Clustering (CC) and
sszhou-github/MFAVBs-CC at the commit stamped in each file: the official modules run on stand-in weights
that tests/golden_weights.py regenerates here from (seed, name, shape), mapped from PyTorch's layout to
ccjax's flax variables. MFAVBs-CC's model is checked as configs/mfavbs_released.py builds it.

Tolerances (float32, eps = 1.2e-7). Each stage is compared relative to its largest magnitude; the
largest relative differences seen are in brackets.
- ViT stages, eval and train: 1e-5 [eval 1.1e-6, train z 4.4e-6]. Every output is a normalised sum of
  512-2048 float32 products; two implementations that sum in different orders differ by ~1e-6, and the
  BatchNorm'd projectors in train mode (4 values per channel) amplify that a few times.
- ResNet-34: 1e-4 [eval 8.7e-7, train h 1.6e-5]. In train mode layer4's BatchNorms normalise 12 values
  per channel (3 images x 2x2), dividing by a small batch deviation that amplifies ~10x more.
- Losses: 1e-6 relative [1.6e-7]: CC's goldens are float64, MFAVBs-CC's float32; ccjax's losses are
  float32 and the inputs' rounding alone moves them by ~1e-7. Gradients: 2e-6 of the largest entry [2.6e-7].
- Running statistics: the stage tolerance [ViT 1.1e-7, ResNet 2.7e-6].
A slip moves a stage by 1e-4 or more (LayerNorm eps 1e-5: 1.4e-3 at block 0; tanh GELU: 1.1e-4;
the entropy sign: the cluster loss by 2.5x; 8 heads or token fusion: h by > 1e-3).
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
import re

import flax.linen as nn
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.config import get_base_config
from ccjax.methods.cc import cc_losses
from ccjax.models import build_model
from ccjax.models.vit import sincos_position_embedding
from golden_weights import golden_weights

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDENS = ROOT / "tests" / "goldens"
VIT_RTOL, RESNET_RTOL, LOSS_RTOL, GRAD_RTOL = 1e-5, 1e-4, 1e-6, 2e-6
BN_MOMENTUM = 0.1  # PyTorch's


@functools.lru_cache(maxsize=None)
def golden(name: str) -> dict[str, np.ndarray]:
    with np.load(GOLDENS / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


def assert_close(actual, expected, rtol: float, what: str) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != official {expected.shape}"
    scale = float(np.max(np.abs(expected)))
    err = float(np.max(np.abs(actual - expected)))
    assert err <= rtol * scale, f"{what}: max |ccjax - official| = {err:.3g} > {rtol:g} x {scale:.3g}"


def views_nhwc(images: np.ndarray) -> list[jax.Array]:
    """[view, B, C, H, W] as the official code saw them -> ccjax's list of [B, H, W, C]."""
    return [jnp.asarray(v.transpose(0, 2, 3, 1)) for v in images]


def by_view(x) -> np.ndarray:
    """ccjax's interleaved [2B, ...] (row 2m + v = view v of example m) -> [2, B, ...]."""
    x = np.asarray(x)
    return x.reshape((-1, 2) + x.shape[1:]).swapaxes(0, 1)


# ----------------------------------------------------------------------------- PyTorch layout -> flax


def leaf(path: tuple[str, ...], kind: str, name: str, w: np.ndarray):
    """(collection, path + leaf, array) of one official tensor `name` of a module of `kind`."""
    last = name.rsplit(".", 1)[-1]
    if last in ("running_mean", "running_var"):
        return "batch_stats", path + ({"running_mean": "mean", "running_var": "var"}[last],), w
    if last == "bias":
        return "params", path + ("bias",), w
    if kind in ("norm", "bn"):
        return "params", path + ("scale",), w
    if kind == "conv":
        return "params", path + ("kernel",), w.transpose(2, 3, 1, 0)  # [O, I, kh, kw] -> [kh, kw, I, O]
    return "params", path + ("kernel",), w.T  # Linear [out, in] -> [in, out]


VIT_BLOCK_PARTS = {"norm1": (("norm1",), "norm"), "norm2": (("norm2",), "norm"),
                   "attn.qkv": (("attn", "qkv"), "linear"), "attn.proj": (("attn", "proj"), "linear"),
                   "mlp.fc1": (("fc1",), "linear"), "mlp.fc2": (("fc2",), "linear")}
VIT_HEAD_PARTS = {0: ("fc1", "linear"), 1: ("bn1", "bn"), 3: ("fc2", "linear"), 4: ("bn2", "bn"), 6: ("fc3", "linear")}


def vit_leaf(name: str, w: np.ndarray):
    """Network_VTCC(vit_small) names -> ccjax's ViTClusteringModel variables."""
    if m := re.fullmatch(r"vtcc\.patch_embed\.proj\.(\d+)\.\w+", name):
        i = int(m[1])  # Sequential: conv, BN, ReLU x 4, then the 1x1 conv at 12
        if i == 12:
            return leaf(("backbone", "stem", "proj"), "conv", name, w)
        return leaf(("backbone", "stem", f"{'conv' if i % 3 == 0 else 'bn'}{i // 3}"),
                    "conv" if i % 3 == 0 else "bn", name, w)
    if name == "vtcc.cls_token":
        return "params", ("backbone", "cls_token"), w
    if m := re.fullmatch(r"vtcc\.blocks\.(\d+)\.(.+)\.\w+", name):
        path, kind = VIT_BLOCK_PARTS[m[2]]
        return leaf(("backbone", f"block{m[1]}", *path), kind, name, w)
    if name.startswith("vtcc.norm."):
        return leaf(("backbone", "norm"), "norm", name, w)
    m = re.fullmatch(r"(instance|cluster)_projector\.(\d+)\.\w+", name)
    module, kind = VIT_HEAD_PARTS[int(m[2])]
    return leaf(("heads", f"{m[1]}_projector", module), kind, name, w)


def resnet_leaf(name: str, w: np.ndarray):
    """CC's Network(ResNet34) names -> ccjax's ClusteringModel(ResNet) variables."""
    if m := re.fullmatch(r"resnet\.(conv1|bn1)\.\w+", name):
        return leaf(("backbone", m[1]), "conv" if m[1] == "conv1" else "bn", name, w)
    if m := re.fullmatch(r"resnet\.layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.0|downsample\.1)\.\w+", name):
        module = {"downsample.0": "downsample_conv", "downsample.1": "downsample_bn"}.get(m[3], m[3])
        return leaf(("backbone", f"layer{m[1]}_{m[2]}", module), "conv" if "conv" in module else "bn", name, w)
    m = re.fullmatch(r"(instance|cluster)_projector\.(\d)\.\w+", name)
    return leaf(("heads", f"{m[1]}_projector", {"0": "fc1", "2": "fc2"}[m[2]]), "linear", name, w)


def mapped_variables(model, views, anchors, g: dict, to_leaf) -> dict:
    """The golden's stand-in weights as `model`'s variables; every variable filled, every shape checked."""
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), views, anchors, train=False))
    want = {k: v.shape for k, v in traverse_util.flatten_dict(abstract).items()}
    got = {}
    for name, w in golden_weights(int(g["seed"]), g["manifest"]).items():
        collection, path, value = to_leaf(name, w)
        got[(collection, *path)] = jnp.asarray(value)
    assert sorted(got) == sorted(want), f"unmapped: {sorted(set(want) ^ set(got))[:6]}"
    bad = [k for k in want if got[k].shape != want[k]]
    assert not bad, f"shape mismatch: {[(k, got[k].shape, want[k]) for k in bad[:4]]}"
    return traverse_util.unflatten_dict(got)


def load_config_file(name: str):
    spec = importlib.util.spec_from_file_location(f"golden_config_{name}", ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


# ----------------------------------------------------------------------------- the goldens themselves


def test_goldens_are_stamped_and_small():
    """Each golden names the official repository and the commit it was made from; all together < 3 MB."""
    repos = {"cc_losses": "Yunfan-Li/Contrastive-Clustering", "cc_resnet34": "Yunfan-Li/Contrastive-Clustering",
             "mfavbs_losses": "sszhou-github/MFAVBs-CC", "mfavbs_vit_small": "sszhou-github/MFAVBs-CC"}
    for name, repo in repos.items():
        g = golden(name)
        assert str(g["official_repo"]) == repo
        assert re.fullmatch(r"[0-9a-f]{40}", str(g["official_commit"])), name
    assert sum(p.stat().st_size for p in GOLDENS.glob("*.npz")) < 3 * 2**20


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("name", ["cc_losses", "mfavbs_losses"])
def test_losses_and_gradients_match_released_code(name):
    """InstanceLoss and ClusterLoss (NT-Xent + entropy term) of CC and of MFAVBs-CC, and their gradients.

    Fails for: a wrong entropy sign, reductions over N instead of 2N, temperatures swapped, the
    cluster NT-Xent on rows instead of columns, a self-similarity left in the denominator."""
    g = golden(name)
    tau_i, tau_c = float(g["instance_temperature"]), float(g["cluster_temperature"])
    inputs = [jnp.asarray(g[k], jnp.float32) for k in ("z_a", "z_b", "c_a", "c_b")]

    def total(z_a, z_b, c_a, c_b):
        out = cc_losses(z_a, z_b, c_a, c_b, tau_i, tau_c)
        parts = out["instance"], out["cluster"] + out["entropy"]  # the official ClusterLoss includes the entropy
        return parts[0] + parts[1], parts

    (_, (instance, cluster)), grads = jax.jit(jax.value_and_grad(total, argnums=(0, 1, 2, 3), has_aux=True))(*inputs)
    assert_close(instance, g["instance_loss"], LOSS_RTOL, f"{name}: InstanceLoss")
    assert_close(cluster, g["cluster_loss"], LOSS_RTOL, f"{name}: ClusterLoss")
    for key, grad in zip(("z_a", "z_b", "c_a", "c_b"), grads):
        assert_close(grad, g[f"grad_{key}"], GRAD_RTOL, f"{name}: d(loss)/d{key}")


# ----------------------------------------------------------------------------- MFAVBs-CC's ViT


def test_position_embedding_matches_released_and_differs_on_non_square_grids():
    """The fixed sin-cos table: equal on the square 2x2 grid of the golden. On a 2-row x 3-column grid the
    released builder's meshgrid puts index k // 2, k % 2 (a 3 x 2 grid) on patch k, which is
    ccjax's table for 3 rows x 2 columns, not ccjax's (row-major 2 x 3) table. Fails for: the row and
    column halves swapped, sin/cos swapped, a non-zero [CLS] row, omega over dim/2."""
    g = golden("mfavbs_vit_small")
    assert_close(sincos_position_embedding(2, 2, 512), g["pos_embed"], 1e-6, "position embedding 2x2")
    released = g["pos_embed_2x3_dim16"]
    assert_close(sincos_position_embedding(3, 2, 16), released, 1e-6, "released 2x3 table = 3x2 indexing")
    assert np.max(np.abs(sincos_position_embedding(2, 3, 16) - released)) > 0.1


@pytest.fixture(scope="module")
def released_vit():
    """configs/mfavbs_released.py's model with the golden's weights: (model, variables, views, anchors, golden)."""
    g = golden("mfavbs_vit_small")
    config = load_config_file("mfavbs_released")
    assert config.model.vit.num_heads == int(g["num_heads"]) == 16
    config.model.feature_dim = int(g["feature_dim"])
    model = build_model(config, int(g["num_clusters"]))
    views, anchors = views_nhwc(g["images"]), jnp.asarray(g["anchor"])
    return model, mapped_variables(model, views, anchors, g, vit_leaf), views, anchors, g


def run_vit(model, variables, views, anchors, train: bool):
    mutable = ["intermediates", "batch_stats"] if train else ["intermediates"]
    apply = functools.partial(model.apply, train=train, mutable=mutable, capture_intermediates=True)
    outs, state = jax.jit(apply)(variables, views, anchors)
    stages = {k: by_view(v["__call__"][0]) for k, v in state["intermediates"]["backbone"].items()
              if k == "stem" or k.startswith("block")}
    stages.update({k: np.stack([o[k] for o in outs]) for k in ("h", "z", "c")})
    return stages, state.get("batch_stats")


def test_released_vit_eval_matches_stage_by_stage(released_vit):
    """Eval mode (running statistics): ConvStem, each of the 8 blocks (anchor at token 0, then [CLS] + position),
    the final LayerNorm at the anchor token, the instance projection and the cluster probabilities.

    Fails for: LayerNorm eps 1e-5, tanh GELU, 8 heads, fusion along tokens, the anchor after [CLS], the
    qkv split in another order, a ConvStem stride/padding change, BatchNorm eps, softmax temperature."""
    model, variables, views, anchors, g = released_vit
    stages, _ = run_vit(model, variables, views, anchors, train=False)
    for name in ["stem", *(f"block{i}" for i in range(8)), "h", "z", "c"]:
        assert_close(stages[name], g[f"eval/{name}"], VIT_RTOL, f"eval {name}")


def test_released_vit_train_matches_including_running_statistics(released_vit):
    """Train mode: each branch's ConvStem and projector BatchNorms normalise with that branch's batch
    statistics; the running averages after the step (branch a then b, PyTorch's unbiased variance via
    model.vit.bn_unbiased_running_var) equal the released code's. Fails for: both branches' statistics
    pooled, the momentum as flax's 0.9 read as PyTorch's, the biased variance, one branch's update lost."""
    model, variables, views, anchors, g = released_vit
    stages, batch_stats = run_vit(model, variables, views, anchors, train=True)
    for name in ("stem", "h", "z", "c"):
        assert_close(stages[name], g[f"train/{name}"], VIT_RTOL, f"train {name}")
    flat = traverse_util.flatten_dict(batch_stats)
    for key in [k for k in g if k.startswith("train/") and "running" in k]:
        _, path, _ = vit_leaf(key[len("train/"):], g[key])
        assert_close(flat[path], g[key], VIT_RTOL, f"updated {key}")


@pytest.mark.parametrize("field,value", [("num_heads", 8), ("fusion", "tokens")])
def test_paper_settings_are_not_the_released_model(released_vit, field, value):
    """ccjax's paper settings (8 heads; blocks 2, 4, 6, 8 fusing along the token axis) on the same weights
    move h far from the released code's: the preset's two overrides are needed (docs/mfavbs.md's table),
    and the goldens can tell them apart."""
    model, variables, views, anchors, g = released_vit
    other = model.clone(backbone=model.backbone.clone(**{field: value}))
    stages, _ = run_vit(other, variables, views, anchors, train=False)
    err = np.max(np.abs(stages["h"] - g["eval/h"])) / np.max(np.abs(g["eval/h"]))
    assert err > 100 * VIT_RTOL, f"{field}={value!r} left h within {err:.2g} of the released code's"


# ----------------------------------------------------------------------------- CC's ResNet-34


@pytest.fixture(scope="module")
def cc_resnet():
    g = golden("cc_resnet34")
    config = get_base_config()
    config.model.backbone, config.model.stem = "resnet34", "imagenet"
    config.model.feature_dim = int(g["feature_dim"])
    model = build_model(config, int(g["num_clusters"]))
    views = views_nhwc(g["images"])
    return model, mapped_variables(model, views, None, g, resnet_leaf), views, g


def test_cc_resnet34_eval_matches_stage_by_stage(cc_resnet):
    """CC's ResNet-34 (torchvision blocks) and heads in eval mode: the stem's BatchNorm, each stage's
    output, h, z and c. Fails for: a stride on the wrong conv, the shortcut without its BatchNorm,
    'same' padding instead of torchvision's, maxpool without padding, a ReLU after the sum missing."""
    model, variables, views, g = cc_resnet
    last_blocks = {f"layer{i}_{n - 1}" for i, n in enumerate((3, 4, 6, 3), start=1)}
    capture = lambda mdl, method: method == "__call__" and mdl.name in {"bn1", *last_blocks}  # noqa: E731
    apply = functools.partial(model.apply, train=False, mutable=["intermediates"], capture_intermediates=capture)
    outs, state = jax.jit(apply)(variables, views)
    inter = state["intermediates"]["backbone"]
    nchw = lambda x: np.asarray(x).transpose(0, 3, 1, 2)  # noqa: E731
    assert_close(nchw(inter["bn1"]["__call__"][0][:1]), g["eval/bn1"], RESNET_RTOL, "eval stem BatchNorm")
    for i, blocks in enumerate((3, 4, 6, 3), start=1):
        out = inter[f"layer{i}_{blocks - 1}"]["__call__"][0][:3]  # view a's call
        assert_close(nchw(out), g[f"eval/layer{i}"], RESNET_RTOL, f"eval layer{i}")
    assert_close(outs[0]["h"], g["eval/h"], RESNET_RTOL, "eval h")
    for k in ("z", "c"):
        assert_close(np.stack([o[k] for o in outs]), g[f"eval/{k}"], RESNET_RTOL, f"eval {k}")


def test_cc_resnet34_train_matches_including_running_statistics(cc_resnet):
    """Train mode: h, z, c of both views and every BatchNorm's running averages after CC's two forward
    calls. ccjax's ResNet keeps flax's biased running variance (docs/mfavbs.md); the released values
    are recovered exactly from it: after the two per-view updates, torch_var - 0.81 v0 =
    n/(n-1) (flax_var - 0.81 v0), n = batch x positions of that BatchNorm's input."""
    model, variables, views, g = cc_resnet
    capture = lambda mdl, method: method == "__call__" and isinstance(mdl, nn.BatchNorm)  # noqa: E731
    apply = functools.partial(model.apply, train=True, mutable=["batch_stats", "intermediates"],
                              capture_intermediates=capture)
    outs, state = jax.jit(apply)(variables, views)
    for k in ("h", "z", "c"):
        assert_close(np.stack([o[k] for o in outs]), g[f"train/{k}"], RESNET_RTOL, f"train {k}")
    flat = traverse_util.flatten_dict(state["batch_stats"])
    initial = traverse_util.flatten_dict(variables["batch_stats"])
    inter = traverse_util.flatten_dict(state["intermediates"])
    keep = (1 - BN_MOMENTUM) ** 2
    for key in [k for k in g if k.startswith("train/") and "running" in k]:
        _, path, _ = resnet_leaf(key[len("train/"):], g[key])
        ours = np.asarray(flat[path])
        if path[-1] == "var":
            before = np.asarray(initial[path])
            n = int(np.prod(inter[(*path[:-1], "__call__")][0].shape[:-1]))  # view a's call: batch x positions
            ours = keep * before + n / (n - 1) * (ours - keep * before)
        assert_close(ours, g[key], RESNET_RTOL, f"updated {key}")
