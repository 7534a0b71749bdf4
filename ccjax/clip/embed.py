"""The frozen CLIP anchor embeddings of MFAVBs-CC (Section 3.4), computed once per dataset and cached.

The CLIP image encoder never runs inside the train step. For a dataset it is
run once over every (un-augmented) example, jit-compiled and batched over the
mesh's 'data' axis, with CLIP's own preprocessing done on device (resize the
shorter side with bicubic, centre crop, CLIP mean/std); the embeddings
(`FlaxCLIPModel.get_image_features`, float32 [N, A]) are cached on disk and the
input pipeline gathers them by example index.

The cache's format is in ccjax/clip/cache.py, CLIP's loading and
preprocessing in ccjax/clip/clip.py.

The command line (`python -m ccjax anchors`) is ccjax/cli/anchors.py.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.clip.cache import cache_paths, expected_metadata, load_or_build
from ccjax.clip.clip import ClipPreprocess, clip_config_info, clip_preprocess, load_clip
from ccjax.data.dataset import ImageDataset
from ccjax.data.pipeline import map_batches
from ccjax.errors import UserError
from ccjax.runtime.mesh import mesh_or_default, replicated

# ----------------------------------------------------------------------------- embedding


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
    mesh = mesh_or_default(mesh)
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


def load_or_build_anchors(config, dataset, mesh=None, *, rebuild: bool = False) -> np.ndarray:
    """The CLIP anchors of every example of `dataset`: float32 [N, A], from the cache or computed (and cached).

    A missing, unreadable or mismatched cache (count, dimension, model,
    dataset, preprocessing) is rebuilt, with a warning when a file was there.
    """
    npz_path, json_path = cache_paths(config, dataset)
    dim, spec = clip_config_info(config.anchor.model)
    expected = expected_metadata(config, dataset, spec)

    def build():
        clip = load_clip(config.anchor.model)
        # without the config files before loading, the preprocessing is known only now
        meta = expected if spec is not None else expected_metadata(config, dataset, clip.spec)
        return embed_dataset(config, dataset, mesh, clip=clip), meta

    return load_or_build(npz_path, json_path, expected, dim, build, rebuild=rebuild, what="anchor",
                         done=lambda a: f"cached {a.shape[0]} CLIP anchors of dimension {a.shape[1]}")


def load_anchors(config, dataset, mesh=None):
    """The run's frozen-CLIP anchors [N, A] (from the cache, or computed and cached), or None when
    `config.anchor.enabled` is off."""
    if not config.anchor.enabled:
        return None
    return load_or_build_anchors(config, dataset, mesh)
