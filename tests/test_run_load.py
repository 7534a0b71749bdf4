"""The one loader of trained runs (ccjax.run.load) that evaluate, predict and attention maps share,
and the Dataset protocol every source of examples implements.

Oracles: the full TrainState restored by the training side's Checkpointer (the loader must give
the same variables without the optimiser), the training run's own final evaluation (re-evaluating
must reproduce its metrics) and its per-example assignments (predicting a training image from a
PNG must give that example's cluster).
"""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from ccjax.data.dataset import Dataset, ImageDataset
from ccjax.train.state import ModelSetup
from ccjax.run.load import load_trained
from ccjax.run.rundir import BEST_CHECKPOINTS_DIR, CHECKPOINTS_DIR, read_run_info
from test_report import read_assignments, tiny_digits_config, trained_digits_run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return trained_digits_run(tmp_path_factory)[0]


def forbidden(*args, **kwargs):
    raise AssertionError("inference must not build an optimiser or training batches")


def test_loader_restores_the_checkpointed_variables_without_the_optimiser(digits_run):
    from ccjax.run.checkpoint import Checkpointer

    trained = load_trained(digits_run)
    assert set(trained.abstract) == {"step", "params", "model_state"}  # no opt_state
    restored = trained.restore_latest()
    info = read_run_info(digits_run)
    setup = ModelSetup.build(trained.config, info["num_clusters"], info["image_shape"], None, trained.mesh)
    ck = Checkpointer(os.path.join(digits_run, CHECKPOINTS_DIR), keep=1)
    step = ck.latest_step()
    full, _ = ck.restore(step, setup.abstract_state)
    ck.close()
    assert restored.step == step == int(full.step)
    want = {"params": full.params, **full.model_state}
    assert jax.tree.structure(restored.variables) == jax.tree.structure(want)
    for got, ref in zip(jax.tree.leaves(restored.variables), jax.tree.leaves(want)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
    best = trained.restore(BEST_CHECKPOINTS_DIR)
    assert best is not None and "loss" in best.meta
    assert trained.restore("no_such_dir") is None


def test_evaluate_and_predict_build_no_optimiser_and_reproduce_training(digits_run, tmp_path, monkeypatch):
    from ccjax.report.run_report import evaluate_workdir
    from ccjax.eval.predict import predict_files

    workdir = str(tmp_path / "run")
    shutil.copytree(digits_run, workdir)  # evaluation rewrites the report
    with open(os.path.join(digits_run, "metrics.json")) as f:
        trained_metrics = json.load(f)
    from ccjax.train import loop, state

    monkeypatch.setattr(state, "make_optimizer", forbidden)
    monkeypatch.setattr(loop, "TrainBatches", forbidden)

    result = evaluate_workdir(workdir, progress=False)
    for k in ("acc", "nmi", "ari", "step"):
        assert result[k] == pytest.approx(trained_metrics[k], abs=1e-12), k
    assert result["best_by_train_loss"]["step"] == trained_metrics["best_by_train_loss"]["step"]

    from ccjax.data import open_dataset

    dataset = open_dataset(load_trained(workdir).config.dataset)
    rows = read_assignments(os.path.join(digits_run, "report", "assignments.csv"))
    index = [5, 123, 1700]
    files = []
    for i in index:
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(dataset.read(np.array([i]))["image"][0, :, :, 0], mode="L").save(path)
        files.append(str(path))
    # The 16-bit twin of example 5 (the same levels x 257) is predicted exactly like its 8-bit original.
    twin = tmp_path / "digit5_16bit.png"
    pixels = dataset.read(np.array([index[0]]))["image"][0, :, :, 0].astype(np.uint16) * 257
    Image.fromarray(pixels).save(twin)
    files.append(str(twin))
    probs, ok, skipped = predict_files(workdir, files)
    assert ok == sorted(files) and not skipped
    by_file = dict(zip(ok, probs.argmax(1)))
    for i, f in zip(index, files):
        assert by_file[f] == int(rows[i]["cluster"]), i
    prob = dict(zip(ok, probs))
    np.testing.assert_array_equal(prob[str(twin)], prob[files[0]])


def test_every_source_of_examples_implements_the_dataset_protocol(tmp_path):
    from ccjax.data import open_dataset
    from ccjax.eval.predict import load_images

    digits = open_dataset(tiny_digits_config().dataset)  # a catalog dataset
    synthetic = ImageDataset.synthetic(12, (6, 5, 3), num_classes=4, seed=1)
    png = tmp_path / "x.png"
    Image.fromarray(np.full((9, 7, 3), 200, np.uint8)).save(png)
    images, ok, _ = load_images([str(png)], (8, 8, 1))
    predicted = ImageDataset("predict", images, None, None, ids=ok)
    for ds in (digits, synthetic, predicted):
        assert isinstance(ds, Dataset), ds
        idx = np.array([0, ds.num_examples - 1])
        ex = ds.read(idx)
        assert ex["image"].dtype == np.uint8 and ex["image"].shape == (2, *ds.image_shape)
        assert ex["label"].dtype == np.int32 and ex["index"].tolist() == idx.tolist()
        assert len(ds.example_ids(idx)) == 2
    assert synthetic.read(np.arange(12))["label"].tolist() == [i % 4 for i in range(12)]
    assert predicted.num_classes is None and predicted.read(np.array([0]))["label"].tolist() == [-1]
    assert predicted.example_ids([0]) == [str(png)]
    assert images.shape == (1, 8, 8, 1) and int(images[0, 0, 0, 0]) == 200  # RGB gray -> L, resized

    class NoIds:
        name, num_examples, image_shape, num_classes, class_names = "x", 1, (1, 1, 1), None, None

        def read(self, indices):
            return {}

    assert not isinstance(NoIds(), Dataset)
