"""Exact kNN (ccjax/features/knn.py) against brute force in float64 numpy, on 4 devices and on 1.

Wrong implementations caught: a point counted as its own neighbour; padded key rows (zeros) or the
last block's padded queries leaking into results; the running top-k of one chunk overwriting the
previous chunks'; a dot product instead of cosine (unnormalised rows); a sharded query block whose rows
are misaligned with their indices.
"""

import jax
import numpy as np

from ccjax.features.knn import exact_knn
from ccjax.runtime.mesh import make_mesh


def _brute(x, k):
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = u.astype(np.float64) @ u.T.astype(np.float64)
    np.fill_diagonal(s, -np.inf)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(s, idx, 1)


def test_exact_knn_matches_brute_force_sharded_and_single_device():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(203, 7)).astype(np.float32) * rng.uniform(0.5, 3, size=(203, 1)).astype(np.float32)
    want_i, want_s = _brute(x, 5)
    # blocks and chunks that do not divide N: padding on both sides
    got_i, got_s = exact_knn(x, 5, make_mesh(), query_block=48, key_chunk=37)
    np.testing.assert_allclose(got_s, want_s, atol=1e-5)
    assert (got_i == want_i).mean() > 0.99  # ties within float32 rounding may swap
    assert not (got_i == np.arange(203)[:, None]).any()
    one_i, one_s = exact_knn(x, 5, make_mesh(jax.devices()[:1]), query_block=64, key_chunk=64)
    np.testing.assert_array_equal(one_i, got_i)
    np.testing.assert_allclose(one_s, got_s, atol=1e-6)


def test_suggest_k_fast_path_command_names_the_run_and_the_new_k():
    """The fast path `evaluate --suggest_k` prints: TEMI on this run's features with the suggested K
    (wrong: another run's features, the old K, or advice when the suggested K is the run's own or the run
    is itself TEMI on frozen features, which a run: source refuses)."""
    import shlex

    from ccjax.run.command_line import recluster_advice

    assert recluster_advice("runs/my run", 10, 10) is None
    assert recluster_advice("runs/my run", 12, 10, "temi") is None  # a TEMI run's features: no run: source
    assert recluster_advice("runs/my run", 12, 10, "cc") is not None
    line = recluster_advice("runs/my run", 12, 10).splitlines()[-1]
    argv = shlex.split(line)
    assert argv[:5] == ["python", "-m", "ccjax", "train", "--config=configs/temi_run.py"]
    assert "--config.features.source=run:runs/my run" in argv
    assert "--config.dataset.num_clusters=12" in argv and "--workdir=runs/my run_temi_k12" in argv
