"""MFAVBs-CC through the real trainer: cached anchors in the train step, 4-device == 1-device step."""

import jax
import numpy as np
import pytest

from ccjax import clip as anchors_lib
from ccjax.clip import embed as embed_lib
from ccjax.train.loop import TrainingRun
from ccjax.config import get_base_config
from ccjax.methods import METHODS
from ccjax.runtime.mesh import make_mesh, replicated
from fakes import array_dataset, blob_images, tiny_grayscale_augment

E = 16


def mfavbs_config(data_dir: str, clip_dir: str | None = None):
    c = get_base_config()
    c.method = "mfavbs"
    c.dataset.name = "blobs"
    c.dataset.data_dir = data_dir
    c.model.backbone = "vit"
    c.model.feature_dim = 8
    c.model.vit.update(embed_dim=E, depth=2, num_heads=2, patch_size=4, num_fusing_blocks=1, fusion="tokens")
    c.anchor.enabled = True
    c.anchor.model = clip_dir or "unused"
    c.anchor.batch_size = 16
    c.batch_size = 16
    c.eval.batch_size = 16
    c.learning_rate = 1e-3
    c.augment = tiny_grayscale_augment()
    c.augment2.solarize_p = 0.2
    c.progress_bar = False
    return c


@pytest.fixture(scope="module")
def trained_setup(tmp_path_factory):
    """A 4-device MFAVBs run whose anchors come from a tiny CLIP through the real cache, and its initial state."""
    tmp = tmp_path_factory.mktemp("mfavbs")
    clip_dir = anchors_lib.make_tiny_clip(str(tmp / "clip"), image_size=16, projection_dim=E)
    imgs, labels = blob_images(n=32)
    ds = array_dataset(imgs, labels, name="blobs")
    config = mfavbs_config(str(tmp), clip_dir)
    run = TrainingRun(config, mesh=make_mesh(jax.devices()[:4]), dataset=ds)  # computes and caches the anchors
    return config, ds, run, run.setup.init_state()


def test_train_step_reads_cached_anchors_and_never_runs_clip(trained_setup, monkeypatch):
    from transformers import FlaxCLIPModel

    config, ds, run, state = trained_setup
    assert run.anchors.shape == (32, E)
    np.testing.assert_array_equal(run.anchors, anchors_lib.load_or_build_anchors(config, ds))  # the cache

    def forbidden(*a, **k):
        raise AssertionError("the CLIP encoder ran during training")

    monkeypatch.setattr(FlaxCLIPModel, "get_image_features", forbidden)
    monkeypatch.setattr(FlaxCLIPModel, "__call__", forbidden)
    monkeypatch.setattr(embed_lib, "embed_dataset", forbidden)
    batch = run.batches.batch(0, 0)
    np.testing.assert_array_equal(np.asarray(batch["anchor"]), run.anchors[np.asarray(batch["index"])])
    new_state, metrics = run.train_step(jax.tree.map(lambda x: x.copy(), state), batch)  # the step donates
    assert int(new_state.step) == 1 and np.isfinite(float(metrics["loss"]))


@pytest.mark.slow
def test_mfavbs_step_on_4_devices_equals_1_device(trained_setup):
    config, ds, run4, state = trained_setup
    objective = METHODS["mfavbs"]
    run1 = TrainingRun(config, mesh=make_mesh(jax.devices()[:1]), dataset=ds, anchors=run4.anchors)

    def loss_and_grads(run, state):
        batch = run.batches.batch(0, 0)

        def f(params):
            loss, (metrics, new_state) = objective.loss_fn(
                params, state.model_state, model=run.setup.module, config=config, images=batch["image"],
                anchors=batch["anchor"], rng=jax.random.key(0), epoch=jax.numpy.int32(0))
            return loss, (metrics, new_state)

        return jax.device_get(jax.jit(jax.value_and_grad(f, has_aux=True))(state.params))

    (l4, (m4, s4)), g4 = loss_and_grads(run4, state)
    (l1, (m1, s1)), g1 = loss_and_grads(run1, jax.device_put(state, replicated(run1.mesh)))
    np.testing.assert_allclose(l4, l1, rtol=1e-5, atol=1e-6)
    for k in m1:
        np.testing.assert_allclose(m4[k], m1[k], rtol=1e-5, atol=1e-6, err_msg=k)
    for a, b in zip(jax.tree.leaves((g4, s4)), jax.tree.leaves((g1, s1))):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    assert max(float(np.abs(g).max()) for g in jax.tree.leaves(g1)) > 0
