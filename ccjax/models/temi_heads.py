"""TEMI's clustering heads on frozen features: H independent DINO-style heads, student and EMA teacher.

One head (the official `DINOHead`, nlayers >= 2): Linear(D, hidden) -> GELU -> ... ->
Linear(hidden, bottleneck) -> L2 normalise -> weight-normalised Linear(bottleneck, K, no bias)
with w_k = g_k v_k / ||v_k|| (g trainable unless `norm_last_layer`, initialised to 1).
The H heads are stacked on a leading axis and applied with one vmap.

`TemiModel` wraps them in ccjax's model contract (ccjax/models/__init__.py's build_model for
method=temi): the frozen
features of each image come in as `anchors` [B, D] (the views are not used), and each view's
output is {c: the best teacher head's softmax(logits / teacher_temp) [B, K], z: the unit-norm
features [B, D], h: the (standardised) features [B, D]}. The teacher, the marginals p_h, the best
head and the feature statistics are the collection 'temi' (checkpointed with the run).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def init_heads(rng: jax.Array, num_heads: int, in_dim: int, hidden_dim: int, bottleneck_dim: int, out_dim: int,
               nlayers: int) -> dict:
    """Stacked parameters of `num_heads` heads: {'mlp': [{'kernel': [H, i, o], 'bias': [H, o]}...],
    'last_v': [H, bottleneck, K], 'last_g': [H, K]}. Official init: trunc-normal(0.02) kernels, zero
    biases, torch's default (kaiming-uniform) for v, g = 1."""
    dims = [in_dim] + [hidden_dim] * (max(nlayers, 1) - 1) + [bottleneck_dim]
    keys = jax.random.split(rng, len(dims))
    mlp = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        w = 0.02 * jax.random.truncated_normal(keys[i], -2.0 / 0.02, 2.0 / 0.02, (num_heads, a, b), jnp.float32)
        mlp.append({"kernel": w, "bias": jnp.zeros((num_heads, b), jnp.float32)})
    bound = 1.0 / jnp.sqrt(bottleneck_dim)
    v = jax.random.uniform(keys[-1], (num_heads, bottleneck_dim, out_dim), jnp.float32, -bound, bound)
    return {"mlp": mlp, "last_v": v, "last_g": jnp.ones((num_heads, out_dim), jnp.float32)}


def _one_head(p: dict, x: jax.Array) -> jax.Array:
    """One head's logits [B, K] for features x [B, D]."""
    layers = p["mlp"]
    for i, layer in enumerate(layers):
        x = x @ layer["kernel"] + layer["bias"]
        if i < len(layers) - 1:
            x = jax.nn.gelu(x, approximate=False)  # torch nn.GELU() is the exact (erf) form
    x = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)  # F.normalize
    v = p["last_v"]
    w = p["last_g"][None, :] * v / jnp.linalg.norm(v, axis=0, keepdims=True)  # weight norm per output
    return x @ w


def head_logits(params: dict, x: jax.Array) -> jax.Array:
    """Every head's logits: float32 [H, B, K] for features x [B, D]."""
    return jax.vmap(_one_head, in_axes=(0, None))(params, x)


def last_layer_mask(params: dict) -> dict:
    """A pytree of bools like `params`, True for the last (weight-normalised) layer."""
    return {"mlp": jax.tree.map(lambda _: False, params["mlp"]), "last_v": True, "last_g": True}


def standardise(x: jax.Array, state: dict, l2_norm: bool) -> jax.Array:
    """The head's input: (x - mean) / std (identity unless temi.embed_norm set them), then optionally L2."""
    x = (x.astype(jnp.float32) - state["mean"]) / state["std"]
    if l2_norm:
        x = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    return x


class TemiModel(nn.Module):
    """TEMI's heads in ccjax's model contract; features arrive as `anchors` [B, D]."""

    num_clusters: int
    num_heads: int
    hidden_dim: int
    bottleneck_dim: int
    nlayers: int
    teacher_temp: float
    l2_norm: bool = False

    @nn.compact
    def __call__(self, views, anchors=None, *, train: bool = False, shift_hook: Any = None):
        if anchors is None:
            raise ValueError("the TEMI head clusters frozen features: pass them as anchors [B, D]")
        dim = anchors.shape[-1]
        params = self.param("heads", lambda rng: init_heads(rng, self.num_heads, dim, self.hidden_dim,
                                                             self.bottleneck_dim, self.num_clusters, self.nlayers))
        teacher = self.variable("temi", "teacher", lambda: jax.tree.map(jnp.copy, params))
        self.variable("temi", "pk", lambda: jnp.full((self.num_heads, self.num_clusters), 1.0 / self.num_clusters))
        best = self.variable("temi", "best_head", lambda: jnp.zeros((), jnp.int32))
        mean = self.variable("temi", "mean", lambda: jnp.zeros((dim,), jnp.float32))
        std = self.variable("temi", "std", lambda: jnp.ones((dim,), jnp.float32))
        x = standardise(anchors, {"mean": mean.value, "std": std.value}, self.l2_norm)  # [B, D]
        best_params = jax.tree.map(lambda a: a[best.value], teacher.value)
        probs = jax.nn.softmax(_one_head(best_params, x) / self.teacher_temp, axis=-1)  # [B, K]
        z = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        return [{"c": probs, "z": z, "h": x} for _ in views]
