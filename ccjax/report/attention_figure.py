"""The figure of `python -m ccjax attention`: a ViT run's attention maps (ccjax/explain/attention_maps.py)
drawn over the two augmented views of one image (the MFAVBs-CC paper's Fig. 4)."""

from __future__ import annotations

import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.augment import AugmentParams, augment_batch, view_augment_config
from ccjax.clip import embed_images
from ccjax.data.images import ImageSkipped, load_image
from ccjax.errors import UserError
from ccjax.explain.attention_maps import AttentionMaps, favb_attention, load_vit_run
from ccjax.report.figures import new_figure, save_figure


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
    # matplotlib loads only for a command that draws
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cmap = colormaps["Reds"]  # one hue, white to red: reads on gray and colour images alike
    lead = 2 if input_image is not None else 1
    ncols = lead + (1 if maps.fused is None else 3)
    heading = (f"Where the {maps.query} token looks: its attention over the image patches, averaged over heads"
               + (f"\n{title}" if title else ""))
    special = "[CLS] and anchor tokens" if maps.num_special == 2 else "[CLS] token"
    heading += f"\n(the rest of each token's attention goes to the {special})"
    lines = heading.count("\n") + 1
    height = 6.0 + 0.19 * lines
    fig = new_figure(2.5 * ncols + 0.8, height)
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
    save_figure(attention_figure(maps, images, title, input_image), path, dpi=120, bbox_inches="tight")


def image_attention(workdir: str, image_path: str, out: str, seed: int = 0) -> AttentionMaps:
    """Draws the last FAVB's attention maps of `image_path` for the run in `workdir` to `out`; returns them."""
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
