"""The real configs, end to end, on faked datasets: a couple of train steps, evaluation, report.

Catalog datasets come from `tfds.testing.mock_data` (read through the same
`tfds.data_source` path as real data); folder-based ones from generated
folders. The models are shrunk (a tiny ConvNet, 8x8 crops) so that each run
costs seconds; everything else is the config file's own.
"""

import importlib.util
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from ccjax import train
from ccjax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def shrink(c, data_dir: str, batch: int = 8):
    """A tiny model and batch on top of a paper config: 2 steps of one epoch on 16 examples."""
    c.dataset.data_dir = data_dir
    if c.model.backbone != "vit":
        c.model.backbone = "convnet"
        c.model.convnet_width = 4
    c.model.feature_dim = 8
    c.augment.image_size = 8
    c.batch_size = batch
    c.eval.batch_size = batch
    c.num_epochs = 1
    c.eval.every_epochs = 0
    c.checkpoint.every_epochs = 1
    c.log_every_steps = 1
    c.progress_bar = False
    return c


def run_two_steps(c, workdir):
    """One epoch (at least two steps) through train_and_evaluate; checks the history and the report."""
    result = train.train_and_evaluate(c, workdir)
    hist = [json.loads(l) for l in open(os.path.join(workdir, "history.jsonl"))]
    assert hist[-1]["step"] >= 2 and hist[-1]["epoch"] == 1 and np.isfinite(hist[-1]["loss"])
    assert os.path.exists(os.path.join(workdir, "report", "assignments.csv"))
    return result


@pytest.mark.slow
def test_cc_cifar10_two_steps_under_mock_data(tmp_path):
    c = shrink(load_config("cc_cifar10"), str(tmp_path / "data"))
    with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
        result = run_two_steps(c, str(tmp_path / "run"))
    # CIFAR-10: train + test (8 mock examples each), 10 clusters, labels known.
    assert result["num_examples"] == 16 and result["num_clusters"] == 10
    assert 0.0 <= result["acc"] <= 1.0


def test_gecc_cifar10_without_data_names_the_fix(tmp_path):
    c = load_config("gecc_cifar10")
    c.dataset.data_dir = str(tmp_path / "empty")
    with pytest.raises(UserError, match="python -m ccjax prepare --dataset=cifar10"):
        train.train_and_evaluate(c, str(tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    # Each reference view trains end to end: the paper's own (CDSM with both weights) in
    # test_cifar100_uses_the_20_superclasses (gecc_cifar100 is that setting), the others here; the
    # weights switches (none, wc, wz) change only the loss, which tests/test_gecc_oracle.py checks
    # for every reference x weights pair.
    [{"reference": "aug"}, {"reference": "dsu", "weights": "none"}],
    ids=["w_aug", "w_dsu_wo_w"],
)
def test_gecc_ablations_under_mock_data(tmp_path, overrides):
    c = shrink(load_config("gecc_cifar10"), str(tmp_path / "data"))
    for k, v in overrides.items():
        setattr(c.gecc, k, v)
    with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
        run_two_steps(c, str(tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "config_name, splits, clusters",
    [("gecc_cifar100", 2, 20)],
)
def test_cifar100_uses_the_20_superclasses(tmp_path, config_name, splits, clusters):
    c = shrink(load_config(config_name), str(tmp_path / "data"))
    # 12 mock examples per split: at least as many images as the 20 clusters (a K above N is refused).
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        result = run_two_steps(c, str(tmp_path / "run"))
    assert result["num_examples"] == 12 * splits and result["num_clusters"] == clusters


@pytest.mark.slow
@pytest.mark.parametrize("name, clusters", [("stl10", 10), ("uc_merced", 21)])
def test_catalog_datasets_train_under_mock_data(tmp_path, name, clusters):
    c = shrink(load_config("cc_cifar10"), str(tmp_path / "data"))
    c.dataset.name = name
    if name == "uc_merced":
        c.dataset.image_size = 16
    # STL-10: 2 splits of 8 (2 steps of 8); UC Merced: one split of 24, at least its 21 clusters.
    per_split = 24 if name == "uc_merced" else 8
    with tfds.testing.mock_data(num_examples=per_split, policy=tfds.testing.MockPolicy.USE_CODE):
        result = run_two_steps(c, str(tmp_path / "run"))
    assert result["num_clusters"] == clusters


def write_folder(root, classes, per_class=4, size=12, flat=False):
    rng = np.random.default_rng(0)
    for k in range(classes):
        d = root if flat else os.path.join(root, f"class_{k:02d}")
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(os.path.join(d, f"img_{k}_{i}.png"))


@pytest.mark.slow
# A named folder dataset (aid: 30 classes, more clusters than the batch) and any folder train end
# to end; rsod's and siri_whu's own preparation rules are tests/test_data_folders.py's
# test_named_folder_datasets (their training path is aid's).
@pytest.mark.parametrize("name, classes", [("aid", 30), ("folder", 3)])
def test_folder_datasets_train(tmp_path, name, classes):
    from ccjax.data import prepare_dataset

    src = str(tmp_path / "images")
    write_folder(src, classes, per_class=max(2, -(-16 // classes)))
    c = shrink(load_config("cc_cifar10"), str(tmp_path / "data"))
    if name == "folder":
        c.dataset.name = f"folder:{src}"
    else:
        c.dataset.name = name
        c.dataset.manual_dir = src
    c.dataset.image_size = 12
    prepare_dataset(c.dataset)
    result = run_two_steps(c, str(tmp_path / "run"))
    assert result["num_clusters"] == classes and "acc" in result


@pytest.mark.slow
def test_unlabeled_folder_trains_and_reports_label_free_diagnostics(tmp_path):
    src = str(tmp_path / "flat")
    write_folder(src, 1, per_class=16, flat=True)
    c = shrink(load_config("cc_cifar10"), str(tmp_path / "data"))
    c.dataset.name = f"folder:{src}"
    c.dataset.image_size = 12
    with pytest.raises(UserError, match="num_clusters"):
        train.train_and_evaluate(c, str(tmp_path / "run0"))
    c.dataset.num_clusters = 3
    result = run_two_steps(c, str(tmp_path / "run"))
    assert "acc" not in result and len(result["cluster_sizes"]) == 3
    rows = open(os.path.join(tmp_path, "run", "report", "assignments.csv")).read().splitlines()
    assert rows[0] == "id,cluster,probability" and len(rows) == 17


@pytest.mark.slow
@pytest.mark.parametrize("config_name, classes", [("gecc_imagenet10", 10), ("cc_imagenet_dogs", 15)])
def test_imagenet_subsets_train_from_a_fake_manual_download(tmp_path, config_name, classes):
    import test_data_fakes
    from ccjax.data import prepare_dataset
    from ccjax.data.imagenet import subset_classes

    c = shrink(load_config(config_name), str(tmp_path / "data"))
    manual = str(tmp_path / "imagenet")
    test_data_fakes.imagenet_folders(manual, [w for w, _ in subset_classes(c.dataset.name)], per_class=2)
    c.dataset.manual_dir = manual
    c.dataset.image_size = 12
    prepare_dataset(c.dataset)
    result = run_two_steps(c, str(tmp_path / "run"))
    assert result["num_clusters"] == classes and result["num_examples"] == 2 * classes
