"""Three wires no other test pulled (issue 30, points 1-3), each against an independent oracle.

1. The cue probe on strongly unbalanced clusters whose cues carry no information: always answering
   the larger cluster is chance, not a cue (oracle: the cues are drawn independently of the clusters,
   so any honest score is 0 up to noise).
2. Masks under different seeds are independent draws, not one corruption shifted by some number of
   examples (oracle: the statistics of independent draws, measured on pairs of different examples
   of one seed).
3. `dataset.memory_share` at its boundary, with the host's RAM faked: a dataset between share x RAM
   and RAM streams, one within share x RAM is held in memory (oracle: the decoded size, counted here).

The training-run wires (points 4-6) are in tests/test_run_wires.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from ccjax.cli.prepare import dataset_config
from ccjax.data.masking import MaskNoise, mask_boxes, masks
from ccjax.explain import nuisance
from ccjax.explain.predictability import predictability

# ----------------------------------------------------------------------------- 1. unbalanced clusters


def noise_cues(rng, n: int) -> dict[str, np.ndarray]:
    """Cue families drawn independently of everything else: they cannot tell any grouping."""
    return {"colour": rng.normal(size=(n, 4)), "brightness": rng.normal(size=(n, 1)),
            "texture": rng.normal(size=(n, 2)), "file_format": np.eye(2)[rng.integers(0, 2, n)]}


@pytest.mark.parametrize("shares", [(0.85, 0.15), (0.8, 0.15, 0.05)])
def test_unbalanced_clusters_with_uninformative_cues_score_near_zero_and_do_not_warn(shares):
    """A probe that counted always guessing the larger cluster as a cue (its score from plain accuracy:
    0.85 right -> (0.85 - 1/2) / (1 - 1/2) = 0.7, or one ranked against 1/K instead of per-cluster
    recall) scores these clusters far from 0 and warns; so would one that kept the classifier's
    priors but scored its accuracy, or measured a family's permutation importance in plain accuracy."""
    rng = np.random.default_rng(11)
    n = 1200
    pred = rng.choice(len(shares), n, p=shares)
    cues = noise_cues(rng, n)
    r = predictability(cues, pred)
    assert r["majority"] == pytest.approx(np.bincount(pred).max() / n) and r["majority"] >= 0.8
    assert abs(r["score"]) < 0.1, r
    for f in r["families"].values():  # alone, and what permuting it costs given the others
        assert abs(f["alone"]) < 0.1 and abs(f["importance"]) < 0.1, r["families"]
    for labels in (None, rng.integers(0, 3, n)):  # without labels, and with labels unrelated to both
        p = nuisance.probe(pred, len(shares), cues, labels)
        assert abs(p["clusters"]["score"]) < 0.1 and not p["warnings"], p
        if labels is not None:
            assert abs(p["beyond_labels"]["score"]) < 0.1, p["beyond_labels"]


# ----------------------------------------------------------------------------- 2. masks under different seeds


def shared_offsets(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """For rows b[i] (i < n) equal to some row a[j]: the counts of each offset j - i (a histogram)."""
    where: dict[bytes, list[int]] = {}
    for j, row in enumerate(a):
        where.setdefault(row.tobytes(), []).append(j)
    offsets = [j - i for i in range(n) for j in where.get(b[i].tobytes(), [])]
    return np.unique(offsets, return_counts=True)[1] if offsets else np.zeros(1, np.int64)


def test_masks_under_different_seeds_are_independent_draws_not_shifted_copies():
    """Mask seeds 0, 1 and 7 (a Table 7 seed sweep). A rectangle that depended on seed + index (or any
    mix that makes seed s example i seed 0's example i + d) reuses one corruption: the same
    rectangles, d examples along. On 256 x 256 images there are so many rectangles that independent
    draws share hardly any, let alone many at one offset: every offset within 4000 examples either way
    is checked. The drawn quantities must be uncorrelated across seeds, and the per-example overlap of
    two seeds' masks must be what two different examples' masks of one seed have."""
    n, window, size = 2000, 6000, 256
    seeds = (0, 1, 7)
    boxes = {s: np.stack(mask_boxes(np.arange(window), size, size, MaskNoise(0.3, 0.5, seed=s)), 1) for s in seeds}
    for a in seeds:
        for b in seeds:
            if a != b:  # b's first n examples against a's first `window`: offsets -n .. window - n, both ways
                assert shared_offsets(boxes[a], boxes[b], n).max() <= 3, (a, b)
                for k, what in enumerate(("top", "left", "height", "width")):
                    r = np.corrcoef(boxes[a][:n, k], boxes[b][:n, k])[0, 1]
                    assert abs(r) < 0.1, (a, b, what, r)  # 4.5 standard errors of independent draws
    # the overlap (intersection over union) of one example's masks under two seeds, against that of two
    # different examples under one seed (independent by construction), on the paper's small images
    idx = np.arange(n)
    m = {s: masks(idx, 16, 20, MaskNoise(0.3, 0.5, seed=s)).reshape(n, -1) for s in (0, 1)}
    across = (m[0] & m[1]).sum(1) / (m[0] | m[1]).sum(1)
    other = np.roll(idx, 1)
    within = (m[0] & m[0][other]).sum(1) / (m[0] | m[0][other]).sum(1)
    se = np.sqrt(across.var() / n + within.var() / n)
    assert abs(across.mean() - within.mean()) < 5 * se, (across.mean(), within.mean(), se)


# ----------------------------------------------------------------------------- 3. memory_share at its boundary


@pytest.mark.parametrize("ram_in_dataset_sizes, share, in_memory", [
    (1.5, 0.5, False),   # share x RAM < dataset < RAM: streams (the dataset would fit the whole RAM)
    (1.02, 0.5, False),  # just under the RAM itself
    (2.05, 0.5, True),   # just within the share
    (1.25, 0.9, True),   # a larger share lets the same dataset in
    (1.25, 0.7, False),
])
def test_memory_share_decides_at_share_times_the_hosts_ram(monkeypatch, ram_in_dataset_sizes, share, in_memory):
    """The host's RAM is faked (the page count the OS reports) at a multiple of the digits' decoded
    size (1797 8x8 gray images, counted here). A test of a petabyte and a megabyte cannot tell
    `<= share x RAM` from `<= RAM` (or from a share applied the wrong way); these sizes can."""
    from ccjax.data.opening import open_dataset

    decoded = 1797 * 8 * 8 * 1  # uint8 pixels
    page, real = os.sysconf("SC_PAGE_SIZE"), os.sysconf
    pages = int(np.ceil(ram_in_dataset_sizes * decoded / page))
    ram = pages * page  # what the code will read
    if not (decoded < ram and (decoded <= share * ram) == in_memory):
        pytest.skip(f"pages of {page} bytes are too coarse to fake this RAM")
    monkeypatch.setattr(os, "sysconf", lambda name: pages if name == "SC_PHYS_PAGES" else real(name))
    ds = open_dataset(dataset_config("digits", in_memory="auto", memory_share=share, stream_workers=0))
    assert ds.num_examples * int(np.prod(ds.image_shape)) == decoded
    assert ds.streams is (not in_memory), ds.how_opened
    assert ds.how_opened.startswith("in memory" if in_memory else "streamed"), ds.how_opened
    assert (f"<= {share:g} of" if in_memory else f"> {share:g} of") in ds.how_opened
