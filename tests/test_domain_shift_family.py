"""tools/domain_shift_family.py: the digit is independent of the nuisance, and the saved mask is the drawn digit."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import domain_shift_family as dsf  # noqa: E402
from nuisance_family import Content  # noqa: E402

N = 600  # digits per case in these tests (of 1,797)


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dsf"))
    return out, {k: dsf.write_case(out, k, seed=0, limit=N) for k in dsf.KINDS}


def _nuisance_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """5-fold cross-validated accuracy of a logistic regression predicting the label from `features`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    return float(cross_val_score(clf, features, labels, cv=cv).mean())


def _chance_bound(labels: np.ndarray) -> float:
    """The majority class's share plus 3 binomial standard errors of an accuracy over len(labels) images."""
    p = np.bincount(labels).max() / len(labels)
    return p + 3.0 * np.sqrt(p * (1 - p) / len(labels))


def test_label_is_unpredictable_from_the_nuisance(family):
    """A classifier on the nuisance alone (its level one-hot and the image painted without the digit)
    predicts the digit at chance. Catches a generator that draws the nuisance from the label (the control
    below shows the same classifier finds a level of label % 4)."""
    _, folders = family
    content = Content("digits", 0)
    labels = np.array([int(x) for x in content.labels[:N]])
    bound = _chance_bound(labels)
    for kind in dsf.KINDS:
        rng = np.random.default_rng([0, dsf.KINDS.index(kind), 32])  # write_case's stream, replayed
        nz = [dsf.draw_nuisance(kind, rng) for _ in range(N)]
        alone = np.stack([dsf.paint(kind, np.zeros((dsf.SIZE, dsf.SIZE)), z)[::2, ::2].ravel() for z in nz])
        onehot = np.eye(dsf.LEVELS)[[z.level for z in nz]]
        acc = _nuisance_accuracy(np.concatenate([onehot, alone / 255.0], 1), labels)
        assert acc < bound, (kind, acc, bound)
    leaky = np.eye(dsf.LEVELS)[labels % 4]  # positive control: a nuisance that carries the label
    assert _nuisance_accuracy(leaky, labels) > bound + 0.1


def test_masks_cover_exactly_the_drawn_digit(family):
    """The saved mask is where the saved image differs from the nuisance painted alone: every pixel the digit
    covers by half or more differs, every pixel it does not cover is the nuisance's. Catches a mask not placed
    where the digit is drawn (e.g. the full-size digit saved for the frame kind, whose digit is drawn smaller)."""
    out, folders = family
    content = Content("digits", 0)
    for kind, folder in folders.items():
        masks = dsf.read_masks(folder)
        assert len(masks) == N
        rng = np.random.default_rng([0, dsf.KINDS.index(kind), 32])
        for i in range(N):
            nz = dsf.draw_nuisance(kind, rng)
            rel = os.path.join(content.labels[i], f"{i:05d}.png")
            saved = np.asarray(Image.open(os.path.join(folder, rel)).convert("RGB"), np.float64)
            alone = np.clip(np.rint(dsf.paint(kind, np.zeros((dsf.SIZE, dsf.SIZE)), nz)), 0, 255)
            differs = np.abs(saved - alone).max(-1) > 0.5
            m = masks[rel]
            assert not (differs & (m == 0)).any(), (kind, i)  # nothing drawn outside the mask
            assert differs[m >= 0.5].all(), (kind, i)  # the digit's pixels are drawn
            obj_alone = dsf.paint(kind, m, nz) - dsf.paint(kind, np.zeros_like(m), nz)
            assert np.array_equal(np.abs(obj_alone).max(-1) > 0, m > 0), (kind, i)  # the object alone = the mask


def test_nuisance_levels_are_recorded_and_balanced(family):
    """The .cues.json levels are the ones drawn, each level used: a level-recording slip breaks the nuisance NMI."""
    import json

    _, folders = family
    for kind, folder in folders.items():
        with open(folder + ".cues.json") as f:
            files = json.load(f)["files"]
        rng = np.random.default_rng([0, dsf.KINDS.index(kind), 32])
        drawn = [dsf.draw_nuisance(kind, rng).level for _ in range(N)]
        content = Content("digits", 0)
        recorded = [files[os.path.join(content.labels[i], f"{i:05d}.png")]["level"] for i in range(N)]
        assert recorded == drawn
        assert np.bincount(drawn, minlength=dsf.LEVELS).min() > N / dsf.LEVELS / 2
