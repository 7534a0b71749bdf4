"""Frozen encoders that turn images into the features TEMI (or k-means) clusters.

`features.source` names one:
- `clip:<model>`   FlaxCLIPModel.get_image_features (the anchor's encoder, ccjax/clip/);
- `dinov2:<model>` FlaxDinov2Model's pooled CLS token (layer-normed), transformers 4.x;
- `run:<workdir>`  a finished ccjax run's backbone features `h` (its last checkpoint, its own eval
                   preprocessing, and its CLIP anchor when it has one).
<model> is a hub name (e.g. openai/clip-vit-base-patch32, facebook/dinov2-small) or a local directory
saved with save_pretrained. Preprocessing (resize the shorter side, centre crop, normalise) runs on
device, read from the model's image processor (CLIPImageProcessor / BitImageProcessor).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.clip.clip import clip_preprocess, load_clip, model_fingerprint, preprocess_from_processor
from ccjax.clip.embed import embed_images, load_anchors, make_embed_fn
from ccjax.data.pipeline import map_batches
from ccjax.errors import UserError
from ccjax.methods.temi import parse_source
from ccjax.run.load import load_trained, model_outputs
from ccjax.run.rundir import CHECKPOINTS_DIR, CONFIG_FILE, load_run_config
from ccjax.runtime.mesh import replicated


@dataclasses.dataclass(frozen=True, eq=False)
class Encoder:
    """A frozen encoder: `embed(dataset, mesh, batch_size, progress) -> float32 [N, D]` and what identifies it."""

    source: str
    fingerprint: str
    embed: Callable[..., np.ndarray]
    preprocess: dict | None = None


def load_encoder(source: str) -> Encoder:
    """The encoder `features.source` names, loaded (weights or checkpoint read once)."""
    kind, name = parse_source(source)
    if kind == "clip":
        return _clip_encoder(source, name)
    if kind == "dinov2":
        return _dinov2_encoder(source, name)
    return _run_encoder(source, name)


def _image_fn_encoder(source: str, fingerprint: str, fn, params, spec) -> Encoder:
    """An encoder from a jitted fn(params, images_u8 [B, H, W, C]) -> [B, D]."""
    def embed(dataset, mesh, batch_size: int, progress: bool = False, new_images: bool = False) -> np.ndarray:
        del new_images  # an image encoder needs nothing else
        p = jax.device_put(params, replicated(mesh))
        return map_batches(lambda b: fn(p, b["image"]), dataset, batch_size, mesh, desc="features",
                           progress=progress).astype(np.float32)

    return Encoder(source, fingerprint, embed, spec.as_dict())


def _clip_encoder(source: str, name: str) -> Encoder:
    clip = load_clip(name)
    return _image_fn_encoder(source, source_fingerprint(source), make_embed_fn(clip.model, clip.spec),
                             clip.vision_params(), clip.spec)


def _dinov2_encoder(source: str, name: str) -> Encoder:
    model, params, processor = _load_dinov2(name)
    spec = preprocess_from_processor(processor, int(model.config.image_size))
    return _image_fn_encoder(source, source_fingerprint(source), _dinov2_embed_fn(model, spec), params, spec)


@functools.lru_cache(maxsize=2)
def _dinov2_embed_fn(model, spec):
    def embed(params, images):
        x = clip_preprocess(images, spec)  # [B, 3, S, S]: same resize / crop / normalise steps, DINOv2's values
        return model(x, params=params).pooler_output.astype(jnp.float32)  # [B, D]

    return jax.jit(embed)


def _load_dinov2(name: str):
    try:  # transformers imported when a DINOv2 model is loaded: the commands start without it
        from transformers import AutoImageProcessor, FlaxDinov2Model
    except ImportError:
        raise UserError("dinov2 features need transformers 4.x's FlaxDinov2Model; install it with "
                        "pip install 'transformers>=4.57.6,<5'") from None
    path = os.path.expanduser(name)
    source = path if os.path.isdir(path) else name
    try:
        model, params = FlaxDinov2Model.from_pretrained(source, _do_init=False)
    except Exception as first:  # noqa: BLE001 - PyTorch/safetensors weights only: convert
        try:
            model, params = FlaxDinov2Model.from_pretrained(source, from_pt=True, _do_init=False)
        except Exception:  # noqa: BLE001
            why = (str(first).strip().splitlines() or [type(first).__name__])[0][:200]
            raise UserError(f"could not load the DINOv2 model {name!r} ({why}); download it once with "
                            f"`huggingface-cli download {name}` or set features.source=dinov2:<local directory>"
                            ) from None
    try:
        processor = AutoImageProcessor.from_pretrained(source)
    except Exception:  # noqa: BLE001 - no preprocessor_config.json: CLIP-style defaults at the model's size
        processor = None
    return model, params, processor


def make_tiny_dinov2(path: str, *, image_size: int = 28, seed: int = 0) -> str:
    """Saves a tiny random FlaxDinov2Model and its image processor to `path` (tests, demos): no semantics."""
    # transformers imported when a tiny model is made: the commands start without it
    from transformers import BitImageProcessor, Dinov2Config, FlaxDinov2Model

    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          image_size=image_size, patch_size=7)
    model = FlaxDinov2Model(config, _do_init=False)
    params = jax.jit(lambda k: model.init_weights(k, (1, image_size, image_size, 3)))(
        jax.random.key(seed, impl="rbg"))
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path, params=params)
    BitImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(path)
    return path


def _run_encoder(source: str, workdir: str) -> Encoder:
    if not os.path.isdir(workdir):
        raise UserError(f"features.source={source!r}: {workdir!r} is not a run directory; train it first")
    trained = load_trained(workdir)
    if trained.config.method == "temi":
        raise UserError(f"{workdir!r} is itself a TEMI run; point features.source=run: at the run it clustered")
    restored = trained.restore_latest()
    cfg = trained.config

    def embed(dataset, mesh, batch_size: int, progress: bool = False, new_images: bool = False) -> np.ndarray:
        if new_images:  # predict: the new images' CLIP anchors are computed, not cached
            anchors = embed_images(cfg, dataset.read(np.arange(dataset.num_examples))["image"], mesh) \
                if cfg.anchor.enabled else None
        else:
            anchors = load_anchors(cfg, dataset, mesh)
        cfg.unlock()
        cfg.eval.batch_size = batch_size
        return model_outputs(trained.module, restored.variables, cfg, dataset, mesh, anchors, "h", progress)

    return Encoder(source, source_fingerprint(source), embed, None)


def source_fingerprint(source: str) -> str:
    """What identifies the encoder's weights, read without loading them: a hub name; a local model's
    config and weight files (sizes, times); a run's config.json and its checkpoint steps."""
    kind, name = parse_source(source)
    if kind != "run":
        return f"{kind}:{model_fingerprint(name)}"
    h = hashlib.sha256()
    try:
        with open(os.path.join(name, CONFIG_FILE), "rb") as f:
            h.update(f.read())
        h.update(repr(sorted(os.listdir(os.path.join(name, CHECKPOINTS_DIR)))).encode())
    except OSError:
        raise UserError(f"features.source={source!r}: {name!r} holds no finished ccjax run (config.json and "
                        "checkpoints/); train it first") from None
    return f"run:{os.path.abspath(name)}:{h.hexdigest()[:16]}"


def run_dataset_config(source: str) -> Any | None:
    """For `run:<workdir>`, that run's dataset config (the data its backbone embeds); else None."""
    kind, name = parse_source(source)
    if kind != "run":
        return None
    return load_run_config(name).dataset
