"""Attention maps of a ViT run: the MFAVBs-CC paper's Fig. 4 (the command is ccjax/cli/attention.py).

For one image, makes the two augmented views (view 1's and view 2's
pipelines, as in training), runs the trained model on them and draws the
self-attention of token 0 (the CLIP anchor when the run uses one, else [CLS])
over the patch tokens, averaged over heads, in the LAST fusing-augmenting
block (FAVB) i = N:
- block 2N-1 (per branch, before fusion): branch a's token 0 over view a's
  patches, branch b's over view b's;
- block 2N (fused, [B, 2T, E]): branch a's token 0 (fused position 0) over the
  patches of both views, and branch b's (fused position T) likewise.
A run without fusing blocks (VTCC: N = 0, or fusion='none') gets its last
block's per-branch maps only.

How the weights are obtained: the ViT (ccjax/models/vit.py) computes attention
with `jax.nn.dot_product_attention`, which does not return the weights. The
input of each chosen block's attention (its `norm1` output) is captured with
flax's `capture_intermediates`, and the weights are recomputed from it and the
block's qkv parameters: softmax(q k^T / sqrt(D)) per head, the same formula
(tests/test_attention.py checks that they reproduce the block's attention output).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.augment import AugmentParams
from ccjax.errors import UserError
from ccjax.run.load import TrainedModel
from ccjax.run.rundir import load_run_config, read_run_info


@dataclasses.dataclass(frozen=True)
class AttentionMaps:
    """Token-0 attention rows (heads averaged) of the last FAVB for one image's two views.

    per_branch: float32 [2, T]: block `per_branch_block`, branch a's then b's token 0 over its own T tokens.
    fused: float32 [2, 2T] or None: block `fused_block`, branch a's token 0 (fused position 0) and
      branch b's (position T) over the fused sequence (tokens 0..T-1 from a, T..2T-1 from b).
    num_special: tokens before the patches in a branch (1 for [CLS], 2 with the anchor first).
    grid: (rows, cols) of the patch tokens (row-major).
    """

    per_branch_block: int  # 0-based block index
    fused_block: int | None  # 0-based block index; None without fusing blocks
    per_branch: np.ndarray
    fused: np.ndarray | None
    num_special: int
    grid: tuple[int, int]
    query: str  # "anchor" or "[CLS]"

    @property
    def num_tokens(self) -> int:
        return self.per_branch.shape[1]

    def patch_map(self, row: np.ndarray, branch: int) -> np.ndarray:
        """The patch part of an attention row over one branch's tokens: [rows, cols].

        `row` is [T] (per-branch) or [2T] (fused; `branch` 0 = a's tokens, 1 = b's).
        """
        t = self.num_tokens
        part = row[branch * t:(branch + 1) * t] if row.shape[0] == 2 * t else row
        return part[self.num_special:].reshape(self.grid)


def last_favb_blocks(vit_cfg) -> tuple[int, int | None]:
    """(per-branch block, fused block) of the last FAVB, 0-based: (2N-2, 2N-1); (depth-1, None) when N = 0."""
    n = int(vit_cfg.num_fusing_blocks) if vit_cfg.fusion == "tokens" else 0
    if n > 0:
        return 2 * n - 2, 2 * n - 1
    return int(vit_cfg.depth) - 1, None


def attention_weights(x: jax.Array, qkv_kernel: jax.Array, qkv_bias: jax.Array, num_heads: int) -> jax.Array:
    """Softmax attention weights of one ViT attention layer: x [N, T, E] -> float32 [N, heads, T, T].

    x is the layer's input (the block's norm1 output); q, k come from the fused
    qkv projection laid out as (3, heads, head_dim) like ccjax.models.vit.Attention.
    """
    n, t, e = x.shape
    d = e // num_heads
    qkv = x.astype(jnp.float32) @ qkv_kernel.astype(jnp.float32) + qkv_bias.astype(jnp.float32)  # [N, T, 3E]
    qkv = qkv.reshape(n, t, 3, num_heads, d)
    q, k = qkv[:, :, 0], qkv[:, :, 1]  # [N, T, H, D]
    logits = jnp.einsum("nqhd,nkhd->nhqk", q, k) / jnp.sqrt(jnp.float32(d))  # [N, H, T, T]
    return jax.nn.softmax(logits, axis=-1)


def _block_filter(blocks: Sequence[int], leaves: Sequence[str]):
    """capture_intermediates filter: the named submodules of the chosen backbone blocks."""
    names = {f"block{b}" for b in blocks}

    def keep(module, method_name: str) -> bool:
        path = module.path
        return (method_name == "__call__" and len(path) >= 3 and path[-3] == "backbone"
                and path[-2] in names and path[-1] in leaves)

    return keep


def capture_block_inputs(model, variables: dict, views: Sequence[jax.Array], anchors: jax.Array | None,
                         blocks: Sequence[int], leaves: Sequence[str] = ("norm1",)) -> dict:
    """{block: {leaf: output}} of the chosen blocks' submodules (default: norm1, the attention input).

    norm1's output is [2B, T, E] in a per-branch block and [B, 2T, E] in a fused one.
    """
    _, state = model.apply(variables, list(views), anchors, train=False,
                           capture_intermediates=_block_filter(blocks, leaves), mutable=["intermediates"])
    inter = state["intermediates"]["backbone"]
    return {b: {leaf: inter[f"block{b}"][leaf]["__call__"][0] for leaf in leaves} for b in blocks}


@functools.partial(jax.jit, static_argnames=("model", "blocks", "heads"))
def _token_attention(variables: dict, views: list, anchors: jax.Array | None, *, model, blocks: tuple[int, ...],
                     heads: int) -> dict:
    """{block: heads-averaged attention weights [N, T', T']} of the chosen blocks (jit, cached per model)."""
    inputs = capture_block_inputs(model, variables, views, anchors, blocks)
    out = {}
    for b in blocks:
        qkv = variables["params"]["backbone"][f"block{b}"]["attn"]["qkv"]
        w = attention_weights(inputs[b]["norm1"], qkv["kernel"], qkv["bias"], heads)  # [N, H, T', T']
        out[b] = w.mean(axis=1)  # [N, T', T']
    return out


def favb_attention(model, variables: dict, vit_cfg, views: Sequence[jax.Array], anchors: jax.Array | None,
                   use_anchor: bool) -> AttentionMaps:
    """Token-0 attention in the last FAVB for ONE image's two views [1, S, S, C] each (anchors [1, A] or None).

    `model` is the run's model (build_model(config, K)), `variables` its {'params', 'batch_stats'}.
    """
    if len(views) != 2 or views[0].shape[0] != 1:
        raise ValueError(f"pass the two views of one image, [1, S, S, C] each; got {[v.shape for v in views]}")
    pb, fb = last_favb_blocks(vit_cfg)
    blocks = (pb,) if fb is None else (pb, fb)
    w = jax.device_get(_token_attention(variables, list(views), anchors, model=model, blocks=blocks,
                                        heads=int(vit_cfg.num_heads)))
    per_branch = np.asarray(w[pb][:, 0, :], np.float32)  # [2, T]: rows 0 (a) and 1 (b), query token 0
    t = per_branch.shape[1]
    fused = None
    if fb is not None:
        f = np.asarray(w[fb][0], np.float32)  # [2T, 2T]
        fused = np.stack([f[0], f[t]])  # [2, 2T]: a's token 0 at position 0, b's at position T
    num_special = 1 + int(use_anchor)
    side = views[0].shape[1] // int(vit_cfg.patch_size), views[0].shape[2] // int(vit_cfg.patch_size)
    if side[0] * side[1] != t - num_special:
        raise ValueError(f"{t} tokens do not match a {side} patch grid plus {num_special} special tokens")
    return AttentionMaps(pb, fb, per_branch, fused, num_special, side, "anchor" if use_anchor else "[CLS]")


# ----------------------------------------------------------------------------- drawing


def display_image(view: np.ndarray, aug_cfg) -> np.ndarray:
    """A normalised view [S, S, C] back to [0, 1] for display: [S, S, C] (C = 1 or 3)."""
    mean, std = AugmentParams.from_config(aug_cfg).channel_stats(view.shape[-1])
    return np.clip(view * std + mean, 0.0, 1.0)


def _show(ax, img: np.ndarray) -> None:
    """An image [S, S, C] in [0, 1] (C = 1: gray levels, no contrast stretch)."""
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")


def overlay(heat: np.ndarray, vmax: float, cmap) -> np.ndarray:
    """A heat map [rows, cols] as RGBA [rows, cols, 4] whose opacity grows with the value (at most 0.75),
    so the image stays visible where attention is low."""
    level = np.clip(heat / max(float(vmax), 1e-12), 0.0, 1.0)
    rgba = cmap(level)
    rgba[..., 3] = 0.75 * level
    return rgba


def attention_figure(maps: AttentionMaps, images: Sequence[np.ndarray], title: str = "",
                     input_image: np.ndarray | None = None):
    """The token-0 attention over the patches of the two views, drawn over each view beside the plain
    view (and the input image), one colour bar per row; returns the matplotlib Figure.

    images: the two views for display, [S, S, C] in [0, 1]; input_image: the image before augmentation
    (uint8 [H, W, C]) or None. Rows: branch a (view 1), branch b (view 2). Columns: the input, the view,
    its token 0 in the per-branch block, in the fused block over its own and over the other view (one
    colour scale per row: a fused row's two halves form one distribution).
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    cmap = colormaps["Reds"]  # one hue, white to red: reads on gray and colour images alike
    lead = 2 if input_image is not None else 1
    ncols = lead + (1 if maps.fused is None else 3)
    heading = (f"Where the {maps.query} token looks: its attention over the image patches, averaged over heads"
               + (f"\n{title}" if title else ""))
    special = "[CLS] and anchor tokens" if maps.num_special == 2 else "[CLS] token"
    heading += f"\n(the rest of each token's attention goes to the {special})"
    lines = heading.count("\n") + 1
    height = 6.0 + 0.19 * lines
    fig = Figure(figsize=(2.5 * ncols + 0.8, height))
    axes = fig.subplots(2, ncols, squeeze=False)
    # room at the top for the heading's lines and the first row's three-line panel titles
    fig.subplots_adjust(left=0.01, right=0.9, bottom=0.02, top=1 - (0.6 + 0.19 * lines) / height, hspace=0.4,
                        wspace=0.08)
    stage = "before the views are fused" if maps.fused is not None else "the last block"
    for br, name in enumerate(("a", "b")):
        own = maps.patch_map(maps.per_branch[br], 0)
        panels = [(br, own, f"block {maps.per_branch_block + 1}, {stage}:\nbranch {name} over view {br + 1}")]
        if maps.fused is not None:
            halves = [maps.patch_map(maps.fused[br], v) for v in (0, 1)]
            for v in (br, 1 - br):
                panels.append((v, halves[v], f"block {maps.fused_block + 1}, views fused:\n"
                                             f"branch {name} over view {v + 1}"))
        vmax = max(float(h.max()) for _, h, _ in panels)
        if input_image is not None:
            _show(axes[br, 0], np.asarray(input_image, np.float32) / 255.0)
            axes[br, 0].set_title("input image", fontsize=8)
        _show(axes[br, lead - 1], images[br])
        axes[br, lead - 1].set_title(f"view {br + 1}: its augmentation\n(what branch {name} sees)", fontsize=8)
        for col, (v, heat, label) in enumerate(panels, start=lead):
            ax = axes[br, col]
            _show(ax, images[v])
            s_h, s_w = images[v].shape[:2]
            ax.imshow(overlay(heat, vmax, cmap), extent=(-0.5, s_w - 0.5, s_h - 0.5, -0.5), interpolation="nearest")
            ax.set_title(f"{label}\n{100 * float(heat.sum()):.0f}% of its attention on these patches", fontsize=7)
        for ax in axes[br]:
            ax.axis("off")
        bar = fig.colorbar(ScalarMappable(Normalize(0.0, vmax), cmap), ax=list(axes[br]), fraction=0.02, pad=0.01)
        bar.set_label("share of the token's attention\non a patch (redder, more opaque: more)", fontsize=7)
    fig.suptitle(heading, fontsize=9)
    return fig


def draw_attention(path: str, maps: AttentionMaps, images: Sequence[np.ndarray], title: str = "",
                   input_image: np.ndarray | None = None) -> None:
    """Writes attention_figure(...) as a PNG to `path`."""
    import io

    from ccjax.run.rundir import write_atomic

    buf = io.BytesIO()
    attention_figure(maps, images, title, input_image).savefig(buf, format="png", dpi=120, bbox_inches="tight")
    write_atomic(path, lambda f: f.write(buf.getvalue()))


# ----------------------------------------------------------------------------- a run's model


def load_vit_run(workdir: str) -> TrainedModel:
    """The trained model of a ViT run (ccjax.run.load); a UserError for any other run."""
    config = load_run_config(workdir)
    backbone = config.model.backbone
    if backbone != "vit":
        raise UserError(f"attention maps need a ViT run (model.backbone='vit'); {workdir!r} is a {backbone!r} run")
    return TrainedModel.build(workdir, config, read_run_info(workdir))


def image_attention(workdir: str, image_path: str, out: str, seed: int = 0) -> AttentionMaps:
    """Draws the last FAVB's attention maps of `image_path` for the run in `workdir` to `out`; returns them."""
    from ccjax.augment import augment_batch
    from ccjax.augment import view_augment_config
    from ccjax.data.images import ImageSkipped, load_image

    trained = load_vit_run(workdir)
    config = trained.config
    if not os.path.isfile(image_path):
        raise UserError(f"{image_path!r} does not exist; pass --image=<an image file>")
    try:
        image = load_image(image_path, trained.image_shape)  # uint8 [H, W, C], the training format
    except ImageSkipped as e:
        raise UserError(f"cannot read {image_path!r} as an image ({e}); pass a PNG/JPEG file") from None
    variables = trained.restore_latest().variables
    images = jnp.asarray(image[None])  # [1, H, W, C]
    anchors = None
    if config.anchor.enabled:  # the frozen CLIP embedding of the un-augmented image
        from ccjax.clip import embed_images

        anchors = jnp.asarray(embed_images(config, image[None], trained.mesh))  # [1, A]
    k1, k2 = jax.random.split(jax.random.key(seed))
    cfg1, cfg2 = (AugmentParams.from_config(view_augment_config(config, v)) for v in (1, 2))
    augment = jax.jit(augment_batch, static_argnums=2)
    views = [augment(images, k1, cfg1), augment(images, k2, cfg2)]  # [1, S, S, C] each
    maps = favb_attention(trained.module, variables, config.model.vit, views, anchors, bool(config.anchor.enabled))
    shown = [display_image(np.asarray(v[0]), c) for v, c in zip(views, (cfg1, cfg2))]
    n = int(config.model.vit.num_fusing_blocks) if config.model.vit.fusion == "tokens" else 0
    depth = int(config.model.vit.depth)
    title = (f"{os.path.basename(image_path)}, {config.method} run, augmentation seed {seed}\n" + (
        f"the last of its {n} fusing blocks (FAVB: a block per view, then a block over both views together), "
        f"{depth} blocks in all" if n else f"no fusing blocks: the last of its {depth} blocks"))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    draw_attention(out, maps, shown, title, image)
    return maps
