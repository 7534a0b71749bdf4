"""GeCC's objective (ccjax.methods.gecc.objective) end to end on a tiny model that follows the model contract.

The stand-in model (docs/architecture.md, "Models") has BatchNorm, runs each
view separately and calls `shift_hook(features, layer)` after each of its two
stages, so these tests exercise the objective, the augmentation, CDSM inside
a backbone, the weights and the losses without depending on ccjax.models.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ccjax.config import get_base_config
from ccjax.errors import UserError
from ccjax.methods import METHODS
from ccjax.methods.gecc import objective as gecc
from ccjax.runtime.mesh import make_mesh
from fakes import blob_images, tiny_grayscale_augment

K = 4


class TinyModel(nn.Module):
    """Conv-BN-ReLU stages with the shift hook after each, instance and cluster heads."""

    num_clusters: int = K
    feature_dim: int = 6

    @nn.compact
    def __call__(self, views: Sequence[jax.Array], anchors=None, *, train: bool, shift_hook=None):
        convs = [nn.Conv(4, (3, 3), name="conv0"), nn.Conv(8, (3, 3), strides=2, name="conv1")]
        norms = [nn.BatchNorm(use_running_average=not train, name=f"bn{i}") for i in range(2)]
        proj = nn.Dense(self.feature_dim, name="instance")
        clus = nn.Dense(self.num_clusters, name="cluster")
        outs = []
        for x in views:
            for i in range(2):
                x = nn.relu(norms[i](convs[i](x)))  # [B, H, W, C]
                if shift_hook is not None:
                    x = shift_hook(x, i)
            h = jnp.mean(x, axis=(1, 2))  # [B, 8]
            z = proj(h)
            z = z / jnp.linalg.norm(z, axis=-1, keepdims=True)
            outs.append(dict(z=z, c=nn.softmax(clus(h)), h=h))
        return outs


def tiny_config(**gecc_overrides):
    c = get_base_config()
    c.method = "gecc"
    c.num_epochs = 10
    c.batch_size = 16
    c.augment = tiny_grayscale_augment()
    for k, v in gecc_overrides.items():
        setattr(c.gecc, k, v)
    return c


def init(model):
    v = model.init(jax.random.key(0), [jnp.zeros((2, 8, 8, 1))], train=False)
    v = dict(v)
    return v.pop("params"), v


def run_loss(config, epoch, images=None, rng=0):
    model = TinyModel()
    params, state = init(model)
    images = blob_images(n=16, classes=K)[0] if images is None else images

    def f(p):
        return gecc.loss_fn(p, state, model=model, config=config, images=images, anchors=None,
                            rng=jax.random.key(rng), epoch=jnp.int32(epoch))

    (loss, (metrics, new_state)), grads = jax.jit(jax.value_and_grad(f, has_aux=True))(params)
    return loss, metrics, new_state, grads


def test_registered_as_objective():
    assert METHODS["gecc"] is gecc


@pytest.mark.parametrize("reference", ["cdsm", "dsu"])
def test_reference_view_equals_view_1_at_t_0_and_differs_at_t_1(reference):
    config = tiny_config(reference=reference)
    model = TinyModel()
    params, state = init(model)
    images = jnp.asarray(blob_images(n=16, classes=K)[0])

    @jax.jit
    def outputs(t):
        """View 1's and the reference view's outputs, as gecc.loss_fn makes them, at probability t."""
        k_views, k_ref = jax.random.split(jax.random.key(3))
        x1, x2 = gecc.two_views(images, k_views, config)
        (o1, _), st = model.apply({"params": params, **state}, [x1, x2], None, train=True, mutable=["batch_stats"])
        od, _ = gecc.reference_view(params, st, model=model, config=config, images=images, x1=x1, c1=o1["c"],
                                    anchors=None, rng=k_ref, probability=t)
        return o1, od

    o1, od = outputs(jnp.float32(0.0))
    for key in ("z", "c", "h"):
        np.testing.assert_array_equal(od[key], o1[key], err_msg=key)
    o1, od = outputs(jnp.float32(1.0))
    assert np.abs(np.asarray(od["z"]) - np.asarray(o1["z"])).max() > 1e-3


@pytest.mark.parametrize("source", ["fresh", "clean"])
def test_reference_input_is_what_the_shift_acts_on(source):
    """gecc.reference_input: at t = 0 the reference view is the model on a fresh augmentation (its own key,
    split from the reference key) or on the un-augmented image, bit for bit; never view 1."""
    from ccjax.augment import augment_batch, preprocess_eval, view_augment_config

    config = tiny_config(reference_input=source)
    model = TinyModel()
    params, state = init(model)
    images = jnp.asarray(blob_images(n=16, classes=K)[0])

    @jax.jit
    def outputs():
        k_views, k_ref = jax.random.split(jax.random.key(3))
        x1, x2 = gecc.two_views(images, k_views, config)
        (o1, _), st = model.apply({"params": params, **state}, [x1, x2], None, train=True, mutable=["batch_stats"])
        od, _ = gecc.reference_view(params, st, model=model, config=config, images=images, x1=x1, c1=o1["c"],
                                    anchors=None, rng=k_ref, probability=jnp.float32(0.0))
        cfg1 = view_augment_config(config, 1)
        xd = (augment_batch(images, jax.random.split(k_ref)[0], cfg1) if source == "fresh"
              else preprocess_eval(images, cfg1))
        (want,), _ = model.apply({"params": params, **st}, [xd], None, train=True, mutable=["batch_stats"])
        return o1, od, want

    o1, od, want = outputs()
    for key in ("z", "c", "h"):
        np.testing.assert_array_equal(od[key], want[key], err_msg=key)
    assert np.abs(np.asarray(od["z"]) - np.asarray(o1["z"])).max() > 1e-3


@pytest.mark.parametrize(
    "overrides",
    [dict()] + [pytest.param(o, marks=pytest.mark.slow) for o in (
        dict(reference="aug"), dict(reference="dsu"), dict(weights="none"), dict(weights="wz"), dict(weights="wc"))],
    ids=["gecc", "w_aug", "w_dsu", "wo_W", "w_Wz", "w_Wc"],
)
def test_every_table3_ablation_runs_with_finite_loss_and_gradients(overrides):
    config = tiny_config(**overrides)
    loss, metrics, new_state, grads = run_loss(config, epoch=9)
    assert np.isfinite(loss)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    assert any(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(grads))
    np.testing.assert_allclose(metrics["t"], 1.0)
    np.testing.assert_allclose(
        loss, metrics["instance"] + metrics["cluster"] + metrics["entropy"], rtol=1e-6)
    weights = config.gecc.weights
    assert (float(metrics["w_z_mean"]) == 1.0) == (weights in ("none", "wc"))
    assert (float(metrics["w_c_mean"]) == 1.0) == (weights in ("none", "wz"))
    assert set(new_state) == {"batch_stats"}
    for part in ("instance", "cluster"):
        assert float(metrics[f"{part}_1d"]) > 0
        np.testing.assert_allclose(metrics[part], metrics[f"{part}_12"] + metrics[f"{part}_1d"], rtol=1e-6)


def test_bad_switches_are_user_errors():
    """GeCC's own check (called by ccjax.config.validate before any work; tests/test_validate.py)."""
    with pytest.raises(UserError, match="gecc.reference"):
        gecc.check_config(tiny_config(reference="cutmix"))
    with pytest.raises(UserError, match="gecc.weights"):
        gecc.check_config(tiny_config(weights="all"))
    with pytest.raises(UserError, match="gecc.reference_input"):
        gecc.check_config(tiny_config(reference_input="view2"))


@pytest.mark.slow
def test_loss_and_gradients_on_4_devices_equal_1_device_with_cdsm_active():
    """CDSM statistics, BatchNorm and the weights must span the global batch."""
    config = tiny_config()
    config.gecc.schedule_stages = 1  # t = 1: every CDSM layer active
    model = TinyModel()
    params, mstate = init(model)
    images = blob_images(n=16, classes=K)[0]

    def loss_and_grads(devices):
        mesh = make_mesh(devices)
        p, st = jax.device_put((params, mstate), NamedSharding(mesh, P()))
        batch = jax.device_put(images, NamedSharding(mesh, P("data")))

        def f(p_, imgs):
            return gecc.loss_fn(p_, st, model=model, config=config, images=imgs, anchors=None,
                                rng=jax.random.key(4), epoch=jnp.int32(0))

        (loss, (metrics, new_state)), grads = jax.jit(jax.value_and_grad(f, has_aux=True))(p, batch)
        return jax.device_get((loss, metrics, new_state, grads))

    l4, m4, s4, g4 = loss_and_grads(jax.devices()[:4])
    l1, m1, s1, g1 = loss_and_grads(jax.devices()[:1])
    assert float(m1["t"]) == 1.0 and np.isfinite(l1)
    for k in m1:
        np.testing.assert_allclose(m4[k], m1[k], rtol=1e-5, atol=1e-6, err_msg=k)
    for a, b in zip(jax.tree.leaves((s4, g4)), jax.tree.leaves((s1, g1))):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
