"""GeCC's objective (Chen et al., AAAI 2025): three views, CDSM reference, weighted losses.

View 1 (`config.augment`) and view 2 (`config.augment2`) go through the shared
model as in CC. The reference view d is, by `config.gecc.reference`:
  cdsm  x1 through the model again with CDSM after every backbone stage (and
        after the stem with gecc.positions='stem_and_stages'), each active with
        probability t (Alg. 1), pseudo labels = argmax of view 1's cluster head
        (constants);
  dsu   the same with DSU (one statistic for the whole batch): 'w DSU';
  aug   a third random augmentation with `config.augment`, no shift: 'w Aug'.
What CDSM/DSU shift, by `config.gecc.reference_input` (the paper: "we integrate the branch that
learns P^1 with CDSM", so view 1 is the default; the others are measured checks, docs/gecc.md):
  view1  x1 itself (at t = 0 the reference view is view 1 bit for bit);
  fresh  a new random augmentation with `config.augment` (what 'w Aug' sees, then shifted);
  clean  the un-augmented image at the view size (`preprocess_eval`, the evaluation's view).
The weights by `config.gecc.weights`: both (W_z and W_c), none ('w/o W'),
wz ('w W_z'), wc ('w W_c'). Loss: ccjax.methods.gecc.losses.gecc_losses (Eq. 14).
t = probability_schedule(epoch, config.num_epochs, config.gecc.schedule_stages).
See docs/gecc.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ccjax.augment import augment_batch, preprocess_eval, view_augment_config
from ccjax.errors import UserError
from ccjax.methods import cc
from ccjax.methods.cc import two_views
from ccjax.methods.gecc.domain_shift import POSITIONS, make_cdsm_hook, make_dsu_hook, probability_schedule
from ccjax.methods.gecc.losses import attention_weights, distribution_attention_weights, gecc_losses

REFERENCES = ("cdsm", "dsu", "aug")
REFERENCE_INPUTS = ("view1", "fresh", "clean")
WEIGHTS = ("both", "none", "wz", "wc")


def check_config(config) -> None:
    """UserError for a bad value of a `gecc.*` field (or of CC's loss fields, which GeCC's losses read)."""
    cc.check_config(config)
    g = config.gecc
    if g.reference not in REFERENCES:
        raise UserError(f"unknown gecc.reference {g.reference!r}; set --config.gecc.reference to one of {', '.join(REFERENCES)}")
    if g.reference_input not in REFERENCE_INPUTS:
        raise UserError(f"unknown gecc.reference_input {g.reference_input!r}; set --config.gecc.reference_input to one "
                        f"of {', '.join(REFERENCE_INPUTS)}")
    if g.weights not in WEIGHTS:
        raise UserError(f"unknown gecc.weights {g.weights!r}; set --config.gecc.weights to one of {', '.join(WEIGHTS)}")
    if g.positions not in POSITIONS:
        raise UserError(f"unknown gecc.positions {g.positions!r}; set --config.gecc.positions to one of "
                        f"{', '.join(POSITIONS)}")
    for field, hint in (("lambda_instance", "1.0"), ("lambda_cluster", "1.0")):
        value = g[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UserError(f"gecc.{field}={value!r} must be >= 0; set --config.gecc.{field}={hint}")
    stages = g.schedule_stages
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise UserError(f"gecc.schedule_stages={stages!r} must be an integer >= 1; set --config.gecc.schedule_stages=10")


def reference_view(params, model_state, *, model, config, images, x1, c1, anchors, rng, probability):
    """The reference view's model outputs dict(z, c, h) and the updated model state.

    c1: [B, K] view 1's cluster probabilities (pseudo labels for CDSM).
    """
    reference = config.gecc.reference
    hook = None
    if reference == "aug":
        xd = augment_batch(images, rng, view_augment_config(config, 1))  # [B, S, S, C]
    else:
        xd, rng = _shifted_input(config, images, x1, rng)
        if reference == "cdsm":
            labels = jax.lax.stop_gradient(jnp.argmax(c1, axis=-1))  # [B] pseudo labels
            hook = make_cdsm_hook(labels, c1.shape[-1], rng, probability, config.gecc.positions)
        else:
            hook = make_dsu_hook(rng, probability, config.gecc.positions)
    # One view: a fusing ViT feeds it to both branches and returns branch a.
    outs, new_state = model.apply(
        {"params": params, **model_state}, [xd], anchors, train=True, shift_hook=hook, mutable=list(model_state)
    )
    return outs[0], new_state


def _shifted_input(config, images, x1, rng):
    """(the batch CDSM/DSU shift inside the backbone, by `gecc.reference_input`; the hook's key).

    Only 'fresh' splits the key (its augmentation and the hook draw independently); the default keeps
    `rng` as it is, so view1 runs are unchanged by the option's existence.
    """
    source = config.gecc.reference_input
    if source == "fresh":
        k_aug, rng = jax.random.split(rng)
        return augment_batch(images, k_aug, view_augment_config(config, 1)), rng
    if source == "clean":
        return preprocess_eval(images, view_augment_config(config, 1)), rng
    return x1, rng


def loss_fn(params, model_state, *, model, config, images, anchors, rng, epoch):
    """GeCC's loss; see the module docstring. Returns (loss, (metrics, new_model_state)).

    `config` was checked by ccjax.config.validate (which calls `check_config`) before the run began.
    """
    g = config.gecc
    k_views, k_ref = jax.random.split(rng)
    x1, x2 = two_views(images, k_views, config)  # [B, S, S, C] each
    outs, state = model.apply(
        {"params": params, **model_state}, [x1, x2], anchors, train=True, mutable=list(model_state)
    )
    o1, o2 = outs
    t = probability_schedule(epoch, config.num_epochs, g.schedule_stages)
    od, state = reference_view(
        params, state, model=model, config=config, images=images, x1=x1, c1=o1["c"],
        anchors=anchors, rng=k_ref, probability=t,
    )
    w_z = attention_weights(o1["z"], o2["z"], od["z"]) if g.weights in ("both", "wz") else None
    w_c = distribution_attention_weights(o1["c"], o2["c"], od["c"]) if g.weights in ("both", "wc") else None
    losses = gecc_losses(
        o1["z"], o2["z"], od["z"], o1["c"], o2["c"], od["c"],
        config.loss.instance_temperature, config.loss.cluster_temperature,
        w_z=w_z, w_c=w_c, lambda_instance=g.lambda_instance, lambda_cluster=g.lambda_cluster,
    )
    metrics = dict(losses)
    metrics["t"] = t
    metrics["w_z_mean"] = jnp.ones((), jnp.float32) if w_z is None else jnp.mean(w_z)
    metrics["w_c_mean"] = jnp.ones((), jnp.float32) if w_c is None else jnp.mean(w_c)
    return losses["total"], (metrics, state)
