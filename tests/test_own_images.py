"""Your own images: the *_images configs end to end on generated folders, the "What do the clusters
follow?" probe on cases whose answer is known, and choosing K without labels.

Oracles: the generated shapes are coloured at random, independently of their shape, so a run that
cannot see colour augmentations clusters by colour (the probe must say so and name the flags);
the probe's scores are checked against assignments built to follow one statistic; suggest_k against
features with a known number of groups.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ccjax.errors import UserError
from ccjax.explain import nuisance
from ccjax.eval.suggest_k import best_k, parse_range, suggest_k
from fakes import PALETTE, SHAPES, shapes_folder
from test_report import ROOT, check_real_plot, subprocess_env

TINY = dict(image_size=16, backbone="convnet", width=8)


def images_config(method: str, folder: str, data_dir: str, **overrides):
    """configs/<method>_images.py as the command line loads it, shrunk to CPU size (not its settings)."""
    spec = importlib.util.spec_from_file_location(f"cfg_{method}_images", os.path.join(ROOT, "configs",
                                                                                         f"{method}_images.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.dataset.name = f"folder:{folder}"
    c.dataset.data_dir = data_dir
    c.dataset.image_size = 16
    c.augment.image_size = 16
    c.num_epochs = 3
    c.batch_size = 64
    c.learning_rate = 1e-3
    c.checkpoint.every_epochs = 3
    c.progress_bar = False
    if method != "mfavbs":
        c.model.backbone, c.model.convnet_width = "convnet", 8
    for field, value in overrides.items():
        holder = c
        *path, last = field.split(".")
        for p in path:
            holder = getattr(holder, p)
        setattr(holder, last, value)
    return c


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    labelled = shapes_folder(str(root / "labelled"), per_class=48, size=16, labelled=True, seed=0)
    flat = shapes_folder(str(root / "flat"), per_class=32, size=16, labelled=False, seed=1)
    return root, labelled, flat


def test_cc_images_without_colour_augmentation_is_warned_that_its_clusters_follow_colour(shapes, tmp_path):
    from ccjax.train import train_and_evaluate

    root, _, _ = shapes
    config = images_config("cc", str(root / "labelled"), str(tmp_path / "tfds"),
                           **{"augment.jitter_p": 0.0, "augment.grayscale_p": 0.0, "num_epochs": 6})
    result = train_and_evaluate(config, str(tmp_path / "run"))
    with open(tmp_path / "run" / "report" / "nuisance.json") as f:
        report = json.load(f)
    assert report["beyond_labels"]["score"] >= nuisance.WARN_BEYOND_LABELS, report
    assert "colour" in report["named"] and report["clusters"]["families"]["colour"]["alone"] > 0.5
    assert "file_format" not in report["clusters"]["families"]  # all PNG: no information, left out
    (warning,) = result["nuisance_warnings"]
    assert "--config.augment.always_gray=true" in warning and "--config.augment.invert_p=0.5" in warning
    check_real_plot(str(tmp_path / "run" / "report" / "nuisance.png"), min_width=300, min_height=200)


@pytest.mark.slow
def test_gecc_images_on_a_flat_unlabelled_folder(shapes, tmp_path):
    from ccjax.train import train_and_evaluate

    root, _, flat = shapes
    config = images_config("gecc", str(root / "flat"), str(tmp_path / "tfds"), **{"dataset.num_clusters": 4})
    result = train_and_evaluate(config, str(tmp_path / "run"))
    assert result["num_examples"] == len(flat) and result["num_clusters"] == 4 and "acc" not in result
    with open(tmp_path / "run" / "report" / "nuisance.json") as f:
        report = json.load(f)
    assert report["labels"] is None and report["beyond_labels"] is None
    assert "colour" in report["clusters"]["families"]


def test_a_flat_folder_without_k_is_one_line(shapes, tmp_path):
    root, _, _ = shapes
    r = subprocess.run([sys.executable, "-m", "ccjax", "train", "--config=configs/cc_images.py",
                        f"--config.dataset.name=folder:{root / 'flat'}", f"--config.dataset.data_dir={tmp_path}",
                        f"--workdir={tmp_path / 'run'}"], cwd=ROOT, env=subprocess_env(), capture_output=True,
                       text=True, timeout=240)
    lines = [l for l in r.stderr.splitlines() if l.strip() and "Dataset ccjax" not in l]
    assert r.returncode == 2 and "--config.dataset.num_clusters=K" in lines[-1], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_mfavbs_images_with_the_tiny_local_clip(shapes, tmp_path):
    from ccjax.clip import make_tiny_clip
    from ccjax.train import train_and_evaluate

    root, _, _ = shapes
    clip = make_tiny_clip(str(tmp_path / "clip"), image_size=16, projection_dim=16)
    config = images_config("mfavbs", str(root / "labelled"), str(tmp_path / "tfds"), **{
        "anchor.model": clip, "anchor.cache_dir": str(tmp_path / "cache"), "model.vit.embed_dim": 16,
        "model.vit.depth": 2, "model.vit.num_heads": 2, "model.vit.num_fusing_blocks": 1,
        "model.vit.patch_size": 4, "num_epochs": 1, "checkpoint.every_epochs": 1})
    result = train_and_evaluate(config, str(tmp_path / "run"))
    assert result["num_clusters"] == 4 and 0.0 <= result["acc"] <= 1.0
    assert os.path.exists(tmp_path / "run" / "report" / "nuisance.json")


# ----------------------------------------------------------------------------- the probe, on known answers


def _shape_cues(items):
    """The probe's cues for the generated files (read as the dataset stores them)."""
    from PIL import Image

    from ccjax.data.dataset import ImageDataset
    from ccjax.explain.cues import image_cues

    images = np.stack([np.asarray(Image.open(p)) for p, _, _ in items])
    return image_cues(ImageDataset("shapes", images, None, None), np.arange(len(items)))


def test_probe_on_real_pixels_names_the_cue_the_clusters_follow_and_nothing_else(shapes):
    _, labelled, _ = shapes
    cues = _shape_cues(labelled)
    colour = np.array([c for _, _, c in labelled])
    shape = np.array([SHAPES.index(s) for _, s, _ in labelled])
    by_colour = nuisance.probe(colour, len(PALETTE), cues, labels=shape)
    assert by_colour["named"][0] == "colour" and by_colour["clusters"]["score"] > 0.9
    assert by_colour["labels"]["nmi"] < 0.1 and len(by_colour["warnings"]) == 1
    by_shape = nuisance.probe(shape, len(SHAPES), cues, labels=shape)
    assert by_shape["labels"]["nmi"] == pytest.approx(1.0) and not by_shape["warnings"]
    assert by_shape["beyond_labels"]["score"] < 0.1
    shuffled = nuisance.probe(np.random.default_rng(0).permutation(colour), 4, cues)
    assert not shuffled["warnings"] and abs(shuffled["clusters"]["score"]) < 0.15


def test_probe_reads_file_format_and_subfolder_from_the_source_files(tmp_path):
    from PIL import Image

    from ccjax.explain.cues import source_cues

    files = []
    for i in range(40):
        sub, fmt = ("cam_a", "jpg") if i % 2 else ("cam_b", "png")
        os.makedirs(tmp_path / sub, exist_ok=True)
        rel = os.path.join(sub, f"{i}.{fmt}")
        Image.fromarray(np.full((8 + i % 3, 8, 3), 100, np.uint8)).save(tmp_path / rel)
        files.append(rel)
    cues = source_cues(str(tmp_path), files, subfolders_are_labels=False)
    result = nuisance.probe(np.array([i % 2 for i in range(40)]), 2, cues)
    fam = result["clusters"]["families"]
    assert fam["file_format"]["alone"] == pytest.approx(1.0) and fam["subfolder"]["alone"] == pytest.approx(1.0)
    assert abs(fam["source_size"]["alone"]) < 0.5  # heights 8-10 cycle in threes: unrelated (40 images: noisy)
    (warning,) = result["warnings"]
    assert "ccjax knows no setting that removes" in warning and "file format" in warning


# ----------------------------------------------------------------------------- choosing K


def test_suggest_k_finds_the_number_of_groups_in_the_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 16))
    x = np.repeat(centres, 80, axis=0) + 0.15 * rng.normal(size=(480, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = suggest_k(x, list(range(2, 11)))
    assert best_k(rows) == 6
    assert [r["k"] for r in rows] == list(range(2, 11))
    assert all(-1 <= r["silhouette"] <= 1 and -1 <= r["stability"] <= 1 for r in rows)


@pytest.mark.parametrize("text", ["1:5", "5:3", "x", "2-30"])
def test_suggest_k_range_errors_are_one_line(text):
    with pytest.raises(UserError, match="--suggest_k"):
        parse_range(text)
    assert parse_range("2:4") == [2, 3, 4]
