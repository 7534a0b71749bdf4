"""How well do cue families predict a grouping? Cross-validated, against the chance baseline.

`predictability(cues, y)` fits scikit-learn's linear discriminant analysis
(standardised cues, within-group covariance floored by RIDGE) that predicts y (a cluster or a label per image) from all the cue
families together, with stratified K-fold cross-validation (fixed seed), and
reports, from the out-of-fold predictions:

- `accuracy` beside `majority`, the accuracy of always answering the most common group;
- `balanced_accuracy` (the mean recall over groups) beside `chance` = 1 / K;
- `score` = (balanced_accuracy - 1/K) / (1 - 1/K): 0 at chance, 1 when the cues give y exactly,
  comparable across numbers of groups and group sizes;
- per family, `alone`: the score of that family by itself (what it can explain), and
  `importance`: the loss of score when that family's columns are permuted across the held-out
  images (grouped permutation importance: what only it explains, given the others).

Groups with fewer than MIN_GROUP images are left out; the folds drop to the smallest group's
size (at least MIN_GROUP); at most MAX_CLASSES groups (the largest) and MAX_FIT images (an even random
subsample) enter the fit. When that leaves fewer than 2 groups, or no cue varies, the result
says why instead of a score.
"""

from __future__ import annotations

import warnings

import numpy as np

FOLDS = 5
MIN_GROUP = 3  # images a group needs to be scored: with fewer, a fold's training part may hold one per group
MAX_CLASSES = 50  # groups scored (the largest); more make the fit slow and each group thin
MAX_FIT = 6000  # images the classifier sees (cross-validated); the cost grows with it
RIDGE = 0.01  # added to the within-group covariance of the standardised cues (see RidgeCovariance)


def chance_levels(y: np.ndarray) -> dict:
    """{'majority': accuracy of always answering the most common group, 'chance': 1 / number of groups}."""
    _, counts = np.unique(y, return_counts=True)
    return {"majority": float(counts.max() / counts.sum()), "chance": float(1.0 / len(counts))}


def normalised_score(balanced_accuracy: float, num_groups: int) -> float:
    """(balanced accuracy - 1/K) / (1 - 1/K): 0 at chance, 1 when every group is recalled."""
    return float((balanced_accuracy - 1.0 / num_groups) / (1.0 - 1.0 / num_groups))


def _stack(cues: dict[str, np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(X [n, d] of the varying columns, {family: its column numbers in X}); families that never vary left out."""
    blocks, columns, start = [], {}, 0
    for name, values in cues.items():
        v = np.asarray(values, np.float64).reshape(len(values), -1)[rows]
        v = np.where(np.isfinite(v), v, 0.0)
        varying = v.std(0) > 1e-9 * (1.0 + np.abs(v).mean(0))
        if not varying.any():
            continue
        v = v[:, varying]
        blocks.append((v - v.mean(0)) / v.std(0))  # standardised (no labels involved: no leak into the folds)
        columns[name] = np.arange(start, start + int(varying.sum()))
        start += int(varying.sum())
    x = np.concatenate(blocks, 1) if blocks else np.zeros((len(rows), 0))
    return x, columns


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """The mean over the groups present in y [n] of the share of their images predicted right (pred [n])."""
    groups, inverse = np.unique(y, return_inverse=True)
    right = np.bincount(inverse, weights=(pred == y).astype(np.float64), minlength=len(groups))
    return float(np.mean(right / np.bincount(inverse, minlength=len(groups))))


def one_hot(values: np.ndarray) -> np.ndarray:
    """[n] group ids -> float [n, number of distinct ids]."""
    inverse = np.unique(values, return_inverse=True)[1]
    return np.eye(inverse.max() + 1)[inverse]


def _select(y: np.ndarray, seed: int) -> tuple[np.ndarray, str | None]:
    """Row numbers that enter the fit (groups of >= MIN_GROUP images, the MAX_CLASSES largest, <= MAX_FIT rows),
    and why there is nothing to fit (or None)."""
    groups, counts = np.unique(y, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    kept = groups[order[:MAX_CLASSES]][counts[order[:MAX_CLASSES]] >= MIN_GROUP]
    rows = np.flatnonzero(np.isin(y, kept))
    if len(kept) < 2:
        return rows, f"fewer than 2 groups with {MIN_GROUP} or more images"
    if len(rows) > MAX_FIT:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_FIT, replace=False))
        _, sub_counts = np.unique(y[rows], return_counts=True)
        if len(sub_counts) < len(kept) or sub_counts.min() < MIN_GROUP:  # a tiny group thinned by the subsample
            rows = rows[np.isin(y[rows], np.unique(y[rows])[sub_counts >= MIN_GROUP])]
    return rows, None


class RidgeCovariance:
    """The covariance estimator LDA is given: the empirical covariance plus RIDGE x identity.

    The columns are standardised beforehand (total variance 1), so the ridge is a fixed floor in those
    units. scikit-learn's own shrinkage shrinks towards the *mean* variance, which is zero when a cue
    separates the groups exactly (a file format, a JPEG quality): the discriminant then vanishes."""

    def get_params(self, deep: bool = True) -> dict:
        return {}

    def fit(self, x: np.ndarray) -> "RidgeCovariance":
        x = np.asarray(x, np.float64)
        centred = x - x.mean(0)
        self.covariance_ = centred.T @ centred / max(len(x), 1) + RIDGE * np.eye(x.shape[1])
        return self


def _model():
    """Linear discriminant analysis on standardised cues, its within-group covariance floored by RIDGE:
    closed form, fast, and linear boundaries are what k-means-like cluster cells have."""
    # scikit-learn loads only when the probe runs (seconds of import for every other command)
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    return LinearDiscriminantAnalysis(solver="lsqr", covariance_estimator=RidgeCovariance())


def _cross_validate(x: np.ndarray, y: np.ndarray, folds: int, seed: int,
                    columns: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """(out-of-fold predictions [n], {family: mean drop in balanced accuracy when its columns are permuted})."""
    # scikit-learn loads only when the probe runs
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    oof = np.empty_like(y)
    drops: dict[str, list[float]] = {name: [] for name in (columns or {})}
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = _model().fit(x[train], y[train])
        oof[test] = model.predict(x[test])
        base = balanced_accuracy(y[test], oof[test])
        for name, cols in (columns or {}).items():
            shuffled = x[test].copy()
            shuffled[:, cols] = shuffled[rng.permutation(len(test))][:, cols]
            drops[name].append(base - balanced_accuracy(y[test], model.predict(shuffled)))
    return oof, {name: float(np.mean(d)) for name, d in drops.items()}


def predictability(cues: dict[str, np.ndarray], y: np.ndarray, seed: int = 0, per_family: bool = True) -> dict:
    """How well the cue families [n, d_f] predict the groups y [n] (ints); see the module docstring.

    {'score', 'accuracy', 'majority', 'balanced_accuracy', 'chance', 'num_groups', 'num_images',
     'folds', 'families': {name: {'alone', 'importance'}}}; or {'score': None, 'reason': ...}.
    """
    # scikit-learn loads only when the probe runs
    import sklearn

    y = np.asarray(y)
    rows, reason = _select(y, seed)
    x, columns = _stack(cues, rows)
    if reason is None and not columns:
        reason = "no cue varies across the images"
    if reason is not None:
        return {"score": None, "reason": reason, "num_images": int(len(rows))}
    y = np.unique(y[rows], return_inverse=True)[1]
    k = int(y.max() + 1)
    folds = int(min(FOLDS, np.bincount(y).min()))
    with warnings.catch_warnings(), sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        warnings.simplefilter("ignore")  # convergence and "class not in y_pred" notes: the scores say it all
        oof, drops = _cross_validate(x, y, folds, seed, columns if per_family else None)
        bacc = float(balanced_accuracy(y, oof))
        out = {"score": normalised_score(bacc, k), "accuracy": float(np.mean(y == oof)),
               "balanced_accuracy": bacc, **chance_levels(y), "num_groups": k, "num_images": int(len(y)),
               "folds": folds, "families": {}}
        if per_family:
            for name, cols in columns.items():
                alone = balanced_accuracy(y, _cross_validate(x[:, cols], y, folds, seed)[0])
                out["families"][name] = {"alone": normalised_score(float(alone), k),
                                         "importance": drops[name] / (1.0 - 1.0 / k)}
    return out
