"""Cluster assignment of a whole dataset with a trained model.

Evaluation uses the un-augmented images (resized and normalised as view 1's
pipeline does) and the argmax of the cluster head, as the papers do; the ViT
feeds the single view to both branches.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from ccjax.augment import preprocess_eval
from ccjax.config_base import view_augment_config
from ccjax.input_pipeline import EvalBatches
from ccjax.metrics import clustering_metrics, label_free_diagnostics


def make_predict_fn(model, config):
    """jit(predict(params, model_state, images_u8, anchors) -> cluster probabilities [B, K])."""
    view_cfg = view_augment_config(config, 1)

    def predict(params, model_state, images, anchors):
        x = preprocess_eval(images, view_cfg)  # [B, S, S, C]
        out = model.apply({"params": params, **model_state}, [x], anchors, train=False)[0]
        return out["c"]

    return jax.jit(predict)


def assign_clusters(state, model, config, dataset, mesh, anchors=None, progress: bool = True) -> np.ndarray:
    """Cluster probabilities [N, K] (float32, host) for every example, in dataset order."""
    predict = make_predict_fn(model, config)
    batches = EvalBatches(dataset, config.eval.batch_size, mesh, anchors)
    probs, valid = [], []
    show = progress and jax.process_index() == 0
    for b in tqdm(batches, total=len(batches), desc="assign", disable=not show, leave=False):
        c = predict(state.params, state.model_state, b["image"], b.get("anchor"))
        probs.append(multihost_utils.process_allgather(c, tiled=True))
        valid.append(multihost_utils.process_allgather(b["valid"], tiled=True))
    p = np.concatenate(probs)[np.concatenate(valid)]
    return p.astype(np.float32)


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


def dataset_labels(dataset) -> np.ndarray | None:
    """All labels in dataset order, or None for unlabeled data."""
    if dataset.num_classes is None:
        return None
    labels = getattr(dataset, "labels", None)
    if labels is None:  # read in chunks: never a second copy of all images
        idx = np.arange(dataset.num_examples)
        labels = np.concatenate([dataset.read(c)["label"] for c in np.array_split(idx, max(1, len(idx) // 4096))])
    return np.asarray(labels, np.int64)
