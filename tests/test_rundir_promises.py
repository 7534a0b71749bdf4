"""What a run directory promises a user, tried on copies of tests/test_report.py's tiny digits run:

- every file ccjax writes there (config.json, run.json, metrics.json, history.jsonl, report/*,
  a predictions CSV) gets the mode the user's umask gives new files: 0644 under umask 022, so a
  lab-mate can read the report, 0600 under 077;
- a relaunch asking for fewer epochs than the checkpoints hold is refused in one line that says
  what to run instead, and config.json, the checkpoints and the history stay as they were.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat

import numpy as np
import pytest

from ccjax.errors import UserError
from ccjax.eval.predict import write_predictions
from ccjax.run import rundir
from ccjax.run.checkpoint import complete_steps
from test_report import tiny_digits_config, trained_digits_run

PREDICTIONS = "predictions.csv"


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def written_files(workdir: str) -> list[str]:
    """The files a user reads: the run's JSON, the history, the predictions and every report file (folders keep
    the mode they were made with)."""
    names = [rundir.CONFIG_FILE, rundir.RUN_INFO, rundir.METRICS, rundir.HISTORY, PREDICTIONS]
    report = os.path.join(workdir, rundir.REPORT_DIR)
    names += sorted(os.path.relpath(os.path.join(folder, f), workdir)  # the page's thumbnails too
                    for folder, _, files in os.walk(report) for f in files)
    return [os.path.join(workdir, n) for n in names]


def modes(workdir: str) -> dict[str, str]:
    return {os.path.relpath(p, workdir): oct(stat.S_IMODE(os.stat(p).st_mode)) for p in written_files(workdir)}


def launch(workdir: str, **overrides) -> dict:
    from ccjax.train import train_and_evaluate

    config = tiny_digits_config()
    for k, v in overrides.items():
        setattr(config, k, v)
    return train_and_evaluate(config, workdir)


def predict_into(workdir: str) -> None:
    """Writes a predictions CSV with the writer `predict` uses (the model's output does not matter here)."""
    write_predictions(os.path.join(workdir, PREDICTIONS), np.full((2, 10), 0.1), ["a.png", "b.png"])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> str:
    """The tiny digits run of tests/test_report.py (trained once per session, under the session's umask)."""
    return trained_digits_run(tmp_path_factory)[0]


def copy_of(workdir: str, tmp_path) -> str:
    """A copy (modes included) for a test that launches again, so tests do not depend on their order."""
    target = str(tmp_path / "run")
    shutil.copytree(workdir, target)
    return target


def test_files_get_the_umask_mode_whichever_the_umask(run, tmp_path):
    # Catches: a writer that keeps tempfile.mkstemp's 0600 (every report private to its writer: the 022
    # launch fails), or one that forces 0644 or keeps the replaced file's mode (the 077 launch fails).
    workdir = copy_of(run, tmp_path)
    # The shared run may hold report files that other tests' commands added (--suggest_k's, say), which a
    # relaunch does not rewrite: the relaunch below writes the whole report anew.
    shutil.rmtree(os.path.join(workdir, rundir.REPORT_DIR))
    for mask, expected in ((0o077, "0o600"), (0o022, "0o644")):
        with umask(mask):
            launch(workdir)  # a finished run: re-evaluated, rewriting config, run.json, history, metrics, report
            predict_into(workdir)
        found = modes(workdir)
        assert len(found) >= 10, found  # the report's figures, tables and JSON are all there
        assert {m for m in found.values()} == {expected}, (oct(mask), found)


def test_fewer_epochs_than_trained_is_refused_and_nothing_is_rewritten(run, tmp_path):
    # Catches: a relaunch that rewrites config.json to the smaller num_epochs while the checkpoints stay at
    # the larger one (or saves the trained state under a smaller step, or re-evaluates and exits 0).
    workdir = copy_of(run, tmp_path)
    watched = [rundir.CONFIG_FILE, rundir.RUN_INFO, rundir.HISTORY, rundir.METRICS]
    before = {n: open(os.path.join(workdir, n), "rb").read() for n in watched}
    ckpt_dir = os.path.join(workdir, rundir.CHECKPOINTS_DIR)
    steps = complete_steps(ckpt_dir)
    with pytest.raises(UserError) as e:
        launch(workdir, num_epochs=1)
    message = str(e.value)
    assert "\n" not in message
    assert "trained to epoch 2" in message and "num_epochs=1" in message, message
    assert f"python -m ccjax evaluate --workdir={workdir}" in message and "--config.num_epochs=2" in message
    assert {n: open(os.path.join(workdir, n), "rb").read() for n in watched} == before
    assert complete_steps(ckpt_dir) == steps
