"""Training, part 1 of 3: what is trained. The model, the optimiser and the train state.

`ModelSetup` holds a run's Flax model, its optimiser and the layout of its
sharded TrainState: what a checkpoint needs, no data. State is built as
eval_shape -> shardings -> jit(init, out_shardings): no array is ever
materialised on one device and then copied. Data parallel: parameters and
optimiser state are replicated; the batch is sharded.

Next: ccjax/train/step.py (one training step), then ccjax/train/loop.py (the loop).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from ccjax.models import build_model
from ccjax.models.spec import state_shardings, variables_init, with_shardings


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimiser steps taken (also the data position)
    params: Any
    opt_state: Any
    model_state: Any  # mutable collections, e.g. {'batch_stats': ...}
    # First step whose loss or gradients were not finite (-1: none). Such a step's
    # update is discarded in-graph, so the state stays the last good one.
    first_nonfinite_step: jax.Array


def learning_rate_schedule(config, steps_per_epoch: int) -> optax.Schedule | float:
    """The papers' constant rate, or a linear warm-up then cosine decay to 0 over the run.

    `warmup_epochs` applies to both: 0 starts at the full rate. A run shorter
    than its warm-up (say a config shortened with --config.num_epochs for a
    quick look) warms up over the whole run. `num_epochs` may grow when a run
    is resumed (rundir.BOOKKEEPING_FIELDS); with `cosine` that stretches the
    remaining decay. `lr_schedule` is one of LR_SCHEDULES (checked by ccjax.config.validate).
    """
    lr = config.learning_rate
    warmup = int(min(config.warmup_epochs, config.num_epochs) * steps_per_epoch)
    total = config.num_epochs * steps_per_epoch
    if config.lr_schedule == "constant":
        if warmup == 0:
            return lr
        return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total, warmup + 1), end_value=0.0)


def make_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
    """Adam (both papers), optionally with decoupled weight decay, clipping and a schedule.

    `steps_per_epoch` only sets the schedule's length; the optimiser state's
    structure does not depend on it (so restoring for inference may pass any).
    """
    lr = learning_rate_schedule(config, steps_per_epoch)
    if config.weight_decay > 0:
        tx = optax.adamw(lr, weight_decay=config.weight_decay)
    else:
        tx = optax.adam(lr)
    if config.grad_clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
    return tx


def train_state_spec(model, tx, config, mesh: Mesh, image_shape, anchor_dim: int | None):
    """(init, abstract): `init()` builds the state directly into its shardings;
    `abstract` is the state's ShapeDtypeStructs with those shardings (what a
    checkpoint restores into). Nothing is computed until `init()` is called.
    """
    init_variables = variables_init(model, config, image_shape, anchor_dim)

    def init_fn(rng):
        variables = init_variables(rng)
        params = variables.pop("params")
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            model_state=variables,
            first_nonfinite_step=jnp.full((), -1, jnp.int32),
        )

    rng = jax.random.key(config.seed)
    shapes = jax.eval_shape(init_fn, rng)
    shardings = state_shardings(shapes, mesh)
    abstract = with_shardings(shapes, shardings)
    init = jax.jit(init_fn, out_shardings=shardings)
    return (lambda: init(rng)), abstract


@dataclasses.dataclass(frozen=True, eq=False)
class ModelSetup:
    """The model, optimiser and train-state layout of a run: what a checkpoint needs, no data.

    `module` is the Flax model; `init_state()` builds a fresh sharded TrainState and
    `abstract_state` is its layout (ShapeDtypeStructs with shardings) to restore into.
    """

    module: Any
    tx: optax.GradientTransformation
    init_state: Callable[[], TrainState]
    abstract_state: TrainState

    @classmethod
    def build(cls, config, num_clusters: int, image_shape, anchor_dim: int | None, mesh: Mesh,
              steps_per_epoch: int = 1) -> "ModelSetup":
        """`steps_per_epoch` sets the learning-rate schedule's length only (any value restores a checkpoint)."""
        module = build_model(config, num_clusters)
        tx = make_optimizer(config, steps_per_epoch)
        init_state, abstract_state = train_state_spec(module, tx, config, mesh, tuple(image_shape), anchor_dim)
        return cls(module, tx, init_state, abstract_state)
