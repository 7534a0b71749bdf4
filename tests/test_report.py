"""The evaluation report of a short digits run: files, real plots, numbers that agree with each other.

One tiny CC run on the embedded digits (2 epochs, ConvNet width 8, a
checkpoint every epoch so the best-by-training-loss choice is a real choice)
is trained in-process once per session (tests/test_predict.py reuses it), then:
- report/*.png are valid PNGs of plot size with many colours (not blank);
- report/metrics.json's confusion matrix equals the counts recomputed from
  report/assignments.csv, in the Hungarian order recomputed with scipy;
- metrics.json holds 'last' and 'best_by_train_loss' (chosen by the epoch-mean
  training loss in history.jsonl) with ACC/NMI/ARI, which sklearn confirms;
- `python -m ccjax evaluate` in a fresh process rewrites the same report.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPORT_FILES = ("metrics.json", "confusion.png", "clusters.png", "curves.png", "assignments.csv")


def load_config(name: str = "cc_digits"):
    """`configs/<name>.py`'s get_config(), loaded by path as ccjax train does."""
    path = os.path.join(ROOT, "configs", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"ccjax_test_config_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def tiny_digits_config():
    c = load_config("cc_digits")
    c.num_epochs = 2
    c.model.convnet_width = 8
    c.checkpoint.every_epochs = 1
    c.progress_bar = False
    return c


def trained_digits_run(tmp_path_factory) -> tuple[str, dict]:
    """(workdir, train_and_evaluate's result) of the tiny digits run, trained at most once per session."""
    from ccjax.train import train_and_evaluate

    workdir = str(tmp_path_factory.getbasetemp() / "digits_run_w8_e2")
    result_path = os.path.join(workdir, "test_result.json")
    if not os.path.exists(result_path):
        result = train_and_evaluate(tiny_digits_config(), workdir)
        with open(result_path, "w") as f:
            json.dump(result, f)
    with open(result_path) as f:
        return workdir, json.load(f)


def subprocess_env() -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("CCJAX_", "SLURM_", "TPU_"))}
    e["JAX_NUM_CPU_DEVICES"] = "4"
    e["JAX_PLATFORMS"] = "cpu"
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return e


def read_assignments(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_real_plot(path: str, min_width: int = 300, min_height: int = 200) -> None:
    """A decodable PNG of plot size that is not blank (anti-aliased text and colour maps give many colours)."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, f"{path} is not a PNG"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.width >= min_width and im.height >= min_height, (path, im.size)
        rgb = np.asarray(im.convert("RGB")).astype(np.int64)  # [H, W, 3]
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]  # one int per colour
    colours, counts = np.unique(packed, return_counts=True)
    assert len(colours) >= 16, f"{path} has only {len(colours)} colours: blank?"
    # Not one colour with specks: the most common colour covers less than 99% of the pixels.
    assert counts.max() < 0.99 * packed.size, f"{path} is almost uniform"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_digits_run(tmp_path_factory)


def test_report_files_exist_and_pngs_are_real_plots(run):
    workdir, _ = run
    report = os.path.join(workdir, "report")
    for name in REPORT_FILES:
        assert os.path.getsize(os.path.join(report, name)) > 0, name
    check_real_plot(os.path.join(report, "confusion.png"))
    check_real_plot(os.path.join(report, "clusters.png"))
    check_real_plot(os.path.join(report, "curves.png"))
    # clusters.png has a row per cluster: taller than wide for 10 clusters of 8 images.
    with Image.open(os.path.join(report, "clusters.png")) as im:
        assert im.height > im.width
    # The nuisance probe: content-free cues add little to the labels in explaining the clusters (no warning);
    # one-channel images have no colour or saturation cue.
    with open(os.path.join(report, "nuisance.json")) as f:
        probe = json.load(f)
    assert not probe["warnings"] and probe["labels"] is not None, probe
    assert set(probe["clusters"]["families"]) <= {"border", "brightness", "contrast", "polarity", "sharpness", "texture"}
    check_real_plot(os.path.join(report, "nuisance.png"))
    check_real_plot(os.path.join(report, "cams.png"), min_width=200)  # where the model looks (cam_figures.py)


def test_confusion_matrix_agrees_with_assignments(run):
    workdir, _ = run
    report = os.path.join(workdir, "report")
    with open(os.path.join(report, "metrics.json")) as f:
        metrics = json.load(f)
    rows = read_assignments(os.path.join(report, "assignments.csv"))
    assert len(rows) == 1797
    assert [r["id"] for r in rows[:2]] == ["0000", "0001"]
    clusters = np.array([int(r["cluster"]) for r in rows])
    labels = np.array([int(r["label"]) for r in rows])
    probs = np.array([float(r["probability"]) for r in rows])
    assert ((probs >= 0.1 - 1e-6) & (probs <= 1.0)).all()  # the max of 10 probabilities is >= 1/10
    k = metrics["last"]["num_clusters"]
    c = len(metrics["class_names"])
    assert (k, c) == (10, 10)
    assert metrics["class_names"] == [str(i) for i in range(10)]
    assert all(r["class"] == r["label"] for r in rows)  # digits' class names are the digits

    counts = np.zeros((k, c), np.int64)  # [K, C] straight from the CSV
    for cl, lb in zip(clusters, labels):
        counts[cl, lb] += 1
    assert counts.sum(1).tolist() == metrics["last"]["cluster_sizes"]

    # Hungarian matching recomputed with scipy on the clusters and classes that occur.
    occ_k, occ_c = np.flatnonzero(counts.sum(1)), np.flatnonzero(counts.sum(0))
    r_idx, c_idx = linear_sum_assignment(counts[np.ix_(occ_k, occ_c)], maximize=True)
    match = {int(occ_k[r]): int(occ_c[j]) for r, j in zip(r_idx, c_idx)}
    expected_order = sorted(range(k), key=lambda q: (match.get(q, 10**9), q))
    assert metrics["confusion_cluster_order"] == expected_order
    np.testing.assert_array_equal(np.array(metrics["confusion_matrix"]), counts[expected_order])

    # The matched total is the ACC, and NMI/ARI agree with scikit-learn on the CSV's columns.
    matched = sum(counts[q, cl] for q, cl in match.items())
    last = metrics["last"]
    assert last["acc"] == pytest.approx(matched / len(rows), abs=1e-12)
    assert last["nmi"] == pytest.approx(normalized_mutual_info_score(labels, clusters), abs=1e-9)
    assert last["ari"] == pytest.approx(adjusted_rand_score(labels, clusters), abs=1e-9)


def test_metrics_last_and_best_by_training_loss(run):
    workdir, result = run
    with open(os.path.join(workdir, "report", "metrics.json")) as f:
        metrics = json.load(f)
    assert set(metrics) >= {"last", "best_by_train_loss"}
    for key in ("last", "best_by_train_loss"):
        for m in ("acc", "nmi", "ari"):
            assert 0.0 <= metrics[key][m] <= 1.0 or m == "ari", (key, m)
            assert np.isfinite(metrics[key][m])
    assert metrics["last"]["step"] == 14  # 2 epochs x 7 steps of 256 over 1,797 images
    assert metrics["last"]["acc"] == pytest.approx(result["acc"])

    # Best by training loss, not by the labels: the epoch with the lowest epoch-mean loss in history.jsonl.
    with open(os.path.join(workdir, "history.jsonl")) as f:
        history = [json.loads(line) for line in f if line.strip()]
    assert [h["epoch"] for h in history] == [1, 2]
    best = min(history, key=lambda h: h["loss"])
    b = metrics["best_by_train_loss"]
    assert b["epoch"] == best["epoch"] and b["step"] == best["step"]
    assert b["train_loss"] == pytest.approx(best["loss"], rel=1e-6)
    # The top-level metrics.json (what training returned) says the same.
    with open(os.path.join(workdir, "metrics.json")) as f:
        top = json.load(f)
    assert top["best_by_train_loss"]["step"] == b["step"]
    assert top["acc"] == pytest.approx(metrics["last"]["acc"])


def test_evaluate_cli_reproduces_the_report(run):
    workdir, _ = run
    report = os.path.join(workdir, "report")
    with open(os.path.join(report, "metrics.json")) as f:
        before = json.load(f)
    with open(os.path.join(report, "assignments.csv")) as f:
        csv_before = f.read()
    shutil.rmtree(report)
    r = subprocess.run([sys.executable, "-m", "ccjax", "evaluate", f"--workdir={workdir}"], cwd=ROOT,
                       env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ACC" in r.stdout and "best-by-training-loss" in r.stdout, r.stdout
    for name in REPORT_FILES:
        assert os.path.exists(os.path.join(report, name)), name
    with open(os.path.join(report, "metrics.json")) as f:
        after = json.load(f)
    for key in ("last", "best_by_train_loss"):
        for m in ("acc", "nmi", "ari", "step"):
            assert after[key][m] == pytest.approx(before[key][m], abs=1e-9), (key, m)
    assert after["confusion_matrix"] == before["confusion_matrix"]
    with open(os.path.join(report, "assignments.csv")) as f:
        assert f.read() == csv_before


def test_evaluate_cli_on_a_folder_that_is_not_a_run(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ccjax", "evaluate", f"--workdir={tmp_path}"], cwd=ROOT,
                       env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "no config.json" in r.stderr and "Traceback" not in r.stderr


class FakeDataset:
    """Half-labelled 8x8 grayscale images behind the Dataset protocol (labels -1 = unlabelled)."""

    name, image_shape, streams, how_opened = "fake", (8, 8, 1), False, "in memory"

    def __init__(self, n: int = 40, classes: int = 3, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.num_examples = n
        self.images = rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)
        self.labels = rng.integers(0, classes, n)
        self.labels[::2] = -1
        self.class_names = [f"class_{i}" for i in range(classes)]
        self.num_classes = classes

    def read(self, idx):
        idx = np.asarray(idx)
        return {"image": self.images[idx], "label": self.labels[idx], "index": idx}

    def example_ids(self, idx):
        return [f"img{int(i):03d}.png" for i in idx]


def test_write_report_with_unlabelled_examples(tmp_path):
    """Partly labelled data (STL-10 with its unlabelled split): confusion over the labelled ones, empty CSV labels."""
    from ccjax.report.report import write_report

    ds = FakeDataset()
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), ds.num_examples).astype(np.float32)  # [N, K=4] for 3 classes
    history = [{"epoch": e, "step": 10 * e, "loss": 5.0 - e, "instance": 3.0 - 0.5 * e, "cluster": 2.0 - 0.1 * e,
                "seconds": e, **({"eval_acc": 0.2 * e, "eval_nmi": 0.1 * e, "eval_ari": 0.05 * e} if e % 2 else {})}
               for e in range(1, 6)]
    with open(tmp_path / "history.jsonl", "w") as f:
        f.writelines(json.dumps(h) + "\n" for h in history)
    out = write_report(str(tmp_path), ds, probs, {"last": {"acc": 0.0}}, ds.labels)
    for name in REPORT_FILES:
        assert os.path.exists(os.path.join(out, name)), name
    check_real_plot(os.path.join(out, "curves.png"))
    check_real_plot(os.path.join(out, "confusion.png"), min_width=150, min_height=150)
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    known = ds.labels >= 0
    pred = probs.argmax(1)
    counts = np.zeros((4, 3), np.int64)
    np.add.at(counts, (pred[known], ds.labels[known]), 1)
    order = metrics["confusion_cluster_order"]
    assert sorted(order) == [0, 1, 2, 3]
    np.testing.assert_array_equal(np.array(metrics["confusion_matrix"]), counts[order])
    assert metrics["confusion_num_examples"] == int(known.sum())
    rows = read_assignments(os.path.join(out, "assignments.csv"))
    for i, r in enumerate(rows):
        assert r["id"] == f"img{i:03d}.png" and int(r["cluster"]) == pred[i]
        assert float(r["probability"]) == pytest.approx(probs[i].max(), abs=1e-6)
        if known[i]:
            assert (int(r["label"]), r["class"]) == (ds.labels[i], f"class_{ds.labels[i]}")
        else:
            assert r["label"] == "" and r["class"] == ""
