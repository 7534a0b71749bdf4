"""launch/colab_quickstart.ipynb runs top to bottom (nbclient, a real kernel), so it never rots.

The kernel runs in a temporary folder with CCJAX_NOTEBOOK_EPOCHS=2 and the
checkout on PYTHONPATH (so the notebook's install step finds ccjax and installs
nothing). Checked: no cell errored, the three report pictures were displayed,
the metrics printed are report/metrics.json's, and each predicted digit got the
cluster its identical training image has in report/assignments.csv.

The install cell's other branch (what Colab runs) is run on its own: it refuses
the placeholder URL, and from a file:// URL of a snapshot of this checkout it
clones, pip-installs ccjax into a fresh virtual environment that sees this
environment's packages, and keeps this environment's jax.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import venv

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
    # The last section's commands: shell escapes with the configs' real folder, not a bare configs/.
    assert "!python -m ccjax train --config={CONFIGS}/gecc_cifar10.py" in nb.cells[-1].source
    assert "RUN_CIFAR10 = False" in nb.cells[-1].source and "ccjax[cuda]" in nb.cells[-2].source


@pytest.mark.slow
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
    assert f"skipped; the commands: python -m ccjax train --config={ROOT}/configs/gecc_cifar10.py" in cell_text(code[-1])


def install_cell() -> str:
    return nbformat.read(NOTEBOOK, as_version=4).cells[2].source


def run_install_cell(python: str, cwd, url: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CCJAX_REPO_URL")}
    if url:
        env["CCJAX_REPO_URL"] = url
    return subprocess.run([python, "-c", install_cell()], cwd=cwd, env={**env, "JAX_PLATFORMS": "cpu"},
                          capture_output=True, text=True, timeout=600)


def test_install_cell_refuses_the_placeholder_url(tmp_path):
    """Outside a checkout, without ccjax importable (a bare environment): one clear line, nothing cloned."""
    venv.create(tmp_path / "bare", with_pip=False)
    work = tmp_path / "work"
    work.mkdir()
    r = run_install_cell(str(tmp_path / "bare" / "bin" / "python"), work, None)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: REPO_URL is still the placeholder 'https://github.com/YOUR-ORG/ccjax'")
    assert "CCJAX_REPO_URL" in last and not (work / "ccjax-src").exists()


def snapshot_repo(dest) -> str:
    """This checkout's files (committed or not, minus ignored ones) as a one-commit git repository."""
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if os.path.isfile(os.path.join(ROOT, f)):
            os.makedirs(os.path.dirname(os.path.join(dest, f)) or dest, exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), os.path.join(dest, f))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(git + cmd, cwd=dest, check=True, capture_output=True)
    return f"file://{dest}"


@pytest.mark.slow
def test_install_cell_installs_from_a_file_url_and_keeps_jax(tmp_path):
    if shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")) and not os.path.isfile(
            os.path.join(ROOT, ".git")):
        pytest.skip("needs git and a git checkout")
    import jax

    url = snapshot_repo(tmp_path / "repo")
    # A fresh environment that sees this one's packages (jax, flax, ...) through a .pth file, but not
    # ccjax: an editable install's finder is activated by its own .pth, which a plain path line skips.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    new_site = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import site; print(site.getsitepackages()[0])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(new_site, "outer.pth"), "w") as f:
        f.write("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "work"
    work.mkdir()
    r = run_install_cell(str(env_dir / "bin" / "python"), work, url)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert f"installed ccjax from {url}, keeping jax=={jax.__version__}" in r.stdout
    assert f"ccjax from {new_site}/ccjax" in r.stdout  # the fresh install, not this checkout
    assert f"configs in {work}/ccjax-src/configs" in r.stdout
    assert f"jax {jax.__version__} devices:" in r.stdout
    assert (work / "ccjax-src" / "configs" / "cc_digits.py").is_file()
