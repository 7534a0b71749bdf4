"""The train state, its sharded creation, and the jitted train step.

State is built as eval_shape -> shardings -> jit(init, out_shardings): no
array is ever materialised on one device and then copied. Data parallel:
parameters and optimiser state are replicated; the batch is sharded.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from ccjax.errors import UserError
from ccjax.runtime.mesh import replicated


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimiser steps taken (also the data position)
    params: Any
    opt_state: Any
    model_state: Any  # mutable collections, e.g. {'batch_stats': ...}
    # First step whose loss or gradients were not finite (-1: none). Such a step's
    # update is discarded in-graph, so the state stays the last good one.
    first_nonfinite_step: jax.Array


LR_SCHEDULES = ("constant", "cosine")


def learning_rate_schedule(config, steps_per_epoch: int) -> optax.Schedule | float:
    """The papers' constant rate, or a linear warm-up then cosine decay to 0 over the run.

    `warmup_epochs` applies to both: 0 starts at the full rate. A run shorter
    than its warm-up (say a config shortened with --config.num_epochs for a
    quick look) warms up over the whole run. `num_epochs` may grow when a run
    is resumed (workdir.BOOKKEEPING_FIELDS); with `cosine` that stretches the
    remaining decay.
    """
    if config.lr_schedule not in LR_SCHEDULES:
        raise UserError(f"lr_schedule={config.lr_schedule!r}; use one of {', '.join(LR_SCHEDULES)}")
    if config.warmup_epochs < 0:
        raise UserError(f"warmup_epochs={config.warmup_epochs} must be 0 or more")
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


def example_inputs(config, image_shape: tuple[int, int, int], anchor_dim: int | None):
    """Dummy model inputs of the right shapes for initialisation: two views of 2 images."""
    s, c = config.augment.image_size, image_shape[-1]
    views = [jnp.zeros((2, s, s, c), jnp.float32)] * 2
    anchors = None if anchor_dim is None else jnp.zeros((2, anchor_dim), jnp.float32)
    return views, anchors


def train_state_spec(model, tx, config, mesh: Mesh, image_shape, anchor_dim: int | None):
    """(init, abstract): `init()` builds the state directly into its shardings;
    `abstract` is the state's ShapeDtypeStructs with those shardings (what a
    checkpoint restores into). Nothing is computed until `init()` is called.
    """
    views, anchors = example_inputs(config, image_shape, anchor_dim)

    def init_fn(rng):
        variables = dict(model.init({"params": rng}, views, anchors, train=False))
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
    abstract = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings
    )
    init = jax.jit(init_fn, out_shardings=shardings)
    return (lambda: init(rng)), abstract


def inference_spec(model, config, mesh: Mesh, image_shape, anchor_dim: int | None) -> dict:
    """The part of a checkpointed TrainState inference restores, as ShapeDtypeStructs with their
    shardings: {'step', 'params', 'model_state'} (no optimiser state)."""
    views, anchors = example_inputs(config, image_shape, anchor_dim)

    def shapes_fn(rng):
        variables = dict(model.init({"params": rng}, views, anchors, train=False))
        return {"step": jnp.zeros((), jnp.int32), "params": variables.pop("params"), "model_state": variables}

    shapes = jax.eval_shape(shapes_fn, jax.random.key(config.seed))
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        shapes, state_shardings(shapes, mesh))


def state_shardings(state_shapes: Any, mesh: Mesh) -> Any:
    """Data parallel: everything in the state is replicated."""
    return jax.tree.map(lambda _: replicated(mesh), state_shapes)


def make_train_step(model, tx, objective, config, steps_per_epoch: int) -> Callable:
    """jit(train_step(state, batch) -> (state, metrics)) with the state donated.

    The step's randomness is a pure function of (seed, step) and its epoch is
    step // steps_per_epoch, so a resumed run replays exactly.
    """
    base_key = jax.random.key(config.seed + 1)

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        rng = jax.random.fold_in(base_key, state.step)
        epoch = state.step // steps_per_epoch
        loss_fn = functools.partial(
            objective.loss_fn,
            model=model,
            config=config,
            images=batch["image"],
            anchors=batch.get("anchor"),
            rng=rng,
            epoch=epoch,
        )
        (loss, (metrics, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.model_state
        )
        grad_norm = optax.global_norm(grads)
        updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

        def keep_if_finite(new, old):
            return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)

        new_state = TrainState(
            step=state.step + 1,
            params=keep_if_finite(new_params, state.params),
            opt_state=keep_if_finite(new_opt_state, state.opt_state),
            model_state=keep_if_finite(new_model_state, state.model_state),
            first_nonfinite_step=jnp.where(
                (state.first_nonfinite_step < 0) & ~finite, state.step, state.first_nonfinite_step
            ),
        )
        # 'total' duplicates 'loss'; keep one name for the objective's value.
        metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items() if k != "total"}
        metrics.update(loss=loss.astype(jnp.float32), grad_norm=grad_norm)
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=(0,))
