"""The collapse and low-confidence verdicts, the cue probe on a collapsed clustering, and what
`--suggest_k` advises when the probe flagged the run. Hand-built assignments whose figures are known
by construction; the printed commands are run with --show_config (tests/test_retrain_command.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ccjax.explain import nuisance
from ccjax.report.thumbnails import pick
from ccjax.report.verdicts import verdicts
from test_report import load_config
from test_retrain_command import shown_config


def assignment(sizes: list[int], top: float | list[float] = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Each image's cluster (sizes[c] images in cluster c) and top probability (one value, or per cluster)."""
    cluster = np.repeat(np.arange(len(sizes)), sizes)
    per = np.asarray(top if isinstance(top, list) else [top] * len(sizes), np.float64)
    return cluster, per[cluster]


@pytest.mark.parametrize("sizes, collapsed", [
    ([550] + [50] * 9, True),  # K = 10: 55% in one cluster is 0.5 of the way from 10% to all
    ([540] + [51] * 9, False),  # 54%: not yet
    ([76, 24], True),  # K = 2: 76% (half-way from 50% to 100% is 75%)
    ([70, 30], False),  # a 70/30 split of two clusters is no collapse
])
def test_one_cluster_with_most_images_is_measured_from_an_equal_share(sizes, collapsed):
    v = verdicts(*assignment(sizes), len(sizes))
    assert bool(v["collapsed"]) == collapsed, v
    if collapsed:
        n = sum(sizes)
        assert v["kinds"] == ["one_cluster"] and v["degenerate"] == v["collapsed"]
        assert f"cluster 0 holds {sizes[0]} of {n} images ({sizes[0] / n:.0%})" in v["lines"][0]
        assert v["lines"][0].startswith("ccjax: warning: the clustering collapsed: ")


@pytest.mark.parametrize("empty, collapsed", [(5, True), (4, False)])
def test_most_clusters_empty(empty, collapsed):
    sizes = [100] * (10 - empty) + [0] * empty
    v = verdicts(*assignment(sizes), 10)
    assert bool(v["collapsed"]) == collapsed
    if collapsed:
        assert v["kinds"] == ["empty"] and f"{empty} of 10 clusters are empty" in v["lines"][0]


def test_top_probabilities_near_one_over_k_collapse_without_making_the_partition_degenerate():
    # K = 10: a top probability of 0.18 is 0.089 of the way from 1/K to 1 (near), 0.2 is 0.111 (not).
    v = verdicts(*assignment([100] * 10, [0.18] * 6 + [0.9] * 4), 10)
    assert v["kinds"] == ["near_uniform"] and v["degenerate"] == []
    assert "60% of the images have a top probability near 1/K = 0.10" in v["lines"][0]
    assert "barely tells the clusters apart" in v["lines"][0]
    assert not verdicts(*assignment([100] * 10, [0.2] * 6 + [0.9] * 4), 10)["collapsed"]
    assert not verdicts(*assignment([100] * 10, [0.18] * 4 + [0.9] * 6), 10)["lines"]


def test_low_confidence_is_a_note_not_a_collapse():
    # 0.5 is 0.44 of the way from 0.1 to 1: unsure (below 0.5 of the way), not near-uniform.
    v = verdicts(*assignment([100] * 10, [0.5] * 6 + [0.95] * 4), 10, {"low_confidence": "Train on."})
    assert not v["collapsed"]
    (line,) = v["lines"]
    assert line.startswith("ccjax: note: the model is unsure of most images: 60% have a top cluster probability "
                           "below 0.55") and line.endswith("Train on.")
    assert not verdicts(*assignment([100] * 10, [0.5] * 4 + [0.95] * 6), 10)["lines"]


def test_thumbnails_are_each_clusters_most_and_least_confident_images():
    rng = np.random.default_rng(0)
    cluster = np.array([0] * 30 + [1] * 5 + [3] * 17)
    prob = rng.permutation(len(cluster)) / len(cluster)
    picks = pick(cluster, prob, 4, per_side=8)
    assert sorted(picks) == [0, 1, 3]  # the empty cluster 2 has none
    for c, p in picks.items():
        members = np.flatnonzero(cluster == c)
        by_conf = members[np.argsort(-prob[members])]
        if len(members) <= 16:
            assert p["most"].tolist() == by_conf.tolist() and len(p["least"]) == 0
        else:
            assert p["most"].tolist() == by_conf[:8].tolist() and p["least"].tolist() == by_conf[::-1][:8].tolist()


# ----------------------------------------------------------------------------- the cue probe


def cue_clustering(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    cue, content = rng.integers(0, 4, n), rng.integers(0, 4, n)
    cues = {"colour": rng.normal(size=(4, 3))[cue] + 0.2 * rng.normal(size=(n, 3)), "texture": rng.normal(size=(n, 2))}
    return cue, content, cues


def test_the_probe_names_no_cue_for_a_degenerate_clustering():
    cue, content, cues = cue_clustering()
    assert nuisance.probe(cue, 4, cues, content)["warnings"]  # clusters = the cue: warned ...
    out = nuisance.probe(cue, 4, cues, content, collapsed=["cluster 0 holds 90% of the images"])
    assert out["warnings"] == [] and out["named"] == [] and out["collapsed"]  # ... unless collapsed


@pytest.mark.parametrize("clusters_score, warns", [(0.0, False), (0.3, True)])
def test_the_probe_never_warns_with_a_score_that_contradicts_its_sentence(monkeypatch, clusters_score, warns):
    """The notebook's 2-epoch case: 0.37 beyond the labels, but the cues alone predict the clusters at
    chance (score 0.00): no 'can be told from content-free cues (score 0.00)'."""
    answers = iter([{"score": clusters_score, "families": {"texture": {"alone": clusters_score, "importance": 0}}},
                    {"score": 0.33, "families": {}}, {"score": 0.37}, {"score": 0.0}])
    monkeypatch.setattr(nuisance, "predictability", lambda *a, **k: next(answers))
    out = nuisance.probe(np.zeros(10, int), 10, {"texture": np.zeros((10, 1))}, np.zeros(10, int))
    assert out["beyond_labels"]["score"] == pytest.approx(0.37)
    assert bool(out["warnings"]) == warns, out
    if warns:
        assert f"score {clusters_score:.2f}" in out["warnings"][0]


# ----------------------------------------------------------------------------- the advice


def digits_run(tmp_path, **fields) -> str:
    c = load_config("cc_digits")
    for key, value in fields.items():
        setattr(c, key, value)
    workdir = tmp_path / "run"
    (workdir / "report").mkdir(parents=True)
    (workdir / "config.json").write_text(c.to_json_best_effort())
    return str(workdir)


def test_collapse_advice_lowers_a_raised_learning_rate_or_trains_on(tmp_path):
    from ccjax.report.advice import collapse_advice

    workdir = digits_run(tmp_path, learning_rate=1e4, num_epochs=2)
    lower = collapse_advice(workdir, not_learnt_yet=False)  # one confident cluster: the step was too large
    assert "learning rate 0.003 (this run: 10000)" in lower["text"]
    got = shown_config(lower["command"])
    assert got["learning_rate"] == 3e-3 and got["num_epochs"] == 2
    assert lower["command"].endswith(f"--workdir={workdir}_lr0.003")
    longer = collapse_advice(workdir, not_learnt_yet=True)  # still near 1/K: train on, in the same workdir
    assert "to 150 epochs (this run: 2)" in longer["text"] and longer["command"].endswith(f"--workdir={workdir}")
    # the config file's 150 epochs need no flag; the raised learning rate stays
    assert "--config.num_epochs" not in longer["command"] and "--config.learning_rate=10000.0" in longer["command"]


def test_suggest_k_on_a_run_the_probe_flagged_carries_its_advice_and_keeps_k(tmp_path):
    from ccjax.report.suggest_k_advice import suggest_k_verdict

    workdir = digits_run(tmp_path)
    plain = suggest_k_verdict(workdir, 2, 10)  # no probe warning: retrain with the suggested K
    assert not plain["flagged"] and "suggested K = 2" in plain["line"]
    warned = {"warnings": ["ccjax: warning: the clusters can be told from content-free cues ..."],
              "named": ["colour", "border"], "collapsed": []}
    with open(os.path.join(workdir, "report", "nuisance.json"), "w") as f:
        json.dump(warned, f)
    v = suggest_k_verdict(workdir, 2, 10)
    assert v["flagged"] and v["line"].startswith("ccjax: warning: the cue probe flagged this run's clusters")
    assert "K = 2 may count the cue's levels" in v["line"] and "keeping K = 10" in v["line"]
    got = shown_config(v["command"])
    assert got["dataset.num_clusters"] == 10
    assert (got["augment.always_gray"], got["augment.standardize"], got["augment.invert_p"],
            got["augment.border_p"]) == (True, True, 0.5, 0.5)
    assert v["command"].endswith(f"--workdir={workdir}_advised")
