"""ImageNet-10 / ImageNet-Dogs from fake manual directories laid out like the real ImageNet."""

from __future__ import annotations

import numpy as np
import pytest

import test_data_fakes as data_fakes
from ccjax.data import open_dataset, prepare_dataset
from ccjax.data.imagenet import subset_classes
from ccjax.errors import UserError
from ccjax.cli.prepare import dataset_config

# The DAC/CC/GeCC class lists (see ccjax/data/resources/*.txt for the source).
IMAGENET10 = ["n02056570", "n02085936", "n02128757", "n02690373", "n02692877",
              "n03095699", "n04254680", "n04285008", "n04467665", "n07747607"]
DOGS = ["n02085936", "n02086646", "n02088238", "n02091467", "n02097130", "n02099601", "n02101388",
        "n02101556", "n02102177", "n02105056", "n02105412", "n02105855", "n02107142", "n02110958",
        "n02112137"]


def test_class_lists():
    assert [w for w, _ in subset_classes("imagenet10")] == IMAGENET10
    assert [w for w, _ in subset_classes("imagenet_dogs")] == DOGS
    assert dict(subset_classes("imagenet10"))["n02128757"] == "snow leopard"
    assert dict(subset_classes("imagenet_dogs"))["n02112137"] == "chow"


def test_imagenet10_from_extracted_train_folders(tmp_path):
    manual = str(tmp_path / "imagenet")
    data_fakes.imagenet_folders(manual, IMAGENET10 + ["n01440764"], per_class=2)  # plus an unrelated class
    data_dir = str(tmp_path / "tfds")
    line = prepare_dataset(dataset_config("imagenet10", data_dir=data_dir, manual_dir=manual, image_size=8))
    assert "prepared 20 images" in line and "0 files skipped" in line  # CMYK and PNG-as-JPEG are fine
    ds = open_dataset(dataset_config("imagenet10", data_dir=data_dir, image_size=8))
    assert ds.num_classes == 10 and ds.class_names[0] == "king penguin"
    assert ds.image_shape == (8, 8, 3) and ds.num_examples == 20
    ids = ds.example_ids(range(20))
    assert ids[:3] == ["n02056570/n02056570_0.JPEG", "n02056570/n02056570_1.JPEG", "n02085936/n02085936_0.JPEG"]
    labels = ds.read(np.arange(20))["label"]
    np.testing.assert_array_equal(labels, [IMAGENET10.index(i.split("/")[0]) for i in ids])


def test_imagenet_dogs_same_from_official_tar_and_per_wnid_tars(tmp_path):
    outer, per_wnid = str(tmp_path / "outer"), str(tmp_path / "per_wnid")
    data_fakes.imagenet_tars(outer, DOGS, per_class=2, outer=True)
    data_fakes.imagenet_tars(per_wnid, DOGS, per_class=2, outer=False)
    opened = []
    for k, manual in enumerate([outer, per_wnid]):
        cfg = dataset_config("imagenet_dogs", data_dir=str(tmp_path / f"tfds{k}"), manual_dir=manual, image_size=8)
        opened.append(open_dataset(cfg))  # manual_dir given: prepared on first open
    a, b = opened
    assert a.num_classes == 15 and a.num_examples == 30
    np.testing.assert_array_equal(a.read(np.arange(30))["label"], np.repeat(np.arange(15), 2))
    assert a.example_ids(range(30)) == b.example_ids(range(30))
    assert a.example_ids([0, 1]) == ["n02085936/n02085936_0.JPEG", "n02085936/n02085936_1.JPEG"]
    np.testing.assert_array_equal(a.images, b.images)


def test_default_storage_size_is_224(tmp_path):
    manual = str(tmp_path / "imagenet")
    data_fakes.imagenet_folders(manual, IMAGENET10, per_class=1)
    ds = open_dataset(dataset_config("imagenet10", data_dir=str(tmp_path / "tfds"), manual_dir=manual))
    assert ds.image_shape == (224, 224, 3)


def test_missing_or_incomplete_manual_dir(tmp_path):
    data_dir = str(tmp_path / "tfds")
    with pytest.raises(UserError, match="ILSVRC2012_img_train.tar") as e:
        prepare_dataset(dataset_config("imagenet10", data_dir=data_dir))
    assert "\n" not in str(e.value) and "--manual_dir" in str(e.value)
    manual = str(tmp_path / "partial")
    data_fakes.imagenet_folders(manual, IMAGENET10[:7], per_class=1)
    with pytest.raises(UserError, match=r"3 of its 10 ImageNet classes are not in .*n04285008"):
        prepare_dataset(dataset_config("imagenet10", data_dir=data_dir, manual_dir=manual))
