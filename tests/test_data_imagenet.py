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


def _scan_list(path, wnids, names):
    """A class list in SCAN's format: `<wnid> <class name>` per line."""
    with open(path, "w") as f:
        f.writelines(f"{w} {n}\n" for w, n in zip(wnids, names))


def test_scan_subset_reads_the_users_class_list_in_its_order(tmp_path):
    """ImageNet-50 (SCAN): the class list is the user's copy of SCAN's file; labels follow its order
    (not wnid order), its names become the class names (a repeated name gets its wnid), and nothing
    outside the list is read."""
    wnids = [f"n{9000000 - 7 * i:08d}" for i in range(50)]  # descending: list order != sorted order
    names = [f"Class {i}" for i in range(49)] + ["Class 3"]  # ImageNet repeats names ('crane')
    manual = tmp_path / "imagenet"
    data_fakes.imagenet_folders(str(manual), wnids + ["n01440764"], per_class=1)
    data_dir = str(tmp_path / "tfds")
    cfg = dataset_config("imagenet50", data_dir=data_dir, manual_dir=str(manual), image_size=8)
    with pytest.raises(UserError) as e:  # no list yet: one line saying which file, from where, to where
        prepare_dataset(cfg)
    msg = str(e.value)
    assert "\n" not in msg and "imagenet_50.txt" in msg and "wvangansbeke/Unsupervised-Classification" in msg
    assert str(manual / "imagenet_50.txt") in msg

    (manual / "imagenet_subsets").mkdir()
    _scan_list(manual / "imagenet_subsets" / "imagenet_50.txt", wnids[:49], names[:49])
    with pytest.raises(UserError, match="lists 49 classes"):
        prepare_dataset(cfg)
    _scan_list(manual / "imagenet_subsets" / "imagenet_50.txt", wnids, names)
    assert "prepared 50 images" in prepare_dataset(cfg)
    ds = open_dataset(dataset_config("imagenet50", data_dir=data_dir, image_size=8))
    assert ds.num_classes == 50 and ds.class_names[:2] == ["Class 0", "Class 1"]
    assert ds.class_names[3] == f"Class 3 ({wnids[3]})" and ds.class_names[49] == f"Class 3 ({wnids[49]})"
    ids = ds.example_ids(range(50))
    assert [i.split("/")[0] for i in ids] == wnids
    np.testing.assert_array_equal(ds.read(np.arange(50))["label"], np.arange(50))


def test_scan_class_list_lines_must_start_with_a_wordnet_id(tmp_path):
    from ccjax.data.imagenet import parse_class_list

    assert parse_class_list("# comment\nn01601694 Dipper\nn01669191\tBox Turtle\n") == [
        ("n01601694", "Dipper"), ("n01669191", "Box Turtle")]
    with pytest.raises(UserError, match="WordNet id"):
        parse_class_list("Dipper n01601694\n")
