"""Streaming input (grain workers) against the in-memory path: same pixels, same batches, same training.

Bit-identical training, and a streamed stop-and-resume, against an uninterrupted
in-memory run: tests/test_train.py::test_kill_and_resume_is_bit_identical; 2 streaming processes
against 1 in-memory process, tests/test_multiprocess.py."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

import test_data_fakes as data_fakes
from test_data_folders import _prepared_dir, _report
from ccjax.cli.prepare import dataset_config
from ccjax.data import builder as builder_lib
from ccjax.data.dataset import ImageDataset, Sources, load_sources
from ccjax.data.opening import choose_in_memory, open_dataset
from ccjax.data.pipeline import EvalBatches, TrainBatches, map_batches
from ccjax.data.streaming import StreamingDataset
from ccjax.errors import UserError
from ccjax.runtime.mesh import make_mesh
from fakes import ArraySource, array_dataset, blob_images, shapes_folder, streamed_dataset


def test_sources_read_across_source_boundaries_like_the_in_memory_array():
    """Two sources (the second unlabelled, like STL-10's extra split): global index i is example
    i - offset of the source that holds it, and a forced-unlabelled source reads label -1."""
    imgs, labels = blob_images(n=12, size=6)
    a, b = ArraySource(imgs[:5], labels[:5], "a"), ArraySource(imgs[5:], labels[5:], "b")
    spec = Sources("two", [a, b], "label", "file", None, ["0", "1", "2", "3"], unlabeled=[False, True])
    streamed = StreamingDataset(spec, workers=0)
    idx = np.array([6, 0, 11, 4, 5])
    got = streamed.read(idx)
    np.testing.assert_array_equal(got["image"], imgs[idx])
    np.testing.assert_array_equal(got["label"], [-1, labels[0], -1, labels[4], -1])
    assert streamed.example_ids(idx) == ["b_1", "a_0", "b_6", "a_4", "b_0"]
    memory = load_sources(spec)
    np.testing.assert_array_equal(memory.images, imgs)
    np.testing.assert_array_equal(streamed.labels, memory.labels)
    assert memory.example_ids(range(12)) == streamed.example_ids(range(12))
    with pytest.raises(IndexError):
        streamed.read(np.array([12]))


def test_a_prepared_folder_streams_the_pixels_labels_and_ids_it_holds_in_memory(tmp_path):
    """The real path: a folder prepared to array_record, read through TFDS data_source both ways,
    with a resize on read (image_size differs from the stored size) and a label-only read."""
    root, data_dir = str(tmp_path / "shapes"), str(tmp_path / "tfds")
    shapes_folder(root, per_class=6, size=16)
    base = dict(name=f"folder:{root}", data_dir=data_dir, num_clusters=-1)
    memory = open_dataset(dataset_config(**base, in_memory="true"))
    streamed = open_dataset(dataset_config(**base, in_memory="false", stream_workers=0))
    assert isinstance(memory, ImageDataset) and isinstance(streamed, StreamingDataset)
    assert memory.how_opened.startswith("in memory") and streamed.how_opened.startswith("streamed")
    assert (streamed.num_examples, streamed.image_shape, streamed.class_names) == (
        memory.num_examples, memory.image_shape, memory.class_names)
    idx = np.random.default_rng(0).permutation(memory.num_examples)[:10]
    a, b = memory.read(idx), streamed.read(idx)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(memory.labels, streamed.labels)
    assert memory.example_ids(idx) == streamed.example_ids(idx)


def test_auto_streams_only_what_does_not_fit_the_memory_share():
    cfg = dataset_config("digits", in_memory="auto", memory_share=0.5)
    assert choose_in_memory(cfg, 10**6)[0] is True
    keep, why = choose_in_memory(cfg, 10**15)  # a petabyte
    assert keep is False and "in_memory=true" in why
    assert choose_in_memory(dataset_config("digits", in_memory="true"), 10**15)[0] is True
    assert choose_in_memory(dataset_config("digits", in_memory="false"), 1)[0] is False
    with pytest.raises(UserError, match="auto, true or false"):
        choose_in_memory(dataset_config("digits", in_memory="maybe"), 1)


def test_every_dataset_says_at_construction_whether_it_streams_and_how_it_was_opened(monkeypatch):
    """`streams` and `how_opened` are part of the Dataset protocol, set when the dataset is built, and
    `streams` alone decides whether batches are read ahead in grain workers."""
    from ccjax.data import Dataset, streaming

    memory = open_dataset(dataset_config("digits", in_memory="true"))
    streamed = open_dataset(dataset_config("digits", in_memory="false", stream_workers=0))
    built = [array_dataset(*blob_images(n=4)), streamed_dataset(*blob_images(n=4), workers=0)]
    for ds, streams in [(memory, False), (streamed, True), *zip(built, [False, True])]:
        assert isinstance(ds, Dataset) and ds.streams is streams, ds
        assert ds.how_opened.startswith("streamed" if streams else "in memory"), ds.how_opened
    assert "dataset.in_memory=false" in streamed.how_opened and "dataset.in_memory=true" in memory.how_opened
    assert ImageDataset.synthetic(4, (2, 2, 1), 2).how_opened == "in memory (synthetic)"

    calls = []
    real_stream = streaming.stream
    monkeypatch.setattr(streaming, "stream", lambda *a: calls.append(a[2:]) or real_stream(*a))
    read = ReadFirstPixel(memory)
    assert list(streaming.read_ahead(read, range(3), memory)) == [read(i) for i in range(3)] and calls == []
    read = ReadFirstPixel(streamed)
    assert [b["pixel"] for b in streaming.read_ahead(read, range(3), streamed)] == [read(i)["pixel"] for i in range(3)]
    assert calls == [(streamed.workers, streamed.buffer)]


class ReadFirstPixel:
    def __init__(self, dataset):
        self.dataset = dataset

    def __call__(self, i: int) -> dict:
        return {"pixel": int(self.dataset.read(np.array([i]))["image"][0, 0, 0, 0])}


def test_nothing_in_the_package_patches_or_probes_how_a_dataset_was_opened():
    """No `getattr(x, "how_opened" | "streams" | "streaming")` and no `x.how_opened = ...` outside a
    dataset's own constructor: the Dataset protocol carries both."""
    import ast
    import pathlib

    import ccjax

    names = {"how_opened", "streams", "streaming"}
    found = []
    for path in pathlib.Path(ccjax.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in names):
                found.append(f"{path}:{node.lineno}")
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found += [f"{path}:{node.lineno}" for t in targets
                          if isinstance(t, ast.Attribute) and t.attr in names
                          and not (isinstance(t.value, ast.Name) and t.value.id == "self")]
    assert found == []


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_global_batches_equal_in_memory_ones_from_any_start_step(workers):
    imgs, labels = blob_images(n=40)
    mesh = make_mesh(jax.devices()[:4])
    memory = TrainBatches(array_dataset(imgs, labels), 16, seed=5, mesh=mesh)
    streamed = TrainBatches(streamed_dataset(imgs, labels, workers), 16, seed=5, mesh=mesh)
    want = [jax.device_get(b) for _, b in memory.iterate(0, 7)]  # 2 steps an epoch: crosses 3 epochs
    got = [(s, jax.device_get(b)) for s, b in streamed.iterate(0, 7)]
    assert [s for s, _ in got] == list(range(7))
    for (_, g), w in zip(got, want):
        for k in w:
            np.testing.assert_array_equal(g[k], w[k], err_msg=k)
    resumed = [jax.device_get(b) for _, b in streamed.iterate(3, 4)]  # position from the step alone
    for g, w in zip(resumed, want[3:]):
        np.testing.assert_array_equal(g["image"], w["image"])


def test_streamed_evaluation_batches_cover_the_dataset_in_order():
    imgs, labels = blob_images(n=37)
    mesh = make_mesh(jax.devices()[:4])
    fn = lambda b: b["image"].astype(np.float32).mean(axis=(1, 2, 3))  # noqa: E731
    want = map_batches(fn, array_dataset(imgs, labels), 16, mesh)
    got = map_batches(fn, streamed_dataset(imgs, labels, workers=2), 16, mesh)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(want, imgs.reshape(37, -1).mean(1), rtol=1e-6)
    assert len(EvalBatches(streamed_dataset(imgs, labels, 0), 16, mesh)) == 3


def test_a_folder_with_bad_files_streams_its_good_images_and_reports_the_rest(tmp_path):
    """Opening a folder in streaming mode prepares it as the in-memory path does: corrupt, empty and
    non-image files are skipped and listed; what streams back equals what is held in memory."""
    root, data_dir = str(tmp_path / "imgs"), str(tmp_path / "tfds")
    expected = data_fakes.odd_folder(root, side=16)
    base = dict(name=f"folder:{root}", data_dir=data_dir, image_size=16)
    streamed = open_dataset(dataset_config(**base, in_memory="false", stream_workers=0))
    skipped = _report(data_dir)
    assert set(skipped) == {k for k, v in expected.items() if v is None}
    assert skipped["car/empty.png"] == "empty file" and skipped["car/notes.txt"] == "not an image"
    assert skipped["car/truncated.jpg"].startswith("corrupt or truncated")
    memory = open_dataset(dataset_config(**base, in_memory="true"))
    assert streamed.num_examples == memory.num_examples == 10
    all_idx = np.arange(10)
    np.testing.assert_array_equal(streamed.read(all_idx)["image"], memory.read(all_idx)["image"])
    assert streamed.example_ids(all_idx) == sorted(k for k, v in expected.items() if v is not None)


def test_preparation_writes_shard_by_shard_in_file_order(tmp_path, monkeypatch):
    """A folder larger than one shard is written as several array_record shards (no TensorFlow, one
    shard in memory at a time); example i is still the i-th usable file, across shard boundaries."""
    monkeypatch.setattr(builder_lib, "SHARD_BYTES", 1)  # the floor: 64 images a shard
    root, data_dir = str(tmp_path / "shapes"), str(tmp_path / "tfds")
    written = shapes_folder(root, per_class=40, size=8)  # 160 images: 3 shards
    paths = sorted(p for p, _, _ in written)  # class folders, then files, in name order
    os.remove(paths[70])
    open(paths[100], "wb").close()  # an empty file: skipped
    ds = open_dataset(dataset_config(f"folder:{root}", data_dir=data_dir, in_memory="false", stream_workers=0))
    folder = _prepared_dir(data_dir)
    assert len([f for f in os.listdir(folder) if ".array_record-" in f]) == 3
    kept = [p for i, p in enumerate(paths) if i not in (70, 100)]
    assert ds.num_examples == 158
    assert ds.example_ids(np.arange(158)) == [os.path.relpath(p, root) for p in kept]
    from PIL import Image

    for i in (0, 63, 64, 69, 70, 127, 157):
        np.testing.assert_array_equal(ds.read(np.array([i]))["image"][0], np.asarray(Image.open(kept[i])))


def test_the_nuisance_cues_of_a_streamed_dataset_equal_the_in_memory_ones(monkeypatch):
    from ccjax.explain import cues

    monkeypatch.setattr(cues, "_CHUNK", 64)  # 4 chunks, read by 2 workers, reassembled in order
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (300, 6, 6, 3), dtype=np.uint8)
    idx = rng.permutation(300)[:250]
    want = cues.image_cues(array_dataset(imgs, None), idx)
    got = cues.image_cues(streamed_dataset(imgs, None, workers=2), idx)
    assert list(got) == list(want) == list(cues.PIXEL_FAMILIES)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    np.testing.assert_allclose(want["border"], cues.pixel_cues(imgs[idx])["border"], rtol=1e-6)
    ring = np.ones((6, 6), bool)
    ring[1:-1, 1:-1] = False
    np.testing.assert_allclose(want["border"], imgs[idx][:, ring].mean(1) / 255.0, rtol=1e-5)  # by hand


def test_the_report_grid_reads_only_the_images_it_draws(tmp_path):
    """On a dataset too large to hold, the per-cluster grid decodes each cluster's 8 most confident
    images and nothing else."""
    from ccjax.report.report import plot_clusters

    rng = np.random.default_rng(0)
    n, k = 5000, 6
    probs = rng.dirichlet(np.ones(k) * 0.3, size=n).astype(np.float32)
    imgs = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
    asked = []

    def read(idx):
        asked.extend(int(i) for i in idx)
        return imgs[idx]

    plot_clusters(str(tmp_path / "clusters.png"), probs, read, per_cluster=8)
    pred, conf = probs.argmax(1), probs.max(1)
    want = set()
    for c in range(k):
        members = np.flatnonzero(pred == c)
        want |= set(members[np.argsort(-conf[members])][:8].tolist())
    assert sorted(asked) == sorted(want) and len(asked) == 8 * k


FAILING_RUN = """
import sys
sys.path.insert(0, {tests!r})
import jax
from ccjax.data.dataset import Sources
from ccjax.data.pipeline import TrainBatches
from ccjax.data.streaming import StreamingDataset
from ccjax.errors import exit_on_user_error
from ccjax.runtime.mesh import make_mesh
from fakes import ArraySource, blob_images


class FailingSource(ArraySource):
    def __getitem__(self, i):
        if i >= 40:
            raise OSError("No such file or directory: 'shard-00002.array_record'")
        return super().__getitem__(i)


@exit_on_user_error
def main():
    imgs, labels = blob_images(n=64)
    spec = Sources("failing", [FailingSource(imgs, labels)], "label", "file", None, ["0", "1", "2", "3"])
    for _ in TrainBatches(StreamingDataset(spec, workers=2), 16, 0, make_mesh()).iterate(0, 8):
        pass


if __name__ == "__main__":
    main()
"""


def test_a_run_whose_files_vanish_ends_with_one_line_and_exit_2(tmp_path):
    """A read failing in a grain worker (a shard deleted under a running job) ends the process as a
    command ends: one line saying what to do, exit 2, nothing else on stderr."""
    import subprocess
    import sys

    script = tmp_path / "failing_run.py"
    script.write_text(FAILING_RUN.format(tests=os.path.dirname(os.path.abspath(__file__))))
    from test_cli import env

    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env())
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2, p.stderr[-3000:]
    assert len(lines) == 1, p.stderr[-3000:]
    assert lines[0].startswith("ccjax: error: reading images of failing failed (OSError: No such file")
    assert "--dataset=failing --overwrite" in lines[0]
