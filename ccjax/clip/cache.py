"""The anchor cache on disk: where it lives, what identifies it, reading and writing it.

Cache: `<anchor.cache_dir | dataset.data_dir | ~/.cache/ccjax>/anchors/<dataset>/<model>__<H>x<W>x<C>.npz`
plus a JSON sidecar (count, dim, model, model and dataset fingerprints,
preprocessing, the npz's sha256), both written atomically. A cache that is
unreadable or does not match (count, dimension, model, dataset, preprocessing)
is rebuilt with a warning, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from typing import Callable

import numpy as np

from ccjax.clip.clip import ClipPreprocess, _looks_like_path, model_fingerprint
from ccjax.data.masking import mask_noise_of
from ccjax.run.rundir import write_atomic
from ccjax.runtime.distributed import all_processes_agree, is_main_process

log = logging.getLogger(__name__)

CACHE_VERSION = 1
DEFAULT_CACHE_ROOT = "~/.cache/ccjax"
FINGERPRINT_SAMPLES = 64  # images hashed (evenly spaced) to fingerprint a dataset


# ----------------------------------------------------------------------------- the cache


def sanitise(text: str) -> str:
    """A file-name-safe form of `text` (a short hash is appended when characters were replaced)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "x"
    if clean != text:
        clean = f"{clean[-60:]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return clean


def dataset_key(config, dataset) -> str:
    """The dataset name plus its split set (STL-10's unlabelled split when used) and its mask noise."""
    name = getattr(config.dataset, "name", None) or getattr(dataset, "name", "dataset")
    if getattr(config.dataset, "use_unlabeled", False):
        name += "+unlabelled"
    noise = mask_noise_of(config.dataset)
    if noise is not None:  # the masked-noise images (ccjax/data/masking.py) have their own anchors
        name += "+" + noise.describe()
    return name


def cache_paths(config, dataset) -> tuple[str, str]:
    """(npz path, JSON sidecar path) of the anchor cache for this config and dataset."""
    root = (getattr(config.anchor, "cache_dir", None) or getattr(config.dataset, "data_dir", None)
            or DEFAULT_CACHE_ROOT)
    root = os.path.abspath(os.path.expanduser(root))
    h, w, c = dataset.image_shape
    model = config.anchor.model
    model_name = os.path.abspath(os.path.expanduser(model)) if _looks_like_path(model) else model
    stem = f"{sanitise(model_name)}__{h}x{w}x{c}"
    folder = os.path.join(root, "anchors", sanitise(dataset_key(config, dataset)))
    return os.path.join(folder, stem + ".npz"), os.path.join(folder, stem + ".json")


def dataset_fingerprint(dataset) -> str:
    """sha256 of the example count, image shape and up to 64 evenly spaced images."""
    n = dataset.num_examples
    h = hashlib.sha256(f"{n}:{tuple(dataset.image_shape)}".encode())
    idx = np.unique(np.linspace(0, n - 1, min(n, FINGERPRINT_SAMPLES)).astype(np.int64))
    h.update(np.ascontiguousarray(dataset.read(idx)["image"]).tobytes())
    return h.hexdigest()


def expected_metadata(config, dataset, spec: ClipPreprocess | None) -> dict:
    """What a valid cache's sidecar must say (dim is checked separately)."""
    meta = {
        "version": CACHE_VERSION,
        "dataset": dataset_key(config, dataset),
        "model": config.anchor.model,
        "model_fingerprint": model_fingerprint(config.anchor.model),
        "count": int(dataset.num_examples),
        "image_shape": [int(d) for d in dataset.image_shape],
        "dataset_fingerprint": dataset_fingerprint(dataset),
    }
    if spec is not None:
        meta["preprocess"] = spec.as_dict()
    return meta


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def read_cache(npz_path: str, json_path: str, expected: dict, dim: int | None) -> tuple[np.ndarray | None, str]:
    """(anchors float32 [N, A], '') when the cache is valid for `expected`, else (None, why not)."""
    if not os.path.exists(npz_path) and not os.path.exists(json_path):
        return None, "missing"
    try:
        with open(json_path) as f:
            meta = json.load(f)
        if not isinstance(meta, dict):
            return None, "sidecar is not a JSON object"
    except (OSError, ValueError) as e:
        return None, f"unreadable sidecar ({type(e).__name__})"
    for key, want in expected.items():
        if meta.get(key) != want:
            return None, f"{key} {meta.get(key)!r} != {want!r}"
    if dim is not None and meta.get("dim") != dim:
        return None, f"dim {meta.get('dim')!r} != {dim}"
    try:
        if meta.get("sha256") != _file_sha256(npz_path):
            return None, "npz checksum mismatch"
        with np.load(npz_path, allow_pickle=False) as z:
            arr = np.asarray(z["anchors"])
    except Exception as e:  # noqa: BLE001 - any unreadable file is rebuilt
        return None, f"unreadable npz ({type(e).__name__})"
    if arr.dtype != np.float32 or arr.ndim != 2 or arr.shape != (expected["count"], meta.get("dim")):
        return None, f"array {arr.dtype} {arr.shape} != float32 ({expected['count']}, {meta.get('dim')})"
    if not np.isfinite(arr).all():
        return None, "non-finite values"
    return arr, ""


def write_cache(npz_path: str, json_path: str, anchors: np.ndarray, metadata: dict) -> None:
    """Writes the npz, then the sidecar (with the npz's sha256 and dim), each atomically."""
    anchors = np.ascontiguousarray(anchors, np.float32)
    write_atomic(npz_path, lambda f: np.savez(f, anchors=anchors))
    meta = dict(metadata, dim=int(anchors.shape[1]), sha256=_file_sha256(npz_path))
    write_atomic(json_path, lambda f: f.write(json.dumps(meta, indent=2, sort_keys=True).encode()))


def load_or_build(npz_path: str, json_path: str, expected: dict, dim: int | None,
                  build: Callable[[], tuple[np.ndarray, dict]], *, rebuild: bool, what: str,
                  done: Callable[[np.ndarray], str]) -> np.ndarray:
    """The cached float32 [N, D] array when the cache is valid for `expected` on every process, else
    `build()` -> (array, its metadata), written by the main process and returned.

    The one flow of the CLIP anchors (ccjax/clip/embed.py) and TEMI's frozen features (ccjax/features/):
    a mismatched or unreadable cache is rebuilt with a warning naming why; a missing one silently.
    `what` names the cache in messages ("anchor", "features"); `done(array)` is the line printed after writing.
    """
    arr, why = (None, "rebuild requested") if rebuild else read_cache(npz_path, json_path, expected, dim)
    if all_processes_agree(arr is not None):
        log.info("%s: using the cache %s", what, npz_path)
        return arr
    if why not in ("missing", "rebuild requested"):
        log.warning("ccjax: the %s cache %s does not match this run (%s); rebuilding it", what, npz_path, why)
    arr, metadata = build()
    if is_main_process():
        write_cache(npz_path, json_path, arr, metadata)
        print(f"ccjax: {done(arr)} in {npz_path}", flush=True)
    return arr
