"""Where a CC train step spends its time on a CPU, and what XLA's CPU options change (docs/benchmarks.md).

    python tools/cpu_step_profile.py --out=cpu_profile.json     # about 30 minutes on 2 cores

For each setting (`--settings`, default the issue's two: batch 64 of 32x32 views and batch 16 of
224x224 views, CC with configs/cc_cifar10.py's ResNet-34, float32, one CPU device) and each variant
(`--variants`: XLA_FLAGS or a config change), a fresh process pinned to one core (`--jobs` run side
by side, each on its own core) times, after warm-up, the median of:

- augment: the two augmented views alone (ccjax.methods.cc.two_views);
- forward: model and loss on ready-made views (train mode, batch-norm statistics updated);
- forward+backward: the same with jax.value_and_grad;
- step: the real train step (make_train_step: augmentation, forward, backward, optimiser update).

(The variants other than `default` time the step only.)

From these, backward = (forward+backward) - forward and update = step - (forward+backward) - augment.
It also traces `--trace_steps` steps with jax.profiler and sums XLA's per-operation events by kind
(convolutions, fused element-wise and batch-norm loops, reductions, matmuls, copies and transposes, ...),
for the forward program and for the whole step, so the convolutions' backward share is the
difference. Every variant's first step from the same initial state is compared with the default
variant's (its loss and gradient norm): bit for bit, up to rounding (within 1e-3: a different
summation order, amplified by batch norm's backward), or changed (not a variant to adopt).
"""

from __future__ import annotations

import argparse
import collections
import glob
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {  # name: (XLA_FLAGS, config overrides {dotted field: value}, what it tries)
    "default": ("", {}, "XLA's own defaults (what ccjax runs unless asked otherwise)"),
    "no_ynn_conv": ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution", {},
                    "large convolutions by Eigen, not YNNPACK (CCJAX_CPU_CONVOLUTIONS=eigen: ccjax/runtime/xla_flags.py)"),
    "eigen_1thread": ("--xla_cpu_multi_thread_eigen=false", {}, "Eigen's convolutions single-threaded"),
    "xnnpack": ("--xla_cpu_use_xnnpack=true", {}, "XNNPACK for the operations it supports"),
    "xnn_graph": ("--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY", {},
                  "XNNPACK graph fusion (greedy)"),
    "onednn": ("--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true", {},
               "oneDNN (what PyTorch's CPU convolutions use)"),
    "legacy_runtime": ("--xla_cpu_use_thunk_runtime=false", {}, "XLA CPU's older, non-thunk runtime"),
    "no_fusion_emitters": ("--xla_cpu_use_fusion_emitters=false", {}, "the older loop-fusion emitters"),
    "fast_math": ("--xla_cpu_enable_fast_math=true", {}, "fast math (reassociates: changes results)"),
    "bfloat16": ("", {"dtype": "bfloat16"}, "bfloat16 activations and matmuls"),
}
# Run by default (--variants): the others add little (legacy runtime, older fusion emitters) or change
# results by design (fast math).
DEFAULT_VARIANTS = ("default", "no_ynn_conv", "eigen_1thread", "xnnpack", "onednn", "bfloat16")
KINDS = (  # (kind, HLO operation name prefixes), first match wins
    ("convolutions", ("convolution", "conv")),
    # XLA hands large convolutions (and some dots) to YNNPACK, XNNPACK or oneDNN as one library call each
    ("library calls (YNNPACK, XNNPACK, oneDNN: large convolutions)", ("ynn_", "xnn_", "onednn", "__onednn")),
    ("matmuls", ("dot", "gemm")),
    ("reductions", ("reduce", "all-reduce")),
    ("copies and transposes", ("copy", "transpose", "bitcast", "concatenate", "slice", "dynamic-slice",
                               "dynamic-update-slice", "pad", "broadcast")),
    ("fused element-wise and batch-norm loops", ("fusion", "loop_", "input_", "wrapped_")),
    ("max pool backward", ("select-and-scatter",)),
    ("random numbers", ("rng", "threefry")),
)


def parse_setting(text: str) -> tuple[int, int]:
    batch, size = text.lower().split("x")
    return int(batch), int(size)


def load_config(path: str, batch: int, size: int, overrides: dict):
    spec = importlib.util.spec_from_file_location("profiled_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.batch_size = batch
    config.augment.image_size = size
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = config
        for p in parents:
            node = node[p]
        node[leaf] = value
    return config


def median_seconds(fn, warmup: int, steps: int) -> float:
    import jax

    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def kind_of(name: str) -> str:
    base = name.split(":")[0].strip().lower()
    for kind, prefixes in KINDS:
        if base.startswith(prefixes):
            return kind
    return "other"


def traced_kinds(fn, steps: int, trace_dir: str) -> dict[str, float]:
    """Seconds per step by kind of XLA operation, from a jax.profiler trace of `steps` calls."""
    import jax

    with jax.profiler.trace(trace_dir):
        for _ in range(steps):
            jax.block_until_ready(fn())
    paths = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        return {}
    data = jax.profiler.ProfileData.from_file(max(paths, key=os.path.getmtime))
    totals = collections.Counter()
    for plane in data.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if line.name == "python":  # the Python thread's calls; XLA's operations run on its client's threads
                continue
            for event in line.events:
                if event.name.startswith("end:") or "::" in event.name:  # markers and runtime bookkeeping
                    continue
                totals[kind_of(event.name)] += event.duration_ns
    return {k: v / 1e9 / steps for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def worker(args) -> None:
    """One (setting, variant) in this process: the first steps' losses and gradient norms, the step's time,
    and for a `--breakdown` variant the stage times and the traced kinds."""
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    import jax

    sys.path.insert(0, ROOT)
    from ccjax.train.benchmark import build_run
    from ccjax.methods.cc import cc_losses, two_views

    batch, size = parse_setting(args.setting)
    config = load_config(args.config, batch, size, VARIANTS[args.variant][1])
    if config.method != "cc":
        raise SystemExit(f"cpu_step_profile times CC's step; {args.config} is method={config.method}")
    run, _ = build_run(config)
    model = run.setup.module
    state = run.setup.init_state()
    example = run.batches.batch(0, 0)
    images = example["image"]
    p, ms = state.params, state.model_state
    w, n = args.warmup, args.steps
    result = {"setting": args.setting, "variant": args.variant, "xla_flags": os.environ.get("XLA_FLAGS", ""),
              "jax": jax.__version__, "parameters": int(sum(x.size for x in jax.tree.leaves(p)))}
    breakdown = args.variant in args.breakdown.split(",")  # the others: the whole step only (a third of the compiling)
    if breakdown:
        rng = jax.random.key(0)
        views = jax.jit(lambda im, k: two_views(im, k, config))
        x1, x2 = views(images, rng)

        def loss(params, model_state, x1, x2):
            outs, new_state = model.apply({"params": params, **model_state}, [x1, x2], None, train=True,
                                          mutable=list(model_state))
            a, b = outs
            return cc_losses(a["z"], b["z"], a["c"], b["c"], config.loss.instance_temperature,
                             config.loss.cluster_temperature)["total"], new_state

        forward = jax.jit(loss)
        forward_backward = jax.jit(jax.value_and_grad(loss, has_aux=True))
        result["augment_s"] = median_seconds(lambda: views(images, rng), w, n)
        result["forward_s"] = median_seconds(lambda: forward(p, ms, x1, x2), w, n)
        result["forward_backward_s"] = median_seconds(lambda: forward_backward(p, ms, x1, x2), w, n)

    # The first steps' losses and gradient norms from the initial state: a variant that computes the same
    # step up to float32 rounding repeats them to about 1e-6 (parameters are no guide after one step:
    # Adam's first update is +-lr wherever a gradient is zero up to rounding, e.g. a bias before a norm).
    check = run.setup.init_state()  # a fresh one: the train step donates its state, and p, ms are read below
    result["losses"], result["grad_norms"] = [], []
    for _ in range(3):
        check, m = run.train_step(check, example)
        result["losses"].append(float(m["loss"]))
        result["grad_norms"].append(float(m["grad_norm"]))
    holder = {"state": check}

    def one_step():
        holder["state"], metrics = run.train_step(holder["state"], example)
        return metrics

    result["step_s"] = median_seconds(one_step, w, n)
    if not breakdown:
        print(json.dumps(result), flush=True)
        return
    result["backward_s"] = result["forward_backward_s"] - result["forward_s"]
    result["update_s"] = result["step_s"] - result["forward_backward_s"] - result["augment_s"]
    with tempfile.TemporaryDirectory() as tmp:
        result["forward_kinds_s"] = traced_kinds(lambda: forward(p, ms, x1, x2), args.trace_steps,
                                                 os.path.join(tmp, "forward"))
        result["step_kinds_s"] = traced_kinds(one_step, args.trace_steps, os.path.join(tmp, "step"))
    print(json.dumps(result), flush=True)


def run_one(args, setting: str, variant: str, core: int | None) -> dict:
    flags = VARIANTS[variant][0]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1", "PYTHONPATH": ROOT,
           "CCJAX_CPU_CONVOLUTIONS": "xla",  # each variant's XLA_FLAGS exactly as listed
           "XLA_FLAGS": " ".join(x for x in (os.environ.get("XLA_FLAGS", ""), flags) if x)}
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"--setting={setting}", f"--variant={variant}",
           f"--config={args.config}", f"--warmup={args.warmup}", f"--steps={args.steps}",
           f"--trace_steps={args.trace_steps}", f"--breakdown={args.breakdown}"]
    if core is not None:
        cmd.append(f"--core={core}")
    t = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.row_limit_s, check=False)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"setting": setting, "variant": variant, "error": last[:300]}
    result = json.loads(p.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.time() - t
    return result


def max_relative_difference(reference: dict, row: dict) -> float:
    """The larger relative difference of the first step's loss and gradient norm from the reference's
    (the later steps are in the JSON: training amplifies any rounding difference step by step)."""
    return max(abs(reference[k][0] - row[k][0]) / max(abs(reference[k][0]), 1e-12) for k in ("losses", "grad_norms"))


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


def report(rows: list[dict]) -> str:
    header = ("| setting | variant | step | augment | forward | backward | update | convolutions (fwd / step) "
              "| first step's loss and gradient norm |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['setting']} | {r['variant']} | failed: {r['error']} | | | | | | |")
            continue
        same = r.get("max_relative_difference")
        if "forward_s" in r:
            conv = f"{ms(r['forward_kinds_s'].get('convolutions', 0.0))} / {ms(r['step_kinds_s'].get('convolutions', 0.0))}"
            parts = f"{ms(r['augment_s'])} | {ms(r['forward_s'])} | {ms(r['backward_s'])} | {ms(r['update_s'])} | {conv}"
        else:
            parts = "| | | |"
        verdict = ("reference" if same is None else "bit for bit" if same == 0 else
                   f"up to rounding ({same:.0e})" if same < 1e-3 else f"no ({same:.0e})")
        lines.append(f"| {r['setting']} | {r['variant']} | {ms(r['step_s'])} | {parts} | {verdict} |")
    lines.append("")
    for r in rows:
        if "step_kinds_s" in r:
            total = r["step_s"]
            parts = ", ".join(f"{k} {v * 1e3:.0f} ms ({v / total:.0%})" for k, v in r["step_kinds_s"].items())
            lines.append(f"{r['setting']}, {r['variant']}, traced step by kind of operation: {parts}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", default=os.path.join(ROOT, "configs/cc_cifar10.py"))
    p.add_argument("--settings", default="64x32,16x224", help="batch x view size, comma-separated")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"of: {', '.join(VARIANTS)}")
    p.add_argument("--breakdown", default="default", help="variants timed stage by stage and traced")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--trace_steps", type=int, default=2)
    p.add_argument("--jobs", type=int, default=2, help="settings timed side by side, one core each")
    p.add_argument("--row_limit_s", type=int, default=900)
    p.add_argument("--out", default=None, help="JSON file for every figure")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--setting", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--core", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    settings = args.settings.split(",")
    variants = args.variants.split(",")
    cores = sorted(os.sched_getaffinity(0))[: max(args.jobs, 1)]
    rows = []
    import concurrent.futures

    for variant in variants:
        with concurrent.futures.ThreadPoolExecutor(len(cores)) as pool:
            futures = [pool.submit(run_one, args, s, variant, cores[i % len(cores)] if args.jobs > 0 else None)
                       for i, s in enumerate(settings)]
            for f in futures:
                row = f.result()
                reference = next((r for r in rows if r["setting"] == row["setting"]
                                  and r["variant"] == "default" and "error" not in r), None)
                if "error" not in row and variant != "default" and reference:
                    row["max_relative_difference"] = max_relative_difference(reference, row)
                rows.append(row)
                print(f"{row['setting']} {variant}: " + (row.get("error") or f"step {row['step_s'] * 1e3:.0f} ms"),
                      flush=True)
    rows.sort(key=lambda r: (settings.index(r["setting"]), variants.index(r["variant"])))
    if args.out:  # first, so that the figures are kept whatever happens next
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    print(report(rows))


if __name__ == "__main__":
    main()
