"""The k-means baseline on frozen features (scikit-learn), reported beside every frozen-features run."""

from __future__ import annotations

import time

import numpy as np

from ccjax.features.knn import unit_rows


def kmeans_baseline(features: np.ndarray, k: int, seed: int = 0, n_init: int = 3) -> tuple[np.ndarray, float]:
    """(cluster of each row int64 [N], seconds): sklearn KMeans (k-means++, `n_init` restarts) on the
    L2-normalised features (cosine geometry, as TEMI's neighbours)."""
    # scikit-learn loads only when the baseline runs (seconds of import for every other command)
    from sklearn.cluster import KMeans

    t0 = time.time()
    km = KMeans(n_clusters=int(k), n_init=n_init, random_state=int(seed)).fit(unit_rows(features))
    return km.labels_.astype(np.int64), time.time() - t0
