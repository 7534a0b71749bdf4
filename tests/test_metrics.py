"""Clustering metrics against scikit-learn, a brute-force ACC and hand-computed cases."""

import itertools
import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ccjax.errors import UserError
from ccjax.eval.metrics import (
    adjusted_rand_index,
    cluster_accuracy,
    clustering_metrics,
    confusion_matrix,
    hungarian_match,
    label_free_diagnostics,
    normalized_mutual_info,
)


def brute_force_acc(y_true, y_pred) -> float:
    """Best one-to-one relabelling of clusters to classes by trying every injection (unmatched = wrong)."""
    clusters, classes = sorted(set(y_pred.tolist())), sorted(set(y_true.tolist()))
    best = 0
    # Pad classes with "no class" slots so that every cluster gets a distinct target.
    targets = classes + [None] * max(0, len(clusters) - len(classes))
    for perm in itertools.permutations(targets, len(clusters)):
        mapping = dict(zip(clusters, perm))
        best = max(best, sum(mapping[p] == t for t, p in zip(y_true.tolist(), y_pred.tolist())))
    return best / len(y_true)


def labelings():
    """(y_true, y_pred) pairs covering the edge cases; small cluster counts for the brute force."""
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(25):  # random, more clusters than classes, fewer, equal
        n = int(rng.integers(1, 40))
        c, k = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        cases.append((rng.integers(0, c, n), rng.integers(0, k, n)))
    y = rng.integers(0, 4, 30)
    cases.append((y, y.copy()))  # perfect
    cases.append((y, (y + 2) % 4))  # perfect up to relabelling
    cases.append((y, np.zeros_like(y)))  # a single cluster
    cases.append((np.zeros(10, int), np.zeros(10, int)))  # both constant
    cases.append((np.zeros(10, int), np.arange(10)))  # constant vs all singletons
    cases.append((np.arange(6), np.arange(6)))  # all singletons both
    cases.append((y * 7 + 3, rng.choice([-5, 2, 40, 1000], 30)))  # labels not from 0, non-contiguous
    cases.append((rng.integers(0, 3, 25), rng.choice([0, 2, 5], 25)))  # clusters 1, 3, 4 have no members
    cases.append((np.array([4]), np.array([9])))  # one example
    return cases


@pytest.mark.parametrize("case", range(len(labelings())))
def test_metrics_agree_with_oracles(case):
    y_true, y_pred = labelings()[case]
    np.testing.assert_allclose(normalized_mutual_info(y_true, y_pred),
                               normalized_mutual_info_score(y_true, y_pred), atol=1e-10)
    np.testing.assert_allclose(adjusted_rand_index(y_true, y_pred), adjusted_rand_score(y_true, y_pred), atol=1e-10)
    acc = cluster_accuracy(y_true, y_pred)
    assert acc == pytest.approx(brute_force_acc(y_true, y_pred), abs=1e-12)
    # The match realises the accuracy and is one-to-one onto labels that occur.
    match = hungarian_match(y_true, y_pred)
    assert len(set(match.values())) == len(match)
    assert set(match) <= set(y_pred.tolist()) and set(match.values()) <= set(y_true.tolist())
    assert len(match) == min(len(set(y_true.tolist())), len(set(y_pred.tolist())))
    hits = sum(match.get(p) == t for t, p in zip(y_true.tolist(), y_pred.tolist()))
    assert hits / len(y_true) == pytest.approx(acc)
    assert clustering_metrics(y_true, y_pred) == {"acc": acc, "nmi": normalized_mutual_info(y_true, y_pred),
                                                  "ari": adjusted_rand_index(y_true, y_pred)}


def test_hand_computed_case():
    # classes 0 0 0 1 1 1, clusters 0 0 1 1 1 1 (one class-0 example in the class-1 cluster).
    y_true = np.array([0, 0, 0, 1, 1, 1])
    y_pred = np.array([0, 0, 1, 1, 1, 1])
    assert hungarian_match(y_true, y_pred) == {0: 0, 1: 1}
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(5 / 6)
    # Contingency [[2, 0], [1, 3]] (cluster x class): MI, H(T) = log 2, H(P) = H(1/3, 2/3).
    mi = (2 / 6) * np.log((2 / 6) / (2 / 6 * 3 / 6)) + (1 / 6) * np.log((1 / 6) / (4 / 6 * 3 / 6)) \
        + (3 / 6) * np.log((3 / 6) / (4 / 6 * 3 / 6))
    h_t = np.log(2)
    h_p = -(1 / 3 * np.log(1 / 3) + 2 / 3 * np.log(2 / 3))
    assert normalized_mutual_info(y_true, y_pred) == pytest.approx(mi / ((h_t + h_p) / 2), abs=1e-12)
    # Pairs: index = C(2,2) + C(3,2) = 4; rows C(2,2)+C(4,2) = 7; cols 3+3 = 6; C(6,2) = 15.
    expected = 7 * 6 / 15
    assert adjusted_rand_index(y_true, y_pred) == pytest.approx((4 - expected) / ((7 + 6) / 2 - expected))
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, 2, 3), [[2, 0], [1, 3], [0, 0]])


def test_surplus_clusters_count_as_errors():
    # 2 classes, 3 clusters: cluster 2 (2 examples of class 0) cannot be matched.
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 2, 2, 1, 1])
    assert hungarian_match(y_true, y_pred) == {0: 0, 1: 1}
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(4 / 6)


def test_non_contiguous_labels_map_back_to_the_originals():
    y_true = np.array([10, 10, 30, 30, 30])
    y_pred = np.array([-1, -1, 7, 7, -1])
    assert hungarian_match(y_true, y_pred) == {-1: 10, 7: 30}
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(4 / 5)


def test_confusion_matrix_counts_and_checks_ranges():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 3, 50), rng.integers(0, 5, 50)
    cm = confusion_matrix(y_true, y_pred, num_classes=4, num_clusters=6)
    assert cm.shape == (6, 4) and cm.sum() == 50
    for k in range(6):
        for c in range(4):
            assert cm[k, c] == np.sum((y_pred == k) & (y_true == c))
    with pytest.raises(UserError):
        confusion_matrix(y_true, y_pred, num_classes=2, num_clusters=6)
    with pytest.raises(UserError):
        confusion_matrix(y_true, y_pred, num_classes=4, num_clusters=3)


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError):
        cluster_accuracy(np.array([0, 1]), np.array([0]))
    with pytest.raises(UserError):
        normalized_mutual_info(np.array([], int), np.array([], int))
    with pytest.raises(UserError):
        label_free_diagnostics(np.array([[0.5, np.nan]]))


def test_label_free_diagnostics():
    probs = np.array([
        [0.7, 0.2, 0.1, 0.0],
        [0.6, 0.3, 0.1, 0.0],
        [0.1, 0.8, 0.1, 0.0],
        [0.2, 0.2, 0.6, 0.0],
    ])
    d = label_free_diagnostics(probs)
    assert d["cluster_sizes"] == [2, 1, 1, 0]
    assert d["num_empty_clusters"] == 1
    # sizes (2, 1, 1, 0)/4: H = -(0.5 log 0.5 + 2 * 0.25 log 0.25) = 1.5 log 2; / log 4.
    assert d["entropy"] == pytest.approx(1.5 * np.log(2) / np.log(4))
    mean = np.array([1.6, 1.5, 0.9, 0.0]) / 4
    assert d["soft_entropy"] == pytest.approx(-(mean[:3] * np.log(mean[:3])).sum() / np.log(4))
    assert d["mean_max_prob"] == pytest.approx((0.7 + 0.6 + 0.8 + 0.6) / 4)
    json.dumps(d)  # JSON-ready
    uniform = label_free_diagnostics(np.eye(3)[[0, 1, 2, 0, 1, 2]])
    assert uniform["entropy"] == pytest.approx(1.0) and uniform["mean_max_prob"] == 1.0
    collapsed = label_free_diagnostics(np.tile([[0.1, 0.9]], (5, 1)))
    assert collapsed["entropy"] == 0.0 and collapsed["num_empty_clusters"] == 1
