"""Training, part 2 of 3: one training step, `make_train_step(...)`.

The step takes the TrainState of ccjax/train/state.py and one global batch
{'image': [B, H, W, C] uint8, 'anchor'?: [B, A]}; the method's objective
(ccjax/methods/, chosen by `config.method`) augments the views on device and
computes the loss; optax applies the update. A step whose loss or gradients are
not finite leaves the state unchanged and is recorded in `first_nonfinite_step`.

Next: ccjax/train/loop.py (the loop that runs the steps).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from ccjax.methods import method_objective
from ccjax.train.state import TrainState


def make_train_step(model, tx, config, steps_per_epoch: int) -> Callable:
    """jit(train_step(state, batch) -> (state, metrics)) with the state donated, for `config.method`.

    The step's randomness is a pure function of (seed, step) and its epoch is
    step // steps_per_epoch, so a resumed run replays exactly.
    """
    objective = method_objective(config)
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
        grad_norm = optax.tree.norm(grads)
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
