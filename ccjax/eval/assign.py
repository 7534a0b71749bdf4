"""Cluster assignment of a whole dataset with a trained model.

Evaluation uses the un-augmented images (resized and normalised as view 1's
pipeline does) and the argmax of the cluster head, as the papers do; the ViT
feeds the single view to both branches.
"""

from __future__ import annotations

import jax
import numpy as np

from ccjax.augment import preprocess_eval
from ccjax.augment import view_augment_config
from ccjax.data.pipeline import map_batches
from ccjax.eval.metrics import clustering_metrics, label_free_diagnostics


def make_predict_fn(module, config, output: str = "c"):
    """jit(predict(variables, images_u8, anchors) -> the model's `output` for view 1's eval preprocessing:
    'c' cluster probabilities [B, K], 'z' instance features [B, D], 'h' backbone features [B, F])."""
    view_cfg = view_augment_config(config, 1)

    def predict(variables, images, anchors):
        x = preprocess_eval(images, view_cfg)  # [B, S, S, C]
        return module.apply(variables, [x], anchors, train=False)[0][output]

    return jax.jit(predict)


def model_outputs(module, variables: dict, config, dataset, mesh, anchors=None, output: str = "c",
                  progress: bool = False) -> np.ndarray:
    """One model output ('c', 'z' or 'h', see make_predict_fn) for every example, in dataset order:
    float32 host array [N, ...]. `variables` = {'params': ..., 'batch_stats': ...} of `module`."""
    predict = make_predict_fn(module, config, output)
    out = map_batches(lambda b: predict(variables, b["image"], b.get("anchor")), dataset,
                      config.eval.batch_size, mesh, anchors, desc="assign", progress=progress)
    return out.astype(np.float32)


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

