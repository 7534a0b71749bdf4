"""Third-party noise is off by default on the command line and back with --verbosity: TFDS's banners and
W-lines, transformers' Flax deprecation notice, Gloo's connection lines in launch/local.sh."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from test_cli import ROOT, env

DEPRECATION = "TensorFlow and JAX classes are deprecated and will be removed in Transformers v5."
# A command's flag parsing, then what the libraries log: transformers' notice (as transformers.modeling_flax_utils
# logs it) and a TFDS-style absl warning.
LOGGING_SCRIPT = f"""
import sys
from absl import logging as absl_logging
from ccjax.cli.flags import parse_flags_or_exit
parse_flags_or_exit(["prog", *sys.argv[1:]])
from transformers.utils import logging as hf_logging
hf_logging.get_logger("transformers.modeling_flax_utils").warning_once({DEPRECATION!r})
absl_logging.warning("Variant folder /x/cifar10/3.0.2 has no dataset_info.json")
absl_logging.error("a real error")
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("verbosity, shown", [(None, False), ("--verbosity=-1", True)])
def test_library_warnings_only_when_asked(verbosity, shown):
    r = run_python(LOGGING_SCRIPT, *([verbosity] if verbosity else []))
    assert r.returncode == 0, r.stderr
    assert (DEPRECATION in r.stderr) == shown, r.stderr
    assert ("has no dataset_info.json" in r.stderr) == shown, r.stderr
    assert "a real error" in r.stderr  # errors always


def test_digits_preparation_prints_one_line_not_tfds_banners(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ccjax", "prepare", "--dataset=digits", f"--data_dir={tmp_path}"],
                       cwd=ROOT, env=env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert "Downloading and preparing" not in r.stdout + r.stderr and "Unknown size" not in r.stdout, r.stdout
    assert f"ccjax: prepared the embedded digits (once) in {tmp_path}/ccjax_digits" in r.stdout, r.stdout
    assert r.stderr == "", r.stderr


def test_an_unprepared_dataset_is_one_line_without_tfds_warnings(tmp_path):
    (tmp_path / "cifar10" / "3.0.2").mkdir(parents=True)  # what an interrupted download leaves: no dataset_info.json
    r = subprocess.run([sys.executable, "-m", "ccjax", "train", "--config=configs/cc_cifar10.py",
                        f"--config.dataset.data_dir={tmp_path}", f"--workdir={tmp_path / 'run'}"],
                       cwd=ROOT, env=env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "cifar10 is not prepared" in r.stderr, r.stderr


@pytest.mark.parametrize("verbose", [False, True])
def test_local_launch_drops_gloo_connection_lines_unless_verbose(verbose):
    gloo = "[Gloo] Rank 0 is connected to 1 peer ranks. Expected number of connected peer ranks is : 1"
    e = {**env(), **({"CCJAX_VERBOSE": "1"} if verbose else {})}
    r = subprocess.run([os.path.join(ROOT, "launch", "local.sh"), "2", "--", sys.executable, "-c",
                        f"print({gloo!r}); print('trained')"], cwd=ROOT, env=e, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(
        [f"[{i}] trained" for i in range(2)] + ([f"[{i}] {gloo}" for i in range(2)] if verbose else [])), r.stdout
