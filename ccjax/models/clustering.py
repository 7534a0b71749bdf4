"""Backbone x heads: the model CC, GeCC and their ablations train on a CNN."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ccjax.models.layers import ShiftHook


class ClusteringModel(nn.Module):
    """Runs each view separately through the shared backbone and heads.

    Separately means BatchNorm statistics are per view and each view updates
    the running averages in turn, as two forward calls do in CC's reference
    code. `anchors` are accepted (one interface for every model) and ignored.
    """

    backbone: nn.Module  # images [B, S, S, C] -> h [B, F]; takes train=, shift_hook=
    heads: nn.Module  # h [B, F] -> (z [B, D], c [B, K])

    def __call__(
        self,
        views: Sequence[jax.Array],
        anchors: jax.Array | None = None,
        *,
        train: bool,
        shift_hook: ShiftHook | None = None,
    ) -> list[dict[str, jax.Array]]:
        """views: sequence of [B, S, S, C] -> list of dict(z [B, D], c [B, K], h [B, F]), all float32."""
        del anchors
        if isinstance(views, jax.Array) or not isinstance(views, Sequence):
            raise TypeError(f"views must be a sequence of [B, S, S, C] arrays, got {type(views).__name__}")
        outs = []
        for x in views:
            h = self.backbone(x, train=train, shift_hook=shift_hook)  # [B, F]
            z, c = self.heads(h)
            outs.append(dict(z=z, c=c, h=h.astype(jnp.float32)))
        return outs
