"""Layers and types the backbones share: the compute dtype, the feature-shift hook type, torchvision-style conv
and BatchNorm."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(config) -> Any:
    """The activation/matmul dtype named by `config.dtype` ('float32' or 'bfloat16'; checked by validate)."""
    return DTYPES[config.dtype]

# hook(features, layer_index) -> features, applied by a backbone after its stem (layer_index
# STEM_LAYER) and after each stage/block (0, 1, ...). GeCC's CDSM and DSU are such hooks; no
# backbone knows which one it is given, and the hook decides which positions it acts at.
STEM_LAYER = -1
ShiftHook = Callable[[jax.Array, int], jax.Array]

BN_MOMENTUM = 0.9  # flax convention: ra = m * ra + (1 - m) * batch; torch momentum 0.1
BN_EPS = 1e-5

# torchvision: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu").
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv(features: int, kernel: int, stride: int, dtype: Any, name: str) -> nn.Conv:
    """A bias-free convolution with torchvision's padding (kernel // 2) and init."""
    pad = kernel // 2
    return nn.Conv(
        features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
        use_bias=False, kernel_init=conv_kernel_init, dtype=dtype, param_dtype=jnp.float32, name=name,
    )


def batch_norm(train: bool, dtype: Any, name: str) -> nn.BatchNorm:
    """BatchNorm with batch statistics when training, running averages otherwise.

    Statistics and running averages are float32 whatever `dtype` is.
    """
    return nn.BatchNorm(
        use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPS,
        dtype=dtype, param_dtype=jnp.float32, use_fast_variance=False, name=name,
    )
