"""A small ConvNet backbone for 8x8-16x16 grayscale digits, fast on a CPU.

Three blocks conv3x3-BN-ReLU with widths w, 2w, 4w; blocks 1 and 2 end with a
2x2/2 max pool (an 8x8 input is seen at 8x8, 4x4, 2x2); global average pool
-> h [B, 4w]. Same initialisation and BatchNorm as the ResNets.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ccjax.errors import UserError
from ccjax.models.layers import ShiftHook, batch_norm, conv

NUM_BLOCKS = 3
POOLED_BLOCKS = (0, 1)  # blocks followed by a 2x2/2 max pool


class ConvNet(nn.Module):
    """images [B, S, S, C] -> features h [B, 4 * width]."""

    width: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, shift_hook: ShiftHook | None = None) -> jax.Array:
        """`shift_hook(features [B, H, W, C], block)` is applied after each block (0..2) when given."""
        x = x.astype(self.dtype)
        for i in range(NUM_BLOCKS):
            x = conv(self.width * 2**i, 3, 1, self.dtype, f"conv{i + 1}")(x)  # [B, H, W, w * 2^i]
            x = nn.relu(batch_norm(train, self.dtype, f"bn{i + 1}")(x))
            if i in POOLED_BLOCKS:
                x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")  # [B, ceil(H/2), ceil(W/2), .]
            if shift_hook is not None:
                x = shift_hook(x, i).astype(self.dtype)
        return jnp.mean(x, axis=(1, 2), dtype=jnp.float32)  # [B, 4w] global average pool


def check_convnet_config(model_config) -> None:
    """UserError for a ConvNet width below 1."""
    width = model_config.convnet_width
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise UserError(f"model.convnet_width={width!r} must be an integer >= 1; set --config.model.convnet_width=32")
