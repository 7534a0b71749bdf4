"""Every benchmark row docs/benchmarks.md asks for, on one accelerator, in one command (8 minutes by default).

    python tools/device_check.py --out=device_check.json

Rows (each `python -m ccjax bench ... --json` in its own subprocess, under its own time limit):
- synthetic input: CC, GeCC, VTCC and MFAVBs-CC at the papers' settings (the CIFAR-10 configs:
  224x224 views, batch 256 or 128), in float32 and in bfloat16;
- real input: a generated folder of 224x224 PNGs (tools/make_image_folder.py), prepared once and
  streamed by grain workers (`dataset.in_memory=false`), for CC and MFAVBs-CC in bfloat16;
- memory: the peak device memory at each paper batch (from the rows above) and, per method in
  bfloat16, the largest batch that fits: predicted from XLA's memory figures of the compiled step at
  the paper batch and at twice it, then run for real (once more at 3/4 of it if that fails);
- frozen features (method=temi, docs/temi.md), each `python tools/temi_benchmark.py ... --json` in its own
  subprocess after the rows above: embedding throughput of CLIP ViT-B/32 and DINOv2-small (random weights, the
  real architectures), TEMI's official heads' step at batch 1024, the exact 50-NN of 60,000 and of 1,000,000
  embeddings of 768 dimensions (whole, never extrapolated here), and scikit-learn's k-means at both sizes.

So that one slow compilation cannot eat the budget, the distinct steps are first compiled in
parallel (`bench.steps=0`, `--parallel` processes) into a persistent compilation cache under
`--workdir`, which the timed rows then read; every subprocess also gets the remaining budget at
most. Rows out of time are reported as such, never guessed. Prints the rows in docs/benchmarks.md's
table format and writes every figure to `--out` (JSON).

`--tiny` runs the same rows with tiny models, images and batches: a CPU smoke run (what the test
suite runs); its figures mean nothing. The MFAVBs-CC real-input row uses `--clip_model` (default
the tiny random CLIP, made locally: the machine may have no hub access) with `anchor.project=True`;
the anchor is one cached token per image, so the train step costs the same as with OpenAI's CLIP.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = {  # short name: (label, paper config)
    "cc": ("CC", "configs/cc_cifar10.py"),
    "gecc": ("GeCC", "configs/gecc_cifar10.py"),
    "vtcc": ("VTCC", "configs/vtcc_cifar10.py"),
    "mfavbs": ("MFAVBs-CC", "configs/mfavbs_cifar10.py"),
}
REAL_METHODS = ("cc", "mfavbs")  # a ResNet and the ViT with the anchor: the two input paths
CIFAR10_IMAGES = 60_000
DTYPES = ("float32", "bfloat16")
TINY = {  # --tiny: per backbone, small enough for a CPU
    "resnet": ["--config.model.backbone=convnet", "--config.model.convnet_width=4", "--config.model.feature_dim=8",
               "--config.augment.image_size=16", "--config.batch_size=8"],
    "vit": ["--config.model.vit.embed_dim=32", "--config.model.vit.num_heads=2", "--config.model.vit.depth=2",
            "--config.model.feature_dim=8", "--config.augment.image_size=32", "--config.batch_size=8"],
}


# Frozen-features rows: name -> (tools/temi_benchmark.py arguments, --tiny arguments, what the row is); each row's
# limit is --row_limit_s (the 1M kNN and k-means: twice it).
FROZEN = {
    "embed_clip": (["--what=embed", "--encoder=clip-b32", "--images=4096", "--embed_batch=256"],
                   ["--what=embed", "--encoder=clip-b32", "--tiny", "--images=16", "--embed_batch=8"],
                   "embedding, CLIP ViT-B/32"),
    "embed_dinov2": (["--what=embed", "--encoder=dinov2-small", "--images=4096", "--embed_batch=256"], None,
                     "embedding, DINOv2-small"),
    "head": (["--what=head", "--n=60000", "--dim=768", "--batch=1024"],
             ["--what=head", "--n=256", "--dim=32", "--heads=2", "--hidden=16", "--bottleneck=8", "--batch=64"],
             "TEMI heads (16 x 768->512->256->10), one step"),
    "knn_60k": (["--what=knn", "--n=60000", "--dim=768"], ["--what=knn", "--n=2000", "--dim=32", "--chunk=512"],
                "exact 50-NN, N = 60,000 x 768"),
    "knn_1m": (["--what=knn", "--n=1000000", "--dim=768", "--block=4096"], None, "exact 50-NN, N = 1,000,000 x 768"),
    "kmeans_60k": (["--what=kmeans", "--n=60000", "--dim=768"], ["--what=kmeans", "--n=2000", "--dim=32"],
                   "k-means (scikit-learn, K = 10, 1 init), N = 60,000 x 768"),
    "kmeans_1m": (["--what=kmeans", "--n=1000000", "--dim=768"], None,
                  "k-means (scikit-learn, K = 10, 1 init), N = 1,000,000 x 768"),
}


def tiny_flags(method: str) -> list[str]:
    if method in ("cc", "gecc"):
        return TINY["resnet"]
    return TINY["vit"] + (["--config.model.vit.num_fusing_blocks=1"] if method == "mfavbs" else [])


class Check:
    """The rows' common settings, the budget and the subprocess runner."""

    def __init__(self, a):
        self.a = a
        self.deadline = time.monotonic() + a.budget_s
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
                    "JAX_COMPILATION_CACHE_DIR": os.path.join(a.workdir, "jax_cache"),
                    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
                    "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.data_dir = os.path.join(a.workdir, "tfds")
        self.folder = os.path.join(a.workdir, f"shapes{a.folder_size}px")

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, cmd: list[str], limit: float, env: dict | None = None) -> dict:
        """Runs `cmd` for at most min(limit, budget left) seconds: {status, wall_s, tail}."""
        limit = min(limit, self.left())
        if limit < 5:
            return {"status": "skipped", "why": "the budget was spent", "wall_s": 0.0}
        t = time.monotonic()
        try:
            p = subprocess.run(cmd, cwd=ROOT, env={**self.env, **(env or {})}, capture_output=True, text=True,
                               timeout=limit)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "why": f"over its {limit:.0f} s limit", "wall_s": time.monotonic() - t}
        tail = (p.stdout + p.stderr)[-1500:]
        status = "ok" if p.returncode == 0 else "failed"
        return {"status": status, "wall_s": time.monotonic() - t, **({"tail": tail} if status != "ok" else {})}

    def bench(self, method: str, dtype: str, extra: list[str], limit: float, env: dict | None = None) -> dict:
        """One `python -m ccjax bench` subprocess: the run's record, with bench's JSON under "result"."""
        flags = list(extra)
        if self.a.tiny:
            flags = tiny_flags(method) + ["--config.bench.warmup_steps=1", "--config.bench.steps=2"] + flags
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "bench.json")
            cmd = [sys.executable, "-m", "ccjax", "bench", f"--config={METHODS[method][1]}", f"--json={out}",
                   f"--config.dtype={dtype}", *flags]
            rec = self.run(cmd, limit, env)
            if rec["status"] == "ok":
                with open(out) as f:
                    rec["result"] = json.load(f)
        return rec

    def frozen(self, name: str) -> dict:
        """One frozen-features row: tools/temi_benchmark.py's figures under "result" (None in --tiny: not run)."""
        full, tiny, what = FROZEN[name]
        args = tiny if self.a.tiny else full
        if args is None:
            return {"row": name, "what": what, "status": "skipped", "why": "not in --tiny", "wall_s": 0.0}
        limit = self.a.row_limit_s * (2 if name.endswith("_1m") else 1)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "row.json")
            rec = self.run([sys.executable, "tools/temi_benchmark.py", *args, f"--json={out}"], limit)
            if rec["status"] == "ok":
                with open(out) as f:
                    rec["result"] = json.load(f)
        return {"row": name, "what": what, "args": args, **rec}

    def real_flags(self, method: str) -> list[str]:
        size = self.a.folder_size
        flags = [f"--config.dataset.name=folder:{self.folder}", f"--config.dataset.data_dir={self.data_dir}",
                 f"--config.dataset.image_size={size}", "--config.dataset.in_memory=false",
                 "--config.dataset.num_clusters=10", "--config.bench.data=real"]
        if method == "mfavbs":
            flags += [f"--config.anchor.model={self.a.clip_model}", "--config.anchor.project=True"]
        return flags

    def prepare_folder(self) -> dict:
        """Writes the 224px folder and prepares it (array_record shards) for streaming."""
        a = self.a
        rec = self.run([sys.executable, "tools/make_image_folder.py", f"--out={self.folder}",
                        f"--num_images={a.folder_images}", f"--size={a.folder_size}"], a.prewarm_limit_s)
        if rec["status"] == "ok":
            rec = self.run([sys.executable, "-m", "ccjax", "prepare", f"--dataset=folder:{self.folder}",
                            f"--data_dir={self.data_dir}", f"--image_size={a.folder_size}"], a.prewarm_limit_s)
        return rec


def paper_batch(method: str, tiny: bool) -> int:
    return 8 if tiny else (256 if method in ("cc", "gecc") else 128)


def predicted_max_batch(b0: int, m1: float, m2: float, limit_gib: float, multiple: int) -> int | None:
    """The largest batch whose memory, linear in the batch through (b0, m1) and (2 b0, m2), stays
    within 92% of `limit_gib` (headroom for the allocator), rounded down to `multiple`."""
    per_image = (m2 - m1) / b0
    if per_image <= 0:
        return None
    fixed = m1 - per_image * b0
    b = int((0.92 * limit_gib - fixed) / per_image) // multiple * multiple
    return b if b >= b0 else None


def run_all(a) -> dict:
    c = Check(a)
    methods = [m for m in a.only.split(",") if m]
    report: dict = {"date": datetime.date.today().isoformat(), "budget_s": a.budget_s, "tiny": a.tiny,
                    "synthetic": [], "real": [], "memory": [], "prewarm": [], "frozen": []}
    compiled: dict = {}  # ("synthetic" | "twice", method, dtype) -> bench's JSON of the compile-only run
    real = [m for m in methods if m in REAL_METHODS]

    def prewarm(pool, key, method, dtype, flags):
        """A compile-only run (`bench.steps=0`): fills the compilation cache, gives XLA's memory figure."""
        fut = pool.submit(c.bench, method, dtype, ["--config.bench.steps=0", *flags], a.prewarm_limit_s,
                          {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"})  # processes share the device
        return key, fut

    def collect(jobs):
        for key, fut in jobs:
            rec = fut.result()
            report["prewarm"].append({"what": "/".join(map(str, key)), **{k: v for k, v in rec.items() if k != "result"}})
            compiled[key] = rec.get("result")

    with concurrent.futures.ThreadPoolExecutor(max(a.parallel, 1)) as pool:
        # 1. The folder, every synthetic step, and each method's step at twice the paper batch (memory's slope).
        folder = pool.submit(c.prepare_folder) if real else None
        jobs = [prewarm(pool, ("twice", m, "bfloat16"), m, "bfloat16",
                        [f"--config.batch_size={2 * paper_batch(m, a.tiny)}"]) for m in methods]
        if a.parallel > 0:
            jobs += [prewarm(pool, ("synthetic", m, d), m, d, []) for m in methods for d in DTYPES]
        collect(jobs)
        report["folder"] = folder.result() if folder else None
        # 2. The real-input steps and each method's predicted largest batch.
        jobs, predicted = [], {}
        for m in methods:
            predicted[m] = predict(c, m, compiled.get(("synthetic", m, "bfloat16")), compiled.get(("twice", m, "bfloat16")))
            if a.parallel > 0 and "batch" in predicted[m]:
                jobs.append(prewarm(pool, ("max", m, predicted[m]["batch"]), m, "bfloat16",
                                    [f"--config.batch_size={predicted[m]['batch']}"]))
        if a.parallel > 0 and report["folder"] and report["folder"]["status"] == "ok":
            jobs += [prewarm(pool, ("real", m, "bfloat16"), m, "bfloat16", c.real_flags(m)) for m in real]
        collect(jobs)

    # 3. The timed rows, one at a time (the device to themselves): bfloat16 first, the likelier use.
    for d in DTYPES[::-1]:
        for m in methods:
            rec = c.bench(m, d, [], a.row_limit_s)
            report["synthetic"].append({"method": m, "dtype": d, "input": "synthetic", **rec})
    folder_ok = report["folder"] is not None and report["folder"]["status"] == "ok"
    for m in real:
        rec = (c.bench(m, "bfloat16", c.real_flags(m), a.row_limit_s) if folder_ok else
               {"status": "skipped", "why": "the image folder was not prepared", "wall_s": 0.0})
        report["real"].append({"method": m, "dtype": "bfloat16", "input": "real, streamed", **rec})
    for m in methods:
        report["memory"].append(max_batch_row(c, m, predicted[m]))
    for name in (n for n in FROZEN if a.frozen):  # 4. frozen features, after the contrastive rows
        report["frozen"].append(c.frozen(name))
    return report


def predict(c: Check, method: str, paper: dict | None, twice: dict | None) -> dict:
    """The largest batch predicted to fit, from the compile-only figures at the paper batch and twice it."""
    b0 = paper_batch(method, c.a.tiny)
    row = {"method": method, "dtype": "bfloat16", "paper_batch": b0}
    if paper is None:  # --parallel=0: the paper batch's figure comes from a compile at the timed row's place
        paper = c.bench(method, "bfloat16", ["--config.bench.steps=0"], c.a.prewarm_limit_s).get("result")
    if not paper or not twice:
        return {**row, "why": "the compile at the paper batch or at twice it did not finish"}
    limit = c.a.memory_limit_gib or paper.get("device_memory_gib")
    if not limit:
        return {**row, "why": "the device reports no memory limit (--memory_limit_gib)"}
    m1, m2 = paper["compiled_memory_gib"], twice["compiled_memory_gib"]
    multiple = 8 * paper["num_devices"]
    b = predicted_max_batch(b0, m1, m2, limit, multiple)
    if b is None:
        return {**row, "why": f"XLA's figures ({m1:.3f}, {m2:.3f} GiB) give no larger batch"}
    b = min(b, c.a.max_batch_cap) if c.a.max_batch_cap else b
    return {**row, "batch": b, "multiple": multiple, "limit_gib": limit, "compiled_gib_at_paper": m1,
            "compiled_gib_at_twice": m2}


def max_batch_row(c: Check, method: str, predicted: dict) -> dict:
    """Runs the predicted largest batch for real (then 3/4 of it if that fails): the memory row."""
    row = {k: v for k, v in predicted.items() if k not in ("batch", "multiple")}
    if "batch" not in predicted:
        return {**row, "status": "skipped"}
    b, multiple = predicted["batch"], predicted["multiple"]
    row["predicted_batch"] = b
    for attempt in (b, (b * 3 // 4) // multiple * multiple):
        if attempt < predicted["paper_batch"]:
            break
        rec = c.bench(method, "bfloat16", [f"--config.batch_size={attempt}", "--config.bench.warmup_steps=1",
                                           "--config.bench.steps=2"], c.a.row_limit_s)
        row.setdefault("attempts", []).append({"batch": attempt, **{k: v for k, v in rec.items() if k != "result"}})
        if rec["status"] == "ok":
            return {**row, "status": "ok", "batch": attempt, "result": rec["result"]}
        if rec["status"] != "failed":  # out of time: a smaller batch would not settle it either
            break
    return {**row, "status": "not found", "why": "no attempted batch ran"}


def table_rows(report: dict) -> list[str]:
    """docs/benchmarks.md's "Measured" table rows, then its memory table rows."""
    lines = []
    for r in report["synthetic"] + report["real"]:
        label, config = METHODS[r["method"]]
        name = f"`{os.path.basename(config)}` ({label})"
        res = r.get("result")
        if r["status"] != "ok" or not res or not res.get("step_time_median_s"):
            why = r.get("why") or (r.get("tail") or "").strip().splitlines()[-1:] or ["no timing"]
            lines.append(f"| {report['date']} | | {name} | {r['dtype']} | {r['input']} | | {r['status']}: "
                         f"{why if isinstance(why, str) else why[0]} | | | | | |")
            continue
        step = res["step_time_median_s"]
        inp = r["input"]
        if res["data"] == "real":
            inp += f" (input alone {res['input_images_per_s']:,.0f} img/s; bottleneck: {res['bottleneck']})"
        peak = "n/a" if res["peak_memory_gib"] is None else f"{res['peak_memory_gib']:.2f} GiB"
        mfu = "n/a" if res["mfu"] is None else f"{100 * res['mfu']:.1f}%"
        tflop = "n/a" if res["flops_per_step"] is None else f"{res['flops_per_step'] / 1e12:.4g}"
        epoch = (CIFAR10_IMAGES // res["batch_size"]) * step
        lines.append(f"| {res['date']} | {res['num_devices']} x {res['device']} | {name} | {res['dtype']} | {inp} | "
                     f"{res['batch_size']} | {res['images_per_s']:,.0f} | {step * 1e3:.1f} ms | {tflop} | {mfu} | "
                     f"{peak} | {epoch:.1f} s |")
    lines.append("")
    lines.append("| date | device | config | dtype | batch | peak memory | how |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in report["synthetic"]:
        res = r.get("result")
        if r["status"] == "ok" and res:
            lines.append(memory_line(report, r["method"], res, "the paper's batch"))
    for r in report["memory"]:
        if r["status"] == "ok":
            lines.append(memory_line(report, r["method"], r["result"],
                                     f"largest that fits: predicted {r['predicted_batch']} from XLA's figures at "
                                     f"{r['paper_batch']} and {2 * r['paper_batch']}, ran for real"))
        else:
            lines.append(f"| {report['date']} | | `{os.path.basename(METHODS[r['method']][1])}` | {r['dtype']} | | | "
                         f"largest that fits: {r['status']} ({r.get('why', '')}) |")
    return lines


def frozen_rows(report: dict, device: str) -> list[str]:
    """docs/benchmarks.md's "Frozen features" rows: | date | device | row | figure | memory |."""
    lines = []
    for r in report["frozen"]:
        res = r.get("result")
        if r["status"] != "ok" or not res:
            why = r.get("why") or ((r.get("tail") or "").strip().splitlines() or ["no figure"])[-1]
            lines.append(f"| {report['date']} | {device} | {r['what']} | {r['status']}: {why} | |")
            continue
        if res["what"] == "embed":
            fig, mem = (f"{res['images_per_s']:,.0f} images/s (batch {res['batch']}, "
                        f"{'tiny encoder, 32' if res['tiny'] else '224'} crop)"), ""
        elif res["what"] == "head":
            fig, mem = (f"{res['step_s'] * 1e3:.1f} ms/step, {res['examples_per_s']:,.0f} examples/s (first epoch "
                        f"with compilation {res['first_epoch_s']:.1f} s)"), ""
        elif res["what"] == "knn":
            fig = f"{res['seconds']:.1f} s ({res['queries_per_s']:,.0f} queries/s)" + (
                f", all N extrapolated {res['seconds_all_queries']:.0f} s" if res["extrapolated"] else "")
            mem = f"keys {res['keys_gib']:.2f} GiB + {res['block_chunk_mib']:.0f} MiB similarities"
        else:
            fig, mem = f"{res['seconds']:.1f} s on {res['cpus']} CPUs", f"{res['peak_rss_gib']:.1f} GiB RSS"
        what = r["what"] + (f" (--tiny: {' '.join(a[2:] for a in r['args'] if a.startswith('--') and 'what' not in a)})"
                            if report.get("tiny") else "")
        lines.append(f"| {report['date']} | {device} | {what} | {fig} | {mem} |")
    return lines


def memory_line(report: dict, method: str, res: dict, how: str) -> str:
    peak = res["peak_memory_gib"]
    of = f" of {res['device_memory_gib']:.1f}" if res.get("device_memory_gib") else ""
    peak_s = "n/a on this device" if peak is None else f"{peak:.2f}{of} GiB"
    return (f"| {res['date']} | {res['num_devices']} x {res['device']} | `{os.path.basename(METHODS[method][1])}` | "
            f"{res['dtype']} | {res['batch_size']} | {peak_s} | {how} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="device_check.json", help="where the JSON goes")
    p.add_argument("--budget_s", type=float, default=480, help="the whole check, compilation included")
    p.add_argument("--row_limit_s", type=float, default=120, help="each timed row's own limit")
    p.add_argument("--prewarm_limit_s", type=float, default=240, help="each parallel compile's (and the folder's)")
    p.add_argument("--parallel", type=int, default=min(4, max(1, (os.cpu_count() or 1) // 4)),
                   help="compile processes at once before the timed rows (0: no pre-compilation)")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "ccjax_device_check"),
                   help="the compilation cache, the image folder and its prepared copy")
    p.add_argument("--only", default=",".join(METHODS), help="methods, comma separated")
    p.add_argument("--folder_images", type=int, default=2048, help="images in the generated folder")
    p.add_argument("--folder_size", type=int, default=224, help="their side in pixels")
    p.add_argument("--clip_model", default="~/.cache/ccjax/tiny_random_clip",
                   help="the MFAVBs-CC real-input row's CLIP (a local directory; the default is made locally)")
    p.add_argument("--memory_limit_gib", type=float, default=None,
                   help="device memory to fit into (default: what the device reports)")
    p.add_argument("--max_batch_cap", type=int, default=0, help="never try a batch above this (0: no cap)")
    p.add_argument("--tiny", action="store_true", help="tiny models and images: a CPU smoke run, figures meaningless")
    p.add_argument("--no_frozen", dest="frozen", action="store_false", help="leave out the frozen-features rows")
    a = p.parse_args()
    unknown = set(a.only.split(",")) - set(METHODS) - {""}  # --only= : the frozen-features rows alone
    if unknown:
        p.error(f"--only: unknown method(s) {sorted(unknown)}; choose from {','.join(METHODS)}")
    if a.tiny:
        a.folder_images, a.folder_size = min(a.folder_images, 64), min(a.folder_size, 32)
    os.makedirs(a.workdir, exist_ok=True)
    t = time.monotonic()
    report = run_all(a)
    report["wall_s"] = time.monotonic() - t
    print("| date | device | config | dtype | input | batch | images/s | step (median) | TFLOP/step | MFU | "
          "peak memory | epoch (CIFAR-10) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(table_rows(report)))
    if report["frozen"]:
        device = next((f"{r['result']['num_devices']} x {r['result']['device']}" for r in report["synthetic"]
                       if r.get("result")), next((r["result"].get("platform", "") for r in report["frozen"]
                                                   if r.get("result")), ""))
        print("\n| date | device | frozen features | figure | memory |\n|---|---|---|---|---|")
        print("\n".join(frozen_rows(report, device)))
    print(f"\n{report['wall_s']:.0f} s in all; every figure in {a.out}")
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, a.out)
    failed = [f"{r['method']}/{r['dtype']}/{r['input']}" for r in report["synthetic"] + report["real"]
              if r["status"] == "failed"] + [f"frozen/{r['row']}" for r in report["frozen"] if r["status"] == "failed"]
    if failed or (report["folder"] and report["folder"]["status"] == "failed"):
        sys.exit(f"device_check: rows failed (not out of time): {failed or ['the image folder']}; see {a.out}")


if __name__ == "__main__":
    main()
