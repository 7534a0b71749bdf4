"""ResNet-18/34/50 backbones in the torchvision layout, without the final fc layer.

Layout (He et al. 2016, torchvision's "v1.5"): a stem, four stages of blocks
with widths 64, 128, 256, 512 (x4 for Bottleneck), stride 2 in the first block
of stages 2-4 (on the 3x3 convolution in Bottleneck), a projection shortcut
(conv1x1 + BN) where the shape changes, global average pooling.

Stems: 'imagenet' = conv7x7/2 + BN + ReLU + maxpool3x3/2 (torchvision);
'small' = conv3x3/1 + BN + ReLU, no maxpool (for 32x32 CIFAR-like inputs).

Initialisation as torchvision: convolutions kaiming-normal (fan_out, ReLU
gain, untruncated), BN scale 1 and bias 0 (no zero-init of the last BN of a
block, which CC did not use). BatchNorm: torch momentum 0.1 (flax 0.9), eps
1e-5. One difference from PyTorch: flax's running variance averages the
biased batch variance, PyTorch's the unbiased one (a factor n/(n-1), n =
batch x positions, i.e. < 0.4% for n >= 256).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ccjax.errors import UserError
from ccjax.models.layers import STEM_LAYER, ShiftHook, batch_norm, conv

STEMS = ("imagenet", "small")


class BasicBlock(nn.Module):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN + shortcut, then ReLU. Output channels = `features`."""

    features: int
    stride: int = 1
    dtype: Any = jnp.float32
    expansion = 1

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        # x: [B, H, W, Cin] -> [B, H / stride, W / stride, features]
        y = conv(self.features, 3, self.stride, self.dtype, "conv1")(x)
        y = nn.relu(batch_norm(train, self.dtype, "bn1")(y))
        y = conv(self.features, 3, 1, self.dtype, "conv2")(y)
        y = batch_norm(train, self.dtype, "bn2")(y)
        return nn.relu(y + _shortcut(x, self.features, self.stride, train, self.dtype))


class Bottleneck(nn.Module):
    """conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1(4x)-BN + shortcut, then ReLU.

    Output channels = 4 * `features`.
    """

    features: int
    stride: int = 1
    dtype: Any = jnp.float32
    expansion = 4

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        out = self.features * self.expansion
        y = conv(self.features, 1, 1, self.dtype, "conv1")(x)
        y = nn.relu(batch_norm(train, self.dtype, "bn1")(y))
        y = conv(self.features, 3, self.stride, self.dtype, "conv2")(y)
        y = nn.relu(batch_norm(train, self.dtype, "bn2")(y))
        y = conv(out, 1, 1, self.dtype, "conv3")(y)
        y = batch_norm(train, self.dtype, "bn3")(y)
        return nn.relu(y + _shortcut(x, out, self.stride, train, self.dtype))


def _shortcut(x: jax.Array, out: int, stride: int, train: bool, dtype: Any) -> jax.Array:
    """Identity, or conv1x1(stride) + BN where the shape changes (torchvision's `downsample`).

    Called inside a block's compact `__call__`, so its modules belong to that block.
    """
    if stride == 1 and x.shape[-1] == out:
        return x
    y = conv(out, 1, stride, dtype, "downsample_conv")(x)
    return batch_norm(train, dtype, "downsample_bn")(y)


class ResNet(nn.Module):
    """A ResNet backbone: images [B, S, S, C] -> features h [B, F] (F = 512, or 2048 for Bottleneck)."""

    stage_sizes: Sequence[int]
    block: type[nn.Module]
    stem: str = "imagenet"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, shift_hook: ShiftHook | None = None) -> jax.Array:
        """`shift_hook(features [B, H, W, C], layer)` is applied after the stem (layer STEM_LAYER) and
        after each stage (0..3) when given."""
        x = x.astype(self.dtype)
        if self.stem == "imagenet":
            x = conv(64, 7, 2, self.dtype, "conv1")(x)  # [B, S/2, S/2, 64]
            x = nn.relu(batch_norm(train, self.dtype, "bn1")(x))
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))  # [B, S/4, S/4, 64]
        else:  # "small" (the stem is one of STEMS: check_resnet_config, called by validate)
            x = conv(64, 3, 1, self.dtype, "conv1")(x)  # [B, S, S, 64]
            x = nn.relu(batch_norm(train, self.dtype, "bn1")(x))
        if shift_hook is not None:
            x = shift_hook(x, STEM_LAYER).astype(self.dtype)
        for i, num_blocks in enumerate(self.stage_sizes):
            width = 64 * 2**i
            for j in range(num_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                x = self.block(width, stride, self.dtype, name=f"layer{i + 1}_{j}")(x, train=train)
            if shift_hook is not None:
                x = shift_hook(x, i).astype(self.dtype)
        return jnp.mean(x, axis=(1, 2), dtype=jnp.float32)  # [B, F] global average pool


RESNETS = {
    "resnet18": ((2, 2, 2, 2), BasicBlock),
    "resnet34": ((3, 4, 6, 3), BasicBlock),
    "resnet50": ((3, 4, 6, 3), Bottleneck),
}


def check_resnet_config(model_config) -> None:
    """UserError for a `model.stem` the ResNets do not have."""
    if model_config.stem not in STEMS:
        raise UserError(f"unknown model.stem {model_config.stem!r}; set --config.model.stem to one of {', '.join(STEMS)}")


def build_resnet(name: str, stem: str, dtype: Any) -> ResNet:
    """The backbone `name` (a key of RESNETS) with stem 'imagenet' or 'small' (checked by check_resnet_config)."""
    stage_sizes, block = RESNETS[name]
    return ResNet(stage_sizes=stage_sizes, block=block, stem=stem, dtype=dtype)
