"""Every fault ends clean (docs/reliability.md): each test reproduces one failure and checks the
one clear outcome. The runs are copies of the tiny digits run of tests/test_report.py, so nothing
here trains from scratch except the disk-full case."""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ccjax.errors import UserError
from ccjax.run.checkpoint import Checkpointer, SaveFailed
from ccjax.run.load import load_trained
from ccjax.run.rundir import BEST_CHECKPOINTS_DIR, CHECKPOINTS_DIR, HISTORY
from test_report import ROOT, subprocess_env, tiny_digits_config, trained_digits_run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return trained_digits_run(tmp_path_factory)


def copy_run(src: str, dst) -> str:
    shutil.copytree(src, str(dst))
    return str(dst)


def steps(workdir: str, sub: str = CHECKPOINTS_DIR) -> list[int]:
    return sorted(int(n) for n in os.listdir(os.path.join(workdir, sub)) if n.isdigit())


def history_epochs(workdir: str) -> list[int]:
    with open(os.path.join(workdir, HISTORY)) as f:
        return [json.loads(line)["epoch"] for line in f]


# ----------------------------------------------------------------------------- checkpoints that always resume


def test_kill_between_the_best_and_the_main_save_resumes_exactly(digits_run, tmp_path):
    from ccjax.train import train_and_evaluate

    src, result = digits_run
    wd = copy_run(src, tmp_path / "run")
    (best,) = steps(wd, BEST_CHECKPOINTS_DIR)
    for s in steps(wd):  # as if killed after the best save at `best`, before the main one
        if s >= best:
            shutil.rmtree(os.path.join(wd, CHECKPOINTS_DIR, str(s)))
    again = train_and_evaluate(tiny_digits_config(), wd)  # replays to `best`, whose best save exists
    assert best in steps(wd) and steps(wd, BEST_CHECKPOINTS_DIR) == [best]
    for k in ("acc", "nmi", "ari", "step"):
        assert again[k] == result[k], k  # bit-identical: the replay reaches the same state
    assert history_epochs(wd) == [1, 2]  # no epoch logged twice


DAMAGE = {
    "truncated data": lambda d: [_cut(p) for p in glob.glob(f"{d}/state/**/d/*", recursive=True)],
    "empty meta/metadata": lambda d: open(f"{d}/meta/metadata", "w").close(),
    "empty state/manifest.ocdbt": lambda d: open(f"{d}/state/manifest.ocdbt", "w").close(),
    "garbage state/_METADATA": lambda d: open(f"{d}/state/_METADATA", "w").write("{not json"),
}


def _cut(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_newest_checkpoint_is_set_aside_for_evaluate_and_predict(digits_run, tmp_path, capfd, kind):
    wd = copy_run(digits_run[0], tmp_path / "run")
    first, newest = steps(wd)
    DAMAGE[kind](os.path.join(wd, CHECKPOINTS_DIR, str(newest)))
    restored = load_trained(wd).restore_latest()
    assert restored.step == first
    assert steps(wd) == [first] and glob.glob(os.path.join(wd, CHECKPOINTS_DIR, f"{newest}.damaged-*"))
    err = capfd.readouterr().err
    warnings = [l for l in err.splitlines() if "cannot be restored" in l]
    assert len(warnings) == 1 and f"step {newest}" in warnings[0] and "Traceback" not in err, err


def test_damaged_newest_checkpoint_resumes_training_from_the_previous(digits_run, tmp_path):
    from ccjax.train import train_and_evaluate

    src, result = digits_run
    wd = copy_run(src, tmp_path / "run")
    first, newest = steps(wd)
    DAMAGE["truncated data"](os.path.join(wd, CHECKPOINTS_DIR, str(newest)))
    again = train_and_evaluate(tiny_digits_config(), wd)
    assert steps(wd) == [first, newest] and again["acc"] == result["acc"] and again["step"] == result["step"]


def test_a_real_config_mismatch_is_reported_as_one_and_moves_nothing(digits_run, tmp_path):
    from ccjax.run.load import TrainedModel
    from ccjax.run.rundir import read_run_info

    wd = copy_run(digits_run[0], tmp_path / "run")
    config = tiny_digits_config()
    config.model.convnet_width = 16  # not the trained model
    before = sorted(os.listdir(os.path.join(wd, CHECKPOINTS_DIR)))
    with pytest.raises(UserError, match="no checkpoint .* can be restored into this config's model"):
        TrainedModel.build(wd, config, read_run_info(wd)).restore_latest()
    assert sorted(os.listdir(os.path.join(wd, CHECKPOINTS_DIR))) == before


# ----------------------------------------------------------------------------- one workdir, one run


def test_second_launch_on_a_workdir_in_use_is_one_line_and_touches_nothing(digits_run, tmp_path):
    from ccjax.run import rundir

    wd = copy_run(digits_run[0], tmp_path / "run")
    files = {p: os.path.getmtime(p) for p in glob.glob(os.path.join(wd, "**"), recursive=True)}
    with rundir.lock(wd):
        with pytest.raises(UserError, match=rf"in use by process {os.getpid()}"):
            with rundir.lock(wd):
                pass
        r = subprocess.run([sys.executable, "-m", "ccjax", "train", "--config=configs/cc_digits.py", f"--workdir={wd}",
                            "--config.num_epochs=2", "--config.model.convnet_width=8",
                            "--config.checkpoint.every_epochs=1", "--config.progress_bar=False"],
                           cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and f"in use by process {os.getpid()}" in lines[0], r.stderr
    assert {p: os.path.getmtime(p) for p in glob.glob(os.path.join(wd, "**"), recursive=True)} == files
    with rundir.lock(wd):  # released: the next launch gets it
        pass


# ----------------------------------------------------------------------------- disk full, any I/O failure


def test_failed_save_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from test_checkpoint import abstract_on, state_on

    from ccjax.runtime.mesh import make_mesh

    d = str(tmp_path / "ck")
    ck = Checkpointer(d, keep=3)
    st = state_on(make_mesh())
    ck.save(1, st, {"step": 1})
    ck.wait()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.manager, "save", disk_full)
    with pytest.raises(SaveFailed, match=r"step 2 .* failed \(the disk is full\); the previous complete "
                                         r"checkpoint \(step 1\) is kept") as e:
        ck.save(2, st, {"step": 2})
    assert "\n" not in str(e.value)
    monkeypatch.undo()
    # An asynchronous save that failed in the background is reported at the next check, every step.
    monkeypatch.setattr(ck.manager, "check_for_errors", disk_full)
    with pytest.raises(SaveFailed, match="the disk is full"):
        ck.check()
    monkeypatch.undo()
    ck.close()
    ck = Checkpointer(d, keep=3)
    assert ck.restore_newest(abstract_on(make_mesh(), st))[0] == 1
    ck.close()


def test_a_failed_best_checkpoint_save_names_the_training_checkpoint_kept(tmp_path, monkeypatch):
    """The best-by-loss checkpoints (keep=1) live apart from the training ones a resume reads; Orbax may
    already have deleted the best folder's previous step when the next save fails. The line must name
    the training checkpoint that is kept, not say that none exists (found on a real full disk)."""
    from test_checkpoint import state_on

    from ccjax.runtime.mesh import make_mesh

    main_dir, best_dir = str(tmp_path / "checkpoints"), str(tmp_path / "checkpoints_best")
    ck = Checkpointer(main_dir, keep=3)
    ck.save(7, state_on(make_mesh()), {"step": 7})
    ck.close()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    for resume_directory, kept in ((main_dir, r"the previous complete checkpoint \(step 7\) is kept"),
                                   (None, "no complete checkpoint exists")):  # without the wire
        best = Checkpointer(best_dir, keep=1, resume_directory=resume_directory)
        monkeypatch.setattr(best.manager, "save", disk_full)
        with pytest.raises(SaveFailed, match=rf"step 14 in {best_dir} failed \(the disk is full\); {kept}"):
            best.save(14, state_on(make_mesh()), {"step": 14})
        monkeypatch.undo()
        best.close()


@pytest.mark.slow
def test_disk_full_during_training_stops_with_one_error_and_resumable_checkpoints(tmp_path, monkeypatch):
    from ccjax.train import train_and_evaluate

    real_save = Checkpointer.save
    calls = []

    def save_then_full(self, step, state, meta, force=True):
        calls.append(step)
        if len(calls) > 2:  # the main and the best checkpoint of epoch 1 succeed, then the disk is full
            raise self._failed(OSError(errno.ENOSPC, "No space left on device"))
        return real_save(self, step, state, meta, force)

    monkeypatch.setattr(Checkpointer, "save", save_then_full)
    wd = str(tmp_path / "run")
    with pytest.raises(SaveFailed, match="the disk is full"):
        train_and_evaluate(tiny_digits_config(), wd)
    monkeypatch.undo()
    assert steps(wd) == [7]
    result = train_and_evaluate(tiny_digits_config(), wd)  # space freed: the same command resumes
    assert result["step"] == 14 and history_epochs(wd) == [1, 2]


# ----------------------------------------------------------------------------- the run log


def test_run_log_drops_a_torn_line_and_never_repeats_an_epoch(tmp_path):
    from ccjax.report.report import read_history
    from ccjax.run.log import RunLog

    wd = str(tmp_path)
    path = os.path.join(wd, HISTORY)
    with open(path, "w") as f:
        f.write('{"epoch": 1, "step": 7, "loss": 1.5}\n{"epoch": 2, "step": 14, "loss": 1.4}\n{"epoch": 3, "st')
    assert [r["epoch"] for r in read_history(wd)] == [1, 2]  # the report reads past the torn line
    log = RunLog(wd)
    log.truncate_history(14)  # resuming from step 14: the torn line goes, epochs 1-2 stay
    log.history({"epoch": 3, "step": 21, "loss": 1.3})
    assert history_epochs(wd) == [1, 2, 3]
    log.truncate_history(0)  # killed before the first checkpoint: the relaunch starts the log afresh
    log.history({"epoch": 1, "step": 7, "loss": 1.5})
    assert history_epochs(wd) == [1]


# ----------------------------------------------------------------------------- values checked before any work


@pytest.mark.parametrize("field, value, expected", [
    ("learning_rate", -1.0, "learning_rate=-1.0 must be > 0"),
    ("learning_rate", 0.0, "learning_rate=0.0 must be > 0"),
    ("num_epochs", 0, "num_epochs=0 must be >= 1"),
    ("num_epochs", -2, "num_epochs=-2 must be >= 1"),
    ("batch_size", 0, "batch_size=0 must be >= 1"),
    ("dataset.num_clusters", 1, "at least 2 clusters"),
    ("dataset.num_clusters", 0, "at least 2 clusters"),
    ("checkpoint.every_epochs", 0, "checkpoint.every_epochs=0 must be >= 1"),
    ("loss.cluster_temperature", 0.0, "loss.cluster_temperature=0.0 must be > 0"),
    ("augment.flip_p", 1.5, "flip_p=1.5 is a probability"),
    ("augment2.grayscale_p", -0.1, "grayscale_p=-0.1 is a probability"),
    ("augment.image_size", 0, "image_size must be a positive integer"),
])
def test_bad_values_are_one_line_before_any_work(field, value, expected):
    from ccjax.config import validate

    config = tiny_digits_config()
    holder = config
    *path, last = field.split(".")
    for part in path:
        holder = getattr(holder, part)
    setattr(holder, last, value)
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")) as e:
        validate(config)
    assert "\n" not in str(e.value)  # one line, for every field
    assert "--config." in str(e.value) or "augment" in field  # names the flag (augment messages name the field)


def test_bad_value_on_the_command_line_creates_nothing(tmp_path):
    wd = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "ccjax", "train", "--config=configs/cc_digits.py", f"--workdir={wd}",
                        "--config.num_epochs=-2"], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                       timeout=120)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "num_epochs=-2 must be >= 1" in lines[0], r.stderr
    assert not wd.exists()


def test_num_clusters_against_the_data(capfd):
    from ccjax.data.dataset import ImageDataset
    from ccjax.train.checks import resolve_num_clusters

    ds = ImageDataset.synthetic(50, (8, 8, 1), num_classes=5)
    config = tiny_digits_config()
    config.dataset.num_clusters = 51
    with pytest.raises(UserError, match="more than the 50 images"):
        resolve_num_clusters(config, ds)
    config.dataset.num_clusters = 40
    config.batch_size = 32
    assert resolve_num_clusters(config, ds) == 40
    assert "40 clusters but batches of 32" in capfd.readouterr().err
    config.dataset.num_clusters = -1
    assert resolve_num_clusters(config, ds) == 5
    one = ImageDataset("one", np.zeros((4, 2, 2, 1), np.uint8), np.zeros(4, np.int32), ["only"])
    with pytest.raises(UserError, match="at least 2"):
        resolve_num_clusters(config, one)


def test_report_stays_small_and_fast_for_many_clusters(tmp_path):
    import csv
    import time

    from ccjax.data.dataset import ImageDataset
    from ccjax.report.report import MAX_DRAWN, write_report

    n, k = 600, 300
    ds = ImageDataset.synthetic(n, (8, 8, 1), num_classes=10)
    probs = np.random.default_rng(0).dirichlet(np.full(k, 0.05), size=n).astype(np.float32)
    labels = ds.read(np.arange(n))["label"]
    t = time.perf_counter()
    out = write_report(str(tmp_path), ds, probs, {"last": {}}, labels)
    elapsed = time.perf_counter() - t
    with open(os.path.join(out, "confusion.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == k + 1 and len(rows[0]) == 11  # every cluster in the CSV
    assert sum(int(v) for r in rows[1:] for v in r[1:]) == n
    for name, rows_drawn in (("confusion.png", MAX_DRAWN), ("clusters.png", MAX_DRAWN)):
        with Image.open(os.path.join(out, name)) as im:
            assert im.height < 200 * rows_drawn, (name, im.size)  # drawn for the largest clusters only
    assert elapsed < 120, elapsed  # a guard against the 8-minute report, not a benchmark


# ----------------------------------------------------------------------------- images


def _png(path, img: Image.Image) -> str:
    img.save(path)
    return str(path)


def test_every_image_kind_decodes_like_its_8_bit_twin(tmp_path):
    from ccjax.data.images import load_image

    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    want_gray = load_image(_png(tmp_path / "g8.png", Image.fromarray(gray, "L")), (6, 5, 1))
    np.testing.assert_array_equal(want_gray[..., 0], gray)
    g16 = Image.fromarray(gray.astype(np.uint16) * 257)  # the same levels at 16 bits
    np.testing.assert_array_equal(load_image(_png(tmp_path / "g16.png", g16), (6, 5, 1)), want_gray)
    want_rgb = load_image(_png(tmp_path / "c.png", Image.fromarray(rgb, "RGB")), (6, 5, 3))
    np.testing.assert_array_equal(want_rgb, rgb)
    rgba = Image.fromarray(np.concatenate([rgb, np.full((6, 5, 1), 255, np.uint8)], -1), "RGBA")
    np.testing.assert_array_equal(load_image(_png(tmp_path / "a.png", rgba), (6, 5, 3)), rgb)
    pal = Image.fromarray(rgb, "RGB").quantize(256)
    np.testing.assert_array_equal(load_image(_png(tmp_path / "p.png", pal), (6, 5, 3)),
                                  np.asarray(pal.convert("RGB")))
    cmyk = Image.fromarray(rgb, "RGB").convert("CMYK")
    cmyk.save(tmp_path / "k.jpg", quality=100)
    assert load_image(str(tmp_path / "k.jpg"), (6, 5, 3)).shape == (6, 5, 3)
    # EXIF orientation 6 (turn 90 degrees clockwise to view): stored 5x6, shown 6x5 = the original.
    stored = Image.fromarray(rgb, "RGB").transpose(Image.Transpose.ROTATE_90)
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(tmp_path / "r.png", exif=exif)
    np.testing.assert_array_equal(load_image(str(tmp_path / "r.png"), (6, 5, 3)), rgb)


def test_empty_class_folder_is_left_out_and_reported(tmp_path, capfd):
    from ccjax.data import open_dataset
    from ccjax.data.folder import scan_folder
    from ccjax.cli.prepare import dataset_config

    root = tmp_path / "imgs"
    for cls in ("cat", "empty", "dog"):
        (root / cls).mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(root / "cat" / f"{i}.png")
        Image.fromarray(np.full((8, 8, 3), 200 - 40 * i, np.uint8)).save(root / "dog" / f"{i}.png")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "empty" / "notes.txt").write_text("no images here")
    scan = scan_folder(str(root))
    assert scan.class_names == ["cat", "dog"] and sorted({label for _, label in scan.files}) == [0, 1]
    assert ("empty/", "class folder without a readable image: left out") in scan.skipped
    ds = open_dataset(dataset_config(f"folder:{root}", data_dir=str(tmp_path / "tfds"), image_size=8))
    assert ds.num_classes == 2 and ds.num_examples == 6
    err = capfd.readouterr().err
    assert "6 images" in err and "3 files skipped" in err  # training's own preparation says so too
