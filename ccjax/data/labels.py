"""A dataset's labels, read once for scoring, the report and the probes."""

from __future__ import annotations

import numpy as np


def dataset_labels(dataset) -> np.ndarray | None:
    """All labels in dataset order, or None for unlabeled data."""
    if dataset.num_classes is None:
        return None
    labels = getattr(dataset, "labels", None)
    if labels is None:  # read in chunks: never a second copy of all images
        idx = np.arange(dataset.num_examples)
        labels = np.concatenate([dataset.read(c)["label"] for c in np.array_split(idx, max(1, len(idx) // 4096))])
    return np.asarray(labels, np.int64)
