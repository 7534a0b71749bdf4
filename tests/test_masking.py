"""Masked-noise datasets (MFAVBs-CC Sec. 4.7): one black rectangle of 30-50% of each image's area,
fixed per example: the same in every epoch, after a resume, in memory and streamed, bit for bit."""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
import pytest

from ccjax.cli.prepare import dataset_config
from ccjax.data.opening import open_dataset
from ccjax.data.masking import MaskedDataset, MaskNoise, apply_mask_noise, mask_boxes, mask_noise_of, masks
from ccjax.data.pipeline import TrainBatches, map_batches
from ccjax.errors import UserError
from ccjax.runtime.mesh import make_mesh
from fakes import array_dataset, blob_images, shapes_folder, streamed_dataset

PAPER = MaskNoise(0.3, 0.5, seed=0)


def _oracle(images, indices, noise):
    """A per-image loop over the rectangles (slicing), independent of the vectorised masks."""
    out = images.copy()
    for i, (t, l, h, w) in enumerate(zip(*mask_boxes(indices, images.shape[1], images.shape[2], noise))):
        out[i, t:t + h, l:l + w, :] = 0
    return out


@pytest.mark.parametrize("shape", [(8, 8), (32, 32), (224, 224), (12, 40), (50, 7)])
def test_fractions_stay_in_range_and_each_mask_is_one_rectangle_inside_the_image(shape):
    height, width = shape
    idx = np.arange(4000)
    top, left, h, w = mask_boxes(idx, height, width, PAPER)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
    frac = h * w / (height * width)
    assert frac.min() >= 0.3 and frac.max() <= 0.5
    m = masks(idx[:500], height, width, PAPER)
    np.testing.assert_array_equal(m.mean(axis=(1, 2)), frac[:500])  # the drawn mask has the box's area
    rows, cols = m.any(axis=2), m.any(axis=1)
    np.testing.assert_array_equal(m, rows[:, :, None] & cols[:, None, :])  # a rectangle
    if min(shape) >= 32:  # whole pixels barely matter: the fractions spread over the range
        assert frac.min() < 0.31 and frac.max() > 0.49 and abs(frac.mean() - 0.4) < 0.01


def test_masks_match_a_per_image_oracle_and_depend_on_seed_and_index_only():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (64, 16, 20, 3), dtype=np.uint8)  # no 0 pixel: masked ones are the 0s
    idx = rng.permutation(10_000)[:64]
    got = apply_mask_noise(images, idx, PAPER)
    np.testing.assert_array_equal(got, _oracle(images, idx, PAPER))
    zero = (got == 0).all(axis=-1)
    np.testing.assert_array_equal(zero, masks(idx, 16, 20, PAPER))
    np.testing.assert_array_equal(got[~zero], images[~zero])  # the rest untouched
    # the same example's mask whatever the batch around it and its position in it
    perm = rng.permutation(64)
    np.testing.assert_array_equal(apply_mask_noise(images[perm], idx[perm], PAPER), got[perm])
    np.testing.assert_array_equal(apply_mask_noise(images[5:6], idx[5:6], PAPER), got[5:6])
    # another seed or another index: another rectangle (almost always)
    other = masks(idx, 16, 20, MaskNoise(0.3, 0.5, seed=1))
    assert (other != masks(idx, 16, 20, PAPER)).any(axis=(1, 2)).mean() > 0.9
    assert (masks(idx + 1, 16, 20, PAPER) != masks(idx, 16, 20, PAPER)).any(axis=(1, 2)).mean() > 0.9


def test_config_reading_and_bad_fractions():
    assert mask_noise_of(dataset_config("digits")) is None  # no such field: off
    cfg = dataset_config("digits", mask_noise=ml_collections.ConfigDict(
        dict(enabled=True, min_fraction=0.2, max_fraction=0.4, seed=3)))
    assert mask_noise_of(cfg) == MaskNoise(0.2, 0.4, 3)
    cfg.mask_noise.enabled = False
    assert mask_noise_of(cfg) is None
    for lo, hi in ((0.5, 0.3), (0.0, 0.5), (0.3, 1.0)):
        with pytest.raises(UserError, match="min_fraction"):
            MaskNoise(lo, hi)


def test_masks_are_the_same_every_epoch_after_a_resume_and_streamed():
    """TrainBatches over the masked dataset: example i carries one mask through 3 epochs; a streamed
    dataset in 2 grain workers, resumed at step 3, reads the in-memory batches bit for bit."""
    imgs, labels = blob_images(n=40, size=8, channels=3)
    imgs = np.maximum(imgs, 1)  # no 0 pixel before masking
    mesh = make_mesh(jax.devices()[:4])
    memory = TrainBatches(MaskedDataset(array_dataset(imgs, labels), PAPER), 16, seed=5, mesh=mesh)
    want = [jax.device_get(b) for _, b in memory.iterate(0, 7)]  # 2 steps an epoch: 3+ epochs
    seen: dict[int, np.ndarray] = {}
    for b in want:
        for img, i in zip(b["image"], b["index"]):
            if int(i) in seen:
                np.testing.assert_array_equal(img, seen[int(i)])  # the same mask in a later epoch
            seen[int(i)] = img
    assert len(seen) >= 32 and all((im == 0).all(-1).mean() >= 0.3 for im in seen.values())
    streamed = TrainBatches(MaskedDataset(streamed_dataset(imgs, labels, workers=2), PAPER), 16, seed=5, mesh=mesh)
    for g, w in zip([jax.device_get(b) for _, b in streamed.iterate(3, 4)], want[3:]):
        for k in w:
            np.testing.assert_array_equal(g[k], w[k], err_msg=k)
    # evaluation reads the same corrupted images
    got = map_batches(lambda b: b["image"], MaskedDataset(streamed_dataset(imgs, labels, 0), PAPER), 16, mesh)
    np.testing.assert_array_equal(got, apply_mask_noise(imgs, np.arange(40), PAPER))


def test_open_dataset_masks_a_prepared_folder_alike_in_memory_and_streamed(tmp_path):
    root, data_dir = str(tmp_path / "shapes"), str(tmp_path / "tfds")
    shapes_folder(root, per_class=6, size=16)
    noise = ml_collections.ConfigDict(dict(enabled=True, min_fraction=0.3, max_fraction=0.5, seed=0))
    base = dict(name=f"folder:{root}", data_dir=data_dir, num_clusters=-1)
    clean = open_dataset(dataset_config(**base, in_memory="true"))
    memory = open_dataset(dataset_config(**base, in_memory="true", mask_noise=noise))
    streamed = open_dataset(dataset_config(**base, in_memory="false", stream_workers=0, mask_noise=noise))
    assert isinstance(memory, MaskedDataset) and not hasattr(memory, "images")  # never the clean array
    assert streamed.streams and memory.how_opened.startswith("in memory")
    idx = np.random.default_rng(0).permutation(memory.num_examples)
    a, b = memory.read(idx), streamed.read(idx)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(a["image"], _oracle(clean.read(idx)["image"], idx, PAPER))
    np.testing.assert_array_equal(memory.labels, clean.labels)


def test_the_anchor_cache_of_a_masked_dataset_is_its_own():
    from ccjax.clip.cache import dataset_key

    cfg = ml_collections.ConfigDict(dict(dataset=dataset_config("rsod")))
    assert dataset_key(cfg, None) == "rsod"
    cfg.dataset.mask_noise = ml_collections.ConfigDict(dict(enabled=True, min_fraction=0.3, max_fraction=0.5,
                                                            seed=0))
    assert dataset_key(cfg, None) == "rsod+mask0.3-0.5s0"
