"""The report's figures and the attention picture explain themselves: their titles, labels, notes and
colour bars are read from the matplotlib Figure objects, so none can silently disappear."""

from __future__ import annotations

import numpy as np
import pytest

from ccjax.explain.attention_maps import AttentionMaps
from ccjax.report.attention_figure import attention_figure
from ccjax.report.figures import figure_texts
from ccjax.report.report import (clusters_figure, cluster_order, confusion_figure, curves_figure,
                                 write_report)


def joined(fig) -> str:
    return "\n".join(figure_texts(fig))


def permuted_clustering(n_per_class=20, perm=(2, 0, 3, 1)):
    """Class c's images all in cluster perm[c], so cluster perm[c] is matched to class c."""
    y = np.repeat(np.arange(len(perm)), n_per_class)
    return y, np.asarray(perm)[y]


def test_confusion_title_counts_images_and_gives_the_metrics_rows_in_matched_order():
    y, p = permuted_clustering()
    order = cluster_order(y, p, 4)
    assert order == [2, 0, 3, 1]  # by hand: the cluster of class 0, of class 1, ...
    cm = np.zeros((4, 4), np.int64)
    np.add.at(cm, (p, y), 1)
    fig = confusion_figure(cm[order], order, ["zero", "one", "two", "three"],
                           {"acc": 1.0, "nmi": 0.98765, "ari": 0.5})
    title = fig.axes[0].get_title()
    assert "80 labelled images" in title and "K = 4" in title
    assert "ACC 1.000" in title and "NMI 0.988" in title and "ARI 0.500" in title
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [f"cluster {c}" for c in order]
    assert fig.axes[0].get_xlabel() == "true class" and "Hungarian" in fig.axes[0].get_ylabel()
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "images"  # the colour bar, labelled


def test_clusters_rows_follow_the_given_order_and_empty_clusters_say_so():
    rng = np.random.default_rng(0)
    n, k = 30, 5
    probs = rng.dirichlet(np.ones(k), n).astype(np.float32)
    probs[:, 3] = 0.0  # cluster 3: nobody's highest probability
    probs /= probs.sum(1, keepdims=True)
    sizes = np.bincount(probs.argmax(1), minlength=k)
    order = [4, 3, 0, 2, 1]
    fig = clusters_figure(probs, lambda idx: np.zeros((len(idx), 4, 4, 3), np.uint8), order=order, per_cluster=3)
    rows = [t for t in figure_texts(fig) if t.startswith("cluster ")]
    assert rows == [f"cluster {c}\n{sizes[c]} image{'s' if sizes[c] > 1 else ''}" if sizes[c] else f"cluster {c}\nempty"
                    for c in order]
    text = joined(fig)
    assert "no image has its highest probability in this cluster" in text
    assert f"{n} images, K = {k}" in fig._suptitle.get_text() and "most confident" in fig._suptitle.get_text()
    assert "confusion.png's order" in fig._suptitle.get_text() and "1 of 5 clusters are empty" in text


def history(epochs, evaluated=()):
    return [{"epoch": e, "step": 3 * e, "loss": 9.0 - e, "instance": 6.0 - e, "cluster": 2.9, "entropy": 0.03,
             "seconds": 1.0, "grad_norm": 0.5,
             **({"eval_acc": 0.1 * e, "eval_nmi": 0.05 * e, "eval_ari": 0.02 * e} if e in evaluated else {})}
            for e in range(1, epochs + 1)]


def test_curves_integer_epochs_and_the_final_evaluation_at_the_last_epoch():
    fig = curves_figure(history(2), {"acc": 0.61, "nmi": 0.5, "ari": 0.4})
    losses, quality = fig.axes
    for ax in (losses, quality):
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    points = {(tuple(l.get_xdata()), tuple(l.get_ydata())) for l in quality.get_lines()}
    assert ((2,), (0.61,)) in points  # the final ACC, at epoch 2
    assert "evaluated at the end only" in quality.get_title()
    legend = [t.get_text() for t in losses.get_legend().get_texts()]
    assert any(l.startswith("instance:") for l in legend) and any(l.startswith("entropy term") for l in legend)
    assert "grad_norm" not in legend and "2 epochs" in losses.get_title()
    assert losses.get_xlabel() == "epoch" and "loss" in losses.get_ylabel()


def test_curves_with_evaluations_during_training_end_at_the_final_one():
    fig = curves_figure(history(4, evaluated=(2,)), {"acc": 0.9, "nmi": 0.8, "ari": 0.7})
    quality = fig.axes[1]
    assert "ACC during training" in [t.get_text() for t in quality.get_legend().get_texts()]
    (acc,) = [l for l in quality.get_lines() if l.get_label() == "ACC during training"]
    assert list(acc.get_xdata()) == [2] and np.allclose(acc.get_ydata(), [0.2])
    points = {(tuple(l.get_xdata()), tuple(l.get_ydata())) for l in quality.get_lines()}
    assert ((4,), (0.9,)) in points and ((4,), (0.7,)) in points


@pytest.mark.parametrize("final, why", [({"entropy": 0.9}, "no labels"), (None, "no evaluation recorded")])
def test_curves_say_why_the_quality_panel_is_empty(final, why):
    text = joined(curves_figure(history(3), final))
    assert "Clustering quality: not drawn" in text and why in text


def test_write_report_draws_clusters_in_the_confusion_order(tmp_path, monkeypatch):
    import ccjax.report.report as report

    drawn = {}
    monkeypatch.setattr(report, "save_figure", lambda fig, path, dpi=110: drawn.update({path.rsplit("/", 1)[1]: fig}))
    y, p = permuted_clustering(10)
    probs = np.full((len(y), 4), 0.1, np.float32)
    probs[np.arange(len(y)), p] = 0.7

    class Data:
        class_names = ["zero", "one", "two", "three"]
        num_examples = len(y)

        def read(self, idx):
            return {"image": np.zeros((len(idx), 4, 4, 1), np.uint8)}

        def example_ids(self, idx):
            return [str(i) for i in idx]

    (tmp_path / "history.jsonl").write_text("")
    write_report(str(tmp_path), Data(), probs, {"last": {"acc": 1.0, "nmi": 1.0, "ari": 1.0}}, y)
    confusion_rows = [t.get_text() for t in drawn["confusion.png"].axes[0].get_yticklabels()]
    cluster_rows = [t.split("\n")[0] for t in figure_texts(drawn["clusters.png"]) if t.startswith("cluster ")]
    assert confusion_rows == cluster_rows == [f"cluster {c}" for c in (2, 0, 3, 1)]


def test_attention_figure_shows_the_input_a_colour_bar_per_row_and_explains_its_terms():
    t, grid = 1 + 4, (2, 2)
    rng = np.random.default_rng(0)
    per_branch = rng.dirichlet(np.ones(t), 2).astype(np.float32)
    fused = rng.dirichlet(np.ones(2 * t), 2).astype(np.float32)
    maps = AttentionMaps(0, 1, per_branch, fused, 1, grid, "[CLS]")
    views = [rng.uniform(size=(8, 8, 1)) for _ in range(2)]
    fig = attention_figure(maps, views, "seven.png, mfavbs run", input_image=np.zeros((8, 8, 1), np.uint8))
    text = joined(fig)
    assert text.count("input image") == 2 and "view 1: its augmentation" in text
    heading = fig._suptitle.get_text()
    assert "Where the [CLS] token looks" in heading and "seven.png" in heading and "[CLS] token)" in heading
    bars = [a for a in fig.axes if "share of the token's attention" in a.get_ylabel()]
    assert len(bars) == 2
    shares = [100 * float(maps.patch_map(per_branch[0], 0).sum())]
    assert f"{shares[0]:.0f}% of its attention on these patches" in text
    assert "mass" not in text and "FAVB" not in text  # the old unexplained terms


def test_attention_overlay_is_transparent_where_attention_is_low():
    from matplotlib import colormaps

    from ccjax.report.attention_figure import overlay

    rgba = overlay(np.array([[0.0, 0.5], [1.0, 2.0]]), 1.0, colormaps["Reds"])
    np.testing.assert_allclose(rgba[..., 3], [[0.0, 0.375], [0.75, 0.75]])


def test_figures_take_partial_metrics():
    """Only the metrics at hand are shown (a caller may pass ACC alone)."""
    cm = np.array([[3, 0], [1, 4]])
    title = confusion_figure(cm, [0, 1], ["a", "b"], {"acc": 0.875}).axes[0].get_title()
    assert "ACC 0.875" in title and "NMI" not in title
    quality = curves_figure(history(2), {"acc": 0.5}).axes[1]
    assert ((2,), (0.5,)) in {(tuple(l.get_xdata()), tuple(l.get_ydata())) for l in quality.get_lines()}
