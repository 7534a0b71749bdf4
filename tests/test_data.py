"""Datasets: the embedded digits, the TFDS catalog under mock_data, names and errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

from ccjax.data import dataset_names, dataset_spec, open_dataset, prepare_dataset
from ccjax.data.dataset import ImageDataset
from ccjax.errors import UserError
from ccjax.cli.prepare import dataset_config


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def test_digits_prepares_and_reads_back_sklearn_pixels(digits_dir):
    ds = open_dataset(dataset_config("digits", data_dir=digits_dir))
    ref = load_digits()
    assert (ds.num_examples, ds.image_shape, ds.num_classes) == (1797, (8, 8, 1), 10)
    assert ds.class_names == [str(i) for i in range(10)]
    idx = np.arange(ds.num_examples)
    batch = ds.read(idx)
    # Oracle: sklearn's 0..16 values scaled to 0..255 and rounded; example i is sklearn's row i.
    expected = np.rint(ref.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    assert batch["image"].dtype == np.uint8 and batch["image"].shape == (1797, 8, 8, 1)
    np.testing.assert_array_equal(batch["image"], expected)
    np.testing.assert_array_equal(batch["label"], ref.target)
    assert batch["label"].dtype == np.int32 and batch["index"].dtype == np.int32
    assert ds.example_ids([0, 1796]) == ["0000", "1796"]
    # Fancy indexing with repeats and arbitrary order.
    sel = np.array([5, 0, 5, 1796])
    b = ds.read(sel)
    np.testing.assert_array_equal(b["image"], expected[sel])
    np.testing.assert_array_equal(b["index"], sel)


def test_digits_second_open_reuses_the_prepared_files(digits_dir):
    info = tfds.builder_from_directory(f"{digits_dir}/ccjax_digits/1.0.0").info
    assert info.file_format.value == "array_record"
    before = sorted(p.name for p in (tfds.core.Path(digits_dir) / "ccjax_digits" / "1.0.0").iterdir())
    ds = open_dataset(dataset_config("digits", data_dir=digits_dir))
    after = sorted(p.name for p in (tfds.core.Path(digits_dir) / "ccjax_digits" / "1.0.0").iterdir())
    assert before == after and ds.num_examples == 1797


def test_digits_resized_storage(digits_dir):
    ds = open_dataset(dataset_config("digits", data_dir=digits_dir, image_size=12))
    assert ds.image_shape == (12, 12, 1)


def test_data_dir_defaults_to_tfds_data_dir_env(monkeypatch, digits_dir):
    monkeypatch.setenv("TFDS_DATA_DIR", digits_dir)
    cfg = dataset_config("digits")
    assert cfg.data_dir is None
    assert open_dataset(cfg).num_examples == 1797


@pytest.mark.parametrize(
    "name, tfds_label, classes, splits",
    [("cifar10", "label", 10, 2), ("cifar100_20", "coarse_label", 20, 2), ("stl10", "label", 10, 2),
     ("uc_merced", "label", 21, 1), ("imagenet1k", "label", 1000, 1)],
)
def test_catalog_datasets_under_mock_data(tmp_path, name, tfds_label, classes, splits):
    n = 6
    varying = name in ("uc_merced", "imagenet1k")  # images of varying size: resized as they are read
    cfg = dataset_config(name, data_dir=str(tmp_path), image_size=16 if varying else 0)
    with tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = open_dataset(cfg)
        # Streamed (read in this process: mock_data's sources exist only here) it reads the same.
        cfg.in_memory, cfg.stream_workers = "false", 0
        streamed = open_dataset(cfg)
        assert streamed.how_opened.startswith("streamed")
        all_idx = np.arange(ds.num_examples)
        for k, v in streamed.read(all_idx).items():
            np.testing.assert_array_equal(v, ds.read(all_idx)[k], err_msg=k)
        tfds_name = {"cifar100_20": "cifar100", "imagenet1k": "imagenet2012"}.get(name, name)
        raw = [ex for s in (["train", "test"][:splits]) for ex in
               tfds.data_source(tfds_name, split=s, data_dir=str(tmp_path))]
    assert ds.num_examples == n * splits
    assert ds.num_classes == classes and len(ds.class_names) == classes
    batch = ds.read(np.arange(ds.num_examples))
    # The label field is the paper's target (CIFAR-100: the 20 superclasses).
    np.testing.assert_array_equal(batch["label"], [int(ex[tfds_label]) for ex in raw])
    assert batch["label"].min() >= 0 and batch["label"].max() < classes
    if varying:
        assert ds.image_shape == (16, 16, 3)
    else:
        assert ds.image_shape == raw[0]["image"].shape
        np.testing.assert_array_equal(batch["image"], np.stack([ex["image"] for ex in raw]))


def test_stl10_unlabelled_split_is_appended_with_label_minus_one(tmp_path):
    cfg = dataset_config("stl10", data_dir=str(tmp_path))
    cfg.use_unlabeled = True
    with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = open_dataset(cfg)
    labels = ds.read(np.arange(ds.num_examples))["label"]
    assert ds.num_examples == 12 and ds.num_classes == 10
    assert (labels[:8] >= 0).all() and (labels[8:] == -1).all()
    assert dataset_spec(cfg)["num_examples"] == 113000


def test_unprepared_catalog_dataset_is_one_line_naming_the_command(tmp_path):
    with pytest.raises(UserError) as e:
        open_dataset(dataset_config("cifar10", data_dir=str(tmp_path)))
    msg = str(e.value)
    assert "\n" not in msg and f"python -m ccjax prepare --dataset=cifar10 --data_dir={tmp_path}" in msg
    assert not (tmp_path / "downloads").exists() or not any((tmp_path / "downloads").rglob("*.tar.gz"))


@pytest.mark.parametrize("name", ["rsod", "siri_whu", "aid", "imagenet10", "imagenet_dogs"])
def test_unprepared_manual_dataset_names_download_and_command(tmp_path, name):
    with pytest.raises(UserError) as e:
        open_dataset(dataset_config(name, data_dir=str(tmp_path)))
    msg = str(e.value)
    assert "\n" not in msg and "download" in msg
    assert f"python -m ccjax prepare --dataset={name}" in msg and "--manual_dir=" in msg


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(UserError) as e:
        open_dataset(dataset_config("no_such_set"))
    msg = str(e.value)
    assert "unknown dataset" in msg and all(n in msg for n in dataset_names()) and "folder:<path>" in msg


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        open_dataset(dataset_config(f"folder:{tmp_path}/nope", data_dir=str(tmp_path)))


def test_spec_without_reading_images():
    assert dataset_spec(dataset_config("cifar10")) == dict(image_shape=(32, 32, 3), num_classes=10,
                                                         num_examples=60000)
    assert dataset_spec(dataset_config("imagenet_dogs"))["image_shape"] == (224, 224, 3)
    assert dataset_spec(dataset_config("aid", image_size=256)) == dict(
        image_shape=(256, 256, 3), num_classes=30, num_examples=10000)
    assert dataset_spec(dataset_config("uc_merced"))["image_shape"] == (256, 256, 3)


def test_image_dataset_unlabelled_and_ids():
    imgs = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
    ds = ImageDataset("x", imgs, None, None)
    b = ds.read(np.array([2, 0]))
    assert ds.num_classes is None and b["label"].tolist() == [-1, -1]
    assert ds.example_ids([2]) == ["2"]
    np.testing.assert_array_equal(b["image"], imgs[[2, 0]])


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed")
def test_preparing_a_catalog_dataset_without_tensorflow_says_how_to_install_it(tmp_path):
    # The archive is at hand (as the offline advice says to supply it), so no download is tried first.
    (tmp_path / "downloads" / "manual").mkdir(parents=True)
    (tmp_path / "downloads" / "manual" / "cifar-100-binary.tar.gz").write_bytes(b"archive")
    with pytest.raises(UserError) as e:
        prepare_dataset(dataset_config("cifar100_20", data_dir=str(tmp_path)))
    assert "pip install 'ccjax[tensorflow]'" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "cifar100").exists()  # nothing downloaded or half-written
