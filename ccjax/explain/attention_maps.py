"""Attention maps of a ViT run: the MFAVBs-CC paper's Fig. 4 (drawn by ccjax/report/attention_figure.py;
the command is ccjax/cli/attention.py).

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
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

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


# ----------------------------------------------------------------------------- a run's model


def load_vit_run(workdir: str) -> TrainedModel:
    """The trained model of a ViT run (ccjax.run.load); a UserError for any other run."""
    config = load_run_config(workdir)
    backbone = config.model.backbone
    if backbone != "vit":
        raise UserError(f"attention maps need a ViT run (model.backbone='vit'); {workdir!r} is a {backbone!r} run")
    return TrainedModel.build(workdir, config, read_run_info(workdir))
