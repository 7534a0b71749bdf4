"""The trainer end to end: sharding invariance, kill-and-resume, NaN stop."""

import json
import os

import jax
import numpy as np
import pytest

from ccjax import train
from ccjax.train.loop import TrainingRun
from ccjax.config import get_base_config
from ccjax.errors import UserError
from ccjax.methods import METHODS
from ccjax.runtime.mesh import make_mesh
from fakes import array_dataset, blob_images, tiny_grayscale_augment


def tiny_config(method: str = "cc"):
    c = get_base_config()
    c.method = method
    c.model.backbone = "convnet"
    c.model.convnet_width = 8
    c.model.feature_dim = 16
    c.batch_size = 16
    c.eval.batch_size = 16
    c.num_epochs = 2
    c.learning_rate = 1e-3
    c.augment = tiny_grayscale_augment()
    c.checkpoint.every_epochs = 1
    c.log_every_steps = 1
    c.progress_bar = False
    return c


def loss_and_grads(config, mesh, dataset):
    run = TrainingRun(config, mesh=mesh, dataset=dataset)
    state = run.setup.init_state()
    batch = run.batches.batch(0, 0)
    objective = METHODS[config.method]

    def f(params):
        loss, (metrics, _) = objective.loss_fn(
            params, state.model_state, model=run.setup.module, config=config, images=batch["image"],
            anchors=batch.get("anchor"), rng=jax.random.key(0), epoch=jax.numpy.int32(1),
        )
        return loss, metrics

    (loss, metrics), grads = jax.jit(jax.value_and_grad(f, has_aux=True))(state.params)
    return jax.device_get((loss, metrics, grads))


@pytest.mark.parametrize("objective", ["cc", "gecc"])
def test_train_step_on_4_devices_equals_1_device(objective):
    imgs, labels = blob_images(n=32)
    ds = array_dataset(imgs, labels)
    config = tiny_config(objective)
    config.gecc.schedule_stages = 1  # t = 1: CDSM after every block, so its statistics are exercised
    l4, m4, g4 = loss_and_grads(config, make_mesh(jax.devices()[:4]), ds)
    l1, m1, g1 = loss_and_grads(config, make_mesh(jax.devices()[:1]), ds)
    np.testing.assert_allclose(l4, l1, rtol=1e-5, atol=1e-6)
    for k in m1:
        np.testing.assert_allclose(m4[k], m1[k], rtol=1e-5, atol=1e-6, err_msg=k)
    flat4, flat1 = jax.tree.leaves(g4), jax.tree.leaves(g1)
    for a, b in zip(flat4, flat1):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)


def digits_config(epochs: int):
    c = tiny_config()
    c.dataset.name = "digits"
    c.batch_size = 256
    c.eval.batch_size = 512
    c.num_epochs = epochs
    c.log_every_steps = 7
    return c


def read_params(workdir, config):
    from ccjax.run.checkpoint import Checkpointer

    run = TrainingRun(config)
    ck = Checkpointer(os.path.join(workdir, "checkpoints"), keep=3)
    state, meta = ck.restore(ck.latest_step(), run.setup.abstract_state)
    ck.close()
    return jax.device_get(state), meta


@pytest.mark.slow
def test_kill_and_resume_is_bit_identical(tmp_path):
    """An uninterrupted in-memory run against one stopped after epoch 1 and resumed, both halves
    streamed from disk through grain workers: parameters, history, metrics and assignments are
    identical, so resuming is exact and the streamed path trains exactly as the in-memory one.
    Changing how the data is read is no config change: the in-memory config may resume the run."""
    from ccjax.run import rundir

    config = digits_config(epochs=3)
    config.lr_schedule = "cosine"  # the schedule's position is part of what must resume exactly
    config.warmup_epochs = 1
    config.dataset.in_memory = "true"
    streamed = digits_config(epochs=3)
    streamed.lr_schedule, streamed.warmup_epochs = "cosine", 1
    streamed.dataset.in_memory, streamed.dataset.stream_workers = "false", 1
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    full = train.train_and_evaluate(config, a)
    stopped = train.train_and_evaluate(streamed, b, stop_at_epoch=1)
    assert stopped == {"stopped_at_step": 7}
    rundir.check(b, config)  # no "different config" refusal
    resumed = train.train_and_evaluate(streamed, b)
    for k in ("acc", "nmi", "ari", "entropy"):
        assert full[k] == resumed[k], k
    sa, ma = read_params(a, config)
    sb, mb = read_params(b, config)
    assert int(sa.step) == int(sb.step) == 21
    for x, y in zip(jax.tree.leaves(sa), jax.tree.leaves(sb)):
        np.testing.assert_array_equal(x, y)
    hist_a = [json.loads(l) for l in open(os.path.join(a, "history.jsonl"))]
    hist_b = [json.loads(l) for l in open(os.path.join(b, "history.jsonl"))]
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(hist_a) == strip(hist_b)
    assert open(os.path.join(a, "report", "assignments.csv")).read() == open(
        os.path.join(b, "report", "assignments.csv")).read()


def test_nonfinite_loss_stops_with_the_step_and_keeps_the_good_checkpoint(tmp_path):
    config = digits_config(epochs=3)
    config.learning_rate = 1e30  # Adam's first step is lr-sized: parameters explode at once
    with pytest.raises(train.TrainingDiverged, match=r"NaN/inf at step \d+") as e:
        train.train_and_evaluate(config, str(tmp_path / "nan"))
    assert isinstance(e.value, UserError)


def test_checkpoint_from_4_devices_resumes_training_on_2_and_1(tmp_path):
    from ccjax.run.checkpoint import Checkpointer

    imgs, labels = blob_images(n=32)
    ds = array_dataset(imgs, labels)
    config = tiny_config()
    run4 = TrainingRun(config, mesh=make_mesh(jax.devices()[:4]), dataset=ds)
    state, _ = run4.train_step(run4.setup.init_state(), run4.batches.batch(0, 0))
    ck = Checkpointer(str(tmp_path / "ck"), keep=1)
    ck.save(1, state, {"step": 1})
    ck.close()
    saved = jax.device_get(state.params)
    for n in (2, 1):
        run = TrainingRun(config, mesh=make_mesh(jax.devices()[:n]), dataset=ds)
        ck = Checkpointer(str(tmp_path / "ck"), keep=1)
        restored, _ = ck.restore(1, run.setup.abstract_state)
        ck.close()
        for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(restored.params)):
            np.testing.assert_array_equal(a, np.asarray(b))
        nxt, metrics = run.train_step(restored, run.batches.batch(0, 1))
        assert int(nxt.step) == 2 and np.isfinite(float(metrics["loss"]))
        assert jax.tree.leaves(nxt.params)[0].sharding.mesh.devices.size == n


def test_bfloat16_step_keeps_float32_params_and_finite_loss():
    imgs, labels = blob_images(n=32)
    config = tiny_config("gecc")
    config.dtype = "bfloat16"
    run = TrainingRun(config, dataset=array_dataset(imgs, labels))
    state, metrics = run.train_step(run.setup.init_state(), run.batches.batch(0, 0))
    assert all(x.dtype == np.float32 for x in jax.tree.leaves(state.params))
    assert np.isfinite(float(metrics["loss"])) and int(state.first_nonfinite_step) == -1
