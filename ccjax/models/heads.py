"""CC's two projection heads (Li et al., AAAI 2021, Sec. 3.3-3.4).

instance projector g_I: Linear(F, F) - ReLU - Linear(F, D), then L2 normalise;
cluster projector  g_C: Linear(F, F) - ReLU - Linear(F, K), then softmax.
Linear layers keep PyTorch's default init (weights and bias uniform in
+-1/sqrt(fan_in)), as CC's code used nn.Linear unchanged. The normalisation
and the softmax are computed in float32.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMALIZE_EPS = 1e-12  # torch.nn.functional.normalize: x / max(||x||, eps)

# torch.nn.Linear: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
linear_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def linear_bias_init(fan_in: int):
    """torch.nn.Linear's bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / float(fan_in) ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def l2_normalize(x: jax.Array) -> jax.Array:
    """Rows of x [B, D] scaled to unit L2 norm, in float32 (torch's F.normalize, dim=1)."""
    x = x.astype(jnp.float32)
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True))  # [B, 1]
    return x / jnp.maximum(norm, NORMALIZE_EPS)


class MLP(nn.Module):
    """Linear(F, F) - ReLU - Linear(F, out): x [B, F] -> [B, out] (in `dtype`)."""

    out_features: int
    dtype: Any = jnp.float32

    def _linear(self, x: jax.Array, features: int, name: str) -> jax.Array:
        return nn.Dense(
            features, kernel_init=linear_kernel_init, bias_init=linear_bias_init(x.shape[-1]),
            dtype=self.dtype, param_dtype=jnp.float32, name=name,
        )(x)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        x = nn.relu(self._linear(x, x.shape[-1], "fc1"))  # [B, F]
        return self._linear(x, self.out_features, "fc2")  # [B, out]


class ClusteringHeads(nn.Module):
    """h [B, F] -> (z [B, D] unit-norm float32, c [B, K] softmax probabilities float32)."""

    feature_dim: int
    num_clusters: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        z = l2_normalize(MLP(self.feature_dim, self.dtype, name="instance_projector")(h))  # [B, D]
        logits = MLP(self.num_clusters, self.dtype, name="cluster_projector")(h)  # [B, K]
        c = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)  # [B, K]
        return z, c
