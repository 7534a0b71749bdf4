"""The frozen CLIP anchor embeddings of MFAVBs-CC (Section 3.4), computed once per dataset and cached.

The CLIP image encoder never runs inside the train step. For a dataset it is
run once over every (un-augmented) example, jit-compiled and batched over the
mesh's 'data' axis, with CLIP's own preprocessing done on device (resize the
shorter side with bicubic, centre crop, CLIP mean/std); the embeddings
(`FlaxCLIPModel.get_image_features`, float32 [N, A]) are cached on disk and the
input pipeline gathers them by example index.

Cache: `<anchor.cache_dir | dataset.data_dir | ~/.cache/ccjax>/anchors/<dataset>/<model>__<H>x<W>x<C>.npz`
plus a JSON sidecar (count, dim, model, model and dataset fingerprints,
preprocessing, the npz's sha256), both written atomically. A cache that is
unreadable or does not match (count, dimension, model, dataset, preprocessing)
is rebuilt with a warning, never used.

Command line:
  python -m ccjax.anchors --config=configs/mfavbs_cifar10.py [--config.anchor.model=...] [--rebuild]
  python -m ccjax.anchors --make_tiny_clip=<dir>   # a tiny random CLIP for tests and the digits demo
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.errors import UserError, parse_flags_or_exit

log = logging.getLogger(__name__)

CACHE_VERSION = 1
DEFAULT_CACHE_ROOT = "~/.cache/ccjax"
FINGERPRINT_SAMPLES = 64  # images hashed (evenly spaced) to fingerprint a dataset
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
    from transformers import CLIPImageProcessor, FlaxCLIPModel

    path = os.path.expanduser(name)
    if name == TINY_CLIP_DIR and not os.path.isdir(path):
        make_tiny_clip(path)
    if _looks_like_path(name) and not os.path.isdir(path):
        raise UserError(f"anchor.model {name!r} is not a directory; set --config.anchor.model to a hub name "
                        "or a local CLIP directory (python -m ccjax.anchors --make_tiny_clip=<dir> makes a tiny one)")
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
    from transformers import CLIPConfig, CLIPImageProcessor, FlaxCLIPModel

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


# ----------------------------------------------------------------------------- embedding


def _mesh_or_default(mesh):
    if mesh is not None:
        return mesh
    from ccjax.sharding import make_mesh

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

    Batches are global arrays sharded over the mesh's 'data' axis; the last one
    is padded and its padding dropped. `clip`: a LoadedClip (default: load config.anchor.model).
    """
    from jax.experimental import multihost_utils
    from tqdm import tqdm

    from ccjax.input_pipeline import EvalBatches
    from ccjax.sharding import replicated

    mesh = _mesh_or_default(mesh)
    clip = load_clip(config.anchor.model) if clip is None else clip
    params = jax.device_put(clip.vision_params(), replicated(mesh))
    embed = make_embed_fn(clip.model, clip.spec)
    batches = EvalBatches(dataset, _batch_size(config, mesh), mesh)
    show = progress and jax.process_index() == 0 and bool(getattr(config, "progress_bar", True))
    feats, valid = [], []
    for b in tqdm(batches, total=len(batches), desc="CLIP anchors", unit="batch", disable=not show):
        f = embed(params, b["image"])  # [batch, A]
        feats.append(multihost_utils.process_allgather(f, tiled=True))
        valid.append(multihost_utils.process_allgather(b["valid"], tiled=True))
    out = np.concatenate(feats)[np.concatenate(valid)].astype(np.float32)  # [N, A]
    if out.shape[0] != dataset.num_examples:
        raise RuntimeError(f"embedded {out.shape[0]} examples, expected {dataset.num_examples}")
    if not np.isfinite(out).all():
        raise UserError(f"the CLIP model {config.anchor.model!r} produced non-finite embeddings")
    return out


class _ImageArray:
    """The dataset interface over a uint8 array (for embed_images)."""

    def __init__(self, images: np.ndarray):
        self.images = images
        self.num_examples = len(images)
        self.image_shape = tuple(images.shape[1:])

    def read(self, indices):
        return {"image": self.images[np.asarray(indices)]}


def embed_images(config, images: np.ndarray, mesh=None) -> np.ndarray:
    """CLIP anchors of new images uint8 [n, H, W, C] (no cache): float32 [n, A]."""
    return embed_dataset(config, _ImageArray(np.asarray(images, np.uint8)), mesh, progress=False)


# ----------------------------------------------------------------------------- the cache


def _sanitise(text: str) -> str:
    """A file-name-safe form of `text` (a short hash is appended when characters were replaced)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "x"
    if clean != text:
        clean = f"{clean[-60:]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return clean


def dataset_key(config, dataset) -> str:
    """The dataset name plus its split set (STL-10's unlabelled split when used)."""
    name = getattr(config.dataset, "name", None) or getattr(dataset, "name", "dataset")
    if getattr(config.dataset, "use_unlabeled", False):
        name += "+unlabelled"
    return name


def cache_paths(config, dataset) -> tuple[str, str]:
    """(npz path, JSON sidecar path) of the anchor cache for this config and dataset."""
    root = (getattr(config.anchor, "cache_dir", None) or getattr(config.dataset, "data_dir", None)
            or DEFAULT_CACHE_ROOT)
    root = os.path.abspath(os.path.expanduser(root))
    h, w, c = dataset.image_shape
    model = config.anchor.model
    model_name = os.path.abspath(os.path.expanduser(model)) if _looks_like_path(model) else model
    stem = f"{_sanitise(model_name)}__{h}x{w}x{c}"
    folder = os.path.join(root, "anchors", _sanitise(dataset_key(config, dataset)))
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


def _write_atomic(path: str, write) -> None:
    """Writes via `write(file)` to a temporary file in the same folder, then renames it over `path`."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_cache(npz_path: str, json_path: str, anchors: np.ndarray, metadata: dict) -> None:
    """Writes the npz, then the sidecar (with the npz's sha256 and dim), each atomically."""
    anchors = np.ascontiguousarray(anchors, np.float32)
    _write_atomic(npz_path, lambda f: np.savez(f, anchors=anchors))
    meta = dict(metadata, dim=int(anchors.shape[1]), sha256=_file_sha256(npz_path))
    _write_atomic(json_path, lambda f: f.write(json.dumps(meta, indent=2, sort_keys=True).encode()))


def _clip_config_info(name: str) -> tuple[int | None, ClipPreprocess | None]:
    """(projection dim, preprocessing) from the model's config files alone, or (None, None) if unavailable."""
    from transformers import CLIPConfig, CLIPImageProcessor

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
    dim, spec = _clip_config_info(config.anchor.model)
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


# ----------------------------------------------------------------------------- command line


def _define_flags():
    from absl import flags
    from ml_collections import config_flags

    config = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/mfavbs_cifar10.py.",
                                             lock_config=True)
    tiny = flags.DEFINE_string("make_tiny_clip", None, "Save a tiny random CLIP model to this directory and exit.")
    rebuild = flags.DEFINE_bool("rebuild", False, "Recompute the anchors even when a valid cache exists.")
    return config, tiny, rebuild


def main() -> None:
    from absl import app

    from ccjax.errors import exit_on_user_error

    config_flag, tiny_flag, rebuild_flag = _define_flags()

    @exit_on_user_error
    def run(argv) -> None:
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {argv[1:]}; flags are --config, --make_tiny_clip, --rebuild")
        if tiny_flag.value:
            path = make_tiny_clip(tiny_flag.value)
            print(f"ccjax: saved a tiny random CLIP (a plumbing demo, not a pretrained model) to {path}")
            return
        from ccjax.errors import loaded_config

        config = loaded_config(config_flag)
        from ccjax import distributed

        distributed.maybe_initialize()
        from ccjax.data import open_dataset

        dataset = open_dataset(config.dataset)
        anchors = load_or_build_anchors(config, dataset, rebuild=rebuild_flag.value)
        npz_path, _ = cache_paths(config, dataset)
        norms = np.linalg.norm(anchors, axis=1)
        print(f"ccjax: {anchors.shape[0]} anchors x {anchors.shape[1]} dims for {dataset_key(config, dataset)} "
              f"from {config.anchor.model} (norm mean {norms.mean():.3f}) in {npz_path}")

    logging.getLogger("absl").setLevel(logging.WARNING)
    app.run(run, flags_parser=parse_flags_or_exit)


if __name__ == "__main__":
    main()
