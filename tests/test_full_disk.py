"""A real full disk: a small tmpfs as the workdir (root mounts it; skipped, with the reason, where
mounting is not allowed).

Training: the first launch stops after epoch 1 with a checkpoint; the disk is then filled to a
quarter of a checkpoint's size, and the same command saves at epoch 2 into a disk that cannot
hold it. It must stop at that save, name its step, print one line and no traceback, leave no
temporary checkpoint folder, and resume with the same command once space is freed.
`ccjax evaluate` and `ccjax predict` writing onto the full disk: one line, exit 2, no partial
file; they succeed once space is freed.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from test_cli import env
from test_report import ROOT, load_config

ARGS = ["--config=configs/cc_digits.py", "--config.num_epochs=3", "--config.model.convnet_width=8",
        "--config.checkpoint.every_epochs=1", "--config.progress_bar=False"]


def digits_config():
    """The config ARGS give, in-process."""
    c = load_config("cc_digits")
    c.num_epochs = 3
    c.model.convnet_width = 8
    c.checkpoint.every_epochs = 1
    c.progress_bar = False
    return c


@contextlib.contextmanager
def tmpfs(path: str, size: str):
    """A tmpfs of `size` mounted at `path`, unmounted afterwards; skips the test where that is not allowed."""
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a tmpfs, and mounting one needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {' '.join(r.stderr.split())}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], capture_output=True)


def fill(disk: str, leave: int) -> str:
    """Writes a ballast file so that about `leave` bytes stay free; returns its path."""
    path = os.path.join(disk, "ballast")
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(path, "wb") as f:
        remaining = max(free - leave, 0)
        while remaining > 0:
            n = min(remaining, 1 << 20)
            f.write(b"\0" * n)
            remaining -= n
    return path


def du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, n)) for r, _, names in os.walk(path) for n in names)


def command(name: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m ccjax <name's command> ARGS` (name: 'ccjax train', 'ccjax evaluate', ...)."""
    return subprocess.run([sys.executable, "-m", *name.split(), *args], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=600)


def error_lines(stderr: str) -> list[str]:
    """stderr's lines, progress bars (carriage-return redrawn) left out."""
    return [l for l in stderr.replace("\r", "\n").splitlines() if l.strip() and not l.startswith("assign")]


def leftovers(workdir: str) -> list[str]:
    return glob.glob(os.path.join(workdir, "**", "*orbax-checkpoint-tmp*"), recursive=True) + \
        glob.glob(os.path.join(workdir, "**", ".tmp-*"), recursive=True)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # seven launches; a few minutes on an idle machine
def test_a_full_disk_stops_training_evaluate_and_predict_with_one_line_and_they_resume(tmp_path):
    from ccjax.train import train_and_evaluate

    with tmpfs(str(tmp_path / "disk"), "64m") as disk:
        wd = os.path.join(disk, "run")
        assert train_and_evaluate(digits_config(), wd, stop_at_epoch=1) == {"stopped_at_step": 7}
        ballast = fill(disk, leave=du(os.path.join(wd, "checkpoints", "7")) // 4)

        r = command("ccjax train", *ARGS, f"--workdir={wd}")
        assert r.returncode == 2, r.stderr
        lines = error_lines(r.stderr)
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert lines[0].startswith("ccjax: error: saving checkpoint step 14 ") and "the disk is full" in lines[0]
        assert "(step 7) is kept" in lines[0]
        assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == ["7"] and not leftovers(wd)
        with open(os.path.join(wd, "history.jsonl")) as f:  # stopped at that save: epoch 3 never ran
            assert [json.loads(l)["epoch"] for l in f] == [1, 2]

        os.remove(ballast)
        r = command("ccjax train", *ARGS, f"--workdir={wd}")
        assert r.returncode == 0, r.stderr
        assert "resuming from step 7" in r.stdout and "final clustering" in r.stdout
        with open(os.path.join(wd, "history.jsonl")) as f:
            assert [json.loads(l)["epoch"] for l in f] == [1, 2, 3]

        images = tmp_path / "images"
        images.mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(images / f"{i}.png")
        metrics = os.path.join(wd, "metrics.json")
        with open(metrics) as f:
            before = f.read()
        ballast = fill(disk, leave=0)
        for module, args, target in (("ccjax evaluate", [], metrics),
                                     ("ccjax predict", [str(images)], os.path.join(wd, "predictions.csv"))):
            r = command(module, f"--workdir={wd}", *args)
            assert r.returncode == 2, r.stderr
            lines = error_lines(r.stderr)
            assert lines == [f"ccjax: error: cannot write {target} (the disk is full); free space (or fix the "
                             "folder's permissions), then run the same command again"], r.stderr
            assert not leftovers(wd)
        with open(metrics) as f:
            assert f.read() == before  # the old file, whole
        assert not os.path.exists(os.path.join(wd, "predictions.csv"))

        os.remove(ballast)
        for module, args in (("ccjax evaluate", []), ("ccjax predict", [str(images)])):
            r = command(module, f"--workdir={wd}", *args)
            assert r.returncode == 0, r.stderr
        assert os.path.exists(os.path.join(wd, "predictions.csv"))
