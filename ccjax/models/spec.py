"""The layout of a model's variables before any is computed: what training builds its state from and what
inference restores a checkpoint into (ccjax/train/state.py, ccjax/run/load.py).

Data parallel: every variable is replicated over the mesh; the batch alone is sharded.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from ccjax.runtime.mesh import replicated


def example_inputs(config, image_shape: tuple[int, int, int], anchor_dim: int | None):
    """Dummy model inputs of the right shapes for initialisation: two views of 2 images."""
    s, c = config.augment.image_size, image_shape[-1]
    views = [jnp.zeros((2, s, s, c), jnp.float32)] * 2
    anchors = None if anchor_dim is None else jnp.zeros((2, anchor_dim), jnp.float32)
    return views, anchors


def variables_init(model, config, image_shape, anchor_dim: int | None) -> Callable[[jax.Array], dict]:
    """`init(rng) -> {'params': ..., other collections}`: the model's fresh variables, for any caller to
    trace (eval_shape for the layout, jit for the values)."""
    views, anchors = example_inputs(config, image_shape, anchor_dim)

    def init(rng):
        return dict(model.init({"params": rng}, views, anchors, train=False))

    return init


def state_shardings(state_shapes: Any, mesh: Mesh) -> Any:
    """Data parallel: everything in the state is replicated."""
    return jax.tree.map(lambda _: replicated(mesh), state_shapes)


def with_shardings(shapes: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs carrying their shardings (what a checkpoint restores into)."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings)


def inference_spec(model, config, mesh: Mesh, image_shape, anchor_dim: int | None) -> dict:
    """The part of a checkpointed TrainState inference restores, as ShapeDtypeStructs with their
    shardings: {'step', 'params', 'model_state'} (no optimiser state)."""
    init = variables_init(model, config, image_shape, anchor_dim)

    def shapes_fn(rng):
        variables = init(rng)
        return {"step": jnp.zeros((), jnp.int32), "params": variables.pop("params"), "model_state": variables}

    shapes = jax.eval_shape(shapes_fn, jax.random.key(config.seed))
    return with_shardings(shapes, state_shardings(shapes, mesh))
