"""The K-suggestion rule (ccjax/eval/suggest_k.py) on hand-made inputs whose answer is known.

- `best_k`: the most stable K; within 0.01 of the best stability, the higher silhouette; never
  the silhouette alone (on contrastive features it keeps rising with K).
- `suggest_k`'s stability: the ARI between k-means fits on two disjoint halves. Tight, well
  separated blobs give exactly 1 at their number (any half finds them); points without any
  group structure give partitions that depend on the half, far below 1.
- its silhouette: about 1 for tight blobs at their number, much lower when a blob is split.
"""

from __future__ import annotations

import numpy as np
import pytest

from ccjax.errors import UserError
from ccjax.eval import suggest_k as sk


def rows(*entries):
    return [{"k": k, "stability": s, "silhouette": q} for k, s, q in entries]


def test_best_k_is_the_most_stable_not_the_best_silhouette():
    assert sk.best_k(rows((2, 0.50, 0.90), (3, 0.95, 0.20), (4, 0.70, 0.80), (9, 0.10, 0.99))) == 3


def test_best_k_breaks_near_ties_by_silhouette_within_001():
    within = rows((3, 0.950, 0.20), (5, 0.941, 0.60), (7, 0.80, 0.95))
    assert sk.best_k(within) == 5  # 0.941 >= 0.950 - 0.01: a tie, and 5 has the higher silhouette
    outside = rows((3, 0.950, 0.20), (5, 0.939, 0.60), (7, 0.80, 0.95))
    assert sk.best_k(outside) == 3  # 0.939 is more than 0.01 below: no tie
    equal = rows((4, 0.9, 0.3), (6, 0.9, 0.1))
    assert sk.best_k(equal) == 4
    assert sk.best_k(rows((6, 0.9, 0.1), (4, 0.9, 0.3))) == 4  # not the first or last row: the rule


def blobs(centres: np.ndarray, per: int, spread: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([c + spread * rng.normal(size=(per, centres.shape[1])) for c in centres])


CENTRES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])


@pytest.fixture(scope="module")
def blob_rows():
    return {r["k"]: r for r in sk.suggest_k(blobs(CENTRES, per=25, spread=0.01), [2, 3, 4, 5, 6], seed=0)}


def test_tight_blobs_are_exactly_stable_and_separated_at_their_number(blob_rows):
    four = blob_rows[4]
    assert four["stability"] == 1.0  # both halves find the four blobs: the same partition of all points
    assert four["silhouette"] > 0.99  # within-blob distances ~0.01 against ~10 to the next blob
    for k in (5, 6):  # a split blob: the silhouette of its halves is far from 1
        assert blob_rows[k]["silhouette"] < 0.9
    assert sk.best_k(list(blob_rows.values())) == 4


def test_points_without_groups_give_unstable_partitions():
    x = np.random.default_rng(3).uniform(size=(200, 2))
    (row,) = sk.suggest_k(x, [6], seed=0)
    assert row["stability"] < 0.9  # each half draws the cell borders elsewhere


def test_large_inputs_are_subsampled_evenly_and_k_must_stay_below_n(monkeypatch):
    monkeypatch.setattr(sk, "MAX_EXAMPLES", 40)
    x = blobs(CENTRES, per=25, spread=0.01)  # 100 points in order: blob 0, 1, 2, 3
    (row,) = sk.suggest_k(x, [4], seed=0)  # an even subsample keeps all four blobs
    assert row["stability"] == 1.0 and row["silhouette"] > 0.99
    with pytest.raises(UserError, match="needs more than 40 images"):
        sk.suggest_k(x, [40], seed=0)


def test_identical_features_have_no_silhouette_and_a_trivially_stable_partition():
    (row,) = sk.suggest_k(np.zeros((20, 3)), [2], seed=0)  # one distinct point: k-means finds one group
    assert row["silhouette"] == -1.0 and row["stability"] == 1.0


def test_the_range_and_the_table():
    assert sk.parse_range("2:4") == [2, 3, 4] and sk.parse_range("5:5") == [5]
    table = sk.format_table(rows((2, 0.5, 0.1), (3, 0.9, 0.2), (4, 0.6, 0.3)), trained_k=4).splitlines()
    assert [l.split()[0] for l in table[1:]] == ["2", "3", "4"]
    assert [("suggested" in l, "this run's K" in l) for l in table[1:]] == [(False, False), (True, False), (False, True)]
