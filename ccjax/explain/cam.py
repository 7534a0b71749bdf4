"""Where a trained model looks (GeCC's Fig. 1): Grad-CAM for CNN runs, token attention for ViT runs.

Grad-CAM (Selvaraju et al., ICCV 2017) of the predicted cluster's probability y = c_k (k = argmax c)
at the backbone's last convolutional stage A [h, w, F]:

    alpha_f = mean_{i,j} dy / dA_{i,j,f},    map = ReLU(sum_f alpha_f A_{:,:,f})   [h, w]

The stage activation is reached through the backbone's feature-shift hook (ccjax/models/layers.py):
the hook of the last stage records A and adds a perturbation `delta` = 0, and the gradient of y with
respect to delta is dy/dA; the backbone needs nothing else. "Last stage" is the highest hook index
the backbone calls (ResNet: stage 4, ConvNet: block 3). For display the map is upsampled bilinearly
to the input view and scaled to [0, 1] per image.

ViT runs (VTCC, MFAVBs-CC) have no convolutional stage: they get the existing attention maps
(ccjax/explain/attention_maps.py) of token 0 (the CLIP anchor, else [CLS]) over the patches in the last
block, heads averaged, for the un-augmented view fed to both branches (as evaluation does); in a
fused last block (MFAVBs-CC) the two halves (the same view twice) are added. These maps do not
depend on the predicted cluster.

Shapes: images uint8 [n, H, W, C] (any H, W; C = 1 or 3 for a run's preprocessing, any C for
`grad_cam` on float inputs); maps float32 [n, S, S] for the run's view size S.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.augment import AugmentParams, preprocess_eval, view_augment_config
from ccjax.explain.attention_maps import attention_weights


def _recording_hook(store: dict, layer: int | None = None, delta: jax.Array | None = None):
    """A shift hook that records each stage's features (store[index] = features) and adds `delta` at `layer`."""

    def hook(features: jax.Array, index: int) -> jax.Array:
        store[index] = features
        if index == layer and delta is not None:
            return features + delta.astype(features.dtype)
        return features

    return hook


def stage_shapes(module, variables: dict, x: jax.Array, anchors: jax.Array | None = None) -> dict[int, tuple]:
    """{hook index: feature shape} of every stage the backbone hands to its shift hook (no compute)."""
    shapes: dict = {}

    def run(variables, x, anchors):
        store: dict = {}
        module.apply(variables, [x], anchors, train=False, shift_hook=_recording_hook(store))
        return store

    for k, v in jax.eval_shape(run, variables, x, anchors).items():
        shapes[int(k)] = tuple(v.shape)
    return shapes


def last_conv_stage(module, variables: dict, x: jax.Array, anchors: jax.Array | None = None) -> int:
    """The highest hook index whose features are a spatial map [n, h, w, F]; a ValueError when none is."""
    spatial = [k for k, s in stage_shapes(module, variables, x, anchors).items() if len(s) == 4]
    if not spatial:
        raise ValueError("this backbone has no convolutional stage for Grad-CAM (a ViT? use its attention maps)")
    return max(spatial)


@functools.partial(jax.jit, static_argnames=("module", "layer"))
def _grad_cam(variables, x, anchors, target, *, module, layer: int):
    def objective(delta):
        store: dict = {}
        out = module.apply(variables, [x], anchors, train=False, shift_hook=_recording_hook(store, layer, delta))
        c = out[0]["c"].astype(jnp.float32)  # [n, K]
        k = jnp.where(target >= 0, target, jnp.argmax(jax.lax.stop_gradient(c), axis=-1))  # [n]
        y = jnp.take_along_axis(c, k[:, None], axis=1)[:, 0]  # [n]; examples are independent (eval BN)
        return y.sum(), (c, k, store[layer].astype(jnp.float32))

    shape = jax.eval_shape(lambda v, xx, a: _stage(module, v, xx, a, layer), variables, x, anchors)
    grads, (c, k, a) = jax.grad(objective, has_aux=True)(jnp.zeros(shape.shape, jnp.float32))
    alpha = grads.mean(axis=(1, 2))  # [n, F]
    signed = jnp.einsum("nhwf,nf->nhw", a, alpha)  # [n, h, w]
    return signed, c, k


def _stage(module, variables, x, anchors, layer):
    store: dict = {}
    module.apply(variables, [x], anchors, train=False, shift_hook=_recording_hook(store))
    return store[layer]


def grad_cam(module, variables: dict, x: jax.Array, anchors: jax.Array | None = None, *,
             layer: int | None = None, target: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Grad-CAM of the predicted (or `target`) cluster's probability at stage `layer` (default: the last).

    x: float [n, H, W, C], the model's input (preprocessed); anchors [n, A] or None.
    Returns cam float32 [n, h, w] (ReLU'd, unscaled), signed float32 [n, h, w] (before the ReLU),
    probs float32 [n, K], cluster int [n] (the one explained).
    """
    layer = last_conv_stage(module, variables, x, anchors) if layer is None else int(layer)
    tgt = jnp.full((x.shape[0],), -1, jnp.int32) if target is None else jnp.asarray(target, jnp.int32)
    signed, c, k = _grad_cam(variables, jnp.asarray(x), anchors, tgt, module=module, layer=layer)
    signed = np.asarray(signed, np.float32)
    return {"cam": np.maximum(signed, 0.0), "signed": signed, "probs": np.asarray(c, np.float32),
            "cluster": np.asarray(k)}


def upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """maps [n, h, w] -> float32 [n, H, W], bilinear, each scaled to max 1 (an all-zero map stays 0)."""
    up = np.asarray(jax.image.resize(jnp.asarray(maps, jnp.float32), (maps.shape[0], *size), "bilinear"))
    up = np.maximum(up, 0.0)
    peak = up.reshape(len(up), -1).max(axis=1)
    return up / np.where(peak > 0, peak, 1.0)[:, None, None]


# ----------------------------------------------------------------------------- ViT runs


def _last_block_filter(block: int):
    name = f"block{block}"

    def keep(mod, method_name: str) -> bool:
        path = mod.path
        return method_name == "__call__" and len(path) >= 3 and path[-3:] == ("backbone", name, "norm1")

    return keep


@functools.partial(jax.jit, static_argnames=("module", "block", "heads"))
def _vit_last_block(variables, x, anchors, *, module, block: int, heads: int):
    out, state = module.apply(variables, [x], anchors, train=False, capture_intermediates=_last_block_filter(block),
                              mutable=["intermediates"])
    norm1 = state["intermediates"]["backbone"][f"block{block}"]["norm1"]["__call__"][0]
    qkv = variables["params"]["backbone"][f"block{block}"]["attn"]["qkv"]
    w = attention_weights(norm1, qkv["kernel"], qkv["bias"], heads).mean(axis=1)  # [N, T', T']
    return w, out[0]["c"].astype(jnp.float32)


def vit_token_maps(module, variables: dict, vit_cfg, x: jax.Array, anchors: jax.Array | None,
                   use_anchor: bool) -> dict[str, np.ndarray]:
    """Token 0's attention over the patches in the last ViT block, heads averaged (see the module docstring).

    x: float [n, S, S, C] (one view, fed to both branches). Returns map float32 [n, S/p, S/p],
    probs float32 [n, K], cluster int [n].
    """
    n = x.shape[0]
    block = int(vit_cfg.depth) - 1
    fused = vit_cfg.fusion == "tokens" and block < 2 * int(vit_cfg.num_fusing_blocks) and block % 2 == 1
    w, c = _vit_last_block(variables, jnp.asarray(x), anchors, module=module, block=block,
                           heads=int(vit_cfg.num_heads))
    w = np.asarray(w, np.float32)
    special = 1 + int(use_anchor)
    grid = (x.shape[1] // int(vit_cfg.patch_size), x.shape[2] // int(vit_cfg.patch_size))
    if fused:  # [n, 2T, 2T]: branch a's token 0 is row 0; both halves hold the same view
        t = w.shape[1] // 2
        patches = w[:, 0, special:t] + w[:, 0, t + special:]
    else:  # [2n, T, T]: rows 2m (branch a) and 2m + 1 (branch b) of example m are the same view
        patches = w[0::2, 0, special:]
    c = np.asarray(c)
    return {"map": patches.reshape(n, *grid), "probs": c, "cluster": c.argmax(axis=1)}


# ----------------------------------------------------------------------------- a run's images


@dataclasses.dataclass(frozen=True)
class Explained:
    """Maps of a run over some images, ready to draw.

    kind: 'Grad-CAM' or 'attention'; where: the stage or block explained (text);
    maps float32 [n, S, S] in [0, 1]; views float32 [n, S, S, C] in [0, 1] (the model's input shown);
    cluster int [n] and prob float32 [n]: the predicted cluster and its probability.
    """

    kind: str
    where: str
    maps: np.ndarray
    views: np.ndarray
    cluster: np.ndarray
    prob: np.ndarray


def local_copy(variables: dict) -> dict:
    """This process's replica of replicated variables, as host arrays: a computation on them involves
    no other process (the report is drawn by process 0 alone)."""
    return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)) if isinstance(a, jax.Array) else a, variables)


def explain_images(module, variables: dict, config, images: np.ndarray, anchors: np.ndarray | None = None,
                   batch: int = 64) -> Explained:
    """Grad-CAM (CNN runs) or last-block attention (ViT runs) of a trained model over uint8 images [n, H, W, C].

    `config` is the run's config; the images are preprocessed as evaluation does (view 1's resize and
    normalisation); `anchors` [n, A] are their CLIP embeddings when the run uses the anchor.
    """
    view_cfg = view_augment_config(config, 1)
    maps, views, clusters, probs = [], [], [], []
    vit = config.model.backbone == "vit"
    where = ""
    for s in range(0, len(images), batch):
        x = preprocess_eval(jnp.asarray(images[s:s + batch]), view_cfg)  # [b, S, S, C]
        a = None if anchors is None else jnp.asarray(anchors[s:s + batch])
        if vit:
            r = vit_token_maps(module, variables, config.model.vit, x, a, bool(config.anchor.enabled))
            m = r["map"]
            where = f"block {int(config.model.vit.depth)} (last), token 0 over the patches"
        else:
            layer = last_conv_stage(module, variables, x, a)
            r = grad_cam(module, variables, x, a, layer=layer)
            m = r["cam"]
            where = f"stage {layer + 1} (last) of {config.model.backbone}"
        maps.append(upsample_maps(m, x.shape[1:3]))
        mean, std = AugmentParams.from_config(view_cfg).channel_stats(x.shape[-1])
        views.append(np.clip(np.asarray(x) * std + mean, 0.0, 1.0))
        clusters.append(np.asarray(r["cluster"]))
        probs.append(np.take_along_axis(r["probs"], np.asarray(r["cluster"])[:, None], 1)[:, 0])
    return Explained("attention" if vit else "Grad-CAM", where, np.concatenate(maps), np.concatenate(views),
                     np.concatenate(clusters), np.concatenate(probs))
