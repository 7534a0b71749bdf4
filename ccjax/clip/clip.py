"""CLIP for MFAVBs-CC's anchor (Section 3.4): its image preprocessing on device, loading a model
(hub name or local directory, `from_pretrained`), and a tiny random CLIP for tests and the digits demo.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from typing import Any

import jax
import jax.numpy as jnp

from ccjax.errors import UserError

# CLIP's preprocessing constants (CLIPImageProcessor defaults, OpenAI's values).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_RESAMPLE = {3: "bicubic", 2: "linear"}  # PIL resample codes this module reproduces
# The digits demo's tiny random CLIP: made here on first use (make_tiny_clip), no download.
TINY_CLIP_DIR = "~/.cache/ccjax/tiny_random_clip"


# ----------------------------------------------------------------------------- preprocessing


@dataclasses.dataclass(frozen=True)
class ClipPreprocess:
    """CLIPImageProcessor's settings: shorter side -> `shortest_edge`, centre crop, normalise."""

    shortest_edge: int = 224
    crop_height: int = 224
    crop_width: int = 224
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD
    resample: int = 3  # PIL code: 3 bicubic, 2 bilinear

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def preprocess_from_processor(processor, default_size: int) -> ClipPreprocess:
    """A ClipPreprocess from a CLIPImageProcessor (or defaults sized `default_size` when None)."""
    if processor is None:
        return ClipPreprocess(default_size, default_size, default_size)
    size = processor.size if processor.do_resize else {"shortest_edge": default_size}
    if "shortest_edge" not in size:
        raise UserError(f"the CLIP image processor resizes to {size}; ccjax supports shortest_edge resizing only")
    crop = processor.crop_size if processor.do_center_crop else {"height": size["shortest_edge"],
                                                                 "width": size["shortest_edge"]}
    resample = int(processor.resample)
    if resample not in _RESAMPLE:
        raise UserError(f"the CLIP image processor uses PIL resample {resample}; ccjax supports bicubic (3) and bilinear (2)")
    mean = tuple(float(m) for m in processor.image_mean) if processor.do_normalize else (0.0, 0.0, 0.0)
    std = tuple(float(s) for s in processor.image_std) if processor.do_normalize else (1.0, 1.0, 1.0)
    if crop["height"] > size["shortest_edge"] or crop["width"] > size["shortest_edge"]:
        raise UserError(f"the CLIP image processor crops {crop} from a shorter side of {size['shortest_edge']}")
    return ClipPreprocess(int(size["shortest_edge"]), int(crop["height"]), int(crop["width"]), mean, std, resample)


def resized_shape(height: int, width: int, shortest_edge: int) -> tuple[int, int]:
    """transformers' get_resize_output_image_size(default_to_square=False): (new_h, new_w)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = shortest_edge, int(shortest_edge * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _resize_axis_u8(x: jax.Array, axis: int, size: int, method: str) -> jax.Array:
    """One resampling pass of float [B, H, W, C] along `axis`, rounded to uint8 levels as PIL stores it."""
    if x.shape[axis] == size:
        return x
    shape = list(x.shape)
    shape[axis] = size
    y = jax.image.resize(x, tuple(shape), method=method, antialias=True)
    return jnp.clip(jnp.floor(y + 0.5), 0.0, 255.0)


def clip_preprocess(images: jax.Array, spec: ClipPreprocess) -> jax.Array:
    """CLIPImageProcessor on device: uint8 [B, H, W, C] (C = 1 or 3) -> float32 [B, 3, crop_h, crop_w] (NCHW).

    Resizes like PIL (horizontal pass, then vertical, each rounded to uint8;
    Keys cubic a = -0.5 with antialiasing when shrinking), centre-crops with
    transformers' offsets, rescales by 1/255 and normalises with CLIP's mean/std.
    """
    if images.shape[-1] == 1:
        images = jnp.repeat(images, 3, axis=-1)  # grayscale -> RGB (PIL's convert('RGB'))
    if images.shape[-1] != 3:
        raise UserError(f"CLIP needs 1- or 3-channel images, got {images.shape[-1]} channels")
    b, h, w, _ = images.shape
    new_h, new_w = resized_shape(h, w, spec.shortest_edge)
    method = _RESAMPLE[spec.resample]
    x = images.astype(jnp.float32)  # [B, H, W, 3] in 0..255
    x = _resize_axis_u8(x, 2, new_w, method)  # [B, H, new_w, 3]
    x = _resize_axis_u8(x, 1, new_h, method)  # [B, new_h, new_w, 3]
    top, left = (new_h - spec.crop_height) // 2, (new_w - spec.crop_width) // 2
    x = x[:, top:top + spec.crop_height, left:left + spec.crop_width]  # [B, ch, cw, 3]
    x = (x / 255.0 - jnp.asarray(spec.mean, jnp.float32)) / jnp.asarray(spec.std, jnp.float32)
    return jnp.transpose(x, (0, 3, 1, 2))  # [B, 3, ch, cw]


# ----------------------------------------------------------------------------- the CLIP model


# transformers 4.x is the last series with Flax models: 5.0 removed FlaxCLIPModel.
TRANSFORMERS_FOR_CLIP = "transformers>=4.57.6,<5"


def flax_clip_classes():
    """transformers' (FlaxCLIPModel, CLIPConfig, CLIPImageProcessor), or one UserError naming what to install.

    The CLIP anchor runs transformers 4.x's Flax CLIP; transformers 5 removed the
    Flax models, and a base install of ccjax does not bring transformers at all.
    """
    try:
        # transformers (ccjax[clip], optional) loads only for a run with the CLIP anchor
        import transformers
    except ImportError:
        installed = None
    else:
        installed = transformers.__version__
        try:
            from transformers import CLIPConfig, CLIPImageProcessor, FlaxCLIPModel
        except ImportError:
            pass
        else:
            return FlaxCLIPModel, CLIPConfig, CLIPImageProcessor
    found = ("transformers is not installed" if installed is None else
             f"transformers {installed} is installed, which has no Flax models (transformers 5 removed them)")
    raise UserError(f"the CLIP anchor needs transformers 4.x's FlaxCLIPModel, but {found}; install it with "
                    f"pip install '{TRANSFORMERS_FOR_CLIP}' (or pip install 'ccjax[clip]'), "
                    "or run without the anchor: --config.anchor.enabled=False")


def _looks_like_path(name: str) -> bool:
    """A local path rather than a hub name ('org/name')."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or os.path.isdir(os.path.expanduser(name))


def _load_error(name: str, err: Exception) -> UserError:
    why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return UserError(
        f"could not load the CLIP model {name!r} ({why[:200]}); download it once with "
        f"`huggingface-cli download {name}` (with network access) or set --config.anchor.model to a "
        "local directory holding a saved CLIP model"
    )


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedClip:
    """A CLIP model (loaded without random initialisation), its parameters and its preprocessing."""

    model: Any  # FlaxCLIPModel (module + config; weights in `params`)
    params: Any
    spec: ClipPreprocess

    def vision_params(self) -> dict:
        """The parameters get_image_features touches (the text tower is never run)."""
        return {k: v for k, v in self.params.items() if k in ("vision_model", "visual_projection", "logit_scale")}


def load_clip(name: str) -> LoadedClip:
    """The CLIP model `name`, a hub name or a local directory (from_pretrained either way).

    Falls back to from_pt=True for repositories with PyTorch/safetensors weights only.
    The last model loaded is kept for reuse (and its compiled embedding function with it).
    """
    return _load_clip_cached(name, model_fingerprint(name))


@functools.lru_cache(maxsize=1)
def _load_clip_cached(name: str, fingerprint: str) -> LoadedClip:
    del fingerprint  # part of the cache key only: a re-saved local model is reloaded
    FlaxCLIPModel, _, CLIPImageProcessor = flax_clip_classes()

    path = os.path.expanduser(name)
    if name == TINY_CLIP_DIR and not os.path.isdir(path):
        make_tiny_clip(path)
    if _looks_like_path(name) and not os.path.isdir(path):
        raise UserError(f"anchor.model {name!r} is not a directory; set --config.anchor.model to a hub name "
                        "or a local CLIP directory (python -m ccjax anchors --make_tiny_clip=<dir> makes a tiny one)")
    source = path if os.path.isdir(path) else name
    try:
        model, params = FlaxCLIPModel.from_pretrained(source, _do_init=False)
    except Exception as first:  # noqa: BLE001 - any failure means "not loadable as Flax weights"
        try:
            model, params = FlaxCLIPModel.from_pretrained(source, from_pt=True, _do_init=False)
        except Exception:  # noqa: BLE001
            raise _load_error(name, first) from first
    try:
        processor = CLIPImageProcessor.from_pretrained(source)
    except Exception:  # noqa: BLE001 - no preprocessor_config.json: CLIP's defaults at the model's size
        processor = None
    spec = preprocess_from_processor(processor, int(model.config.vision_config.image_size))
    return LoadedClip(model, params, spec)


def make_tiny_clip(path: str, *, image_size: int = 32, projection_dim: int = 32, seed: int = 0) -> str:
    """Saves a tiny, randomly initialised CLIP (Flax weights + image processor) to `path`; returns it.

    A plumbing stand-in for tests and the digits demo: its embeddings carry no
    semantics, unlike the paper's pretrained openai/clip-vit-base-patch32.
    """
    FlaxCLIPModel, CLIPConfig, CLIPImageProcessor = flax_clip_classes()
    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=99, max_position_embeddings=16),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=max(2, image_size // 4)),
        projection_dim=projection_dim,
    )
    os.makedirs(path, exist_ok=True)
    model = FlaxCLIPModel(config, _do_init=False)
    # An RBG key: its random init compiles in seconds on CPU, unlike threefry's.
    params = jax.jit(lambda k: model.init_weights(k, model.input_shape))(jax.random.key(seed, impl="rbg"))
    model.save_pretrained(path, params=params)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(path)
    return path


def model_fingerprint(name: str) -> str:
    """Identifies the weights: the hub name, or for a local directory its config and weight files' sizes/times."""
    path = os.path.expanduser(name)
    if not os.path.isdir(path):
        return f"hub:{name}"
    h = hashlib.sha256()
    for fname in sorted(os.listdir(path)):
        full = os.path.join(path, fname)
        if fname.endswith(".json"):
            with open(full, "rb") as f:
                h.update(fname.encode() + f.read())
        elif fname.endswith((".msgpack", ".safetensors", ".bin", ".h5")):
            st = os.stat(full)
            h.update(f"{fname}:{st.st_size}:{st.st_mtime_ns}".encode())
    return f"dir:{os.path.abspath(path)}:{h.hexdigest()[:16]}"


def clip_config_info(name: str) -> tuple[int | None, ClipPreprocess | None]:
    """(projection dim, preprocessing) from the model's config files alone, or (None, None) if unavailable."""
    _, CLIPConfig, CLIPImageProcessor = flax_clip_classes()
    if name == TINY_CLIP_DIR and not os.path.isdir(os.path.expanduser(name)):
        make_tiny_clip(os.path.expanduser(name))
    source = os.path.expanduser(name) if os.path.isdir(os.path.expanduser(name)) else name
    try:
        cfg = CLIPConfig.from_pretrained(source)
    except Exception:  # noqa: BLE001 - offline and not cached: checked when the model loads
        return None, None
    try:
        processor = CLIPImageProcessor.from_pretrained(source)
    except Exception:  # noqa: BLE001
        processor = None
    return int(cfg.projection_dim), preprocess_from_processor(processor, int(cfg.vision_config.image_size))
