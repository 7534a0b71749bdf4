"""Where a model looks (ccjax/explain/cam.py, GeCC's Fig. 1): Grad-CAM through the backbone's shift hook.

- Against a direct computation: the last stage's activation A (recorded by a hook of the test's own),
  the gradient of the predicted cluster's probability through the heads alone at h = mean(A) (the
  ConvNet and ResNet end in global average pooling), alpha = that gradient / (h w), ReLU(A . alpha).
- A model whose cluster output depends on one image region only: the map is 0 outside it.
- Any image size and channel count; the report's grid and `python -m ccjax explain` on written runs.
"""

from __future__ import annotations

import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.explain.cam import grad_cam, last_conv_stage, stage_shapes, upsample_maps, vit_token_maps
from ccjax.models import ClusteringHeads, ClusteringModel, ConvNet
from ccjax.models.resnet import BasicBlock, ResNet

K = 3


def _init(model, shape, seed=0):
    x = jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)
    variables = model.init(jax.random.key(seed), [x], train=False)
    # non-trivial BatchNorm running statistics, as after training
    stats = jax.tree.map(lambda v: v + 0.3 * jax.random.uniform(jax.random.key(1), v.shape), variables.get(
        "batch_stats", {}))
    return ({**variables, "batch_stats": stats} if stats else variables), x


def _direct_cam(model, variables, x):
    """The oracle: A by a recording hook, dy/dh through the heads alone, alpha = dy/dh / (h w).

    Returns (predicted clusters [n], cam(target [n]) -> the signed map [n, h, w] before the ReLU)."""
    store = {}

    def record(features, i):
        store[i] = features
        return features

    out = model.apply(variables, [x], train=False, shift_hook=record)[0]
    a = np.asarray(store[max(store)], np.float64)  # [n, h, w, F]
    h = jnp.asarray(a.mean(axis=(1, 2)), jnp.float32)
    heads = {"params": variables["params"]["heads"]}

    def cam(target):
        def y(hh):
            c = model.heads.apply(heads, hh)[1]
            return jnp.take_along_axis(c, jnp.asarray(target)[:, None], 1).sum()

        dh = np.asarray(jax.grad(y)(h), np.float64)  # [n, F]
        alpha = dh / (a.shape[1] * a.shape[2])
        return np.einsum("nhwf,nf->nhw", a, alpha)

    return np.asarray(out["c"]).argmax(1), cam


@pytest.mark.parametrize("backbone,shape", [
    ("convnet", (3, 13, 21, 1)),  # odd, non-square sizes
    ("convnet", (2, 12, 12, 5)),  # any channel count
    ("resnet", (2, 16, 16, 3)),
])
def test_grad_cam_equals_the_direct_computation(backbone, shape):
    net = (ConvNet(width=4) if backbone == "convnet"
           else ResNet(stage_sizes=(1, 1), block=BasicBlock, stem="small"))
    model = ClusteringModel(backbone=net, heads=ClusteringHeads(feature_dim=8, num_clusters=K))
    variables, x = _init(model, shape)
    k, direct = _direct_cam(model, variables, x)
    want = direct(k)
    got = grad_cam(model, variables, x)
    np.testing.assert_array_equal(got["cluster"], k)
    scale = np.abs(want).max()
    assert got["signed"].shape == want.shape and scale > 0
    np.testing.assert_allclose(got["signed"], want, rtol=2e-4, atol=1e-5 * scale)
    np.testing.assert_array_equal(got["cam"], np.maximum(got["signed"], 0))
    positive = 0
    for target in range(K):  # every cluster as an explicit target: the same agreement
        d = direct(np.full(len(x), target))
        np.testing.assert_allclose(grad_cam(model, variables, x, target=np.full(len(x), target))["signed"], d,
                                   rtol=2e-4, atol=1e-5 * np.abs(d).max())
        positive += (d > 0).sum()
    assert positive > 0  # some map is not all clipped by the ReLU
    assert last_conv_stage(model, variables, x) == (2 if backbone == "convnet" else 1)
    up = upsample_maps(np.abs(got["signed"]), shape[1:3])
    assert up.shape == shape[:3] and up.min() >= 0 and np.allclose(up.reshape(len(up), -1).max(1), 1.0)


class RegionNet(nn.Module):
    """Sees only the pixels in rows [r0, r1) x cols [c0, c1): a 1x1 conv without bias, ReLU, 2x2 average
    pool, the hook, global average pool. Outside the region the stage activation is exactly 0."""

    region: tuple[int, int, int, int]

    @nn.compact
    def __call__(self, x, *, train, shift_hook=None):
        r0, r1, c0, c1 = self.region
        mask = np.zeros(x.shape[1:3], np.float32)
        mask[r0:r1, c0:c1] = 1.0
        x = nn.relu(nn.Conv(6, (1, 1), use_bias=False)(x * mask[None, :, :, None]))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))  # [n, H/2, W/2, 6]
        if shift_hook is not None:
            x = shift_hook(x, 0)
        return x.mean(axis=(1, 2))


def test_a_model_that_sees_one_region_puts_the_map_there():
    region = (0, 8, 4, 12)  # rows 0-7, cols 4-11 of 16x16: off-centre, not square-symmetric
    model = ClusteringModel(backbone=RegionNet(region), heads=ClusteringHeads(feature_dim=4, num_clusters=K))
    variables, x = _init(model, (6, 16, 16, 3))
    # The probabilities sum to 1, so the K signed maps of an image sum to 0: the cluster with the most
    # positive map is explained (a random head may make the predicted one's map all negative).
    totals = np.stack([grad_cam(model, variables, x, target=np.full(6, k))["signed"].sum((1, 2)) for k in range(K)])
    cam = grad_cam(model, variables, x, target=totals.argmax(0))["cam"]  # [6, 8, 8]: one cell per 2x2 pixels
    cells = np.zeros((8, 8), bool)
    cells[0:4, 2:6] = True
    assert (cam[:, ~cells] == 0).all() and (cam[:, cells].max(axis=1) > 0).all()
    up = upsample_maps(cam, (16, 16))
    inside = np.zeros((16, 16), bool)
    inside[0:8, 4:12] = True
    mass = up[:, inside].sum(1) / up.reshape(6, -1).sum(1)
    assert (mass > 0.8).all()  # bilinear upsampling spreads at most half a cell across the border
    peak = up.reshape(6, -1).argmax(1)
    assert inside.reshape(-1)[peak].all()


def test_stage_shapes_of_the_digits_convnet():
    model = ClusteringModel(backbone=ConvNet(width=4), heads=ClusteringHeads(feature_dim=8, num_clusters=K))
    variables, x = _init(model, (2, 12, 12, 1))
    assert stage_shapes(model, variables, x) == {0: (2, 6, 6, 4), 1: (2, 3, 3, 8), 2: (2, 3, 3, 16)}


# ----------------------------------------------------------------------------- runs, report, command


@pytest.fixture(scope="module")
def convnet_run(tmp_path_factory):
    """A ConvNet run on the 8x8 digits' shape (no training: an initialised checkpoint)."""
    from test_attention import write_run
    from test_report import load_config

    c = load_config("cc_digits")
    c.model.convnet_width = 4
    c.dataset.num_clusters = K
    c.progress_bar = False
    return write_run(str(tmp_path_factory.mktemp("cam") / "convnet"), c)


@pytest.mark.parametrize("fusing", [1, 0])
def test_vit_maps_are_the_last_blocks_token_attention(fusing):
    """Depth 2: N=1 makes the last block fused (with one view in both branches, token 0's patch attention
    over the two halves adds up); N=0 (VTCC) a per-branch block (branch a's row). Against a recomputation
    for each image alone from ccjax.explain.attention_maps' captured block input."""
    from ccjax.explain.attention_maps import attention_weights, capture_block_inputs
    from ccjax.models import build_model
    from test_attention import vit_config

    config = vit_config(depth=2, fusing=fusing)
    model = build_model(config, K)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 8, 8, 1)), jnp.float32)
    variables = model.init(jax.random.key(0), [x], train=False)
    r = vit_token_maps(model, variables, config.model.vit, x, None, False)
    assert r["map"].shape == (3, 4, 4)
    qkv = variables["params"]["backbone"]["block1"]["attn"]["qkv"]
    inp = capture_block_inputs(model, variables, [x, x], None, (1,))[1]["norm1"]  # the view in both branches
    w = np.asarray(attention_weights(inp, qkv["kernel"], qkv["bias"], 2).mean(1))[:, 0]  # token 0's rows
    if fusing:  # [3, 2T]: example m's fused sequence
        t = w.shape[1] // 2
        want = w[:, 1:t] + w[:, t + 1:]
    else:  # [6, T]: rows 2m, 2m + 1 are example m's branches a and b
        want = w[0::2, 1:]
    np.testing.assert_allclose(r["map"].reshape(3, -1), want, rtol=1e-5, atol=1e-7)


def test_report_grid_and_the_explain_command(convnet_run, tmp_path):
    from ccjax.report.cam_figures import confident_examples, write_report_cams
    from fakes import array_dataset, blob_images
    from test_report import ROOT, check_real_plot, subprocess_env

    workdir, config, model, variables = convnet_run
    imgs, labels = blob_images(n=30, size=8)
    probs = np.random.default_rng(0).dirichlet(np.ones(K), size=30).astype(np.float32)
    picks = confident_examples(probs, clusters=10, per_cluster=4)
    assert [c for c, _ in picks] == sorted(set(probs.argmax(1).tolist()))
    for c, members in picks:
        assert (probs[members].argmax(1) == c).all() and list(probs[members, c]) == sorted(probs[members, c])[::-1]
    path = write_report_cams(workdir, model, variables, config, array_dataset(imgs, labels), probs)
    check_real_plot(path)
    from PIL import Image

    files = []
    for i in range(3):
        f = tmp_path / f"img{i}.png"
        Image.fromarray(imgs[i, :, :, 0]).save(f)
        files.append(str(f))
    out = tmp_path / "explain.png"
    # two columns (the run twice; ViT maps are tested above), rows = the three files
    p = subprocess.run([sys.executable, "-m", "ccjax", "explain", f"--workdir={workdir}", f"--workdir={workdir}",
                        f"--images={','.join(files)}", f"--out={out}"], cwd=ROOT, env=subprocess_env(),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    check_real_plot(str(out), min_width=200)
    with Image.open(out) as im:
        assert im.height > im.width  # a row per image
    p = subprocess.run([sys.executable, "-m", "ccjax", "explain", f"--workdir={workdir}", "--indices=a"], cwd=ROOT,
                       env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "whole numbers" in p.stderr
