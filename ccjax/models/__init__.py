"""Models: `build_model(config, num_clusters)` and `count_params(params)`.

Contract (docs/architecture.md, "Models"):
    model.apply(variables, views, anchors=None, *, train, shift_hook=None, mutable=['batch_stats'])
      views: sequence of float [B, S, S, C] -> list (one per view) of
      dict(z=[B, D] unit-norm float32, c=[B, K] probabilities float32, h=[B, F] float32)
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

from ccjax.errors import UserError
from ccjax.models.clustering import ClusteringModel
from ccjax.models.convnet import ConvNet, check_convnet_config
from ccjax.models.heads import ClusteringHeads
from ccjax.models.layers import DTYPES, compute_dtype
from ccjax.models.resnet import RESNETS, ResNet, build_resnet, check_resnet_config
from ccjax.models.temi_heads import TemiModel
from ccjax.models.vit import build_vit_model, validate_vit_config

BACKBONES = (*RESNETS, "convnet", "vit")

__all__ = [
    "BACKBONES", "ClusteringHeads", "ClusteringModel", "ConvNet", "ResNet",
    "build_model", "check_model_config", "compute_dtype", "count_params",
]


def check_model_config(config) -> None:
    """UserError for a bad `model.*` field or `dtype`; each backbone's own fields are checked by its module."""
    m = config.model
    if config.dtype not in DTYPES:
        raise UserError(f"unknown dtype {config.dtype!r}; set --config.dtype to one of {', '.join(DTYPES)}")
    if m.backbone not in BACKBONES:
        raise UserError(
            f"unknown model.backbone {m.backbone!r}; set --config.model.backbone to one of {', '.join(BACKBONES)}"
        )
    if m.backbone == "vit":
        validate_vit_config(m.vit)
    elif m.backbone == "convnet":
        check_convnet_config(m)
    else:
        check_resnet_config(m)


def build_model(config, num_clusters: int) -> nn.Module:
    """The model named by `config.model.backbone` (a config `ccjax.config.validate` passed), with CC's
    heads for `num_clusters` clusters."""
    m = config.model
    dtype = compute_dtype(config)
    if config.get("method") == "temi":  # TEMI's heads on frozen features (temi_heads.py)
        t = config.temi
        return TemiModel(num_clusters=num_clusters, num_heads=t.num_heads, hidden_dim=t.hidden_dim,
                         bottleneck_dim=t.bottleneck_dim, nlayers=t.nlayers, teacher_temp=t.teacher_temp,
                         l2_norm=t.l2_norm)
    if m.backbone == "vit":
        return build_vit_model(config, num_clusters)
    if m.backbone == "convnet":
        net = ConvNet(width=m.convnet_width, dtype=dtype)
    else:
        net = build_resnet(m.backbone, m.stem, dtype)
    heads = ClusteringHeads(feature_dim=m.feature_dim, num_clusters=num_clusters, dtype=dtype)
    return ClusteringModel(backbone=net, heads=heads)


def count_params(params) -> int:
    """The number of scalars in a parameter pytree (arrays or ShapeDtypeStructs)."""
    return int(sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)))
