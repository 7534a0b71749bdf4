"""Streaming against in-memory input on one image folder: peak host memory and images/s of both.

    python tools/make_image_folder.py --out=/data/shapes300k --num_images=300000 --size=64
    python tools/streaming_benchmark.py --folder=/data/shapes300k

1. Prepares the folder (`python -m ccjax prepare`), reporting its time and peak RSS.
2. Runs `python -m ccjax bench --config.bench.data=real` on it twice, with
   `dataset.in_memory=false` (grain workers decode each batch) and `=true`
   (the whole folder decoded into one array first), each in a fresh process.
3. Prints, for both: peak RSS of the training process and of the largest input
   worker, the input pipeline's images/s alone, the train step's images/s, and
   which of the two is the bottleneck. `--json` writes the figures.

The figures and the machine they came from are recorded in docs/benchmarks.md
("Streaming"). Skip a path with --paths=streamed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def run_measured(cmd: list[str]) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS in GiB of the command's own process, output)."""
    t = time.time()
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    return p.returncode, time.time() - t, usage.ru_maxrss * 1024 / 2**30, text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", required=True, help="a labelled image folder (tools/make_image_folder.py)")
    p.add_argument("--config", default="configs/cc_digits.py")
    p.add_argument("--data_dir", default=None, help="TFDS data_dir for the prepared copy")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--paths", default="streamed,in_memory")
    p.add_argument("--extra", default="", help="more --config.* flags for both runs, space separated")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    name = f"folder:{os.path.abspath(a.folder)}"
    data_dir = ["--data_dir=" + a.data_dir] if a.data_dir else []
    results: dict = {"folder": a.folder, "config": a.config, "cpus": os.cpu_count()}

    rc, secs, rss, out = run_measured([sys.executable, "-m", "ccjax", "prepare", f"--dataset={name}", *data_dir])
    if rc != 0:
        sys.exit(f"preparing {a.folder} failed:\n{out[-2000:]}")
    results["prepare"] = {"seconds": secs, "peak_rss_gib": rss, "summary": out.strip().splitlines()[-1]}
    print(f"prepare: {secs:.0f} s, peak RSS {rss:.2f} GiB: {results['prepare']['summary']}", flush=True)

    for path in a.paths.split(","):
        flag = {"streamed": "false", "in_memory": "true"}[path]
        with tempfile.TemporaryDirectory() as tmp:
            js = os.path.join(tmp, "bench.json")
            cmd = [sys.executable, "-m", "ccjax", "bench", f"--config={a.config}", f"--config.dataset.name={name}",
                   "--config.bench.data=real", f"--config.bench.steps={a.steps}",
                   f"--config.dataset.in_memory={flag}", f"--json={js}", *a.extra.split()]
            if a.data_dir:
                cmd.append(f"--config.dataset.data_dir={a.data_dir}")
            rc, secs, rss, out = run_measured(cmd)
            if rc != 0:
                sys.exit(f"the {path} run failed:\n{out[-3000:]}")
            with open(js) as f:
                r = json.load(f)
        r.update(wall_s=secs, process_peak_rss_gib=rss)
        results[path] = r
        print(f"{path:9s}: peak RSS {rss:.2f} GiB (largest input worker "
              f"{(r['worker_peak_rss_gib'] or 0):.2f} GiB); input alone {r['input_images_per_s']:.0f} img/s; "
              f"train step {r['images_per_s']:.0f} img/s; bottleneck: {r['bottleneck']}; "
              f"{r['dataset_examples']} images; {secs:.0f} s in all", flush=True)
    print(json.dumps(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
