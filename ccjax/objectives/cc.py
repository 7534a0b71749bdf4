"""CC's objective (Li et al., AAAI 2021), also used by VTCC and MFAVBs-CC.

Two augmented views of the global batch, through the shared model; instance
NT-Xent over the 2B instance features, cluster NT-Xent over the 2K columns of
the assignment matrices, plus the entropy term of each view.
"""

from __future__ import annotations

import jax

from ccjax.augment import augment_batch
from ccjax.config_base import view_augment_config
from ccjax.losses import cc_losses


def two_views(images: jax.Array, rng: jax.Array, config) -> tuple[jax.Array, jax.Array]:
    """View 1 with `config.augment`, view 2 with `config.augment` + `config.augment2`."""
    k1, k2 = jax.random.split(rng)
    x1 = augment_batch(images, k1, view_augment_config(config, 1))  # [B, S, S, C]
    x2 = augment_batch(images, k2, view_augment_config(config, 2))
    return x1, x2


def loss_fn(params, model_state, *, model, config, images, anchors, rng, epoch):
    del epoch  # CC has no schedule
    x1, x2 = two_views(images, rng, config)
    outs, new_state = model.apply(
        {"params": params, **model_state}, [x1, x2], anchors, train=True, mutable=list(model_state)
    )
    a, b = outs
    losses = cc_losses(
        a["z"], b["z"], a["c"], b["c"],
        config.loss.instance_temperature, config.loss.cluster_temperature,
    )
    return losses["total"], (losses, new_state)
