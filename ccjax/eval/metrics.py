"""Clustering metrics on the host: Hungarian ACC (scipy), NMI and ARI (scikit-learn), label-free diagnostics.

Labels may be any integers (not starting at 0, non-contiguous): every metric
first maps the labels that occur to 0..n-1. A "cluster with no members"
therefore plays no part in ACC/NMI/ARI, as in scikit-learn and CC's code.

ACC convention (CC's evaluation code, the standard): clusters are matched
one-to-one to classes by the Hungarian algorithm maximising the number of
matched examples; when there are more clusters than classes the unmatched
clusters map to no class and all their examples count as errors (and, with
more classes than clusters, the examples of unmatched classes are errors).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as sklearn_metrics

from ccjax.errors import UserError


def _check_labelings(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1 or len(y_true) != len(y_pred):
        raise UserError(f"labels and cluster predictions must be 1-D of one length, got shapes {y_true.shape} "
                        f"and {y_pred.shape}")
    if len(y_true) == 0:
        raise UserError("clustering metrics need at least one example; the dataset or split is empty")
    return y_true, y_pred


def _contingency(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts [n_clusters_present, n_classes_present] and the labels behind rows and columns."""
    classes, t = np.unique(y_true, return_inverse=True)
    clusters, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((len(clusters), len(classes)), np.int64)  # [K', C']
    np.add.at(table, (p, t), 1)
    return table, clusters, classes


def hungarian_match(y_true, y_pred) -> dict[int, int]:
    """Cluster label -> class label, one-to-one, maximising the number of matched examples.

    Uses scipy's linear_sum_assignment on the cluster x class contingency
    table. Only clusters that occur in `y_pred` can be matched; with more
    clusters than classes the surplus clusters are absent from the result
    (their examples count as errors in `cluster_accuracy`).
    """
    y_true, y_pred = _check_labelings(y_true, y_pred)
    table, clusters, classes = _contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {int(clusters[r]): int(classes[c]) for r, c in zip(rows, cols)}


def cluster_accuracy(y_true, y_pred) -> float:
    """Fraction of examples whose cluster is matched (Hungarian, see module doc) to their class."""
    y_true, y_pred = _check_labelings(y_true, y_pred)
    table, _, _ = _contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(y_true))


def _entropy_of_counts(counts: np.ndarray) -> float:
    """Shannon entropy (natural log) of the distribution counts / counts.sum()."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def normalized_mutual_info(y_true, y_pred) -> float:
    """NMI = I(T; P) / ((H(T) + H(P)) / 2), natural log: scikit-learn's, arithmetic mean (its default).

    Two labelings with one label each score 1.0, zero mutual information 0.0.
    """
    y_true, y_pred = _check_labelings(y_true, y_pred)
    return float(sklearn_metrics.normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic"))


def adjusted_rand_index(y_true, y_pred) -> float:
    """Hubert & Arabie's adjusted Rand index: scikit-learn's (identical partitions score 1.0)."""
    y_true, y_pred = _check_labelings(y_true, y_pred)
    return float(sklearn_metrics.adjusted_rand_score(y_true, y_pred))


def confusion_matrix(y_true, y_pred, num_classes: int, num_clusters: int) -> np.ndarray:
    """Counts [num_clusters, num_classes]: entry (k, c) = examples of class c put in cluster k.

    Labels must lie in 0..num_classes-1 and clusters in 0..num_clusters-1;
    rows/columns of empty clusters/classes are zero.
    """
    y_true, y_pred = _check_labelings(y_true, y_pred)
    y_true = y_true.astype(np.int64)
    y_pred = y_pred.astype(np.int64)
    if y_true.min() < 0 or y_true.max() >= num_classes:
        raise UserError(f"class labels must lie in 0..{num_classes - 1}, found {y_true.min()}..{y_true.max()}; "
                        "check the dataset's labels and num_classes")
    if y_pred.min() < 0 or y_pred.max() >= num_clusters:
        raise UserError(f"cluster ids must lie in 0..{num_clusters - 1}, found {y_pred.min()}..{y_pred.max()}; "
                        "check dataset.num_clusters")
    cm = np.zeros((num_clusters, num_classes), np.int64)  # [K, C]
    np.add.at(cm, (y_pred, y_true), 1)
    return cm


def clustering_metrics(y_true, y_pred) -> dict[str, float]:
    """{'acc', 'nmi', 'ari'} of a clustering against the ground-truth labels."""
    return {
        "acc": cluster_accuracy(y_true, y_pred),
        "nmi": normalized_mutual_info(y_true, y_pred),
        "ari": adjusted_rand_index(y_true, y_pred),
    }


def label_free_diagnostics(probs: np.ndarray) -> dict:
    """Diagnostics of cluster probabilities [N, K] that need no labels (JSON-ready Python values).

    - 'cluster_sizes': examples per cluster under the argmax assignment (list of K ints);
    - 'num_empty_clusters': clusters of size 0;
    - 'entropy': entropy of the argmax cluster-size distribution divided by
      log K (1 = perfectly balanced, 0 = everything in one cluster; 0 when K = 1);
    - 'soft_entropy': the same for the mean soft assignment probs.mean(0)
      (the distribution CC's entropy term acts on);
    - 'mean_max_prob': mean over examples of max_k probs[n, k] (confidence).
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
        raise UserError(f"cluster probabilities must be [N, K] with N, K >= 1, got shape {probs.shape}")
    if not np.isfinite(probs).all():
        raise UserError("cluster probabilities contain NaN or inf: training diverged; "
                        "lower the learning rate or evaluate an earlier checkpoint")
    n, k = probs.shape
    sizes = np.bincount(probs.argmax(axis=1), minlength=k)  # [K]
    log_k = math.log(k)
    mean_probs = probs.mean(axis=0)  # [K]
    return {
        "cluster_sizes": [int(s) for s in sizes],
        "num_empty_clusters": int((sizes == 0).sum()),
        "entropy": _entropy_of_counts(sizes) / log_k if k > 1 else 0.0,
        "soft_entropy": _entropy_of_counts(mean_probs) / log_k if k > 1 and mean_probs.sum() > 0 else 0.0,
        "mean_max_prob": float(probs.max(axis=1).mean()),
    }
