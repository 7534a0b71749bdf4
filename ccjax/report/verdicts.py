"""Verdicts on a run's final clustering that need no labels: has it collapsed, is it unsure?

Read from each image's cluster and top probability alone (report/assignments.csv holds both), so
`python -m ccjax report` recomputes them from a finished run without its model.

- **collapse** (a `ccjax: warning:` line): the clustering says little about the images when
  - one cluster holds most images: its share's excess over an equal share,
    (share - 1/K) / (1 - 1/K), is at least ONE_CLUSTER (K = 10: a share of 55%; K = 2: 75%), or
  - most clusters are empty: at least EMPTY_CLUSTERS of the K, or
  - most images have a top probability near 1/K: for at least NEAR_UNIFORM_IMAGES of them the
    normalised confidence (p_max - 1/K) / (1 - 1/K) is below NEAR_UNIFORM (K = 10: p_max < 0.19).
  The first two make the partition itself degenerate: the cue probe and --suggest_k then name no cue
  and no K. Near-uniform probabilities alone do not: their argmax can still group the images by a
  real cue (measured: docs/own_images.md), so the probe still reads it;
- **low confidence** (a `ccjax: note:` line, when not collapsed): at least UNSURE_IMAGES of the
  images have a normalised confidence below UNSURE (K = 10: p_max < 0.55), i.e. the model
  hesitates between clusters for most images.

Every level is a share ("most" = a half), not a figure fitted to one run; docs/own_images.md
("Collapsed runs") lists the healthy and collapsed runs they were measured on.
"""

from __future__ import annotations

import numpy as np

ONE_CLUSTER = 0.5  # the largest cluster's excess over an equal share that warns
EMPTY_CLUSTERS = 0.5  # the share of empty clusters that warns
NEAR_UNIFORM = 0.1  # an image's normalised confidence below this: its top probability is near 1/K
NEAR_UNIFORM_IMAGES = 0.5  # the share of such images that warns
UNSURE = 0.5  # an image's normalised confidence below this: the model hesitates
UNSURE_IMAGES = 0.5  # the share of such images that gives the low-confidence note

THRESHOLDS = {"one_cluster": ONE_CLUSTER, "empty_clusters": EMPTY_CLUSTERS, "near_uniform": NEAR_UNIFORM,
              "near_uniform_images": NEAR_UNIFORM_IMAGES, "unsure": UNSURE, "unsure_images": UNSURE_IMAGES}


def normalised_confidence(top_prob: np.ndarray, k: int) -> np.ndarray:
    """(p_max - 1/K) / (1 - 1/K) per image: 0 = all clusters equally likely, 1 = certain."""
    return (np.asarray(top_prob, np.float64) - 1.0 / k) / (1.0 - 1.0 / k)


def clustering_state(cluster: np.ndarray, top_prob: np.ndarray, k: int) -> dict:
    """The figures the verdicts read, from each image's cluster [N] and top probability [N]."""
    cluster = np.asarray(cluster)
    n = len(cluster)
    sizes = np.bincount(cluster, minlength=k)
    largest = int(np.argmax(sizes))
    share = float(sizes[largest] / n)
    conf = normalised_confidence(top_prob, k)
    return {"num_examples": int(n), "num_clusters": int(k), "cluster_sizes": sizes.tolist(),
            "largest_cluster": largest, "largest_share": share,
            "largest_excess": (share - 1.0 / k) / (1.0 - 1.0 / k) if k > 1 else 1.0,
            "num_empty": int((sizes == 0).sum()),
            "near_uniform_share": float((conf < NEAR_UNIFORM).mean()),
            "unsure_share": float((conf < UNSURE).mean()),
            "mean_top_prob": float(np.mean(top_prob))}


def collapse_reasons(state: dict) -> list[tuple[str, str]]:
    """[(kind, why in plain words)] of the collapse (empty: none): kinds 'one_cluster' and 'empty' (the
    partition itself is degenerate) and 'near_uniform' (the model barely prefers any cluster)."""
    n, k = state["num_examples"], state["num_clusters"]
    reasons = []
    if k > 1 and state["largest_excess"] >= ONE_CLUSTER:
        size = state["cluster_sizes"][state["largest_cluster"]]
        reasons.append(("one_cluster", f"cluster {state['largest_cluster']} holds {size} of {n} images "
                                       f"({state['largest_share']:.0%})"))
    if k > 1 and state["num_empty"] >= EMPTY_CLUSTERS * k:
        reasons.append(("empty", f"{state['num_empty']} of {k} clusters are empty"))
    if k > 1 and state["near_uniform_share"] >= NEAR_UNIFORM_IMAGES:
        reasons.append(("near_uniform", f"{state['near_uniform_share']:.0%} of the images have a top probability "
                                        f"near 1/K = {1 / k:.2f}"))
    return reasons


def collapse_line(reasons: list[tuple[str, str]], advice: str) -> str:
    degenerate = any(kind != "near_uniform" for kind, _ in reasons)
    what = ("Its few clusters say little about the images, and no cue is named for them." if degenerate else
            "The model barely tells the clusters apart yet (the most likely cluster still groups the images).")
    return (f"ccjax: warning: the clustering collapsed: {'; '.join(text for _, text in reasons)}. {what} "
            f"{advice} (report/index.html)").replace("  ", " ")


def low_confidence_line(state: dict, advice: str) -> str:
    k = state["num_clusters"]
    return (f"ccjax: note: the model is unsure of most images: {state['unsure_share']:.0%} have a top cluster "
            f"probability below {1 / k + UNSURE * (1 - 1 / k):.2f} (mean {state['mean_top_prob']:.2f}); the least "
            f"confident images of each cluster are in report/index.html. {advice}").rstrip()


def verdicts(cluster: np.ndarray, top_prob: np.ndarray, k: int, advice: dict[str, str] | None = None) -> dict:
    """{'state'; 'collapsed': why, in words (empty: not collapsed); 'kinds': the reasons' kinds;
    'degenerate': the reasons that make the partition itself degenerate (one cluster, empty clusters:
    what the cue probe and --suggest_k defer to); 'lines': the lines to print (0 or 1); 'thresholds'}.
    `advice` {'collapse': text, 'low_confidence': text} ends the lines (what to try)."""
    advice = advice or {}
    state = clustering_state(cluster, top_prob, k)
    reasons = collapse_reasons(state)
    lines = []
    if reasons:
        lines.append(collapse_line(reasons, advice.get("collapse", "")))
    elif k > 1 and state["unsure_share"] >= UNSURE_IMAGES:
        lines.append(low_confidence_line(state, advice.get("low_confidence", "")))
    return {"state": state, "collapsed": [text for _, text in reasons], "kinds": [kind for kind, _ in reasons],
            "degenerate": [text for kind, text in reasons if kind != "near_uniform"], "lines": lines,
            "thresholds": THRESHOLDS}
