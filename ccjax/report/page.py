"""report/index.html: everything a run's report holds, on one page that opens from the file system.

Built from the files the report already holds (assignments.csv, metrics.json, nuisance.json,
cams.json, suggest_k.json) plus the run's config.json and run.json, so that `python -m ccjax report`
rebuilds it without the model; only the thumbnails read images (2 x PER_SIDE per cluster) from
the dataset. The verdicts (collapse, low confidence) are computed here from assignments.csv,
the same numbers `train` and `evaluate` print (`run_verdicts`). ccjax/report/html.py draws it.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from ccjax.data.catalog import FOLDER_PREFIX
from ccjax.eval.metrics import hungarian_match
from ccjax.report import advice as A
from ccjax.report.html import render
from ccjax.report.thumbnails import CAMS_INDEX, pick, write_thumbnails
from ccjax.report.verdicts import verdicts
from ccjax.run.command_line import train_command
from ccjax.run.rundir import (CONFIG_FILE, METRICS, REPORT_DIR, RUN_INFO, read_json_or_none, write_atomic,
                              write_json_atomic)

PAGE = "index.html"
VERDICTS = "verdicts.json"


def read_assignments(report_dir: str) -> dict:
    """assignments.csv as arrays: ids [N], cluster [N], prob [N], label [N] (-1: unknown) or None, the
    class name of each label."""
    path = os.path.join(report_dir, "assignments.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    out = {"ids": [r[col["id"]] for r in body],
           "cluster": np.array([int(r[col["cluster"]]) for r in body], np.int64),
           "prob": np.array([float(r[col["probability"]]) for r in body], np.float64),
           "label": None, "class_of_label": {}}
    if "label" in col:
        out["label"] = np.array([int(r[col["label"]]) if r[col["label"]] != "" else -1 for r in body], np.int64)
        out["class_of_label"] = {int(r[col["label"]]): r[col["class"]] for r in body if r[col["label"]] != ""}
    return out



def run_verdicts(workdir: str, num_clusters: int) -> dict:
    """The collapse and low-confidence verdicts of the run's report/assignments.csv, with their advice:
    {'state', 'collapsed', 'lines', 'thresholds', 'advice': {'text', 'command'} or {}}."""
    a = read_assignments(os.path.join(workdir, REPORT_DIR))
    first = verdicts(a["cluster"], a["prob"], num_clusters)
    advice = {}
    if first["collapsed"]:
        advice = A.collapse_advice(workdir, not_learnt_yet="near_uniform" in first["kinds"])
    elif first["lines"]:
        advice = A.low_confidence_advice(workdir)
    text = f"{advice.get('text', '')} {advice.get('command', '')}".strip()
    result = verdicts(a["cluster"], a["prob"], num_clusters, {"collapse": text, "low_confidence": text})
    result["advice"] = advice
    return result


def matched_classes(a: dict, k: int) -> dict[int, dict]:
    """{cluster: {'class': its Hungarian-matched class name, 'count': its images of that class,
    'labelled': its labelled images}} where labels are known."""
    if a["label"] is None or not (a["label"] >= 0).any():
        return {}
    known = a["label"] >= 0
    y, p = a["label"][known], a["cluster"][known]
    out = {}
    for c, cls in hungarian_match(y, p).items():
        mine = p == c
        out[int(c)] = {"class": a["class_of_label"].get(int(cls), str(cls)),
                       "count": int((y[mine] == cls).sum()), "labelled": int(mine.sum())}
    return out


def folder_root(config: dict) -> str | None:
    """The image folder of a `folder:` dataset (for links to the original files), else None."""
    name = str(config.get("dataset", {}).get("name", ""))
    if not name.startswith(FOLDER_PREFIX):
        return None
    root = os.path.abspath(os.path.expanduser(name[len(FOLDER_PREFIX):]))
    return root if os.path.isdir(root) else None


def gather(workdir: str, read_images, verdict: dict | None = None) -> dict:
    """Everything the page shows (`verdict`: run_verdicts' when the caller has it); writes the thumbnails
    and report/verdicts.json on the way."""
    report_dir = os.path.join(workdir, REPORT_DIR)
    config = read_json_or_none(os.path.join(workdir, CONFIG_FILE)) or {}
    info = read_json_or_none(os.path.join(workdir, RUN_INFO)) or {}
    metrics = read_json_or_none(os.path.join(report_dir, METRICS)) or {}
    a = read_assignments(report_dir)
    k = int(info.get("num_clusters") or metrics.get("last", {}).get("num_clusters") or a["cluster"].max() + 1)
    v = run_verdicts(workdir, k) if verdict is None else verdict
    nuisance = read_json_or_none(os.path.join(report_dir, "nuisance.json"))
    probe_cmd = A.probe_advice(workdir, nuisance) if nuisance and not v["degenerate"] else {}
    write_json_atomic(os.path.join(report_dir, VERDICTS), {**v, "probe_advice": probe_cmd})
    picks = pick(a["cluster"], a["prob"], k)
    sprites = write_thumbnails(report_dir, read_images, picks)
    try:
        run_command = train_command(workdir, {}, workdir)
    except (OSError, ValueError):
        run_command = ""
    return {"workdir": workdir, "config": config, "info": info, "metrics": metrics, "assignments": a, "k": k,
            "verdicts": v, "nuisance": nuisance, "probe_advice": probe_cmd, "picks": picks, "sprites": sprites,
            "cams": read_json_or_none(os.path.join(report_dir, CAMS_INDEX)),
            "suggest_k": read_json_or_none(os.path.join(report_dir, "suggest_k.json")),
            "matched": matched_classes(a, k), "folder": folder_root(config), "command": run_command,
            "figures": [f for f in ("confusion.png", "curves.png", "nuisance.png", "cams.png", "suggest_k.png")
                        if os.path.exists(os.path.join(report_dir, f))]}


def write_page(workdir: str, read_images, verdict: dict | None = None) -> str:
    """Writes report/index.html (and its thumbnails); `read_images(sorted indices)` -> uint8 [n, H, W, C]
    of the run's dataset. Returns the page's path."""
    page = render(gather(workdir, read_images, verdict))
    path = os.path.join(workdir, REPORT_DIR, PAGE)
    write_atomic(path, lambda f: f.write(page.encode()))
    return path


def write_page_for_dataset(workdir: str, dataset, verdict: dict | None = None) -> str:
    """write_page with the images of `dataset` (the run's training data)."""
    return write_page(workdir, lambda idx: dataset.read(np.asarray(idx, np.int64))["image"], verdict)
