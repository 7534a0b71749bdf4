"""Exact k nearest neighbours (cosine similarity) of every embedding among all the others.

TEMI's pairs: each embedding's k most similar others, over the whole set, exactly (no
approximate index). Computed blockwise so that memory is bounded whatever N:
query blocks of `query_block` rows are sharded over the mesh's 'data' axis; the keys
(all N unit-norm embeddings, replicated) are scanned in chunks of `key_chunk`, keeping a
running top-k. Memory per device: the keys (N x D) plus query_block / devices x
(key_chunk + k) similarities. One jit call per query block; no per-example Python.
Ties between equal similarities go to the lower index (lax.top_k keeps the first).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from ccjax.errors import UserError
from ccjax.runtime.mesh import make_mesh, replicated


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero): float32 [N, D]."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


@functools.lru_cache(maxsize=8)
def _block_fn(k: int, num_keys: int, key_chunk: int, mesh):
    rows = NamedSharding(mesh, P("data"))
    rep = NamedSharding(mesh, P())

    def block(q, q_idx, keys):
        """q: [Q, D] sharded rows, q_idx: [Q] int32, keys: [C, chunk, D] -> (sims [Q, k], idx [Q, k])."""
        q = jax.lax.with_sharding_constraint(q, rows)
        init = (jnp.full((q.shape[0], k), -jnp.inf, jnp.float32), jnp.full((q.shape[0], k), -1, jnp.int32))

        def scan_chunk(carry, xs):
            best_v, best_i = carry
            kc, start = xs  # [chunk, D], scalar
            sims = jnp.dot(q, kc.T, precision=jax.lax.Precision.HIGHEST)  # [Q, chunk]
            cols = start + jnp.arange(key_chunk, dtype=jnp.int32)  # [chunk] global key indices
            bad = (cols[None, :] == q_idx[:, None]) | (cols[None, :] >= num_keys)  # self, padding
            sims = jnp.where(bad, -jnp.inf, sims)
            v = jnp.concatenate([best_v, sims], axis=1)  # [Q, k + chunk]: earlier (lower) indices first
            i = jnp.concatenate([best_i, jnp.broadcast_to(cols, sims.shape)], axis=1)
            top_v, pos = jax.lax.top_k(v, k)
            return (top_v, jnp.take_along_axis(i, pos, axis=1)), None

        starts = jnp.arange(keys.shape[0], dtype=jnp.int32) * key_chunk
        (v, i), _ = jax.lax.scan(scan_chunk, init, (keys, starts))
        return v, i

    return jax.jit(block, out_shardings=(rep, rep))


def exact_knn(features: np.ndarray, k: int, mesh=None, *, query_block: int = 1024,
              key_chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32 [N, k], cosine similarities float32 [N, k]) of each row's k nearest other rows,
    most similar first. `features`: float [N, D] (host)."""
    n = int(features.shape[0])
    if not 1 <= k < n:
        raise UserError(f"temi.knn={k} neighbours needs 1 <= knn < the {n} examples; set --config.temi.knn")
    mesh = make_mesh() if mesh is None else mesh
    n_dev = mesh.devices.size
    query_block = -(-min(query_block, n) // n_dev) * n_dev  # a multiple of the devices
    key_chunk = min(key_chunk, n)
    unit = unit_rows(features)
    chunks = -(-n // key_chunk)
    keys = np.zeros((chunks * key_chunk, unit.shape[1]), np.float32)
    keys[:n] = unit
    keys = jax.device_put(keys.reshape(chunks, key_chunk, -1), replicated(mesh))  # [C, chunk, D]
    fn = _block_fn(int(k), n, int(key_chunk), mesh)
    rows = NamedSharding(mesh, P("data"))
    out_v, out_i = [], []
    for start in range(0, n, query_block):
        q_idx = np.arange(start, start + query_block, dtype=np.int32)
        q = unit[np.minimum(q_idx, n - 1)]  # the last block is padded with copies (dropped below)
        qa = jax.make_array_from_callback(q.shape, rows, lambda s, q=q: q[s])
        ia = jax.make_array_from_callback(q_idx.shape, rows, lambda s, a=q_idx: a[s])
        v, i = fn(qa, ia, keys)
        take = min(query_block, n - start)
        out_v.append(np.asarray(v)[:take])
        out_i.append(np.asarray(i)[:take])
    return np.concatenate(out_i), np.concatenate(out_v)
