"""Train on the nuisance family (tools/nuisance_family.py), without and with a remedy, and tabulate.

    python tools/nuisance_family.py --out=/tmp/family
    python tools/nuisance_runs.py train --family=/tmp/family --runs=/tmp/nruns \
        --cases=digits_background,digits_polarity --seeds=0,1,2 --epochs=40 --parallel=2 [--remedy=NAME]
    python tools/nuisance_runs.py table --family=/tmp/family --runs=/tmp/nruns

`train` runs `python -m ccjax train --config=configs/cc_digits.py` on each case's folder (stored at
16x16, `--epochs` epochs, each seed), `--parallel` at a time under `nice -n 10`, into
`<runs>/<case>/<setting>_s<seed>` (setting: `none`, or the remedy's name); a finished run
(metrics.json written) is skipped, so an interrupted batch resumes. `--remedy=NAME` adds the flags of
ccjax.explain.nuisance.REMEDIES[NAME] (the settings the probe's warnings advise; several: NAME+NAME).

`table` re-runs today's probe (ccjax.explain.nuisance) on every finished run's final assignment
(report/assignments.csv) and prints a markdown row per case and setting: the clusters' NMI with the
labels (content) and with the nuisance's true level, the probe's cue score (clusters) beside the
labels' cue score, whether it warned and the cues it named, mean over the seeds with each seed's
values; `--json` writes every run's figures.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's ccjax, also when another one is installed

from ccjax.explain.nuisance import probe

STORE_SIZE = 16


def remedy_flags() -> dict[str, list[str]]:
    """{remedy name: its --config flags}: the settings ccjax.explain.nuisance's warnings advise."""
    from ccjax.explain.nuisance import REMEDIES

    out = {}
    for family, (_, flags) in REMEDIES.items():
        if flags:
            out[family] = flags.split()
    return out


def run_one(family: str, runs: str, case: str, seed: int, epochs: int, remedy: str | None) -> str:
    workdir = os.path.join(runs, case, f"{remedy or 'none'}_s{seed}")
    if os.path.exists(os.path.join(workdir, "metrics.json")):
        return f"{workdir}: done before"
    flags = remedy_flags()
    extra = list(dict.fromkeys(f for name in remedy.split("+") for f in flags[name])) if remedy else []
    config = os.path.join(ROOT, "configs", "cc_digits.py")
    cmd = ["nice", "-n", "10", sys.executable, "-m", "ccjax", "train", f"--config={config}",
           f"--config.dataset.name=folder:{os.path.join(family, case)}", f"--config.dataset.image_size={STORE_SIZE}",
           f"--config.dataset.data_dir={os.path.join(runs, 'tfds')}", f"--config.num_epochs={epochs}",
           f"--config.seed={seed}", "--config.progress_bar=False", f"--workdir={workdir}", *extra]
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=ROOT)
    with open(os.path.join(workdir, "command.txt"), "w") as f:
        f.write(" ".join(cmd[3:]) + "\n")
    with open(os.path.join(workdir, "log.txt"), "w") as log:
        rc = subprocess.run(cmd, cwd=runs, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    return f"{workdir}: exit {rc}"


def train(a) -> None:
    jobs = [(c, s) for s in a.seeds for c in a.cases]  # seed-major: a partial batch covers every case
    with concurrent.futures.ThreadPoolExecutor(a.parallel) as pool:
        for line in pool.map(lambda j: run_one(a.family, a.runs, j[0], j[1], a.epochs, a.remedy), jobs):
            print(line, flush=True)


def read_assignments(path: str) -> tuple[list[str], np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [r["id"] for r in rows], np.array([int(r["cluster"]) for r in rows])


def run_figures(family: str, runs: str, case: str, workdir: str, cache: dict) -> dict:
    """The probe and the NMIs of one finished run."""
    from sklearn.metrics import normalized_mutual_info_score as nmi

    with open(os.path.join(family, case + ".cues.json")) as f:
        meta = json.load(f)["files"]
    ids, clusters = read_assignments(os.path.join(workdir, "report", "assignments.csv"))
    if case not in cache:
        cache[case] = case_cues(family, runs, case, ids)
    cues, labels = cache[case]
    level = np.array([meta[i]["level"] for i in ids])
    result = probe(clusters, int(clusters.max()) + 1, cues, labels)
    return {"label_nmi": float(nmi(labels, clusters)), "cue_nmi": float(nmi(level, clusters)),
            "score": result["clusters"]["score"], "labels_score": (result["labels"] or {}).get("score"),
            "beyond_labels": (result["beyond_labels"] or {}).get("score"),
            "warned": bool(result["warnings"]), "named": result.get("named", []), "warnings": result["warnings"]}


def case_cues(family: str, runs: str, case: str, ids: list[str]) -> tuple[dict, np.ndarray]:
    """The probe's cues and the labels of a case's images, in the order of `ids` (the run's assignments);
    measured once per case (the prepared folder, as training reads it) and kept in <runs>/cues/<case>.npz."""
    cache = os.path.join(runs, "cues", case + ".npz")
    if not os.path.exists(cache):
        cues, labels, files = measure_cues(family, runs, case)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        np.savez(cache + ".tmp.npz", files=np.array(files), labels=labels, **{"cue_" + k: v for k, v in cues.items()})
        os.replace(cache + ".tmp.npz", cache)
    with np.load(cache) as d:
        order = {f: i for i, f in enumerate(d["files"].tolist())}
        idx = np.array([order[i] for i in ids])
        return {k[4:]: d[k][idx] for k in d.files if k.startswith("cue_")}, d["labels"][idx]


def measure_cues(family: str, runs: str, case: str) -> tuple[dict, np.ndarray, list[str]]:
    """(cues, labels, file ids) of every image of the case, in the prepared dataset's order."""
    from ml_collections import ConfigDict

    from ccjax.data import open_dataset
    from ccjax.explain.cues import image_cues, source_cues

    cfg = ConfigDict(dict(name=f"folder:{os.path.join(family, case)}", data_dir=os.path.join(runs, "tfds"),
                          image_size=STORE_SIZE, in_memory="true", memory_share=0.5, stream_workers=0,
                          stream_buffer=2, use_unlabeled=False, manual_dir=None, num_clusters=-1))
    ds = open_dataset(cfg)
    idx = np.arange(ds.num_examples)
    files = ds.example_ids(idx)
    cues = image_cues(ds, idx)
    cues.update(source_cues(os.path.join(family, case), files, True))
    return cues, np.asarray(ds.labels), files


def table(a) -> None:
    rows, cache, every = [], {}, {}
    for case in sorted(os.listdir(a.runs)):
        if case == "tfds" or not os.path.isdir(os.path.join(a.runs, case)):
            continue
        settings: dict[str, list] = {}
        for run in sorted(os.listdir(os.path.join(a.runs, case))):
            wd = os.path.join(a.runs, case, run)
            if os.path.exists(os.path.join(wd, "report", "assignments.csv")):
                settings.setdefault(run.rsplit("_s", 1)[0], []).append((run, run_figures(a.family, a.runs, case, wd, cache)))
        for setting, figs in settings.items():
            every.update({f"{case}/{run}": f for run, f in figs})

            def col(key, figs=figs):
                vals = [f[key] for _, f in figs]
                return f"{np.mean(vals):.2f} ({', '.join(f'{v:.2f}' for v in vals)})"

            warned = sum(f["warned"] for _, f in figs)
            named = sorted({n for _, f in figs for n in f["named"]})
            rows.append(f"| {case} | {setting} | {len(figs)} | {col('label_nmi')} | {col('cue_nmi')} | {col('score')} | "
                        f"{col('labels_score')} | {col('beyond_labels')} | {warned}/{len(figs)} {', '.join(named)} |")
    print("| case | remedy | seeds | NMI with labels | NMI with the cue | cue score (clusters) | cue score (labels) | "
          "beyond labels | warned, cues named |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(every, f, indent=1)


def synthetic(a) -> None:
    """The probe on assignments built from the truth, no training, each with and without the labels: the
    clusters ARE the nuisance's level (must warn), are it for a random half of the images and random for
    the rest (no content at all: must warn), ARE the labels (must stay silent), or are the labels for
    half and random for the rest (must stay silent)."""
    rng = np.random.default_rng(0)
    cases = a.cases or sorted(f[:-len(".cues.json")] for f in os.listdir(a.family) if f.endswith(".cues.json"))
    out, lines = {}, []
    for case in cases:
        with open(os.path.join(a.family, case + ".cues.json")) as f:
            meta = json.load(f)
        ids = sorted(meta["files"])
        cues, labels = case_cues(a.family, a.runs, case, ids)
        level = np.array([meta["files"][i]["level"] for i in ids])
        half = rng.random(len(ids)) < 0.5

        def noisy(y, half=half):
            return np.where(half, y, rng.integers(0, y.max() + 1, len(y)))

        assignments = {"labels": labels, "labels_noisy": noisy(labels)}
        if meta["nuisance"]:
            assignments.update(cue=level, cue_noisy=noisy(level))
        for name, pred in assignments.items():
            for given in (True, False):
                r = probe(pred, int(pred.max()) + 1, cues, labels if given else None)
                ref = r["labels"]["score"] if r["labels"] else None
                beyond = r["beyond_labels"]["score"] if r["beyond_labels"] else None
                out[f"{case}/{name}/{'labelled' if given else 'unlabelled'}"] = {
                    "score": r["clusters"]["score"], "labels_score": ref, "beyond_labels": beyond,
                    "warned": bool(r["warnings"]), "named": r["named"],
                    "families": {k: v["alone"] for k, v in r["clusters"]["families"].items()}}
                lines.append(f"| {case} | {name} | {'yes' if given else 'no'} | {r['clusters']['score']:.2f} | "
                             f"{'' if ref is None else f'{ref:.2f}'} | {'' if beyond is None else f'{beyond:.2f}'} | "
                             f"{'WARN ' + ', '.join(r['named']) if r['warnings'] else ''} |")
                print(lines[-1], flush=True)
    print("| case | clusters are | labels given | cue score (clusters) | cue score (labels) | beyond labels | probe |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("train", "table", "synthetic"))
    p.add_argument("--family", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--cases", type=lambda s: s.split(","), default=[])
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--remedy", default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    {"train": train, "table": table, "synthetic": synthetic}[a.command](a)


if __name__ == "__main__":
    main()
