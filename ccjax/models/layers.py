"""Layers and types the backbones share: the compute dtype, the feature-shift hook type, torchvision-style conv
and BatchNorm."""

from __future__ import annotations

import math
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


class UnbiasedRunningVarBatchNorm(nn.BatchNorm):
    """flax's BatchNorm, except that the running variance averages the UNBIASED batch variance, as PyTorch's.

    Normalisation (batch statistics when training) is flax's, unchanged; only
    the update of batch_stats['var'] uses var * n / (n - 1), n = the number of
    values per channel (batch x positions).
    """

    def __call__(self, x, use_running_average=None, *, mask=None):
        frozen = nn.merge_param("use_running_average", self.use_running_average, use_running_average)
        if frozen or self.is_initializing() or mask is not None:
            return super().__call__(x, use_running_average, mask=mask)
        before = self.get_variable("batch_stats", "var")
        y = super().__call__(x, use_running_average)
        n = math.prod(x.shape[:-1])
        batch_var = jnp.var(x.astype(jnp.float32), axis=tuple(range(x.ndim - 1)))  # [C], biased, as flax's
        unbiased = batch_var * (n / max(n - 1, 1))
        self.put_variable("batch_stats", "var", self.momentum * before + (1.0 - self.momentum) * unbiased)
        return y


def batch_norm(train: bool, dtype: Any, name: str, unbiased_running_var: bool = False) -> nn.BatchNorm:
    """BatchNorm with batch statistics when training, running averages otherwise.

    Statistics and running averages are float32 whatever `dtype` is. The running
    variance averages the biased batch variance (flax), or with
    `unbiased_running_var` the unbiased one (PyTorch; `model.vit.bn_unbiased_running_var`).
    """
    cls = UnbiasedRunningVarBatchNorm if unbiased_running_var else nn.BatchNorm
    return cls(
        use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPS,
        dtype=dtype, param_dtype=jnp.float32, use_fast_variance=False, name=name,
    )
