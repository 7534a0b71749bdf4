"""`python -m ccjax predict` on the tiny digits run of tests/test_report.py (trained once per session).

A folder holding a truncated JPEG, a file of garbage named .png, a zero-byte
file, an 8x8 grayscale PNG of a training digit and a 24x20 RGB JPEG: the three
unreadable ones are reported and skipped, the other two get clusters, the
CSV is written and the exit code is 0. The grayscale PNG holds exactly the
stored pixels of a training example, so its cluster and probability must be
those of that example in report/assignments.csv. A missing path or a folder of
unreadable files exits 2 with one line.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from test_report import ROOT, read_assignments, subprocess_env, tiny_digits_config, trained_digits_run

EXAMPLE = 5  # the training example written as a grayscale PNG


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_digits_run(tmp_path_factory)


def predict(*args, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ccjax", "predict", *args], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if l.strip() and "WARNING" not in l and not l.startswith(("W0", "I0"))]


def digit_image(index: int) -> np.ndarray:
    """A training example's stored pixels: uint8 [8, 8, 1]."""
    from ccjax.data import open_dataset

    return open_dataset(tiny_digits_config().dataset).read(np.array([index]))["image"][0]


def write_mixed_folder(folder) -> dict[str, str]:
    folder.mkdir()
    digit = digit_image(EXAMPLE)
    Image.fromarray(digit[..., 0], mode="L").save(folder / "gray.png")
    rgb = np.repeat(np.asarray(Image.fromarray(digit[..., 0]).resize((20, 24)))[..., None], 3, axis=-1)
    rgb[..., 0] = 255 - rgb[..., 0]  # a colour image, not a gray one stored as RGB
    Image.fromarray(rgb, mode="RGB").save(folder / "colour.jpg", quality=95)
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="JPEG", quality=95)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (folder / "empty.jpeg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image: ignored when searching folders")
    return {"ok": ["colour.jpg", "gray.png"], "bad": ["empty.jpeg", "garbage.png", "truncated.jpg"]}


def test_predict_folder_skips_unreadable_files(run, tmp_path):
    workdir, _ = run
    names = write_mixed_folder(tmp_path / "images")
    out = tmp_path / "pred.csv"
    out.write_text("an older output")
    r = predict(f"--workdir={workdir}", f"--out={out}", "--overwrite", str(tmp_path / "images"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert not [l for l in r.stderr.splitlines() if re.match(r"I\d{4} ", l)], r.stderr  # no INFO logging
    for bad in names["bad"]:
        assert any(l.startswith("ccjax: skipped") and bad in l for l in r.stderr.splitlines()), (bad, r.stderr)
    assert "notes.txt" not in r.stderr + r.stdout
    assert "assigned 2 images (3 unreadable, skipped) to 10 clusters" in r.stdout, r.stdout

    # The 24x20 colour JPEG is unlike the 8x8 grayscale digits: one warning line; the gray 8x8 PNG is not.
    warnings = [l for l in r.stderr.splitlines() if l.startswith("ccjax: warning:")]
    assert warnings == ["ccjax: warning: 1 of 2 images are unlike the run's training images (8x8 grayscale; "
                        "e.g. colour.jpg is in colour (RGB) and 20x24): each is converted to 8x8 grayscale, so "
                        "its cluster may say little about it"], r.stderr

    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(workdir, "report", "assignments.csv"), newline="") as f:
        assignment_columns = next(csv.reader(f))
    assert list(rows[0]) == ["id", "cluster", "probability", "low_confidence"]
    assert list(rows[0])[:3] == assignment_columns[:3]  # the same names as the report's assignments
    assert [os.path.basename(r["id"]) for r in rows] == names["ok"]
    for row in rows:
        assert 0 <= int(row["cluster"]) < 10 and 0.1 - 1e-6 <= float(row["probability"]) <= 1.0
        assert row["low_confidence"] == ("yes" if float(row["probability"]) < 0.19 else "no")

    # The stored pixels of example 5 get example 5's cluster and probability from the run's report.
    ref = read_assignments(os.path.join(workdir, "report", "assignments.csv"))[EXAMPLE]
    gray = next(r for r in rows if r["id"].endswith("gray.png"))
    assert int(gray["cluster"]) == int(ref["cluster"])
    assert float(gray["probability"]) == pytest.approx(float(ref["probability"]), abs=2e-5)


def test_predict_missing_path_exits_2_with_one_line(run, tmp_path):
    workdir, _ = run
    r = predict(f"--workdir={workdir}", str(tmp_path / "no_such_folder"), timeout=120)
    assert r.returncode == 2
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert "no_such_folder" in lines[0] and "does not exist" in lines[0]


def test_predict_only_unreadable_files_exits_2(run, tmp_path):
    workdir, _ = run
    (tmp_path / "bad.png").write_bytes(b"not a png")
    r = predict(f"--workdir={workdir}", f"--out={tmp_path / 'p.csv'}", str(tmp_path / "bad.png"), timeout=120)
    assert r.returncode == 2
    assert "bad.png" in r.stderr and "none of the 1 image files could be read" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_predict_out_folder_must_exist(run, tmp_path):
    workdir, _ = run
    image = tmp_path / "x.png"
    Image.fromarray(digit_image(EXAMPLE)[..., 0], mode="L").save(image)
    r = predict(f"--workdir={workdir}", f"--out={tmp_path / 'missing' / 'p.csv'}", str(image), timeout=120)
    assert r.returncode == 2
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and "its folder does not exist" in lines[0], r.stderr
    assert not (tmp_path / "missing").exists()


def test_predict_keeps_an_existing_output_without_overwrite(run, tmp_path):
    workdir, _ = run
    image = tmp_path / "x.png"
    Image.fromarray(digit_image(EXAMPLE)[..., 0], mode="L").save(image)
    out = tmp_path / "p.csv"
    out.write_text("earlier predictions")
    r = predict(f"--workdir={workdir}", f"--out={out}", str(image), timeout=120)
    assert r.returncode == 2
    assert error_lines(r.stderr) == [f"ccjax: error: {out} exists; pass --overwrite to replace it, or "
                                     "--out=<another file>"], r.stderr
    assert out.read_text() == "earlier predictions"


@pytest.mark.parametrize("k, top, low", [(10, 0.189, True), (10, 0.191, False), (2, 0.54, True), (2, 0.56, False),
                                         (100, 0.108, True), (100, 0.11, False)])
def test_low_confidence_is_a_top_probability_near_one_over_k(k, top, low):
    """By hand: the threshold is 1/K + 0.1 (1 - 1/K): 0.19 for K = 10, 0.55 for K = 2, 0.1090 for K = 100."""
    from ccjax.eval.predict import low_confidence

    probs = np.full((1, k), (1 - top) / (k - 1))
    probs[0, 0] = top
    assert low_confidence(probs).tolist() == [low]


def test_format_warning_names_colour_and_size_differences(tmp_path):
    from ccjax.eval.predict import format_warning

    Image.new("RGBA", (300, 300), (200, 10, 10, 128)).save(tmp_path / "photo.png")
    Image.new("L", (8, 8), 40).save(tmp_path / "digit.png")
    Image.new("L", (300, 300), 40).save(tmp_path / "big_gray.png")
    files = [str(tmp_path / n) for n in ("photo.png", "digit.png", "big_gray.png")]
    line = format_warning(files, (8, 8, 1), "digits")
    assert line.startswith("ccjax: warning: 2 of 3 images are unlike the run's training images (8x8 grayscale; "
                           "e.g. photo.png is in colour (RGBA) and 300x300)"), line
    assert format_warning(files[1:2], (8, 8, 1), "digits") is None
    # A folder run's images were resized when prepared: only the colour counts.
    assert "1 of 3" in format_warning(files, (96, 96, 1), "folder:/data/x")
    assert format_warning(files[1:], (96, 96, 3), "folder:/data/x").startswith(
        "ccjax: warning: 2 of 2 images are unlike the run's training images (96x96 RGB; "
        "e.g. digit.png is grayscale (L))")
