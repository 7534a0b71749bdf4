"""CC's objective (Li et al., AAAI 2021), also used by VTCC and MFAVBs-CC.

Two augmented views of the global batch, through the shared model; instance
NT-Xent over the 2B instance features, cluster NT-Xent over the 2K columns of
the assignment matrices, plus the entropy term of each view (Eqs. 1-8 of the
CC paper). Reductions follow CC's reference code (see ccjax/methods/contrastive.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ccjax.augment import augment_batch, view_augment_config
from ccjax.errors import UserError
from ccjax.methods.contrastive import cluster_entropy_term, nt_xent, unit_rows


def cluster_contrastive_loss(c_a: jax.Array, c_b: jax.Array, temperature: float) -> jax.Array:
    """CC's cluster-level contrastive loss without its entropy term: NT-Xent over the 2K cluster vectors.

    c_a, c_b: [B, K] softmax cluster probabilities of the two views. Cluster k
    is represented by column k (its assignment over the batch); similarity is
    the cosine similarity of columns (norms clamped below at 1e-8, as
    torch.nn.CosineSimilarity in CC's reference). Sum over the 2K anchors / 2K.
    Scalar float32.
    """
    c_a = jnp.asarray(c_a, jnp.float32).T  # [K, B]
    c_b = jnp.asarray(c_b, jnp.float32).T  # [K, B]
    return nt_xent(unit_rows(c_a), unit_rows(c_b), temperature)


def cc_losses(
    z_a: jax.Array, z_b: jax.Array, c_a: jax.Array, c_b: jax.Array, tau_i: float, tau_c: float
) -> dict[str, jax.Array]:
    """All of CC's objective L = L_ins + L_clu, with L_clu = cluster NT-Xent - H(Y).

    Returns float32 scalars {'instance', 'cluster', 'entropy', 'total'} where
    'cluster' is the cluster NT-Xent alone, 'entropy' = log K - H(Y^a) +
    log K - H(Y^b) (the entropy terms of both views, as CC's reference adds
    them to its cluster loss) and total = instance + cluster + entropy.
    """
    instance = nt_xent(z_a, z_b, tau_i)  # L_ins: NT-Xent over the 2B instance features
    cluster = cluster_contrastive_loss(c_a, c_b, tau_c)
    entropy = cluster_entropy_term(c_a) + cluster_entropy_term(c_b)
    return {"instance": instance, "cluster": cluster, "entropy": entropy, "total": instance + cluster + entropy}


def two_views(images: jax.Array, rng: jax.Array, config) -> tuple[jax.Array, jax.Array]:
    """View 1 with `config.augment`, view 2 with `config.augment` + `config.augment2`."""
    k1, k2 = jax.random.split(rng)
    x1 = augment_batch(images, k1, view_augment_config(config, 1))  # [B, S, S, C]
    x2 = augment_batch(images, k2, view_augment_config(config, 2))
    return x1, x2


def check_config(config) -> None:
    """UserError for a loss temperature that is not > 0 (the fields CC's loss reads)."""
    for field in ("instance_temperature", "cluster_temperature"):
        value = config.loss[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise UserError(f"loss.{field}={value!r} must be > 0; set --config.loss.{field}, "
                            f"e.g. {0.5 if field.startswith('instance') else 1.0}")


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
