"""The nuisance probe's chance baseline (ccjax/eval/nuisance.py `probe`) on hand-made inputs.

`chance` is the NMI between a statistic's groups and the clusters shuffled across the images
(same sizes, no relation). Checked against the expectation of that NMI over many permutations,
computed here; and the flag needs both NMI >= WARN_NMI and NMI - chance >= WARN_OVER_CHANCE,
which matters where chance itself is high: few images per group.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from ccjax.eval import nuisance


def expected_chance(groups: np.ndarray, pred: np.ndarray, known=None, draws: int = 400,
                    seed: int = 99) -> tuple[float, float]:
    """(mean, std) of NMI(groups, a random permutation of pred) over `draws` permutations (of all the
    images, then restricted to `known` ones where given)."""
    rng = np.random.default_rng(seed)
    known = np.ones(len(pred), bool) if known is None else known
    values = [normalized_mutual_info_score(groups, rng.permutation(pred)[known]) for _ in range(draws)]
    return float(np.mean(values)), float(np.std(values))


def test_chance_is_the_nmi_of_shuffled_clusters():
    pred = np.repeat(np.arange(8), 5)  # 40 images in 8 clusters of 5: chance is far from 0
    same = np.array([f"g{p}" for p in pred])  # a categorical statistic that is the clusters
    out = nuisance.probe(pred, 8, {"subfolder": same}, seed=0)["statistics"]["subfolder"]
    assert out["nmi"] == 1.0
    mean, std = expected_chance(same, pred)
    assert mean > 0.3
    assert abs(out["chance"] - mean) < 4 * std / np.sqrt(3)  # the probe averages 3 shuffles


def test_a_statistic_no_better_than_chance_is_not_flagged_even_above_the_nmi_level():
    """48 images in 16 clusters of 3: any grouping into 16 triples has NMI about 0.6 with the clusters,
    above WARN_NMI; only the chance baseline tells it apart from one that follows the clusters."""
    rng = np.random.default_rng(1)
    pred = np.repeat(np.arange(16), 3)
    unrelated = np.array([f"g{g}" for g in rng.permutation(pred)])
    follows = np.array([f"g{g}" for g in pred])
    out = nuisance.probe(pred, 16, {"subfolder": unrelated, "file_format": follows}, seed=0)
    unrelated_score, follows_score = out["statistics"]["subfolder"], out["statistics"]["file_format"]
    assert unrelated_score["nmi"] >= nuisance.WARN_NMI
    assert unrelated_score["nmi"] - unrelated_score["chance"] < nuisance.WARN_OVER_CHANCE
    assert not unrelated_score["flagged"]
    assert follows_score["flagged"] and follows_score["nmi"] == 1.0
    assert len(out["warnings"]) == 1 and "file format" in out["warnings"][0]


def test_labels_get_the_same_baseline_and_a_continuous_statistic_is_grouped():
    pred = np.repeat(np.arange(4), 10)
    labels = pred.copy()
    labels[:5] = -1  # unlabelled images are left out of the label reference
    brightness = pred + 0.01 * np.random.default_rng(2).normal(size=40)  # follows the clusters
    out = nuisance.probe(pred, 4, {"brightness": brightness}, labels=labels, seed=0)
    assert out["statistics"]["brightness"]["nmi"] == 1.0 and out["statistics"]["brightness"]["flagged"]
    assert out["labels"]["nmi"] == 1.0
    mean, std = expected_chance(labels[5:], pred, known=labels >= 0)
    assert abs(out["labels"]["chance"] - mean) < 4 * std / np.sqrt(3)
