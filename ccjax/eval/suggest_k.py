"""Choosing K without labels: `python -m ccjax evaluate --workdir=<run> --suggest_k=2:30`.

For a trained run, the learned instance features z (L2-normalised, view 1's
eval preprocessing) of every image (an even subsample of at most MAX_EXAMPLES)
are clustered by k-means for each K in the range, and two label-free criteria
are reported per K (report/suggest_k.json, report/suggest_k.png):

- stability: the adjusted Rand index between two k-means fits on different
  random halves of the images, each applied to all of them (1 = the same
  partition whatever the sample; a K the features do not support is split
  differently each time). The suggested K is the most stable one (ties within
  0.01: the higher silhouette);
- silhouette: how much closer each image is to its own group than to the next
  one (scikit-learn's silhouette_score, Euclidean on unit vectors, i.e. cosine).
  Shown for context: on contrastive features it keeps rising with K (the
  instance loss spreads the images over the sphere), so it is no guide alone.

Measured on the cc_digits run (docs/own_images.md): stability peaks at K = 10
(0.95; the next best 0.89), while the silhouette rises until K = 19. The
cluster head's own probabilities are not used: they were trained for the
run's K and always favour it.
"""

from __future__ import annotations


import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

from ccjax.data import open_dataset
from ccjax.errors import UserError
from ccjax.features import run_inputs
from ccjax.run.load import load_trained, model_outputs

MAX_EXAMPLES = 10000


def parse_range(text: str) -> list[int]:
    """'2:30' -> [2, ..., 30]; a UserError for anything else."""
    try:
        lo, hi = (int(v) for v in text.split(":"))
    except ValueError:
        raise UserError(f"--suggest_k={text!r}: give a range LO:HI of numbers of clusters, e.g. 2:30") from None
    if not 2 <= lo <= hi:
        raise UserError(f"--suggest_k={text!r}: need 2 <= LO <= HI, e.g. 2:30")
    return list(range(lo, hi + 1))


def suggest_k(features: np.ndarray, ks: list[int], seed: int = 0) -> list[dict]:
    """[{'k', 'silhouette', 'stability'}] for features [N, D] (an even subsample of MAX_EXAMPLES at most)."""
    n = len(features)
    if n > MAX_EXAMPLES:
        features = features[np.linspace(0, n - 1, MAX_EXAMPLES).astype(np.int64)]
        n = MAX_EXAMPLES
    if ks[-1] >= n:
        raise UserError(f"--suggest_k: K up to {ks[-1]} needs more than {n} images")
    x = np.asarray(features, np.float64)
    rng = np.random.default_rng(seed)
    rows = []
    for k in ks:
        labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x)
        sil = float(silhouette_score(x, labels, random_state=seed)) if len(set(labels)) > 1 else -1.0
        halves = rng.permutation(n)
        fits = [KMeans(n_clusters=k, n_init=3, random_state=seed + 1 + i).fit(x[idx])
                for i, idx in enumerate((halves[: n // 2], halves[n // 2:]))]
        stability = float(adjusted_rand_score(fits[0].predict(x), fits[1].predict(x)))
        rows.append({"k": k, "silhouette": sil, "stability": stability})
    return rows


def best_k(rows: list[dict]) -> int:
    """The most stable K; within 0.01 of the best stability, the one with the higher silhouette."""
    top = max(r["stability"] for r in rows)
    return max((r for r in rows if r["stability"] >= top - 0.01), key=lambda r: r["silhouette"])["k"]


def format_table(rows: list[dict], trained_k: int | None = None) -> str:
    best = best_k(rows)
    lines = ["     K  stability  silhouette"]
    for r in rows:
        mark = "  <- suggested (most stable)" if r["k"] == best else ""
        mark += "  (this run's K)" if r["k"] == trained_k else ""
        lines.append(f"  {r['k']:4d}  {r['stability']:9.3f}  {r['silhouette']:10.3f}{mark}")
    return "\n".join(lines)


def suggest_k_for_run(workdir: str, ks: list[int], progress: bool = True) -> tuple[list[dict], int]:
    """suggest_k on the learned features of the run in `workdir` (its last checkpoint) over its training
    data; returns (rows, the run's own K)."""
    trained = load_trained(workdir)
    dataset = open_dataset(trained.config.dataset)
    anchors = run_inputs(trained.config, dataset, trained.mesh)  # CLIP anchors, or TEMI's features
    variables = trained.restore_latest().variables
    z = model_outputs(trained.module, variables, trained.config, dataset, trained.mesh, anchors, "z", progress)
    rows = suggest_k(z, ks, seed=int(trained.config.seed))
    return rows, int(trained.info["num_clusters"])
