"""VTCC's ViT and MFAVBs-CC's fusing-augmenting ViT blocks, with the optional CLIP anchor token.

VTCC (Ling et al. 2022; MoCo v3's ViT): a ConvStem (k = log2(patch) 3x3
stride-2 convs with BatchNorm and ReLU, channels E/2^(k-1) doubling to E, then
a 1x1 conv to E; k = 4 for patch 16 as in VTCC), a [CLS] token, fixed 2-D
sin-cos position embeddings (zero for [CLS]), pre-norm blocks (LayerNorm eps
1e-6, qkv bias, MLP ratio 4, exact GELU), a final LayerNorm; h = the final
[CLS] output. Projectors Linear-BN-ReLU-Linear-BN-ReLU-Linear of hidden width
4E; softmax on the cluster head, L2 normalisation on the instance head.

MFAVBs-CC (Wang et al., Algorithm 1, Eqs. 1-2): for i = 1..N, block 2i-1 runs
on each branch with shared weights, the two outputs are concatenated along the
token axis ([B, 2T, E]), block 2i runs on the fused sequence, and the result is
split back; blocks after 2N run per branch. N = 0 (or fusion='none') is VTCC.

CLIP anchor (Section 3.4): the frozen CLIP embedding of the un-augmented image
is inserted at token position 0 after the position embeddings are added (it
gets none): T = P + 2, and h is the final-layer output at that token.

Layout: the two branches are interleaved on the batch axis, x [2B, T, E] with
row 2m = branch a of example m and row 2m + 1 = branch b. Per-branch blocks see
one batched [2B, T, E] computation (LayerNorm and attention are per sequence,
so this is exact), and a fused block is the free reshape [2B, T, E] ->
[B, 2T, E] (tokens 0..T-1 from a, T..2T-1 from b: Eq. 1), which keeps each
pair on one device when the batch is sharded. BatchNorm (stem and projectors)
normalises each branch with its own batch statistics, updating the running
averages branch a then branch b, as VTCC's two forward calls do.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ccjax.errors import UserError
from ccjax.models.heads import l2_normalize, linear_bias_init, linear_kernel_init
from ccjax.models.layers import STEM_LAYER, ShiftHook, batch_norm, compute_dtype

FUSIONS = ("tokens", "none")
LN_EPS = 1e-6
CLS_INIT_STD = 1e-6  # VTCC: nn.init.normal_(cls_token, std=1e-6)
POS_TEMPERATURE = 10000.0

# VTCC's ViT init: xavier-uniform Linear weights (q, k, v treated as three
# separate E x E matrices), zero biases. ConvStem convolutions and the
# projectors keep PyTorch's defaults: U(+-1/sqrt(fan_in)).
xavier_uniform = nn.initializers.xavier_uniform()
torch_default_kernel = linear_kernel_init


def qkv_kernel_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    """Xavier-uniform for a fused [E, 3E] qkv kernel, with the fans of one E x E block."""
    fan_in, fan_out = shape[0], shape[1] // 3
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def sincos_position_embedding(grid_h: int, grid_w: int, dim: int, temperature: float = POS_TEMPERATURE) -> np.ndarray:
    """MoCo v3 / VTCC fixed 2-D sin-cos embedding with a zero row for [CLS]: float32 [1 + h*w, dim].

    Patch p (row r = p // w, column c = p % w) gets
    [sin(r * omega), cos(r * omega), sin(c * omega), cos(c * omega)],
    omega_d = temperature^(-d / (dim / 4)), d = 0..dim/4-1 (MoCo v3's meshgrid
    puts its first "w" grid on the row index of the flattened patches).
    """
    if dim % 4:
        raise UserError(f"model.vit.embed_dim={dim} must be divisible by 4 for the 2-D sin-cos position embedding")
    q = dim // 4
    omega = 1.0 / temperature ** (np.arange(q, dtype=np.float64) / q)  # [q]
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")  # [h, w] each
    out_r = rows.reshape(-1, 1) * omega[None]  # [P, q]
    out_c = cols.reshape(-1, 1) * omega[None]  # [P, q]
    pos = np.concatenate([np.sin(out_r), np.cos(out_r), np.sin(out_c), np.cos(out_c)], axis=1)  # [P, dim]
    return np.concatenate([np.zeros((1, dim)), pos], axis=0).astype(np.float32)  # [1 + P, dim]


def per_view(fn, y: jax.Array, num_views: int) -> jax.Array:
    """Applies `fn` to each view's rows of y [B*V, ...] (views interleaved), in order a, b.

    Used for BatchNorm, so each view is normalised with its own batch statistics
    and the running averages are updated view by view.
    """
    if num_views == 1:
        return fn(y)
    yv = y.reshape((-1, num_views) + y.shape[1:])  # [B, V, ...]
    outs = [fn(yv[:, v]) for v in range(num_views)]
    return jnp.stack(outs, axis=1).reshape(y.shape[:1] + outs[0].shape[1:])  # [B*V, ...]


class ConvStem(nn.Module):
    """images [B*V, S, S, C] -> patch tokens [B*V, (S/p)^2, E] (Xiao et al. 2021, as VTCC)."""

    embed_dim: int
    patch_size: int = 16
    dtype: Any = jnp.float32
    bn_unbiased_running_var: bool = False  # PyTorch's running-variance estimator (layers.batch_norm)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, num_views: int = 1) -> jax.Array:
        n, s_h, s_w, _ = x.shape
        if s_h % self.patch_size or s_w % self.patch_size:
            raise UserError(
                f"image size {s_h}x{s_w} is not divisible by model.vit.patch_size={self.patch_size}; "
                "set --config.augment.image_size to a multiple of the patch size"
            )
        k = int(round(math.log2(self.patch_size)))
        width = self.embed_dim // 2 ** (k - 1)
        x = x.astype(self.dtype)
        for i in range(k):
            x = nn.Conv(
                width, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=False,
                kernel_init=torch_default_kernel, dtype=self.dtype, param_dtype=jnp.float32, name=f"conv{i}",
            )(x)  # [B*V, H/2, W/2, width]
            bn = batch_norm(train, self.dtype, f"bn{i}", self.bn_unbiased_running_var)
            x = nn.relu(per_view(bn, x, num_views))
            width *= 2
        fan_in = x.shape[-1]
        x = nn.Conv(
            self.embed_dim, (1, 1), kernel_init=torch_default_kernel, bias_init=linear_bias_init(fan_in),
            dtype=self.dtype, param_dtype=jnp.float32, name="proj",
        )(x)  # [B*V, S/p, S/p, E]
        return x.reshape(n, -1, self.embed_dim)  # [B*V, P, E], patches in row-major order


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection; softmax in float32."""

    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n, t, e = x.shape
        head_dim = e // self.num_heads
        qkv = nn.Dense(3 * e, kernel_init=qkv_kernel_init, bias_init=nn.initializers.zeros,
                       dtype=self.dtype, param_dtype=jnp.float32, name="qkv")(x)  # [N, T, 3E]
        qkv = qkv.reshape(n, t, 3, self.num_heads, head_dim)  # torch layout: (3, heads, head_dim)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [N, T, H, D] each
        y = jax.nn.dot_product_attention(q, k, v)  # [N, T, H, D]; logits and softmax in float32
        y = y.reshape(n, t, e)
        return nn.Dense(e, kernel_init=xavier_uniform, bias_init=nn.initializers.zeros,
                        dtype=self.dtype, param_dtype=jnp.float32, name="proj")(y)  # [N, T, E]


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)). [N, T, E] -> [N, T, E]."""

    num_heads: int
    mlp_ratio: float = 4.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        e = x.shape[-1]
        ln = lambda name: nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype, param_dtype=jnp.float32, name=name)
        x = x + Attention(self.num_heads, self.dtype, name="attn")(ln("norm1")(x))
        y = ln("norm2")(x)
        y = nn.Dense(int(e * self.mlp_ratio), kernel_init=xavier_uniform, bias_init=nn.initializers.zeros,
                     dtype=self.dtype, param_dtype=jnp.float32, name="fc1")(y)
        y = nn.gelu(y, approximate=False)  # torch nn.GELU()
        y = nn.Dense(e, kernel_init=xavier_uniform, bias_init=nn.initializers.zeros,
                     dtype=self.dtype, param_dtype=jnp.float32, name="fc2")(y)
        return x + y


class FusingViT(nn.Module):
    """Two branches through the ViT with N fusing-augmenting blocks: -> h [B, 2, E] float32.

    views: 1 or 2 arrays [B, S, S, C]; one view is fed to both branches (its
    stem runs once). anchors: [B, A] or None (None: no anchor token).
    """

    embed_dim: int = 512
    depth: int = 8
    num_heads: int = 16
    patch_size: int = 16
    mlp_ratio: float = 4.0
    num_fusing_blocks: int = 0
    fusion: str = "tokens"
    use_anchor: bool = False
    project_anchor: bool = False
    dtype: Any = jnp.float32
    bn_unbiased_running_var: bool = False

    def fused(self, layer: int) -> bool:
        """Whether block `layer` (0-based) runs on the fused [B, 2T, E] sequence: blocks 2, 4, .., 2N (1-based)."""
        return self.fusion == "tokens" and layer < 2 * self.num_fusing_blocks and layer % 2 == 1

    @nn.compact
    def __call__(
        self,
        views: Sequence[jax.Array],
        anchors: jax.Array | None,
        *,
        train: bool,
        shift_hook: ShiftHook | None = None,
    ) -> jax.Array:
        e = self.embed_dim
        num_views = len(views)
        b = views[0].shape[0]
        # Views interleaved on the batch axis: [B*V, S, S, C], row m*V + v = view v of example m.
        x = views[0] if num_views == 1 else jnp.stack(views, axis=1).reshape((-1,) + views[0].shape[1:])
        x = x.astype(self.dtype)
        stem = ConvStem(e, self.patch_size, self.dtype, self.bn_unbiased_running_var, name="stem")
        stem_out = stem(x, train=train, num_views=num_views)
        p = stem_out.shape[1]
        grid = views[0].shape[1] // self.patch_size, views[0].shape[2] // self.patch_size
        pos = jnp.asarray(sincos_position_embedding(*grid, e), self.dtype)  # [1 + P, E], fixed
        cls = self.param("cls_token", nn.initializers.normal(CLS_INIT_STD), (1, 1, e), jnp.float32)
        tokens = jnp.concatenate(
            [jnp.broadcast_to(cls.astype(self.dtype), (stem_out.shape[0], 1, e)), stem_out], axis=1
        )  # [B*V, 1 + P, E]
        tokens = tokens + pos[None]
        if self.use_anchor:
            if anchors is None:
                raise ValueError("this model was built with anchor.enabled=True: pass anchors [B, A]")
            tokens = jnp.concatenate([self._anchor_tokens(anchors, num_views), tokens], axis=1)  # [B*V, P + 2, E]
        if num_views == 1:
            tokens = jnp.repeat(tokens, 2, axis=0)  # [2B, T, E]: the one view is both branches
        x = tokens
        t = x.shape[1]
        assert t == p + 1 + int(self.use_anchor)
        if shift_hook is not None:  # the embedded tokens: the ViT's "stem" position
            x = self._apply_hook(shift_hook, x, STEM_LAYER, num_views)

        for i in range(self.depth):
            block = Block(self.num_heads, self.mlp_ratio, self.dtype, name=f"block{i}")
            if self.fused(i):
                x = block(x.reshape(b, 2 * t, e)).reshape(2 * b, t, e)  # Cat (Eq. 1) -> f_2i -> Spl (Eq. 2)
            else:
                x = block(x)  # [2B, T, E]: both branches, shared weights, one batched computation
            if shift_hook is not None:
                x = self._apply_hook(shift_hook, x, i, num_views)
        x = nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype, param_dtype=jnp.float32, name="norm")(x[:, 0])
        # Token 0: the co-evolved CLIP anchor when present, else [CLS].
        return x.astype(jnp.float32).reshape(b, 2, e)  # [B, 2, E]

    def _anchor_tokens(self, anchors: jax.Array, num_views: int) -> jax.Array:
        """anchors [B, A] -> [B*V, 1, E] (repeated per view), projected if configured."""
        a = anchors.astype(jnp.float32)
        if self.project_anchor:
            a = nn.Dense(self.embed_dim, kernel_init=torch_default_kernel, bias_init=linear_bias_init(a.shape[-1]),
                         dtype=self.dtype, param_dtype=jnp.float32, name="anchor_proj")(a)
        elif a.shape[-1] != self.embed_dim:
            raise UserError(
                f"the CLIP anchor has dimension {a.shape[-1]} but model.vit.embed_dim is {self.embed_dim}; "
                f"set --config.model.vit.embed_dim={a.shape[-1]} or --config.anchor.project=True"
            )
        a = a.astype(self.dtype)[:, None, :]  # [B, 1, E]
        return jnp.repeat(a, num_views, axis=0)  # [B*V, 1, E]

    @staticmethod
    def _apply_hook(hook: ShiftHook, x: jax.Array, layer: int, num_views: int) -> jax.Array:
        """The hook sees each view's features [B, T, E], as a CNN backbone called per view does.

        With one view, branch a's shifted features replace both branches (they are one view).
        """
        b2, t, e = x.shape
        xv = x.reshape(b2 // 2, 2, t, e)  # [B, 2, T, E]
        if num_views == 1:
            y = hook(xv[:, 0], layer).astype(x.dtype)
            return jnp.repeat(y, 2, axis=0)
        ya = hook(xv[:, 0], layer).astype(x.dtype)
        yb = hook(xv[:, 1], layer).astype(x.dtype)
        return jnp.stack([ya, yb], axis=1).reshape(b2, t, e)


class Projector(nn.Module):
    """VTCC's projector: Linear-BN-ReLU-Linear-BN-ReLU-Linear, hidden width `hidden`. [B*V, F] -> [B*V, out]."""

    hidden: int
    out_features: int
    dtype: Any = jnp.float32
    bn_unbiased_running_var: bool = False

    def _linear(self, x: jax.Array, features: int, name: str) -> jax.Array:
        return nn.Dense(features, kernel_init=linear_kernel_init, bias_init=linear_bias_init(x.shape[-1]),
                        dtype=self.dtype, param_dtype=jnp.float32, name=name)(x)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, num_views: int) -> jax.Array:
        x = x.astype(self.dtype)
        for i in range(2):
            x = self._linear(x, self.hidden, f"fc{i + 1}")
            bn = batch_norm(train, self.dtype, f"bn{i + 1}", self.bn_unbiased_running_var)
            x = nn.relu(per_view(bn, x, num_views))
        return self._linear(x, self.out_features, "fc3")


class VTCCHeads(nn.Module):
    """h [B*V, E] -> (z [B*V, D] unit-norm float32, c [B*V, K] softmax float32), BN per view."""

    feature_dim: int
    num_clusters: int
    hidden: int
    dtype: Any = jnp.float32
    bn_unbiased_running_var: bool = False

    @nn.compact
    def __call__(self, h: jax.Array, *, train: bool, num_views: int) -> tuple[jax.Array, jax.Array]:
        z = Projector(self.hidden, self.feature_dim, self.dtype, self.bn_unbiased_running_var,
                      name="instance_projector")(h, train=train, num_views=num_views)
        logits = Projector(self.hidden, self.num_clusters, self.dtype, self.bn_unbiased_running_var,
                           name="cluster_projector")(
            h, train=train, num_views=num_views)
        return l2_normalize(z), jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


class ViTClusteringModel(nn.Module):
    """The ViT family's model (VTCC, MFAVBs-CC and their ablations), with the docs/architecture.md contract.

    apply(variables, views, anchors=None, *, train, shift_hook=None, mutable=['batch_stats'])
      -> list (one per view) of dict(z [B, D], c [B, K], h [B, E]), float32.
    """

    backbone: FusingViT
    heads: VTCCHeads

    def __call__(
        self,
        views: Sequence[jax.Array],
        anchors: jax.Array | None = None,
        *,
        train: bool,
        shift_hook: ShiftHook | None = None,
    ) -> list[dict[str, jax.Array]]:
        if isinstance(views, jax.Array) or not isinstance(views, Sequence):
            raise TypeError(f"views must be a sequence of [B, S, S, C] arrays, got {type(views).__name__}")
        if len(views) not in (1, 2):
            raise ValueError(f"the ViT takes 1 or 2 views, got {len(views)}")
        if len(views) == 2 and views[0].shape != views[1].shape:
            raise ValueError(f"the two views differ in shape: {views[0].shape} vs {views[1].shape}")
        h = self.backbone(views, anchors, train=train, shift_hook=shift_hook)  # [B, 2, E]
        v = len(views)
        b, _, e = h.shape
        hv = h[:, :v].reshape(b * v, e)  # [B*V, E]: one view returns branch a only
        z, c = self.heads(hv, train=train, num_views=v)
        z, c = z.reshape(b, v, -1), c.reshape(b, v, -1)
        return [dict(z=z[:, i], c=c[:, i], h=h[:, i]) for i in range(v)]


def validate_vit_config(vit) -> None:
    """UserError for a `model.vit` config that cannot be built (one line saying which field to change)."""
    e = vit.embed_dim
    if vit.fusion not in FUSIONS:
        raise UserError(f"unknown model.vit.fusion {vit.fusion!r}; set --config.model.vit.fusion to tokens or none")
    if vit.depth < 1:
        raise UserError(f"model.vit.depth must be >= 1, got {vit.depth}; set --config.model.vit.depth=8")
    if vit.num_fusing_blocks < 0 or 2 * vit.num_fusing_blocks > vit.depth:
        raise UserError(
            f"model.vit.num_fusing_blocks={vit.num_fusing_blocks} needs 2N <= depth={vit.depth}; "
            f"set --config.model.vit.num_fusing_blocks to at most {vit.depth // 2}"
        )
    p = vit.patch_size
    if p < 2 or p & (p - 1):
        raise UserError(f"model.vit.patch_size={p} must be a power of 2 >= 2 (the ConvStem halves the size per conv)")
    if vit.num_heads < 1 or e % vit.num_heads:
        raise UserError(f"model.vit.embed_dim={e} is not divisible by model.vit.num_heads={vit.num_heads}")
    if e % 4:
        raise UserError(f"model.vit.embed_dim={e} must be divisible by 4 (2-D sin-cos position embedding)")
    k = int(round(math.log2(p)))
    if e % 2 ** (k - 1):
        raise UserError(
            f"model.vit.embed_dim={e} must be divisible by {2 ** (k - 1)} for a ConvStem of patch {p} "
            f"(its first conv has embed_dim / {2 ** (k - 1)} channels)"
        )
    if vit.mlp_ratio <= 0:
        raise UserError(f"model.vit.mlp_ratio must be > 0, got {vit.mlp_ratio}")


def build_vit_model(config, num_clusters: int) -> ViTClusteringModel:
    """The ViT model named by `config.model.vit` (+ `config.anchor`) with VTCC's heads for `num_clusters`."""
    vit = config.model.vit  # checked by validate_vit_config (ccjax.config.validate)
    dtype = compute_dtype(config)
    anchor = config.anchor
    unbiased = bool(getattr(vit, "bn_unbiased_running_var", False))  # absent in configs saved before it
    backbone = FusingViT(
        embed_dim=vit.embed_dim, depth=vit.depth, num_heads=vit.num_heads, patch_size=vit.patch_size,
        mlp_ratio=float(vit.mlp_ratio), num_fusing_blocks=vit.num_fusing_blocks, fusion=vit.fusion,
        use_anchor=bool(anchor.enabled), project_anchor=bool(getattr(anchor, "project", False)), dtype=dtype,
        bn_unbiased_running_var=unbiased,
    )
    heads = VTCCHeads(feature_dim=config.model.feature_dim, num_clusters=num_clusters,
                      hidden=4 * vit.embed_dim, dtype=dtype, bn_unbiased_running_var=unbiased)
    return ViTClusteringModel(backbone=backbone, heads=heads)
