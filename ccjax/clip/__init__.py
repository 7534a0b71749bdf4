"""MFAVBs-CC's frozen CLIP anchor (Section 3.4): one embedding per image, computed once and cached.

- clip.py: CLIP's preprocessing on device, loading a model, a tiny random CLIP for tests and demos;
- cache.py: the on-disk cache (paths, fingerprints, validation, atomic writes) and `load_or_build`, the one
  cache-or-compute flow of the anchors and of TEMI's frozen features (ccjax/features/);
- embed.py: embedding a dataset or new images, and `load_anchors` / `load_or_build_anchors` (cache or compute).

The anchor token itself enters the model in ccjax/models/vit.py.
"""

from ccjax.clip.cache import cache_paths, dataset_key, read_cache, write_cache
from ccjax.clip.clip import TINY_CLIP_DIR, ClipPreprocess, clip_preprocess, load_clip, make_tiny_clip
from ccjax.clip.embed import embed_dataset, embed_images, load_anchors, load_or_build_anchors

__all__ = [
    "TINY_CLIP_DIR", "ClipPreprocess", "cache_paths", "clip_preprocess", "dataset_key", "embed_dataset",
    "embed_images", "load_anchors", "load_clip", "load_or_build_anchors", "make_tiny_clip", "read_cache", "write_cache",
]
