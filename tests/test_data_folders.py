"""Image folders: real-world oddities, labelled/unlabelled layouts, named folder datasets, atomicity."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import test_data_fakes as data_fakes
from ccjax.data import builder as builder_lib
from ccjax.data import open_dataset, prepare_dataset
from ccjax.errors import UserError
from ccjax.cli.prepare import dataset_config


def _prepared_dir(data_dir) -> str:
    (cfg_dir,) = os.listdir(os.path.join(data_dir, builder_lib.TFDS_NAME))
    return os.path.join(data_dir, builder_lib.TFDS_NAME, cfg_dir, builder_lib.VERSION)


def _report(data_dir) -> dict[str, str]:
    lines = open(os.path.join(_prepared_dir(data_dir), builder_lib.REPORT_FILE)).read().splitlines()
    assert lines[0] == "file\treason"
    return dict(line.split("\t", 1) for line in lines[1:])


def test_folder_with_every_oddity_prepares_reports_and_reads_back(tmp_path):
    root, data_dir = str(tmp_path / "imgs"), str(tmp_path / "tfds")
    expected = data_fakes.odd_folder(root, side=16)
    cfg = dataset_config(f"folder:{root}", data_dir=data_dir, image_size=16)
    line = prepare_dataset(cfg)
    assert "10 images" in line and "6 files skipped" in line

    skipped = _report(data_dir)
    assert set(skipped) == {k for k, v in expected.items() if v is None}
    assert skipped["car/bomb.png"].startswith("refused: decompression bomb")
    assert skipped["car/truncated.jpg"].startswith("corrupt or truncated")
    assert skipped["car/empty.png"] == "empty file"
    assert skipped["car/notes.txt"] == "not an image" and skipped["car/garbage.jpg"] == "not an image"
    assert skipped["README.txt"] == "outside the class folders"
    summary = json.load(open(os.path.join(_prepared_dir(data_dir), builder_lib.SUMMARY_FILE)))
    assert summary["class_names"] == ["airplane", "boat", "car"] and summary["num_skipped"] == 6

    ds = open_dataset(cfg)
    assert ds.class_names == ["airplane", "boat", "car"]  # sorted sub-folder names
    assert ds.image_shape == (16, 16, 3) and ds.num_examples == 10
    ids = ds.example_ids(range(ds.num_examples))
    assert ids == sorted(k for k, v in expected.items() if v is not None)  # class then file order
    batch = ds.read(np.arange(ds.num_examples))
    classes = {"airplane": 0, "boat": 1, "car": 2}
    for i, f in enumerate(ids):
        assert batch["label"][i] == classes[f.split("/")[0]]
        if isinstance(expected[f], np.ndarray):  # lossless sources: exact RGB conversion
            np.testing.assert_array_equal(batch["image"][i], expected[f], err_msg=f)
    # A JPEG stored at twice/three times the side is resized to 16x16, not skipped.
    jpg = Image.open(os.path.join(root, "airplane/photo.jpg")).convert("RGB").resize((16, 16), Image.BICUBIC)
    diff = np.abs(batch["image"][ids.index("airplane/photo.jpg")].astype(int) - np.asarray(jpg, int))
    assert diff.mean() < 12  # draft-mode JPEG decoding differs slightly from a full decode


def test_preparing_twice_is_a_no_op(tmp_path):
    root, data_dir = str(tmp_path / "imgs"), str(tmp_path / "tfds")
    for i in range(3):
        data_fakes.save(Image.fromarray(data_fakes.rgb(i, 8, 8)), f"{root}/c{i % 2}/{i}.png", "PNG")
    cfg = dataset_config(f"folder:{root}", data_dir=data_dir)
    prepare_dataset(cfg)
    d = _prepared_dir(data_dir)
    stamp = {f: os.stat(os.path.join(d, f)).st_mtime_ns for f in os.listdir(d)}
    assert "already prepared" in prepare_dataset(cfg)
    assert {f: os.stat(os.path.join(d, f)).st_mtime_ns for f in os.listdir(d)} == stamp


def test_native_size_is_the_most_common_and_flat_folder_is_unlabelled(tmp_path):
    root, data_dir = str(tmp_path / "flat"), str(tmp_path / "tfds")
    shapes = [(10, 12), (10, 12), (10, 12), (7, 7)]
    for i, (h, w) in enumerate(shapes):
        data_fakes.save(Image.fromarray(data_fakes.rgb(i, h, w)), f"{root}/img{i}.png", "PNG")
    cfg = dataset_config(f"folder:{root}", data_dir=data_dir)  # image_size 0: native
    with pytest.raises(UserError, match="num_clusters"):
        open_dataset(cfg)  # unlabelled data needs the number of clusters
    cfg.num_clusters = 3
    ds = open_dataset(cfg)  # a local folder is prepared on first open
    assert ds.num_classes is None and ds.class_names is None
    assert ds.image_shape == (10, 12, 3) and ds.num_examples == 4
    b = ds.read(np.arange(4))
    assert (b["label"] == -1).all()
    np.testing.assert_array_equal(b["image"][0], data_fakes.rgb(0, 10, 12))
    assert ds.example_ids([0, 3]) == ["img0.png", "img3.png"]


def test_interrupted_preparation_leaves_nothing_taken_for_complete(tmp_path, monkeypatch):
    root, data_dir = str(tmp_path / "imgs"), str(tmp_path / "tfds")
    for i in range(6):
        data_fakes.save(Image.fromarray(data_fakes.rgb(i, 8, 8)), f"{root}/c{i % 2}/{i}.png", "PNG")
    cfg = dataset_config(f"folder:{root}", data_dir=data_dir)
    original, calls = builder_lib._load, []

    def crashing_load(item, size):
        calls.append(item)
        if len(calls) == 4:
            raise RuntimeError("simulated crash mid-preparation")
        return original(item, size)

    monkeypatch.setattr(builder_lib, "_load", crashing_load)
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare_dataset(cfg)
    name = builder_lib.config_name(cfg.name, 0, root)
    assert not builder_lib.is_prepared(data_dir, name)
    assert not builder_lib.prepared_path(data_dir, name).exists()
    # A hard kill leaves TFDS's temporary folder behind; it must not count either.
    leftover = builder_lib.prepared_path(data_dir, name).parent / "incomplete.ABC123_1.0.0"
    leftover.mkdir(parents=True)
    (leftover / "dataset_info.json").write_text("{}")
    assert not builder_lib.is_prepared(data_dir, name)

    monkeypatch.setattr(builder_lib, "_load", original)
    assert "prepared 6 images" in prepare_dataset(cfg)
    assert open_dataset(cfg).num_examples == 6


def _named_folder(root: str, classes: list[str], nest: str = "") -> None:
    for k, c in enumerate(classes):
        for i in range(2):
            sub = f"{c}/JPEGImages" if nest == "rsod" else c
            data_fakes.save(Image.fromarray(data_fakes.rgb(10 * k + i, 9, 11)), f"{root}/{sub}/{c}_{i}.jpg", "JPEG")
        if nest == "rsod":  # RSOD keeps XML annotations beside the images
            os.makedirs(f"{root}/{c}/Annotations", exist_ok=True)
            open(f"{root}/{c}/Annotations/{c}_0.xml", "w").write("<annotation/>")


@pytest.mark.parametrize("name, num_classes", [("rsod", 4), ("siri_whu", 12), ("aid", 30)])
def test_named_folder_datasets(tmp_path, name, num_classes):
    classes = [f"class{k:02d}" for k in range(num_classes)]
    extracted = str(tmp_path / "download" / "Extracted" / "inner")  # lone sub-folders are followed
    _named_folder(extracted, classes, nest="rsod" if name == "rsod" else "")
    data_dir = str(tmp_path / "tfds")
    cfg = dataset_config(name, data_dir=data_dir, manual_dir=str(tmp_path / "download"), image_size=8)
    prepare_dataset(cfg)
    ds = open_dataset(dataset_config(name, data_dir=data_dir, image_size=8))  # no manual_dir needed now
    assert ds.num_classes == num_classes and ds.class_names == classes
    assert ds.num_examples == 2 * num_classes and ds.image_shape == (8, 8, 3)
    np.testing.assert_array_equal(ds.read(np.arange(ds.num_examples))["label"], np.repeat(np.arange(num_classes), 2))
    if name == "rsod":
        assert all(r == "not an image" for r in _report(data_dir).values()) and len(_report(data_dir)) == 4


def test_named_folder_with_wrong_class_count_says_so(tmp_path):
    _named_folder(str(tmp_path / "x"), ["a", "b", "c"])
    cfg = dataset_config("rsod", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "x"))
    with pytest.raises(UserError, match="rsod has 4 classes but .* has 3 class sub-folders"):
        prepare_dataset(cfg)


def test_folder_without_images_is_a_user_error(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    (tmp_path / "empty" / "cls" / "a.txt").write_text("x")
    with pytest.raises(UserError, match="no readable images"):
        prepare_dataset(dataset_config(f"folder:{tmp_path / 'empty'}", data_dir=str(tmp_path / "tfds")))


def test_bomb_limit_follows_pil_setting(monkeypatch):
    from ccjax.data.images import ImageSkipped, decode_image

    small = data_fakes.png_bytes(Image.fromarray(data_fakes.rgb(0, 12, 12)))  # 144 pixels
    assert decode_image(small, None).shape == (12, 12, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 144 > 100: PIL only warns; ccjax refuses
    with pytest.raises(ImageSkipped, match="decompression bomb"):
        decode_image(small, None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 144 > 2 x 50: PIL's own error
    with pytest.raises(ImageSkipped, match="decompression bomb"):
        decode_image(small, (4, 4))
