"""Models: `build_model(config, num_clusters)` and `count_params(params)`.

Contract (docs/architecture.md, "Models"):
    model.apply(variables, views, anchors=None, *, train, shift_hook=None, mutable=['batch_stats'])
      views: sequence of float [B, S, S, C] -> list (one per view) of
      dict(z=[B, D] unit-norm float32, c=[B, K] probabilities float32, h=[B, F] float32)
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ccjax.errors import UserError
from ccjax.models.clustering import ClusteringModel
from ccjax.models.convnet import ConvNet
from ccjax.models.heads import ClusteringHeads
from ccjax.models.resnet import RESNETS, ResNet, build_resnet

BACKBONES = (*RESNETS, "convnet", "vit")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

__all__ = [
    "BACKBONES", "ClusteringHeads", "ClusteringModel", "ConvNet", "ResNet",
    "build_model", "compute_dtype", "count_params",
]


def compute_dtype(config) -> Any:
    """The activation/matmul dtype named by `config.dtype` ('float32' or 'bfloat16')."""
    if config.dtype not in DTYPES:
        raise UserError(f"unknown dtype {config.dtype!r}; set --config.dtype to one of {', '.join(DTYPES)}")
    return DTYPES[config.dtype]


def build_model(config, num_clusters: int) -> nn.Module:
    """The model named by `config.model.backbone`, with CC's heads for `num_clusters` clusters."""
    m = config.model
    backbone = m.backbone
    if backbone not in BACKBONES:
        raise UserError(
            f"unknown model.backbone {backbone!r}; set --config.model.backbone to one of {', '.join(BACKBONES)}"
        )
    if num_clusters < 1:
        raise UserError(f"the number of clusters must be >= 1, got {num_clusters}; set --config.dataset.num_clusters")
    if m.feature_dim < 1:
        raise UserError(f"model.feature_dim must be >= 1, got {m.feature_dim}; set --config.model.feature_dim=128")
    dtype = compute_dtype(config)
    if backbone == "vit":
        from ccjax.models.vit import build_vit_model  # written separately; imported only when used

        return build_vit_model(config, num_clusters)
    if backbone == "convnet":
        if m.convnet_width < 1:
            raise UserError(
                f"model.convnet_width must be >= 1, got {m.convnet_width}; set --config.model.convnet_width=32"
            )
        net = ConvNet(width=m.convnet_width, dtype=dtype)
    else:
        net = build_resnet(backbone, m.stem, dtype)
    heads = ClusteringHeads(feature_dim=m.feature_dim, num_clusters=num_clusters, dtype=dtype)
    return ClusteringModel(backbone=net, heads=heads)


def count_params(params) -> int:
    """The number of scalars in a parameter pytree (arrays or ShapeDtypeStructs)."""
    return int(sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)))
