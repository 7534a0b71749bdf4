"""Cluster assignment of a whole dataset with a trained model.

Evaluation uses the un-augmented images (resized and normalised as view 1's
pipeline does: ccjax/run/load.py's model_outputs) and the argmax of the cluster
head, as the papers do; the ViT feeds the single view to both branches.
"""

from __future__ import annotations

import numpy as np

from ccjax.eval.metrics import clustering_metrics, label_free_diagnostics
from ccjax.run.load import model_outputs


def assign_clusters(module, variables: dict, config, dataset, mesh, anchors=None, progress: bool = True) -> np.ndarray:
    """Cluster probabilities [N, K] (float32, host) for every example, in dataset order."""
    return model_outputs(module, variables, config, dataset, mesh, anchors, "c", progress)


def evaluate_assignments(probs: np.ndarray, labels: np.ndarray | None) -> dict:
    """ACC/NMI/ARI against the labels where known, else label-free diagnostics."""
    pred = probs.argmax(axis=1)
    out = {"num_examples": int(len(pred)), "num_clusters": int(probs.shape[1])}
    out.update(label_free_diagnostics(probs))
    if labels is not None and (labels >= 0).any():
        known = labels >= 0  # e.g. STL-10 with its unlabelled images (label -1) added
        out.update(clustering_metrics(labels[known], pred[known]))
        out["num_labelled"] = int(known.sum())
    return out

