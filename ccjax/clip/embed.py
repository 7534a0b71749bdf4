"""The frozen CLIP anchor embeddings of MFAVBs-CC (Section 3.4), computed once per dataset and cached.

The CLIP image encoder never runs inside the train step. For a dataset it is
run once over every (un-augmented) example, jit-compiled and batched over the
mesh's 'data' axis, with CLIP's own preprocessing done on device (resize the
shorter side with bicubic, centre crop, CLIP mean/std); the embeddings
(`FlaxCLIPModel.get_image_features`, float32 [N, A]) are cached on disk and the
input pipeline gathers them by example index.

The cache's format is in ccjax/clip/cache.py, CLIP's loading and
preprocessing in ccjax/clip/clip.py.

The command line (`python -m ccjax.anchors`) is ccjax/cli/anchors.py.
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.clip.cache import cache_paths, expected_metadata, read_cache, write_cache
from ccjax.clip.clip import ClipPreprocess, clip_config_info, clip_preprocess, load_clip
from ccjax.data.dataset import ImageDataset
from ccjax.data.pipeline import map_batches
from ccjax.errors import UserError

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- embedding


def _mesh_or_default(mesh):
    if mesh is not None:
        return mesh
    from ccjax.runtime.mesh import make_mesh

    return make_mesh()


def _batch_size(config, mesh) -> int:
    n = mesh.devices.size * jax.process_count()
    want = max(1, int(getattr(config.anchor, "batch_size", 256)))
    return -(-want // n) * n  # a multiple of the devices (and processes)


@functools.lru_cache(maxsize=1)
def make_embed_fn(model, spec: ClipPreprocess):
    """jit(embed(params, images_u8 [B, H, W, C]) -> float32 [B, A]): CLIP preprocessing + image features."""

    def embed(params, images):
        x = clip_preprocess(images, spec)  # [B, 3, S, S]
        return model.get_image_features(pixel_values=x, params=params).astype(jnp.float32)  # [B, A]

    return jax.jit(embed)


def embed_dataset(config, dataset, mesh=None, clip=None, progress: bool = True) -> np.ndarray:
    """CLIP image features of every example of `dataset`, in order: float32 [N, A] (host).

    Batches are global arrays sharded over the mesh's 'data' axis (the shared
    inference loop, ccjax.data.pipeline.map_batches). `clip`: a LoadedClip
    (default: load config.anchor.model).
    """
    from ccjax.runtime.mesh import replicated

    mesh = _mesh_or_default(mesh)
    clip = load_clip(config.anchor.model) if clip is None else clip
    params = jax.device_put(clip.vision_params(), replicated(mesh))
    embed = make_embed_fn(clip.model, clip.spec)
    show = progress and bool(getattr(config, "progress_bar", True))
    out = map_batches(lambda b: embed(params, b["image"]), dataset, _batch_size(config, mesh), mesh,
                      desc="CLIP anchors", progress=show).astype(np.float32)  # [N, A]
    if out.shape[0] != dataset.num_examples:
        raise RuntimeError(f"embedded {out.shape[0]} examples, expected {dataset.num_examples}")
    if not np.isfinite(out).all():
        raise UserError(f"the CLIP model {config.anchor.model!r} produced non-finite embeddings")
    return out


def embed_images(config, images: np.ndarray, mesh=None) -> np.ndarray:
    """CLIP anchors of new images uint8 [n, H, W, C] (no cache): float32 [n, A]."""
    dataset = ImageDataset("images", np.asarray(images, np.uint8), None, None)
    return embed_dataset(config, dataset, mesh, progress=False)


def _all_processes_agree(ok: bool) -> bool:
    """True iff `ok` on every process (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray([int(ok)], np.int32))
    return bool(np.all(flags))


def load_or_build_anchors(config, dataset, mesh=None, *, rebuild: bool = False) -> np.ndarray:
    """The CLIP anchors of every example of `dataset`: float32 [N, A], from the cache or computed (and cached).

    A missing, unreadable or mismatched cache (count, dimension, model,
    dataset, preprocessing) is rebuilt, with a warning when a file was there.
    """
    npz_path, json_path = cache_paths(config, dataset)
    dim, spec = clip_config_info(config.anchor.model)
    expected = expected_metadata(config, dataset, spec)
    arr, why = (None, "rebuild requested") if rebuild else read_cache(npz_path, json_path, expected, dim)
    if _all_processes_agree(arr is not None):
        log.info("anchors: using the cache %s", npz_path)
        return arr
    if why not in ("missing", "rebuild requested"):
        log.warning("ccjax: the anchor cache %s does not match this run (%s); rebuilding it", npz_path, why)
    clip = load_clip(config.anchor.model)
    if spec is None:  # the config files were unavailable before loading; now they are
        expected = expected_metadata(config, dataset, clip.spec)
    anchors = embed_dataset(config, dataset, mesh, clip=clip)
    if jax.process_index() == 0:
        write_cache(npz_path, json_path, anchors, expected)
        print(f"ccjax: cached {anchors.shape[0]} CLIP anchors of dimension {anchors.shape[1]} in {npz_path}",
              flush=True)
    return anchors


def load_anchors(config, dataset, mesh=None):
    """The run's frozen-CLIP anchors [N, A] (from the cache, or computed and cached), or None when
    `config.anchor.enabled` is off. For method=temi, the frozen features it clusters (ccjax/features/)."""
    if config.get("method") == "temi":
        from ccjax.features import load_features

        return load_features(config, dataset, _mesh_or_default(mesh), progress=False)
    if not config.anchor.enabled:
        return None
    return load_or_build_anchors(config, dataset, mesh)
