"""Frozen features of a dataset, computed once and cached: what TEMI and the k-means baseline cluster.

- encoders.py: the frozen encoders `features.source` names (clip:, dinov2:, run:);
- knn.py: exact, sharded, blockwise k nearest neighbours;
- kmeans.py: the scikit-learn k-means baseline;
- here: the features cache (`load_features`), new images' features (`embed_new_images`), and what a
  trained run's model takes beside the images (`run_inputs`, `new_image_inputs`: TEMI's features for
  method=temi, else the CLIP anchors), which evaluation, --suggest_k and predict call.

The `features` fields of the config are ccjax/methods/temi/__init__.py's `features_config`.

The cache is the anchor cache's format and flow (ccjax/clip/cache.py's `load_or_build`: an npz plus a JSON sidecar,
both atomic, validated on read, rebuilt with a warning when they do not match):
`<features.cache_dir | dataset.data_dir | ~/.cache/ccjax>/features/<dataset>/<source>__<H>x<W>x<C>.npz`.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from ccjax.clip.cache import DEFAULT_CACHE_ROOT, dataset_fingerprint, dataset_key, load_or_build, sanitise
from ccjax.clip.embed import embed_images, load_anchors
from ccjax.data.dataset import ImageDataset
from ccjax.errors import UserError
from ccjax.features.encoders import load_encoder, source_fingerprint
from ccjax.runtime.mesh import mesh_or_default

FEATURES_CACHE_VERSION = 1


def cache_paths(config, dataset) -> tuple[str, str]:
    """(npz, JSON sidecar) of the features cache for this config's source and dataset."""
    root = config.features.cache_dir or getattr(config.dataset, "data_dir", None) or DEFAULT_CACHE_ROOT
    root = os.path.abspath(os.path.expanduser(root))
    kind, _, name = str(config.features.source).partition(":")
    if kind == "run" or os.path.isdir(os.path.expanduser(name)):
        name = os.path.abspath(os.path.expanduser(name))
    h, w, c = dataset.image_shape
    folder = os.path.join(root, "features", sanitise(dataset_key(config, dataset)))
    stem = f"{sanitise(kind + ':' + name)}__{h}x{w}x{c}"
    return os.path.join(folder, stem + ".npz"), os.path.join(folder, stem + ".json")


def _batch_size(config, mesh) -> int:
    n = mesh.devices.size * jax.process_count()
    return -(-int(config.features.batch_size) // n) * n


def load_features(config, dataset, mesh, *, rebuild: bool = False, progress: bool = True) -> np.ndarray:
    """Features of every example of `dataset` in order: float32 [N, D], from the cache or computed and cached."""
    npz_path, json_path = cache_paths(config, dataset)
    expected = {
        "version": FEATURES_CACHE_VERSION,
        "dataset": dataset_key(config, dataset),
        "source": config.features.source,
        "source_fingerprint": source_fingerprint(config.features.source),
        "count": int(dataset.num_examples),
        "image_shape": [int(d) for d in dataset.image_shape],
        "dataset_fingerprint": dataset_fingerprint(dataset),
    }

    def build():
        feats = load_encoder(config.features.source).embed(dataset, mesh, _batch_size(config, mesh), progress=progress)
        _check(feats, dataset.num_examples, config.features.source)
        return feats, expected

    return load_or_build(npz_path, json_path, expected, None, build, rebuild=rebuild, what="features",
                         done=lambda f: f"cached {f.shape[0]} features of dimension {f.shape[1]} from "
                                        f"{config.features.source}")


def embed_new_images(config, images: np.ndarray, mesh) -> np.ndarray:
    """Features of new images uint8 [n, H, W, C] with the run's encoder (no cache): float32 [n, D]."""
    dataset = ImageDataset("images", np.asarray(images, np.uint8), None, None)
    feats = load_encoder(config.features.source).embed(dataset, mesh, _batch_size(config, mesh), new_images=True)
    _check(feats, len(images), config.features.source)
    return feats


def _check(feats: np.ndarray, n: int, source: str) -> None:
    if feats.ndim != 2 or feats.shape[0] != n:
        raise RuntimeError(f"embedded {feats.shape} features, expected {n} rows")
    if not np.isfinite(feats).all():
        raise UserError(f"the encoder {source!r} produced non-finite features; check the model")


def run_inputs(config, dataset, mesh=None):
    """What a trained run's model takes beside the images, for every example of `dataset`: the frozen
    features [N, D] for method=temi (from the cache), else the CLIP anchors [N, A] (None without)."""
    if config.get("method") == "temi":
        return load_features(config, dataset, mesh_or_default(mesh), progress=False)
    return load_anchors(config, dataset, mesh)


def new_image_inputs(config, images: np.ndarray, mesh=None):
    """`run_inputs` for new images uint8 [n, H, W, C] (predict): computed, not cached; None without."""
    if config.get("method") == "temi":  # the run's own frozen encoder
        return embed_new_images(config, images, mesh_or_default(mesh))
    if config.anchor.enabled:
        return embed_images(config, images, mesh)
    return None
