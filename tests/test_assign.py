"""Cluster assignment of a whole dataset (ccjax/eval/assign.py) with a stand-in model whose answer is known.

The stand-in's output for an image is a function of the pixels it is handed, so the test knows
what each row must hold: view 1's evaluation preprocessing (not view 2's, not an augmentation),
the model in evaluation mode, the requested output, every example once, in dataset order,
padding dropped. The metrics keep the labelled examples only.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.augment import augment_config, preprocess_eval
from ccjax.config import get_base_config
from ccjax.data.labels import dataset_labels
from ccjax.eval.assign import assign_clusters, evaluate_assignments
from ccjax.run.load import model_outputs
from ccjax.runtime.mesh import make_mesh
from fakes import array_dataset, streamed_dataset


class PixelModel:
    """Duck-typed model: c = softmax of (mean, 2 x mean, 3 x mean) of each view-1 image, z = its first
    pixels, h = (its mean, train flag); `train=True` would flip every sign."""

    def apply(self, variables, views, anchors=None, *, train):
        (x,) = views
        sign = -1.0 if train else 1.0
        m = sign * variables["scale"] * jnp.mean(x, axis=(1, 2, 3))  # [B]
        c = jnp.stack([m, 2 * m, 3 * m], axis=1)
        c = jnp.exp(c - c.max(1, keepdims=True))
        return [dict(c=c / c.sum(1, keepdims=True), z=x.reshape(x.shape[0], -1)[:, :4],
                     h=jnp.stack([m, jnp.full_like(m, float(train))], axis=1))]


def config():
    c = get_base_config()
    c.augment = augment_config(image_size=6, mean=(0.2,), std=(0.5,))
    c.augment2.mean = (0.9,)  # view 2 differs: assignment must not use it
    c.eval.batch_size = 8
    return c


N = 21  # 3 batches of 8, the last one padded


def images():
    return np.random.default_rng(0).integers(0, 256, (N, 5, 7, 1)).astype(np.uint8)


def expected(c, imgs) -> dict[str, np.ndarray]:
    x = np.asarray(preprocess_eval(jnp.asarray(imgs), c.augment))  # view 1's, the whole image
    m = 0.5 * x.mean(axis=(1, 2, 3))
    logits = np.stack([m, 2 * m, 3 * m], 1)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return {"c": e / e.sum(1, keepdims=True), "z": x.reshape(N, -1)[:, :4], "h": np.stack([m, np.zeros(N)], 1)}


@pytest.mark.parametrize("output", ["c", "z", "h"])
def test_model_outputs_are_view_1s_evaluation_pass_in_dataset_order(output):
    c, imgs = config(), images()
    got = model_outputs(PixelModel(), {"scale": 0.5}, c, array_dataset(imgs, None), make_mesh(), None, output)
    assert got.dtype == np.float32 and got.shape[0] == N
    np.testing.assert_allclose(got, expected(c, imgs)[output], rtol=1e-5, atol=1e-6)


def test_assign_clusters_is_the_cluster_output_also_when_streamed():
    c, imgs = config(), images()
    want = expected(c, imgs)["c"]
    got = assign_clusters(PixelModel(), {"scale": 0.5}, c, streamed_dataset(imgs, None, workers=0), make_mesh(),
                          progress=False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_evaluate_assignments_scores_the_labelled_examples_only():
    # 6 examples: clusters [0, 0, 1, 1, 2, 2] by argmax; labels [5, 5, 7, 7, -1, 7].
    probs = np.eye(3)[[0, 0, 1, 1, 2, 2]] * 0.8 + 0.2 / 3
    labels = np.array([5, 5, 7, 7, -1, 7])
    out = evaluate_assignments(probs, labels)
    assert out["num_examples"] == 6 and out["num_clusters"] == 3 and out["num_labelled"] == 5
    # Known examples: clusters [0, 0, 1, 1, 2] against [5, 5, 7, 7, 7]; the best matching puts 4 of 5 right.
    assert out["acc"] == pytest.approx(0.8)
    unlabelled = evaluate_assignments(probs, None)
    assert "acc" not in unlabelled and unlabelled["num_examples"] == 6


def test_dataset_labels_in_memory_streamed_and_none():
    imgs = images()
    labels = np.arange(N) % 4
    np.testing.assert_array_equal(dataset_labels(array_dataset(imgs, labels)), labels)
    np.testing.assert_array_equal(dataset_labels(streamed_dataset(imgs, labels, workers=0)), labels)
    assert dataset_labels(array_dataset(imgs, None)) is None


def test_a_progress_bar_only_when_asked(capfd):
    c, imgs = config(), images()
    data = array_dataset(imgs, None)
    model_outputs(PixelModel(), {"scale": 0.5}, c, data, make_mesh(), None, "c", progress=False)
    assert "assign" not in capfd.readouterr().err
    model_outputs(PixelModel(), {"scale": 0.5}, c, data, make_mesh(), None, "c", progress=True)
    assert "assign" in capfd.readouterr().err  # (process 0 here; map_batches shows it there only)
