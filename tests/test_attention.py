"""Attention maps of a ViT run (ccjax.explain.attention_maps and `python -m ccjax attention`, the MFAVBs paper's Fig. 4).

- The recomputed weights are the model's: from the captured attention input
  and the qkv/proj parameters, a numpy transcription of softmax(q k^T / sqrt(D)) v
  reproduces each chosen block's attention output, and the token-0 rows that
  ccjax.explain.attention_maps returns are its rows (heads averaged), with the anchor token
  in front when there is one.
- Rows sum to 1; with the same view in both branches the fused block splits
  token 0's attention equally between the two halves (the two branches are
  indistinguishable to a permutation-equivariant block).
- The last FAVB is blocks 2N-1 and 2N (1-based).
- The command line on a tiny ViT run directory writes a real PNG; an anchor
  run embeds the image with the anchor model (stubbed here: no CLIP weights
  offline); a non-ViT run and an unreadable image are one-line errors.

The run directories are written as ccjax train writes them (config.json,
run.json, an Orbax checkpoint of an initialised train state) without training:
the maps' plumbing does not depend on the weights' values, and training a ViT
would take a minute of the shared CPUs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ccjax.explain.attention_maps import (AttentionMaps, attention_weights, capture_block_inputs, favb_attention,
                                          last_favb_blocks, load_vit_run)
from ccjax.report.attention_figure import draw_attention, image_attention
from ccjax.config import get_base_config
from ccjax.errors import UserError
from test_report import ROOT, check_real_plot, load_config, subprocess_env

K = 3
ANCHOR_DIM = 24


def vit_config(*, depth=2, fusing=1, anchor=False, fusion="tokens"):
    c = load_config("cc_digits")
    c.method = "mfavbs" if fusing else "vtcc"
    c.model.backbone = "vit"
    c.model.vit.update(dict(embed_dim=16, depth=depth, num_heads=2, patch_size=2, num_fusing_blocks=fusing,
                            fusion=fusion, mlp_ratio=2.0))
    c.augment.image_size = 8  # a 4 x 4 patch grid
    c.dataset.num_clusters = K
    c.anchor.enabled = anchor
    c.anchor.project = anchor  # anchors of dimension 24 projected to the width 16
    c.progress_bar = False
    return c


# ----------------------------------------------------------------------------- run directories


def write_run(workdir: str, config):
    """config.json, run.json and a checkpoint of the initialised state, as ccjax train leaves them.

    Returns (workdir, config, model (flax module), variables).
    """
    from ccjax.run import rundir
    from ccjax.run.checkpoint import Checkpointer
    from ccjax.runtime.mesh import make_mesh
    from ccjax.train.state import ModelSetup
    from ccjax.run.rundir import RUN_INFO

    rundir.write_config(workdir, config)
    anchor_dim = ANCHOR_DIM if config.anchor.enabled else None
    info = {"dataset": "digits", "num_examples": 1797, "image_shape": [8, 8, 1], "num_clusters": K,
            "class_names": None, "anchor_dim": anchor_dim}
    rundir.write_json_atomic(os.path.join(workdir, RUN_INFO), info)
    setup = ModelSetup.build(config, K, (8, 8, 1), anchor_dim, make_mesh())
    state = setup.init_state()
    ck = Checkpointer(os.path.join(workdir, "checkpoints"), keep=1)
    ck.save(0, state, {"step": 0})
    ck.close()
    return workdir, config, setup.module, {"params": state.params, **state.model_state}


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    """MFAVBs-CC without anchor: depth 2, N = 1 (blocks 1 and 2 form the only FAVB)."""
    return write_run(str(tmp_path_factory.mktemp("vit") / "run"), vit_config())


@pytest.fixture(scope="module")
def anchor_run(tmp_path_factory):
    """MFAVBs-CC with an anchor token (dimension 24, projected to the width 16)."""
    return write_run(str(tmp_path_factory.mktemp("vit_anchor") / "run"), vit_config(anchor=True))


def random_views(seed: int, n: int = 2):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.normal(size=(1, 8, 8, 1)), jnp.float32) for _ in range(n)]


# ----------------------------------------------------------------------------- numpy oracle


def np_attention(x, qkv_k, qkv_b, proj_k, proj_b, heads):
    """A direct numpy transcription of one multi-head attention layer: (weights [N, H, T, T], output [N, T, E])."""
    x = np.asarray(x, np.float64)
    n, t, e = x.shape
    d = e // heads
    qkv = (x @ np.asarray(qkv_k, np.float64) + np.asarray(qkv_b, np.float64)).reshape(n, t, 3, heads, d)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # [N, H, T, D]
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)  # [N, H, T, T]
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    y = (w @ v).transpose(0, 2, 1, 3).reshape(n, t, e)  # heads concatenated
    return w, y @ np.asarray(proj_k, np.float64) + np.asarray(proj_b, np.float64)


def test_recomputed_weights_are_the_models(anchor_run):
    """On the anchor run (token 0 = anchor, 1 = [CLS]); the [CLS]-first layout is checked below."""
    _, config, model, variables = anchor_run
    anchor = config.anchor.enabled
    views = random_views(0)
    anchors = jnp.asarray(np.random.default_rng(1).normal(size=(1, ANCHOR_DIM)), jnp.float32) if anchor else None
    pb, fb = last_favb_blocks(config.model.vit)
    assert (pb, fb) == (0, 1)  # N = 1: blocks 1 and 2 (1-based)
    captured = jax.jit(lambda var, v, a: capture_block_inputs(model, var, v, a, [pb, fb], leaves=("norm1", "attn")))(
        variables, views, anchors)
    t = 16 + 1 + int(anchor)  # patches + [CLS] (+ anchor)
    assert captured[pb]["norm1"].shape == (2, t, 16)  # both branches, per-branch block
    assert captured[fb]["norm1"].shape == (1, 2 * t, 16)  # the fused sequence
    maps = favb_attention(model, variables, config.model.vit, views, anchors, anchor)

    for b in (pb, fb):
        p = variables["params"]["backbone"][f"block{b}"]["attn"]
        w_np, y_np = np_attention(captured[b]["norm1"], p["qkv"]["kernel"], p["qkv"]["bias"],
                                  p["proj"]["kernel"], p["proj"]["bias"], 2)
        np.testing.assert_allclose(np.asarray(captured[b]["attn"]), y_np, rtol=1e-4, atol=1e-5)
        w = attention_weights(captured[b]["norm1"], p["qkv"]["kernel"], p["qkv"]["bias"], 2)
        np.testing.assert_allclose(np.asarray(w), w_np, rtol=1e-4, atol=1e-6)
        avg = w_np.mean(axis=1)  # heads averaged
        if b == pb:
            np.testing.assert_allclose(maps.per_branch, avg[:, 0], rtol=1e-4, atol=1e-6)  # rows of a, b
        else:
            np.testing.assert_allclose(maps.fused, avg[0, [0, t]], rtol=1e-4, atol=1e-6)  # a at 0, b at T

    assert maps.num_special == 1 + int(anchor) and maps.grid == (4, 4)
    assert maps.query == ("anchor" if anchor else "[CLS]")
    np.testing.assert_allclose(maps.per_branch.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(maps.fused.sum(1), 1.0, atol=1e-5)
    assert (maps.per_branch >= 0).all() and (maps.fused >= 0).all()
    # patch_map picks the patch tokens of the requested branch, row-major.
    np.testing.assert_array_equal(maps.patch_map(maps.fused[0], 1).ravel(), maps.fused[0, t + maps.num_special:])
    np.testing.assert_array_equal(maps.patch_map(maps.per_branch[1], 0).ravel(),
                                  maps.per_branch[1, maps.num_special:])


def test_same_view_in_both_branches_splits_fused_attention_equally(vit_run):
    _, config, model, variables = vit_run
    v, v2 = random_views(3)
    maps = favb_attention(model, variables, config.model.vit, [v, v], None, False)
    t = maps.num_tokens
    assert (t, maps.num_special, maps.grid, maps.query) == (17, 1, (4, 4), "[CLS]")
    np.testing.assert_allclose(maps.per_branch.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(maps.fused.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(maps.per_branch[0], maps.per_branch[1], atol=1e-6)
    np.testing.assert_allclose(maps.fused[0, :t], maps.fused[0, t:], atol=1e-6)
    np.testing.assert_allclose(maps.fused[0, :t].sum(), 0.5, atol=1e-5)
    # Different views: no longer symmetric.
    maps2 = favb_attention(model, variables, config.model.vit, [v, v2], None, False)
    assert np.abs(maps2.fused[0, :t] - maps2.fused[0, t:]).max() > 1e-4


def test_vtcc_model_draws_the_last_block(vit_run, tmp_path):
    """N = 0 (VTCC; same parameters): the last block's per-branch maps only, drawn as 2 x 2 panels."""
    from ccjax.models import build_model

    _, config, _, variables = vit_run
    vtcc = vit_config(fusing=0)
    maps = favb_attention(build_model(vtcc, K), variables, vtcc.model.vit, random_views(5), None, False)
    assert maps.fused is None and maps.fused_block is None and maps.per_branch_block == 1
    np.testing.assert_allclose(maps.per_branch.sum(1), 1.0, atol=1e-5)
    images = [np.random.default_rng(i).uniform(size=(8, 8, 1)) for i in range(2)]
    draw_attention(str(tmp_path / "v.png"), maps, images, "vtcc")
    check_real_plot(str(tmp_path / "v.png"), min_width=400, min_height=400)


@pytest.mark.parametrize("depth, n, fusion, expected", [
    (8, 4, "tokens", (6, 7)), (8, 2, "tokens", (2, 3)), (8, 1, "tokens", (0, 1)),
    (8, 0, "tokens", (7, None)), (6, 2, "none", (5, None)),
])
def test_last_favb_blocks(depth, n, fusion, expected):
    vit = get_base_config().model.vit
    vit.update(dict(depth=depth, num_fusing_blocks=n, fusion=fusion))
    assert last_favb_blocks(vit) == expected


# ----------------------------------------------------------------------------- the command line


def write_digit_png(path) -> str:
    from sklearn.datasets import load_digits

    img = (load_digits().images[7] * (255 / 16)).astype(np.uint8)  # [8, 8]
    Image.fromarray(img).resize((24, 24), Image.Resampling.NEAREST).convert("RGB").save(path)
    return str(path)


def test_cli_writes_the_attention_png(vit_run, tmp_path):
    workdir = vit_run[0]
    image = write_digit_png(tmp_path / "seven.png")
    out = tmp_path / "maps" / "attention.png"
    r = subprocess.run([sys.executable, "-m", "ccjax", "attention", f"--workdir={workdir}", f"--image={image}",
                        f"--out={out}", "--seed=3"], cwd=ROOT, env=subprocess_env(), capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "blocks 1 (per branch) and 2 (fused)" in r.stdout and str(out) in r.stdout, r.stdout
    check_real_plot(str(out), min_width=800, min_height=500)  # 2 rows x 4 panels


def test_anchor_run_embeds_the_image_and_puts_the_anchor_first(anchor_run, tmp_path, monkeypatch):
    import ccjax.report.attention_figure as attention_figure

    calls = []

    def fake_embed(config, images, mesh=None):  # stands in for the CLIP image encoder
        calls.append(np.asarray(images).copy())
        x = np.asarray(images, np.float32).reshape(len(images), -1)  # [n, 64]
        return np.tanh(x[:, :ANCHOR_DIM] / 128.0 - 1.0)  # [n, 24]

    monkeypatch.setattr(attention_figure, "embed_images", fake_embed)
    image = write_digit_png(tmp_path / "seven.png")
    out = str(tmp_path / "a.png")
    maps = image_attention(anchor_run[0], image, out, seed=0)
    assert isinstance(maps, AttentionMaps)
    assert len(calls) == 1 and calls[0].shape == (1, 8, 8, 1)  # the un-augmented image, storage format
    assert maps.query == "anchor" and maps.num_special == 2 and maps.num_tokens == 18
    assert (maps.per_branch_block, maps.fused_block) == (0, 1)
    np.testing.assert_allclose(maps.per_branch.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(maps.fused.sum(1), 1.0, atol=1e-5)
    check_real_plot(out, min_width=800, min_height=500)


def test_non_vit_run_is_a_one_line_error(tmp_path):
    from ccjax.run import rundir

    c = load_config("cc_digits")
    rundir.write_config(str(tmp_path), c)
    with pytest.raises(UserError, match="attention maps need a ViT run"):
        load_vit_run(str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "ccjax", "attention", f"--workdir={tmp_path}", "--image=x.png"],
                       cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip() and "WARNING" not in l]
    assert len(lines) == 1 and "attention maps need a ViT run" in lines[0], r.stderr


def test_unreadable_image_is_a_user_error(vit_run, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UserError, match="cannot read"):
        image_attention(vit_run[0], str(bad), str(tmp_path / "o.png"))
    with pytest.raises(UserError, match="does not exist"):
        image_attention(vit_run[0], str(tmp_path / "missing.png"), str(tmp_path / "o.png"))
