"""report/index.html of real short runs, opened in headless Chromium with networking off.

Two real runs: a short digits run that does not collapse (HEALTHY: batch 64, no warm-up and a
larger step, so that 2 epochs spread the images over the clusters) and the suite's shared tiny digits run (tests/test_report.py: 2 epochs inside a
10-epoch warm-up, whose probabilities stay near 1/K and whose clusters pile up: a collapsed run).
Both pages are opened in one browser session. Oracles: cluster sizes, matched classes and the
collapse figures recomputed with numpy/scipy from report/assignments.csv; thumbnails compared with
the dataset's own pixels (an 8x8 digit enlarged 8 times is np.kron with a block of ones).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from browser import Browser, find_chromium
from test_report import tiny_digits_config, trained_digits_run

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="needs Chromium (Debian: apt-get install chromium; .ci/run installs it)")

HEALTHY = {"batch_size": 64, "warmup_epochs": 0, "learning_rate": 1e-2}


def healthy_run(tmp_path_factory) -> str:
    from ccjax.train import train_and_evaluate

    c = tiny_digits_config()
    for field, value in HEALTHY.items():
        setattr(c, field, value)
    workdir = str(tmp_path_factory.getbasetemp() / "digits_healthy_page")
    if not os.path.exists(os.path.join(workdir, "metrics.json")):
        train_and_evaluate(c, workdir)
    return workdir


def csv_columns(workdir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    with open(os.path.join(workdir, "report", "assignments.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return (np.array([int(r["cluster"]) for r in rows]), np.array([float(r["probability"]) for r in rows]),
            np.array([int(r["label"]) for r in rows]), [r["id"] for r in rows])


ALL_IMAGES_LOADED = """
(async () => {
  document.querySelectorAll('details.cluster').forEach(d => d.open = true);
  document.querySelectorAll('img').forEach(i => i.loading = 'eager');
  await Promise.all([...document.images].map(i => i.complete ? null :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
  return [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth, i.complete,
                                        i.closest('details') ? i.closest('details').dataset.cluster : null]);
})()
"""

SECTIONS = """[...document.querySelectorAll('details.cluster')].map(d => ({
  cluster: +d.dataset.cluster, size: +d.dataset.size, summary: d.querySelector('summary').innerText,
  most: d.querySelectorAll('.row.most figure').length, least: d.querySelectorAll('.row.least figure').length,
  first: d.querySelector('.row.most figure') ? d.querySelector('.row.most figure').title : null}))"""

VERDICTS = """[...document.querySelectorAll('.verdict')].map(v => ({
  kind: v.className, text: v.innerText, top: v.getBoundingClientRect().top, shown: v.offsetHeight > 0,
  command: v.querySelector('pre.cmd') ? v.querySelector('pre.cmd').innerText : ''}))"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """{'healthy'|'collapsed': (workdir, what the browser read)}: both pages, read in one browser."""
    runs = {"healthy": healthy_run(tmp_path_factory), "collapsed": trained_digits_run(tmp_path_factory)[0]}
    out = {}
    with Browser() as browser:
        for name, workdir in runs.items():
            browser.requests.clear()
            browser.open("file://" + os.path.join(workdir, "report", "index.html"))
            read = {"sections": browser.evaluate(SECTIONS), "verdicts": browser.evaluate(VERDICTS),
                    "header_bottom": browser.evaluate("document.querySelector('table.meta').getBoundingClientRect().bottom"),
                    "clusters_top": browser.evaluate("document.querySelector('details.cluster').getBoundingClientRect().top"),
                    "screenshot": browser.screenshot()}
            read["images"] = browser.evaluate(ALL_IMAGES_LOADED, await_promise=True)
            read["requests"] = list(browser.requests)
            out[name] = (workdir, read)
    return out


def test_every_cluster_is_on_the_page_with_its_size_largest_first(pages):
    workdir, read = pages["healthy"]
    cluster, prob, label, ids = csv_columns(workdir)
    sizes = np.bincount(cluster, minlength=10)
    sections = read["sections"]
    assert sorted(s["cluster"] for s in sections) == list(range(10))  # every cluster, empty ones too
    assert [s["size"] for s in sections] == sorted(sizes.tolist(), reverse=True)
    for s in sections:
        assert s["size"] == sizes[s["cluster"]] and f"{s['size']:,} image" in s["summary"], s
        assert s["most"] + s["least"] == min(s["size"], 16), s  # 8 most and 8 least confident, or all
        if s["size"]:  # the first thumbnail is the cluster's most confident image
            members = np.flatnonzero(cluster == s["cluster"])
            top = members[np.argmax(prob[members])]
            assert s["first"].startswith(f"{ids[top]} p={prob[top]:.3f}"), (s, ids[top])
    # Each cluster's matched class (Hungarian, scipy) is named in its summary.
    from scipy.optimize import linear_sum_assignment

    counts = np.zeros((10, 10), np.int64)
    np.add.at(counts, (cluster, label), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    for r, c in zip(rows, cols):
        if sizes[r]:
            summary = next(s["summary"] for s in sections if s["cluster"] == r)
            assert f"matched to class {c}: {counts[r, c]} of its {sizes[r]}" in summary, summary


def test_thumbnails_load_from_files_beside_the_page_and_show_the_images(pages):
    workdir, read = pages["healthy"]
    images = read["images"]
    assert images and all(w > 0 and done for _, w, done, _ in images), [i for i in images if not i[1]]
    sprites = {src for src, _, _, c in images if c is not None and re.fullmatch(r"thumbs/c\d+\.png", src)}
    cluster, prob, _, ids = csv_columns(workdir)
    assert sprites == {f"thumbs/c{c}.png" for c in set(cluster.tolist())}  # one sprite per non-empty cluster
    # Bounded: per cluster at most 16 thumbnails and 4 where-it-looks maps, plus the figures.
    assert len(images) <= 10 * (16 + 4) + 5
    # The most confident image of the largest cluster is tile 0 of its sprite: its digit, enlarged 8 times.
    from sklearn.datasets import load_digits

    digits = load_digits().images  # [N, 8, 8] in 0..16, what ccjax stores as round(x * 255 / 16)
    biggest = np.bincount(cluster).argmax()
    members = np.flatnonzero(cluster == biggest)
    top = members[np.argmax(prob[members])]
    with Image.open(os.path.join(workdir, "report", f"thumbs/c{biggest}.png")) as im:
        sprite = np.asarray(im)
    assert sprite.shape == (64, 64 * min(len(members), 16))
    stored = np.asarray(np.round(digits[top] * 255 / 16), np.uint8)
    np.testing.assert_array_equal(sprite[:, :64], np.kron(stored, np.ones((8, 8), np.uint8)))
    assert ids[top] == f"{top:04d}"


def test_the_page_needs_no_network(pages):
    for name, (_, read) in pages.items():
        assert read["requests"], name
        assert all(url.startswith("file://") for url in read["requests"]), [u for u in read["requests"]
                                                                              if not u.startswith("file://")]


def test_the_screenshot_shows_a_page(pages):
    png = pages["healthy"][1]["screenshot"]
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int64)
    assert rgb.shape[:2] == (1600, 1280)
    not_white = (rgb < 235).any(-1)
    assert not_white.mean() > 0.05, not_white.mean()  # text, thumbnails and boxes, not a blank page
    # The thumbnails are grey digits: many pixels of middle grey levels on the screen.
    grey = (np.ptp(rgb, -1) < 8) & (rgb[..., 0] > 40) & (rgb[..., 0] < 215)
    assert grey.sum() > 2000, grey.sum()


def test_a_run_that_did_not_collapse_says_so_or_notes_its_low_confidence(pages):
    workdir, read = pages["healthy"]
    cluster, prob, _, _ = csv_columns(workdir)
    with open(os.path.join(workdir, "report", "verdicts.json")) as f:
        saved = json.load(f)
    assert not saved["collapsed"], saved
    first = read["verdicts"][0]
    assert first["shown"] and "warning" not in first["kind"], first
    unsure = ((prob - 0.1) / 0.9 < 0.5).mean()  # top probability below 0.55 (numpy on the CSV)
    if unsure >= 0.5:  # 2 short epochs: sure of few images; the note says how many, and to train on
        assert "note" in first["kind"] and f"ccjax: note: the model is unsure of most images: {unsure:.0%}" in first["text"]
        assert first["command"].startswith("python -m ccjax train") and f"--workdir={workdir}" in first["command"]
    else:
        assert "No collapse" in first["text"] and "ok" in first["kind"], first
    assert any("What do the clusters follow?" in v["text"] for v in read["verdicts"])


def test_a_collapsed_run_shows_the_collapse_warning_at_the_top(pages):
    workdir, read = pages["collapsed"]
    cluster, prob, _, _ = csv_columns(workdir)
    sizes = np.bincount(cluster, minlength=10)
    near_uniform = ((prob - 0.1) / 0.9 < 0.1).mean()
    # The tiny shared run: most images near 1/K and one cluster with most images (numpy on the CSV).
    assert near_uniform >= 0.5 and sizes.max() / sizes.sum() >= 0.55, (near_uniform, sizes)
    first = read["verdicts"][0]
    assert first["shown"] and "warning" in first["kind"], first
    assert first["top"] < read["clusters_top"] and first["top"] > read["header_bottom"] - 1
    text = first["text"]
    assert "ccjax: warning: the clustering collapsed" in text
    assert f"cluster {sizes.argmax()} holds {sizes.max()} of {sizes.sum()} images" in text
    assert f"{near_uniform:.0%} of the images have a top probability near 1/K = 0.10" in text
    if (sizes == 0).sum() >= 5:
        assert f"{(sizes == 0).sum()} of 10 clusters are empty" in text
    # Advice as a command: still near 1/K after 2 of 150 epochs: train on, in the same workdir.
    assert first["command"].startswith("python -m ccjax train --config=") and f"--workdir={workdir}" in first["command"]
    probe = next(v for v in read["verdicts"] if "What do the clusters follow?" in v["text"])
    assert "names no cue" in probe["text"] and "score" not in probe["text"], probe


def test_the_report_command_rebuilds_the_same_page_without_the_model(pages, tmp_path, monkeypatch, capsys):
    import shutil

    import ccjax.eval.assign
    import ccjax.run.load
    from ccjax.cli.report import report
    from ccjax.errors import UserError

    original = pages["collapsed"][0]
    copy = str(tmp_path / os.path.basename(original))  # the page's title is the workdir's name
    shutil.copytree(original, copy)
    os.remove(os.path.join(copy, "report", "index.html"))
    shutil.rmtree(os.path.join(copy, "report", "thumbs"))  # the sprites and the CAM strips
    os.makedirs(os.path.join(copy, "report", "thumbs"))
    for f in glob.glob(os.path.join(original, "report", "thumbs", "cam_*")):
        shutil.copy(f, os.path.join(copy, "report", "thumbs"))  # written by evaluate (they need the model)

    def no_model(*a, **k):
        raise AssertionError("the report command must not load the model or compute features")

    monkeypatch.setattr(ccjax.run.load, "load_trained", no_model)
    monkeypatch.setattr(ccjax.eval.assign, "model_outputs", no_model)
    monkeypatch.setattr(ccjax.run.load, "model_outputs", no_model)
    monkeypatch.setattr(ccjax.eval.assign, "assign_clusters", no_model)
    path = report(copy)
    with open(path) as f, open(os.path.join(original, "report", "index.html")) as g:
        assert f.read() == g.read().replace(original, copy)
    for name in os.listdir(os.path.join(original, "report", "thumbs")):
        with open(os.path.join(copy, "report", "thumbs", name), "rb") as f, \
                open(os.path.join(original, "report", "thumbs", name), "rb") as g:
            assert f.read() == g.read(), name
    assert capsys.readouterr().err.startswith("ccjax: warning: the clustering collapsed")  # as the run printed
    os.remove(os.path.join(copy, "report", "assignments.csv"))
    with pytest.raises(UserError, match="has no report/assignments.csv.*ccjax evaluate"):
        report(copy)
