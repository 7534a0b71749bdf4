"""The host-side batching: deterministic epochs, global batches, padding at evaluation."""

import numpy as np
import pytest

from ccjax.errors import UserError
from ccjax.data.pipeline import EvalBatches, TrainBatches, prefetch_map
from ccjax.data.reading import epoch_permutation
from ccjax.runtime.mesh import check_batch_size, make_mesh
from fakes import array_dataset, blob_images


def test_epoch_permutation_is_a_pure_function_of_seed_and_epoch():
    a = epoch_permutation(100, seed=3, epoch=7)
    assert np.array_equal(a, epoch_permutation(100, seed=3, epoch=7))
    assert np.array_equal(np.sort(a), np.arange(100))
    assert not np.array_equal(a, epoch_permutation(100, seed=3, epoch=8))
    assert not np.array_equal(a, epoch_permutation(100, seed=4, epoch=7))


def test_train_batches_cover_each_epoch_once_and_are_sharded():
    imgs, labels = blob_images(n=50)
    ds = array_dataset(imgs, labels)
    mesh = make_mesh()
    tb = TrainBatches(ds, batch_size=8, seed=0, mesh=mesh)
    assert tb.steps_per_epoch == 6  # 50 // 8: the incomplete last batch is dropped
    seen = []
    for step, b in tb.iterate(0, tb.steps_per_epoch):
        assert b["image"].shape == (8, 8, 8, 1) and b["image"].dtype == np.uint8
        assert b["image"].sharding.spec[0] == "data"
        idx = np.asarray(b["index"])
        np.testing.assert_array_equal(np.asarray(b["image"]), imgs[idx])
        seen.extend(idx.tolist())
    assert len(set(seen)) == 48
    # The same step gives the same batch whenever it is asked for (resume).
    np.testing.assert_array_equal(np.asarray(tb.batch(0, 3)["index"]), seen[24:32])


def test_anchors_travel_with_their_examples():
    imgs, labels = blob_images(n=16)
    anchors = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32)
    tb = TrainBatches(array_dataset(imgs, labels), 8, 0, make_mesh(), anchors)
    b = tb.batch(2, 1)
    np.testing.assert_array_equal(np.asarray(b["anchor"]), anchors[np.asarray(b["index"])])


def test_eval_batches_cover_every_example_once_in_order():
    imgs, labels = blob_images(n=21)
    eb = EvalBatches(array_dataset(imgs, labels), batch_size=8, mesh=make_mesh())
    assert len(eb) == 3
    idx, valid = [], []
    for b in eb:
        idx.append(np.asarray(b["index"]))
        valid.append(np.asarray(b["valid"]))
    idx, valid = np.concatenate(idx), np.concatenate(valid)
    np.testing.assert_array_equal(idx[valid], np.arange(21))
    assert valid.sum() == 21


def test_batch_must_divide_over_devices():
    mesh = make_mesh()
    check_batch_size(8, mesh)
    with pytest.raises(UserError, match="not divisible by the 4 devices"):
        check_batch_size(6, mesh)


def test_dataset_smaller_than_batch_is_a_clear_error():
    imgs, labels = blob_images(n=6)
    with pytest.raises(UserError, match="fewer than batch_size"):
        TrainBatches(array_dataset(imgs, labels), 8, 0, make_mesh())


def test_prefetch_preserves_order_and_forwards_errors():
    assert list(prefetch_map(lambda x: x * 2, range(10), 3)) == [2 * i for i in range(10)]

    def boom(x):
        if x == 4:
            raise ValueError("bad record")
        return x

    with pytest.raises(ValueError, match="bad record"):
        list(prefetch_map(boom, range(10), 2))
