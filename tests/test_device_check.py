"""tools/device_check.py end to end on CPU with --tiny, and tools/device_wheels.py's requirement walk.

The device check's figures on a CPU mean nothing; what is checked is that every
kind of row (synthetic in both dtypes, the real streamed folder, the largest
batch that fits, the frozen-features rows of tools/temi_benchmark.py) runs through its subprocesses, is printed in
docs/benchmarks.md's table format and lands in the JSON. CC's rows only (a tiny
ConvNet compiles in seconds): the ViT and the CLIP anchor's real input are the
same `ccjax bench` command with other flags, tested in tests/test_bench.py and
tests/test_own_images.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import device_check
import device_wheels


def test_predicted_max_batch_is_linear_in_the_batch():
    # 1 GiB fixed + 0.01 GiB per image: 92% of 10 GiB leaves 8.2 GiB -> 820 images, down to a multiple of 8.
    assert device_check.predicted_max_batch(100, 2.0, 3.0, 10.0, 8) == 816
    assert device_check.predicted_max_batch(100, 2.0, 2.0, 10.0, 8) is None  # no growth: no prediction
    assert device_check.predicted_max_batch(100, 9.2, 10.2, 10.0, 8) is None  # nothing above the paper batch


@pytest.mark.slow
@pytest.mark.timeout(1900)  # about 2 minutes on an idle 2-core machine; the limits below allow a busy one
def test_device_check_runs_every_kind_of_row_on_cpu(tmp_path):
    out = tmp_path / "check.json"
    home = tmp_path / "home"  # the tiny CLIP is made under ~/.cache
    r = subprocess.run(
        [sys.executable, "tools/device_check.py", "--tiny", "--only=cc", "--parallel=2",
         f"--workdir={tmp_path / 'work'}", f"--out={out}", "--memory_limit_gib=0.05", "--max_batch_cap=24",
         "--budget_s=1750", "--row_limit_s=1500", "--prewarm_limit_s=1500"],
        cwd=ROOT, capture_output=True, text=True, timeout=1850,
        env={**os.environ, "HOME": str(home), "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = report["synthetic"] + report["real"]
    assert [(x["dtype"], x["input"]) for x in rows] == [
        ("bfloat16", "synthetic"), ("float32", "synthetic"), ("bfloat16", "real, streamed")]
    for x in rows:
        assert x["status"] == "ok", x
        assert x["result"]["config"].startswith("cc/") and x["result"]["timed_steps"] == 2
    assert rows[2]["result"]["data"] == "real" and rows[2]["result"]["input_path"].startswith("stream")
    # Compiled first, in parallel: both dtypes, twice the batch, the real input's step and the largest batch.
    assert sorted(p["what"].split("/")[0] for p in report["prewarm"]) == ["max", "real", "synthetic", "synthetic",
                                                                          "twice"]
    assert all(p["status"] == "ok" for p in report["prewarm"]), report["prewarm"]
    (mem,) = report["memory"]
    assert mem["status"] == "ok" and 8 < mem["batch"] <= 24 and mem["result"]["batch_size"] == mem["batch"]
    # The printed rows: one per timed row in the "Measured" format, one memory row per paper batch and the fit.
    lines = r.stdout.splitlines()
    measured = [ln for ln in lines if ln.startswith("| 20") and ln.count("|") == 13]
    assert len(measured) == 3 and all("`cc_cifar10.py` (CC)" in ln for ln in measured)
    assert "| real, streamed (input alone" in measured[2]
    memory = [ln for ln in lines if ln.startswith("| 20") and ln.count("|") == 8]
    assert len(memory) == 3 and "largest that fits: predicted" in memory[2]
    # The frozen-features rows (tools/temi_benchmark.py subprocesses): the four with a --tiny size ran and their
    # figures were read back; the three without one are listed as skipped, never silently dropped.
    frozen = {x["row"]: x for x in report["frozen"]}
    assert list(frozen) == list(device_check.FROZEN)
    ran = {k for k, x in frozen.items() if x["status"] == "ok"}
    assert ran == {"embed_clip", "head", "knn_60k", "kmeans_60k"}, report["frozen"]
    assert all(frozen[k]["status"] == "skipped" for k in set(frozen) - ran)
    assert frozen["embed_clip"]["result"]["images_per_s"] > 0 and frozen["embed_clip"]["result"]["tiny"]
    assert frozen["head"]["result"]["step_s"] > 0 and frozen["head"]["result"]["heads"] == 2
    assert frozen["knn_60k"]["result"]["n"] == 2000 and not frozen["knn_60k"]["result"]["extrapolated"]
    assert frozen["kmeans_60k"]["result"]["seconds"] > 0
    table = [ln for ln in lines if ln.startswith("| 20") and ln.count("|") == 6]
    assert len(table) == len(device_check.FROZEN) and "images/s" in table[0] and "queries/s" in table[3]
    assert f"every figure in {out}" in r.stdout


def test_wheel_walk_skips_what_the_target_has_at_a_good_version():
    from packaging.requirements import Requirement

    have = {"transformers": "5.17.0", "numpy": "", "grain": "0.2.18"}
    assert not device_wheels.satisfied(Requirement("transformers>=4.57.6,<5"), have)  # 5 has no Flax CLIP
    assert device_wheels.satisfied(Requirement("numpy>=2.0"), have)  # name only: taken as there
    assert device_wheels.satisfied(Requirement("grain>=0.2.18,<0.3"), have)
    assert not device_wheels.satisfied(Requirement("array_record>=0.8.1"), have)
    # Markers are read for CPython 3.12 on Linux, extras for what the parent asked.
    assert device_wheels.applies(Requirement('uvloop; platform_system != "Windows"'), set())
    assert not device_wheels.applies(Requirement('importlib_resources; python_version < "3.9"'), set())
    assert not device_wheels.applies(Requirement('pytest; extra == "test"'), set())
    assert device_wheels.applies(Requirement('pytest; extra == "test"'), {"test"})


def test_wheel_walk_starts_from_pyproject_and_the_newest_pins():
    names = {device_wheels.canon(r.name) for r in device_wheels.project_requirements()}
    assert {"jax", "grain", "transformers", "tensorflow-datasets"} <= names
    pins = device_wheels.read_pins(os.path.join(ROOT, ".ci", "constraints-newest.txt"))
    for r in device_wheels.project_requirements():  # every requirement pinned, inside its range
        name = device_wheels.canon(r.name)
        assert name in pins, name
        assert r.specifier.contains(pins[name], prereleases=True), (r, pins[name])
