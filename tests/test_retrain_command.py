"""`evaluate --suggest_k` ends with the `ccjax train` command that retrains the run with the suggested K in a
new workdir. The oracle: that command, run with --show_config, resolves to the run's own config.json with
only dataset.num_clusters changed."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

from ccjax.run.command_line import IGNORED, recreate_flags, workdir_for_k
from ccjax.run.rundir import flatten
import pytest

from test_report import ROOT, load_config, subprocess_env, trained_digits_run


def shown_config(command: str) -> dict:
    """--show_config's `field = value` lines of a printed `python -m ccjax train ...` command, as Python values."""
    import ast

    args = shlex.split(command)
    assert args[:4] == ["python", "-m", "ccjax", "train"], command
    r = subprocess.run([sys.executable, "-m", "ccjax", "train", *args[4:], "--show_config"], cwd=ROOT,
                       env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return {k: ast.literal_eval(v) for k, v in (l.split(" = ", 1) for l in r.stdout.splitlines() if " = " in l)}


def expected(stored: dict, k: int) -> dict:
    want = {key: v for key, v in flatten(stored).items() if key not in IGNORED}
    want["dataset.num_clusters"] = k
    return want


def test_the_command_recreates_an_overridden_config_with_the_new_k(tmp_path):
    c = load_config("gecc_images")
    c.dataset.name = "folder:/data/my photos"  # a space: the command must quote it
    c.num_epochs = 3
    c.augment.crop_scale = (0.3, 1.0)
    c.gecc.weights = "wz"
    stored = json.loads(c.to_json_best_effort())
    path, flags = recreate_flags(stored, {"dataset.num_clusters": 12})
    assert os.path.basename(path) == "gecc_images.py"
    assert sorted(f.split("=")[0] for f in flags) == sorted(
        f"--config.{k}" for k in ("dataset.name", "num_epochs", "augment.crop_scale", "gecc.weights",
                                  "dataset.num_clusters"))
    command = " ".join(["python -m ccjax train", f"--config={path}", *map(shlex.quote, flags), "--workdir=x"])
    got = shown_config(command)
    assert {k: v for k, v in got.items() if k not in IGNORED} == expected(stored, 12)


def test_workdir_for_k_replaces_a_k_suffix_and_avoids_existing_folders(tmp_path):
    assert workdir_for_k(str(tmp_path / "photos_k20"), 12) == str(tmp_path / "photos_k12")
    assert workdir_for_k(str(tmp_path / "photos"), 12) == str(tmp_path / "photos_k12")
    (tmp_path / "photos_k12").mkdir()
    assert workdir_for_k(str(tmp_path / "photos"), 12) == str(tmp_path / "photos_k12_2")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_digits_run(tmp_path_factory)


def test_suggest_k_prints_the_command_that_retrains_with_the_suggested_k(run):
    workdir, _ = run
    r = subprocess.run([sys.executable, "-m", "ccjax", "evaluate", f"--workdir={workdir}", "--suggest_k=2:4"],
                       cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(workdir, "report", "suggest_k.json")) as f:
        k = json.load(f)["suggested_k"]
    lines = r.stdout.splitlines()
    assert lines[-2] == f"ccjax: to retrain with the suggested K = {k} (this run: K = 10) in a new workdir:"
    command = lines[-1].strip()
    assert command.endswith(f"--workdir={workdir}_k{k}")
    with open(os.path.join(workdir, "config.json")) as f:
        stored = json.load(f)
    got = shown_config(command)
    assert {key: v for key, v in got.items() if key not in IGNORED} == expected(stored, k)
