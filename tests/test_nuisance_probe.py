"""The nuisance probe on small precomputed descriptors (no training, no images beyond a few by hand).

Oracles: groupings built to follow a cue or the content (the probe must warn on the first, stay
silent on the second, and stay silent when the labels themselves follow the cue); chance levels and
balanced accuracy by hand and against scikit-learn; descriptors of hand-drawn images; JPEG quality
against the quality PIL saved with; inputs that carry no information (one image kind, constant
images, more clusters than cue values, a handful of images) must neither crash nor warn.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from ccjax.explain import cues as C
from ccjax.explain import nuisance
from ccjax.explain.predictability import (
    balanced_accuracy,
    chance_levels,
    normalised_score,
    predictability,
)


def descriptors(cue: np.ndarray, content: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Precomputed cue families for images whose nuisance level is `cue` [n] and whose class is `content` [n]:
    colour follows the cue; sharpness leaks the content a little (as real cues do); texture is noise."""
    rng = np.random.default_rng(seed)
    n = len(cue)
    palette = rng.normal(size=(int(cue.max()) + 1, 4))
    return {"colour": palette[cue] + 0.3 * rng.normal(size=(n, 4)),
            "sharpness": 0.4 * content[:, None] + rng.normal(size=(n, 2)),
            "texture": rng.normal(size=(n, 2))}


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(1)
    n = 800
    cue, content = rng.integers(0, 4, n), rng.integers(0, 5, n)  # independent: a nuisance case
    return cue, content, descriptors(cue, content)


# ----------------------------------------------------------------------------- chance and scores


def test_chance_levels_and_balanced_accuracy_by_hand():
    y = np.array([0, 0, 0, 1])
    assert chance_levels(y) == {"majority": 0.75, "chance": 0.5}
    assert balanced_accuracy(y, np.array([0, 0, 0, 0])) == 0.5  # the majority answer: chance, not 0.75
    assert balanced_accuracy(y, np.array([0, 1, 0, 1])) == pytest.approx((2 / 3 + 1) / 2)
    assert normalised_score(0.5, 2) == 0.0 and normalised_score(1.0, 2) == 1.0
    assert normalised_score(0.55, 10) == pytest.approx(0.5)
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 6, 300), rng.integers(0, 7, 300)  # b predicts a group a lacks
    assert balanced_accuracy(a, b) == pytest.approx(balanced_accuracy_score(a, b))


def test_predictability_of_a_cue_made_grouping_and_of_a_random_one(case):
    cue, _, d = case
    made = predictability(d, cue)
    assert made["score"] > 0.9 and made["num_groups"] == 4 and made["folds"] == 5
    fam = made["families"]
    assert fam["colour"]["alone"] > 0.9 and abs(fam["texture"]["alone"]) < 0.1 and abs(fam["sharpness"]["alone"]) < 0.1
    assert fam["colour"]["importance"] > 0.5 and abs(fam["texture"]["importance"]) < 0.1
    assert made["majority"] == pytest.approx(np.bincount(cue).max() / len(cue))
    noise = predictability(d, np.random.default_rng(5).integers(0, 4, len(cue)))
    assert abs(noise["score"]) < 0.1  # a grouping unrelated to every cue: chance


# ----------------------------------------------------------------------------- the decision


def test_the_probe_warns_on_cue_driven_clusters_and_names_the_cue(case):
    cue, content, d = case
    for labels in (content, None):
        r = nuisance.probe(cue, 4, d, labels)
        assert r["named"] == ["colour"] and len(r["warnings"]) == 1, r
        assert "--config.augment.always_gray=true" in r["warnings"][0] and "chiefly the colours" in r["warnings"][0]
    assert r["clusters"]["score"] >= nuisance.WARN_SCORE
    labelled = nuisance.probe(cue, 4, d, content)
    assert labelled["beyond_labels"]["score"] >= nuisance.WARN_BEYOND_LABELS
    assert labelled["labels"]["nmi"] < 0.05


def test_the_probe_is_silent_on_content_driven_clusters_even_when_the_labels_follow_the_cue(case):
    cue, content, d = case
    for labels in (content, None):
        r = nuisance.probe(content, 5, d, labels)
        assert not r["warnings"] and r["clusters"]["score"] < nuisance.WARN_SCORE, r
    assert nuisance.probe(content, 5, d, content)["beyond_labels"]["score"] < 0.1
    follows = nuisance.probe(cue, 4, d, labels=cue)  # the classes ARE the colour: not a nuisance
    assert follows["clusters"]["score"] > 0.9 and not follows["warnings"]
    assert follows["beyond_labels"]["score"] < 0.1


def test_a_cue_without_a_known_remedy_says_so():
    rng = np.random.default_rng(2)
    cue = rng.integers(0, 3, 400)
    d = {"jpeg_quality": np.log2([5.0, 40.0, 95.0])[cue][:, None], "texture": rng.normal(size=(400, 2))}
    (w,) = nuisance.probe(cue, 3, d)["warnings"]
    assert "ccjax knows no setting that removes jpeg quality" in w and "retrain with" not in w


# ----------------------------------------------------------------------------- inputs that say nothing


def test_inputs_without_information_neither_crash_nor_warn():
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 10, 200)
    one_kind = C.pixel_cues(np.full((200, 8, 8, 3), 90, np.uint8))  # a single image kind: constant images
    r = nuisance.probe(pred, 10, one_kind, labels=rng.integers(0, 3, 200))
    assert r["clusters"]["score"] is None and "no cue varies" in r["clusters"]["reason"] and not r["warnings"]
    two_values = {"file_format": C._one_hot(np.array(["png", "jpg"])[rng.integers(0, 2, 200)])}
    r = nuisance.probe(pred, 10, two_values)  # K = 10 clusters, 2 distinct cue values, unrelated
    assert abs(r["clusters"]["score"]) < 0.15 and not r["warnings"]
    tiny = nuisance.probe(np.array([0, 0, 0, 1, 1, 1, 1, 2, 3]), 4, {"colour": rng.normal(size=(9, 2))})
    assert tiny["clusters"]["folds"] == 3 and tiny["clusters"]["num_groups"] == 2 and not tiny["warnings"]
    fewer = nuisance.probe(np.array([0, 0, 1, 1, 1, 2, 3]), 4, {"colour": rng.normal(size=(7, 2))})
    assert fewer["clusters"]["score"] is None and not fewer["warnings"]  # fewer images per cluster than folds
    single = nuisance.probe(np.zeros(50, int), 4, {"colour": rng.normal(size=(50, 2))})
    assert single["clusters"]["score"] is None and not single["warnings"]


# ----------------------------------------------------------------------------- descriptors by hand


def test_pixel_cues_of_hand_drawn_images():
    img = np.zeros((3, 8, 8, 3), np.uint8)
    img[0, 3:5, 3:5] = 255  # white ink on black
    img[1] = 255 - img[0]  # black ink on white
    img[2] = (200, 40, 40)  # red ground, a green square
    img[2, 2:6, 2:6] = (40, 200, 40)
    c = C.pixel_cues(img)
    np.testing.assert_allclose(c["border"][:2], [[0, 0, 0], [1, 1, 1]], atol=1e-6)
    np.testing.assert_allclose(c["contrast"][:2, 0], [1.0, 1.0], atol=1e-6)
    np.testing.assert_array_equal(c["polarity"][:, 0], [1.0, -1.0, 1.0])  # green is the lighter (luma 0.59 R)
    red, green = np.array([200, 40, 40]) / 255.0, np.array([40, 200, 40]) / 255.0
    np.testing.assert_allclose(c["colour"][2, :2], [green[0] - green[1], (green[0] + green[1]) / 2 - green[2]],
                               atol=1e-6)  # the ink's chroma
    np.testing.assert_allclose(c["colour"][2, 2:], [red[0] - red[1], (red[0] + red[1]) / 2 - red[2]], atol=1e-6)
    np.testing.assert_allclose(c["saturation"][2], [1 - 40 / 200, 1 - 40 / 200], atol=1e-6)
    assert c["sharpness"][0, 0] == pytest.approx(1.0)  # a one-step edge: the steepest step is the contrast


def test_source_cues_read_format_quality_size_and_subfolder(tmp_path):
    files = []
    for i, (sub, fmt, q) in enumerate([("cam_a", "jpg", 20), ("cam_a", "jpg", 90), ("cam_b", "png", None)] * 2):
        os.makedirs(tmp_path / sub, exist_ok=True)
        rel = os.path.join(sub, f"{i}.{fmt}")
        img = Image.fromarray(np.random.default_rng(i).integers(0, 256, (16, 8 * (1 + i % 2), 3), dtype=np.uint8))
        img.save(tmp_path / rel, **({"quality": q} if q else {}))
        files.append(rel)
    s = C.source_cues(str(tmp_path), files, subfolders_are_labels=False)
    np.testing.assert_allclose(2 ** s["jpeg_quality"][:3, 0], [20, 90, 100], atol=1)  # PIL's own quality setting
    np.testing.assert_array_equal(s["file_format"][:3], [[1, 0], [1, 0], [0, 1]])  # columns: jpg, png
    np.testing.assert_allclose(s["source_size"][:2], [[4, 3], [4, 4]])  # log2 of (16, 8) and (16, 16)
    np.testing.assert_allclose(s["aspect_ratio"][:2, 0], [-1, 0])
    np.testing.assert_array_equal(s["subfolder"][:, 0], [1, 1, 0, 1, 1, 0])
