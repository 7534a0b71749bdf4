"""The library of `python -m ccjax bench` (ccjax/cli/bench.py): the real train step compiled and timed,
its FLOPs and memory from XLA, the input pipeline timed alone, and the table that reports them
(docs/benchmarks.md). tools/cpu_step_profile.py builds its runs with `build_run`."""

from __future__ import annotations

import datetime
import glob
import os
import resource
import statistics
import time

import jax
import numpy as np

from ccjax.config import validate
from ccjax.data import dataset_spec
from ccjax.data.dataset import ImageDataset
from ccjax.errors import UserError
from ccjax.train.loop import TrainingRun

# Dense peak FLOP/s per device for the dtype the step computes in (vendor
# figures). On A100/H100/H200, XLA runs float32 matmuls and convolutions on
# TF32 tensor cores at the default precision, so their float32 peak is TF32's.
PEAK_FLOPS = {
    # device_kind substring: (bfloat16, float32)
    "H200": (989e12, 494e12),
    "H100": (989e12, 494e12),
    "A100": (312e12, 156e12),
    "V100": (125e12, 15.7e12),
    "L4": (121e12, 60e12),
    "TPU v4": (275e12, 275e12 / 2),
    "TPU v5 lite": (197e12, 197e12 / 2),
    "TPU v5e": (197e12, 197e12 / 2),
    "TPU v5p": (459e12, 459e12 / 2),
    "TPU v6": (918e12, 918e12 / 2),
}


def device_peak_flops(device, dtype: str) -> float | None:
    for key, (bf16, f32) in PEAK_FLOPS.items():
        if key.lower() in device.device_kind.lower():
            return bf16 if dtype == "bfloat16" else f32
    return None


def synthetic_anchors(config, n: int) -> np.ndarray | None:
    if not config.anchor.enabled:
        return None
    dim = config.model.vit.embed_dim if not config.anchor.project else 512
    return np.random.default_rng(1).normal(size=(n, dim)).astype(np.float32)


def build_run(config):
    """A TrainingRun over synthetic or real data."""
    if config.bench.data == "real":
        return TrainingRun(config), None
    spec = dataset_spec(config.dataset)
    n = config.batch_size * 2
    num_classes = spec["num_classes"] or max(config.dataset.num_clusters, 2)
    dataset = ImageDataset.synthetic(n, spec["image_shape"], num_classes)
    return TrainingRun(config, dataset=dataset, anchors=synthetic_anchors(config, n)), spec


def benchmark(config) -> dict:
    validate(config)
    if config.method == "temi":  # no image step to time: its heads train on cached features
        raise UserError("ccjax bench times the image train step, which method=temi does not have (its heads "
                        "train on cached frozen features): time TEMI with `python tools/temi_benchmark.py "
                        "--what=head` (also embed, knn, kmeans; docs/benchmarks.md), or bench a cc/gecc/vtcc/"
                        "mfavbs config")
    run, spec = build_run(config)
    state = run.setup.init_state()
    batches = run.batches
    steps = config.bench.steps

    example = batches.batch(0, 0)
    compiled = run.train_step.lower(state, example).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost["flops"]) if cost and "flops" in cost else None  # None: XLA gave no count

    mem = compiled.memory_analysis()
    times = time_steps(run, state, config) if steps > 0 else []
    input_rate, worker_rss = input_images_per_s(run, config) if steps > 0 else (None, 0)

    dev = jax.devices()[0]
    stats = dev.memory_stats() or {}
    peak = device_peak_flops(dev, config.dtype)
    num_examples = (spec or {}).get("num_examples") or run.dataset.num_examples
    result = {
        "config": f"{config.method}/{config.dataset.name}",
        "backbone": config.model.backbone,
        "dtype": config.dtype,
        "data": config.bench.data,
        "device": dev.device_kind,
        "num_devices": jax.device_count(),
        "date": datetime.date.today().isoformat(),
        "batch_size": config.batch_size,
        "image_size": config.augment.image_size,
        "timed_steps": len(times),
        "flops_per_step": flops,
        "peak_memory_gib": stats.get("peak_bytes_in_use", 0) / 2**30 if stats else None,
        # What this process may allocate on the device (XLA_PYTHON_CLIENT_MEM_FRACTION of it by default).
        "device_memory_gib": stats["bytes_limit"] / 2**30 if stats.get("bytes_limit") else None,
        # XLA's own estimate for the compiled step (arguments + temporaries), any device.
        "compiled_memory_gib": (mem.argument_size_in_bytes + mem.temp_size_in_bytes) / 2**30 if mem else None,
        "dataset_examples": num_examples,
    }
    # Timing figures are None (JSON null) for a compile-only run (bench.steps=0).
    median = statistics.median(times) if times else None
    result.update({
        "step_time_median_s": median,
        "step_time_p10_s": float(np.percentile(times, 10)) if times else None,
        "step_time_p90_s": float(np.percentile(times, 90)) if times else None,
        "images_per_s": config.batch_size / median if times else None,
        "achieved_tflops": flops / median / 1e12 if (times and flops) else None,
        "mfu": (flops / median / (peak * jax.device_count())) if (peak and times and flops) else None,
        "epoch_time_s": (num_examples // config.batch_size) * median if times else None,
        # The host side alone (read, shard, transfer; no step): how far it is from being the bottleneck.
        "input_images_per_s": input_rate,
        "input_path": run.dataset.how_opened,
        "bottleneck": (None if not (times and input_rate) else
                       "input" if input_rate < config.batch_size / median else "step"),
        # Host memory: this process's peak, and the largest grain worker's (streaming only).
        "peak_rss_gib": peak_rss_bytes() / 2**30,
        "worker_peak_rss_gib": worker_rss / 2**30 or None,
    })
    return result


def peak_rss_bytes() -> int:
    """Peak resident memory of this process."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def input_workers_peak_rss() -> int:
    """The largest peak RSS (VmHWM) among this process's live multiprocessing workers (grain's), in bytes.

    Read from /proc while they run: getrusage's figure for children is no use here,
    since a spawned child's starts from its parent's size at the fork before exec.
    """
    peak = 0
    for tasks in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        try:
            for pid in open(tasks).read().split():
                if b"multiprocessing.spawn" not in open(f"/proc/{pid}/cmdline", "rb").read():
                    continue
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:  # a worker that has just exited
            continue
    return peak


def time_steps(run, state, config) -> list[float]:
    """Seconds per step of `config.bench.steps` steps, after `config.bench.warmup_steps`."""
    batches, warm, steps = run.batches, config.bench.warmup_steps, config.bench.steps
    times = []
    if config.bench.data == "synthetic":  # device only: the same batches, already on device
        on_device = [batches.batch(0, k) for k in range(min(steps + warm, batches.steps_per_epoch))]
        for k in range(warm + steps):
            t = time.perf_counter()
            state, m = run.train_step(state, on_device[k % len(on_device)])
            jax.block_until_ready(m)
            if k >= warm:
                times.append(time.perf_counter() - t)
    else:
        for k, (_, b) in enumerate(batches.iterate(0, warm + steps)):
            t = time.perf_counter()
            state, m = run.train_step(state, b)
            jax.block_until_ready(m)
            if k >= warm:
                times.append(time.perf_counter() - t)
    return times


def input_images_per_s(run, config) -> tuple[float, int]:
    """Images/s of the input pipeline alone (host reads, global sharded arrays, transfer; no train
    step), and the input workers' peak RSS in bytes (0 for an in-memory dataset)."""
    n = max(config.bench.warmup_steps + config.bench.steps, 2)
    it = run.batches.iterate(0, n)
    jax.block_until_ready(next(it)[1])  # the first batch pays the thread (and worker) start
    t = time.perf_counter()
    worker_rss = 0
    for k, (_, b) in enumerate(it):
        jax.block_until_ready(b)
        if k % 4 == 0:
            worker_rss = max(worker_rss, input_workers_peak_rss())
    return (n - 1) * config.batch_size / (time.perf_counter() - t), worker_rss


def format_table(r: dict) -> str:
    timed = r["timed_steps"] > 0
    not_timed = "not timed (bench.steps=0: compile only)"
    rows = [
        ("config", r["config"]), ("backbone / dtype", f"{r['backbone']} / {r['dtype']}"),
        ("device", f"{r['num_devices']} x {r['device']}"), ("data", r["data"]),
        ("batch / image", f"{r['batch_size']} / {r['image_size']}px"),
        ("images/s", f"{r['images_per_s']:.1f}" if timed else not_timed),
        ("input pipeline alone", f"{r['input_images_per_s']:.0f} images/s (host read + transfer, no step)"
         if timed else not_timed),
        ("step time", f"{r['step_time_median_s'] * 1e3:.1f} ms (p10 {r['step_time_p10_s'] * 1e3:.1f}, "
                      f"p90 {r['step_time_p90_s'] * 1e3:.1f}) over {r['timed_steps']} steps" if timed else not_timed),
        ("FLOPs / step", "n/a (no XLA cost analysis)" if r["flops_per_step"] is None
         else f"{r['flops_per_step'] / 1e12:.3f} TFLOP"),
        ("achieved", not_timed if not timed else ("n/a" if r["achieved_tflops"] is None
                                                  else f"{r['achieved_tflops']:.2f} TFLOP/s")),
        ("MFU", f"{100 * r['mfu']:.1f} %" if r["mfu"] is not None
         else ("n/a (unknown device peak)" if timed else not_timed)),
        ("peak memory", "n/a on this device" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f} GiB"),
        ("XLA memory estimate", "n/a" if r["compiled_memory_gib"] is None else f"{r['compiled_memory_gib']:.2f} GiB (arguments + temporaries)"),
        ("epoch time", f"{r['epoch_time_s']:.1f} s for {r['dataset_examples']} images" if timed else not_timed),
        ("input path", r["input_path"]),
        ("bottleneck", {"input": "input (the step waits for batches)", "step": "the train step (input keeps up)",
                        None: not_timed}[r["bottleneck"]]),
        ("host peak RSS", f"{r['peak_rss_gib']:.2f} GiB this process" + (
            f", {r['worker_peak_rss_gib']:.2f} GiB the largest input worker" if r["worker_peak_rss_gib"] else "")),
    ]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(w)}  {v}" for k, v in rows)
