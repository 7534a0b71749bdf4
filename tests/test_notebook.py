"""launch/colab_quickstart.ipynb runs top to bottom (nbclient, a real kernel), so it never rots.

The kernel runs in a temporary folder with CCJAX_NOTEBOOK_EPOCHS=2 and the
checkout on PYTHONPATH (so the notebook's install step finds ccjax and installs
nothing). Checked: no cell errored, the three report pictures were displayed,
the metrics printed are report/metrics.json's, and each predicted digit got the
cluster its identical training image has in report/assignments.csv.
"""

from __future__ import annotations

import json
import os
import re

import nbclient  # the test extra: pip install -e '.[test]'
import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "launch", "colab_quickstart.ipynb")
METRICS_LINE = re.compile(r"\(step (\d+)\): ACC ([0-9.]+)  NMI ([0-9.]+)  ARI (-?[0-9.]+)")
PREDICT_LINE = re.compile(
    r"digit\d_label\d\.png: cluster (\d+) \(p=[0-9.]+\); the same image in training: cluster (\d+)")


def cell_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_notebook_is_clean():
    """Saved without outputs or execution counts: what Colab opens is the source."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    kinds = {c.cell_type for c in nb.cells}
    assert kinds == {"markdown", "code"}
    for c in nb.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None
    assert "CCJAX_NOTEBOOK_EPOCHS" in "".join(c.source for c in nb.cells)
    assert "configs/gecc_cifar10.py" in nb.cells[-1].source and "ccjax[cuda]" in nb.cells[-1].source


def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("CCJAX_NOTEBOOK_EPOCHS", "2")
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("JAX_NUM_CPU_DEVICES", "4")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell

    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        assert not [o for o in c.outputs if o.get("output_type") == "error"], c.source[:80]
    assert "installed ccjax" not in cell_text(code[0])  # ccjax was importable: nothing installed
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # confusion.png, clusters.png, curves.png

    workdir = tmp_path / "runs" / "cc_digits_notebook"
    with open(workdir / "report" / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["last"]["step"] == 14  # 2 epochs x 7 steps
    printed = "".join(cell_text(c) for c in code)
    found = METRICS_LINE.findall(printed)
    assert len(found) == 2, printed[-2000:]
    for (step, acc, nmi, ari), key in zip(found, ("last", "best_by_train_loss")):
        m = metrics[key]
        assert int(step) == m["step"]
        assert (float(acc), float(nmi), float(ari)) == pytest.approx((m["acc"], m["nmi"], m["ari"]), abs=6e-5)

    predicted = PREDICT_LINE.findall(printed)
    assert len(predicted) == 3, printed[-2000:]
    for cluster, training_cluster in predicted:
        assert cluster == training_cluster
    assert "0 unreadable files skipped" in printed
