"""The CLIP anchor cache: preprocessing vs CLIPImageProcessor, embeddings, cache round trip and rebuilds."""

import json
import logging
import os

import jax
import numpy as np
import pytest

from ccjax import clip as anchors_lib
from ccjax.clip import clip as clip_lib
from ccjax.clip import embed as embed_lib
from ccjax.config import get_base_config
from ccjax.errors import UserError
from ccjax.runtime.mesh import make_mesh
from fakes import array_dataset

PROJECTION_DIM = 16


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A tiny random CLIP saved with save_pretrained: loaded through the real from_pretrained path."""
    return anchors_lib.make_tiny_clip(str(tmp_path_factory.mktemp("clip") / "tiny"), image_size=32,
                                      projection_dim=PROJECTION_DIM)


def anchor_config(model: str, data_dir: str):
    c = get_base_config()
    c.dataset.name = "fake"
    c.dataset.data_dir = data_dir
    c.anchor.enabled = True
    c.anchor.model = model
    c.anchor.batch_size = 8
    c.progress_bar = False
    return c


def fake_dataset(n: int = 10, seed: int = 0, shape=(20, 24, 1)):
    rng = np.random.default_rng(seed)
    return array_dataset(rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), np.arange(n) % 3, name="fake")


def test_preprocessing_matches_clip_image_processor():
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor()  # openai/clip-vit-base-patch32's settings
    spec = clip_lib.preprocess_from_processor(processor, 224)
    rng = np.random.default_rng(0)
    prep = jax.jit(lambda x: anchors_lib.clip_preprocess(x, spec))
    for shape in [(32, 32, 3), (40, 56, 3), (300, 260, 3)]:  # up-, non-square and down-sampling
        img = rng.integers(0, 256, size=shape, dtype=np.uint8)
        want = processor(images=[img], return_tensors="np")["pixel_values"]  # [1, 3, 224, 224]
        got = np.asarray(prep(img[None]))
        assert got.shape == want.shape == (1, 3, 224, 224)
        levels = np.abs(got - want) * np.asarray(clip_lib.CLIP_STD)[None, :, None, None] * 255
        assert levels.max() <= 1.0 + 1e-3, shape  # at most one uint8 level (PIL's fixed-point rounding)
        assert (levels > 0.5).mean() < 0.005, shape
    gray = rng.integers(0, 256, size=(1, 40, 56, 1), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(prep(gray)), np.asarray(prep(np.repeat(gray, 3, axis=-1))))


def test_resized_shape_follows_transformers():
    from transformers.image_transforms import get_resize_output_image_size

    for h, w in [(32, 32), (40, 56), (300, 260), (33, 100)]:
        want = get_resize_output_image_size(np.zeros((h, w, 3)), 224, default_to_square=False)
        assert clip_lib.resized_shape(h, w, 224) == tuple(want)


def test_embeddings_equal_unbatched_clip_and_cache_round_trip(tiny_clip, tmp_path, monkeypatch):
    from transformers import FlaxCLIPModel

    config = anchor_config(tiny_clip, str(tmp_path))
    ds = fake_dataset(10)
    out = anchors_lib.load_or_build_anchors(config, ds, make_mesh())  # 4 devices, batches of 8 (last padded)
    assert out.shape == (10, PROJECTION_DIM) and out.dtype == np.float32

    # oracle: the model loaded afresh, one image at a time, unjitted, on the default device
    model, params = FlaxCLIPModel.from_pretrained(tiny_clip, _do_init=False)
    spec = anchors_lib.load_clip(tiny_clip).spec
    for i in (0, 7, 9):
        x = anchors_lib.clip_preprocess(ds.images[i:i + 1], spec)
        np.testing.assert_allclose(out[i], np.asarray(model.get_image_features(x, params=params))[0], rtol=1e-4, atol=1e-5)

    npz, sidecar = anchors_lib.cache_paths(config, ds)
    assert npz.startswith(str(tmp_path / "anchors" / "fake")) and os.path.exists(npz)
    meta = json.load(open(sidecar))
    assert meta["count"] == 10 and meta["dim"] == PROJECTION_DIM and meta["model"] == tiny_clip

    def no_clip(*a, **k):
        raise AssertionError("CLIP ran although the cache is valid")

    monkeypatch.setattr(embed_lib, "embed_dataset", no_clip)
    np.testing.assert_array_equal(anchors_lib.load_or_build_anchors(config, ds, make_mesh()), out)


def _corrupt(kind, npz, sidecar, tiny_clip):
    meta = json.load(open(sidecar))
    if kind == "dim":  # a self-consistent cache of the wrong dimension
        anchors_lib.write_cache(npz, sidecar, np.zeros((10, PROJECTION_DIM + 1), np.float32),
                                {k: v for k, v in meta.items() if k not in ("dim", "sha256")})
        return
    if kind == "model":
        meta["model"] = "openai/clip-vit-base-patch32"
    elif kind == "dataset":  # same count, other images
        meta["dataset_fingerprint"] = "0" * 64
    elif kind == "sidecar":
        open(sidecar, "w").write("{not json")
        return
    elif kind == "npz":
        data = open(npz, "rb").read()
        open(npz, "wb").write(data[: len(data) // 2])
        return
    json.dump(meta, open(sidecar, "w"))


@pytest.mark.parametrize("kind", ["count", "dim", "model", "dataset", "sidecar", "npz"])
def test_mismatched_or_corrupt_cache_is_rebuilt(kind, tiny_clip, tmp_path, monkeypatch, caplog):
    calls = []

    def fake_embed(config, dataset, mesh=None, clip=None, progress=True):
        calls.append(dataset.num_examples)
        return np.full((dataset.num_examples, PROJECTION_DIM), len(calls), np.float32)

    monkeypatch.setattr(embed_lib, "embed_dataset", fake_embed)
    config = anchor_config(tiny_clip, str(tmp_path))
    ds = fake_dataset(10)
    first = anchors_lib.load_or_build_anchors(config, ds)
    npz, sidecar = anchors_lib.cache_paths(config, ds)
    if kind == "count":
        ds = fake_dataset(12)  # the dataset grew: same name, same image shape
    else:
        _corrupt(kind, npz, sidecar, tiny_clip)
    with caplog.at_level(logging.WARNING, logger="ccjax.clip"):
        again = anchors_lib.load_or_build_anchors(config, ds)
    assert len(calls) == 2, "the cache was used although it does not match"
    assert again.shape == (ds.num_examples, PROJECTION_DIM) and (again == 2).all() and (first == 1).all()
    assert "rebuilding" in caplog.text
    # the rebuilt cache is valid again
    assert (anchors_lib.load_or_build_anchors(config, ds) == 2).all() and len(calls) == 2


def test_model_loading_errors(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        anchors_lib.load_clip(str(tmp_path / "missing_clip"))
    with pytest.raises(UserError, match="huggingface-cli download"):
        anchors_lib.load_clip("ccjax-test/no-such-clip-model")
