"""method=temi end to end: frozen features from CLIP, DINOv2 (tiny random models saved with
save_pretrained) and a finished run; a TEMI run killed and resumed; evaluate and predict on it.

Wrong implementations caught:
- the clip: source not computing what the anchor path computes (other preprocessing, other output);
- DINOv2 features not the model's pooled CLS token for its processor's preprocessing (NCHW/NHWC swap,
  last_hidden_state[:, 0] without the layer norm, ImageNet mean/std not applied);
- run: features other than the run's backbone `h` at evaluation preprocessing;
- a resumed run that differs from an uninterrupted one (epoch randomness not keyed by epoch, teacher,
  marginals or best head not checkpointed);
- predict embedding new images with another encoder, or evaluating another head than training did.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from test_report import read_assignments, trained_digits_run

from ccjax.data.dataset import ImageDataset
from ccjax.runtime.mesh import make_mesh


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return trained_digits_run(tmp_path_factory)[0]


def _temi_config(source, cache_dir, k=8):
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs"))
    from common import temi_preset

    c = temi_preset(source)
    c.dataset.num_clusters = k
    c.num_epochs = 2
    c.warmup_epochs = 1
    c.checkpoint.every_epochs = 1
    c.progress_bar = False
    c.features.cache_dir = str(cache_dir)
    c.temi.num_heads = 3
    c.temi.hidden_dim = 16
    c.temi.bottleneck_dim = 8
    c.temi.knn = 5
    c.temi.embed_norm = True
    return c


def _params(workdir):
    from ccjax.run.load import load_trained

    return load_trained(workdir).restore_latest().variables


@pytest.mark.slow
def test_temi_on_a_run_resumes_exactly_and_predicts_like_it_evaluates(digits_run, tmp_path):
    from ccjax.run.load import model_outputs
    from ccjax.report.run_report import evaluate_workdir
    from ccjax.eval.predict import predict_files
    from ccjax.features import load_features
    from ccjax.run.load import load_trained
    from ccjax.train import train_and_evaluate

    source = f"run:{digits_run}"
    straight = train_and_evaluate(_temi_config(source, tmp_path / "cache"), str(tmp_path / "straight"))
    first = train_and_evaluate(_temi_config(source, tmp_path / "cache"), str(tmp_path / "resumed"), stop_at_epoch=1)
    assert first == {"stopped_at_step": 7}
    resumed = train_and_evaluate(_temi_config(source, tmp_path / "cache"), str(tmp_path / "resumed"))
    a, b = _params(str(tmp_path / "straight")), _params(str(tmp_path / "resumed"))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert resumed["acc"] == straight["acc"] and resumed["num_clusters"] == 8
    metrics = json.load(open(tmp_path / "straight" / "metrics.json"))
    assert metrics["kmeans"]["num_clusters"] == 8 and 0 < metrics["kmeans"]["acc"] <= 1

    # run: features are the run's backbone h (its last checkpoint, evaluation preprocessing)
    run = load_trained(digits_run)
    from ccjax.data import open_dataset

    data = open_dataset(run.config.dataset)
    h = model_outputs(run.module, run.restore_latest().variables, run.config, data, run.mesh, None, "h")
    feats = load_features(_temi_config(source, tmp_path / "cache"), data, make_mesh())
    np.testing.assert_allclose(feats, h, rtol=1e-5, atol=1e-5)

    # evaluate reproduces training's final clustering; predict embeds a training digit the same way
    assert evaluate_workdir(str(tmp_path / "straight"), progress=False)["acc"] == straight["acc"]
    digit = data.read(np.array([5]))["image"][0]
    Image.fromarray(digit[..., 0], mode="L").save(tmp_path / "gray.png")
    probs, ok, _ = predict_files(str(tmp_path / "straight"), [str(tmp_path / "gray.png")])
    row = read_assignments(str(tmp_path / "straight" / "report" / "assignments.csv"))[5]
    assert int(probs[0].argmax()) == int(row["cluster"])
    np.testing.assert_allclose(probs[0].max(), float(row["probability"]), atol=1e-4)


def _images(n=6, size=28, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def test_clip_source_is_the_anchor_embedding(tmp_path):
    from ccjax.clip import embed_dataset, make_tiny_clip
    from ccjax.config import get_base_config
    from ccjax.features.encoders import load_encoder

    path = make_tiny_clip(str(tmp_path / "clip"), image_size=28)
    data = ImageDataset("x", _images(), None, None)
    c = get_base_config()
    c.anchor.model = path
    c.progress_bar = False
    mesh = make_mesh()
    want = embed_dataset(c, data, mesh, progress=False)
    got = load_encoder(f"clip:{path}").embed(data, mesh, 8)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_dinov2_source_is_the_pooled_cls_token(tmp_path):
    from transformers import BitImageProcessor, FlaxDinov2Model

    from ccjax.features.encoders import load_encoder, make_tiny_dinov2

    path = make_tiny_dinov2(str(tmp_path / "dino"), image_size=28)
    images = _images()
    got = load_encoder(f"dinov2:{path}").embed(ImageDataset("x", images, None, None), make_mesh(), 8)
    pixels = BitImageProcessor.from_pretrained(path)([Image.fromarray(i) for i in images], return_tensors="np")
    model = FlaxDinov2Model.from_pretrained(path)
    want = np.asarray(model(pixels["pixel_values"]).pooler_output)
    assert got.shape == (6, 32)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)
