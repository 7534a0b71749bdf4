"""The benchmark command on a tiny config: it compiles the real step and reports sane figures."""

import json
import os
import subprocess
import sys

import pytest

from ccjax.train.benchmark import benchmark, format_table
from test_end_to_end import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(c):
    c.model.feature_dim = 8
    c.augment.image_size = 8
    c.batch_size = 8
    c.bench.warmup_steps = 1
    c.bench.steps = 3
    return c


@pytest.mark.slow
def test_bench_reports_throughput_and_flops_for_a_gecc_config():
    c = tiny(load_config("gecc_cifar10"))
    c.model.backbone = "convnet"
    c.model.convnet_width = 4
    r = benchmark(c)
    assert r["timed_steps"] == 3
    assert r["images_per_s"] > 0 and r["step_time_median_s"] > 0
    assert r["step_time_p10_s"] <= r["step_time_median_s"] <= r["step_time_p90_s"]
    assert r["flops_per_step"] > 0  # from XLA's cost analysis of the compiled step
    assert r["input_images_per_s"] > 0
    assert r["dataset_examples"] == 60000  # CIFAR-10 train + test, read from the catalog, no download
    assert r["epoch_time_s"] == (60000 // 8) * r["step_time_median_s"]
    assert r["bottleneck"] == ("input" if r["input_images_per_s"] < r["images_per_s"] else "step")
    assert r["input_path"].startswith("in memory") and r["worker_peak_rss_gib"] is None  # synthetic data
    assert 0.1 < r["peak_rss_gib"] < 64  # this process's VmHWM, in GiB (not KiB, not bytes)
    table = format_table(r)
    assert "images/s" in table and "MFU" in table and "bottleneck" in table and "host peak RSS" in table


@pytest.mark.slow
def test_bench_command_line_on_a_vit_with_anchor(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, "-m", "ccjax", "bench", "--config=configs/mfavbs_cifar10.py", f"--json={out}",
         "--config.model.vit.embed_dim=32", "--config.model.vit.num_heads=2", "--config.model.vit.depth=2",
         "--config.model.vit.num_fusing_blocks=1", "--config.augment.image_size=32", "--config.batch_size=8",
         "--config.bench.warmup_steps=1", "--config.bench.steps=2", "--config.model.feature_dim=8"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "JAX_NUM_CPU_DEVICES": "4", "PYTHONPATH": ROOT},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["config"] == "mfavbs/cifar10" and result["num_devices"] == 4
    assert result["flops_per_step"] > 0


def test_bench_compile_only_reports_flops_and_no_timings():
    c = tiny(load_config("cc_cifar10"))
    c.model.backbone = "convnet"
    c.model.convnet_width = 4
    c.bench.steps = 0
    r = benchmark(c)
    assert r["timed_steps"] == 0 and r["flops_per_step"] > 0
    for k in ("images_per_s", "input_images_per_s", "step_time_median_s", "achieved_tflops", "mfu", "epoch_time_s"):
        assert r[k] is None, k
    json.dumps(r, allow_nan=False)  # strict JSON: no NaN stands in for a missing timing
    assert "not timed" in format_table(r)


def test_device_peak_flops_matches_the_device_kind_and_dtype():
    from types import SimpleNamespace

    from ccjax.train.benchmark import device_peak_flops

    h100 = SimpleNamespace(device_kind="NVIDIA H100 80GB HBM3")
    assert device_peak_flops(h100, "bfloat16") == 989e12
    assert device_peak_flops(h100, "float32") == 494e12  # TF32 tensor cores at XLA's default precision
    assert device_peak_flops(SimpleNamespace(device_kind="TPU v5 lite"), "bfloat16") == 197e12
    assert device_peak_flops(SimpleNamespace(device_kind="cpu"), "float32") is None


def test_bench_of_a_temi_config_is_one_user_error_naming_the_temi_benchmark():
    """TEMI has no image train step: bench stops before building anything, with the tool that times it
    (wrong: a traceback from tracing the image step, NotImplementedError or a ValueError at init)."""
    from ccjax.errors import UserError

    for name in ("temi_images", "temi_run"):
        with pytest.raises(UserError, match=r"method=temi.*tools/temi_benchmark\.py") as e:
            benchmark(load_config(name))
        assert "\n" not in str(e.value)
