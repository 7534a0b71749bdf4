"""TEMI on an in-memory feature matrix, without a run directory: what the tests, the benchmarks and
quick experiments call. The run (train.py) uses the same pieces with checkpoints around them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def fit_features(config, feats: np.ndarray, num_clusters: int, mesh, knn: np.ndarray | None = None,
                 epochs: int | None = None):
    """(state, module, per-head losses of the last epoch [H]) after `epochs` (default config.num_epochs)
    epochs of TEMI on feats float32 [N, D]. `knn` int [N, k] defaults to the exact kNN."""
    from ccjax.features.knn import exact_knn
    from ccjax.methods.temi.step import make_train_epoch, set_best_head
    from ccjax.methods.temi.train import _initial_state
    from ccjax.models import build_model
    from ccjax.runtime.mesh import replicated
    from ccjax.train.state import train_state_spec

    n, d = feats.shape
    spe = n // config.batch_size
    if knn is None:
        knn, _ = exact_knn(feats, config.temi.knn, mesh)
    module = build_model(config, num_clusters)
    train_epoch, tx = make_train_epoch(config.to_json_best_effort(), spe, n, mesh)
    init, _ = train_state_spec(module, tx, config, mesh, (8, 8, 1), d)
    state = _initial_state(init, feats, config)
    f = jax.device_put(np.asarray(feats, np.float32), replicated(mesh))
    kn = jax.device_put(np.asarray(knn, np.int32), replicated(mesh))
    losses = None
    for epoch in range(config.num_epochs if epochs is None else epochs):
        state, losses = train_epoch(state, f, kn, jnp.int32(epoch))
        losses = np.asarray(jax.device_get(losses))
        state = set_best_head(state, losses)
    return state, module, losses


def assign_features(module, state, feats: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Cluster probabilities float32 [N, K] of the best teacher head for feats [N, D] (host)."""
    variables = {"params": state.params, **state.model_state}
    apply = jax.jit(lambda v, x: module.apply(v, [None], x, train=False)[0]["c"])
    return np.concatenate([np.asarray(apply(variables, jnp.asarray(feats[i:i + batch], jnp.float32)))
                           for i in range(0, len(feats), batch)])
