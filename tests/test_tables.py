"""`python -m ccjax tables`: generated run folders with known metrics -> means, sample stds (ddof=1),
missing, unfinished and flagged runs, in Markdown, CSV and LaTeX; the papers' numbers agree with
docs/results.md and the table rows with what launch/reproduce.sh runs.

No model is trained: run folders are written as ccjax train writes them (config.json from the table's
config file, metrics.json with known ACC/NMI/ARI).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from ccjax.results.collect import _expected, collect, default_configs_dir
from ccjax.results.paper_numbers import DATASET_NAMES, TABLES
from ccjax.results.render import csv_text, latex, markdown
from tests.test_cli import ROOT, env

NUM_EXAMPLES = {"cifar10": 60000, "cifar100": 60000, "imagenet10": 13000, "imagenet_dogs": 19500}


def write_run(path, table, row, dataset, seed, metrics=None, history_epoch=None, **changes):
    """A run folder as ccjax train leaves it: config.json (the table's config + `changes`), metrics.json
    (final step, ACC/NMI/ARI = metrics) unless metrics is None, history.jsonl up to history_epoch."""
    t = TABLES[table]
    r = t.row(row)
    cfg = dict(_expected(default_configs_dir(), r.config_stem(dataset), tuple(sorted(r.overrides.items()))))
    cfg.update({"seed": seed, **changes})
    nested: dict = {}
    for k, v in cfg.items():  # unflatten
        node = nested
        *parents, leaf = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(nested, f)
    if history_epoch is not None:
        with open(os.path.join(path, "history.jsonl"), "w") as f:
            for e in range(1, history_epoch + 1):
                f.write(json.dumps({"epoch": e, "loss": 1.0}) + "\n")
    if metrics is not None:
        n = NUM_EXAMPLES.get(dataset, 1000)
        step = cfg["num_epochs"] * (n // cfg["batch_size"])
        acc, nmi, ari = metrics
        with open(os.path.join(path, "metrics.json"), "w") as f:
            json.dump({"acc": acc, "nmi": nmi, "ari": ari, "num_examples": n, "step": step,
                       "best_by_train_loss": {"acc": acc - 0.01, "nmi": nmi, "ari": ari, "step": step}}, f)


@pytest.fixture
def gecc2(tmp_path):
    """runs/gecc-table2 with: CIFAR-10 3 seeds done; ImageNet-10 one run (no seed folder); CIFAR-100
    nothing; ImageNet-Dogs seed0 done, seed1 unfinished (epoch 37), seed2 at 100 epochs, seed4 done
    (so seed3 is missing)."""
    root = tmp_path / "gecc-table2"
    base = root / "gecc"
    c10 = [(0.81, 0.70, 0.65), (0.83, 0.74, 0.66), (0.86, 0.71, 0.70)]
    for s, m in enumerate(c10):
        write_run(base / "cifar10" / f"seed{s}", "gecc-table2", "gecc", "cifar10", s, m)
    write_run(base / "imagenet10", "gecc-table2", "gecc", "imagenet10", 0, (0.95, 0.90, 0.91))
    write_run(base / "imagenet_dogs" / "seed0", "gecc-table2", "gecc", "imagenet_dogs", 0, (0.60, 0.55, 0.42))
    write_run(base / "imagenet_dogs" / "seed1", "gecc-table2", "gecc", "imagenet_dogs", 1, None, history_epoch=37)
    write_run(base / "imagenet_dogs" / "seed2", "gecc-table2", "gecc", "imagenet_dogs", 2, (0.99, 0.99, 0.99),
              num_epochs=100)
    write_run(base / "imagenet_dogs" / "seed4", "gecc-table2", "gecc", "imagenet_dogs", 4, (0.62, 0.57, 0.40))
    (root / "extra_row").mkdir()
    return str(root), c10


def test_means_sample_stds_and_the_states_of_runs(gecc2):
    root, c10 = gecc2
    ct = collect(root)
    cell = ct.cell("gecc", "cifar10")
    for j, m in enumerate(("acc", "nmi", "ari")):
        vals = np.array([r[j] for r in c10])
        mean, std, n = cell.stats(m)
        assert n == 3 and mean == pytest.approx(vals.mean(), abs=1e-12)
        assert std == pytest.approx(np.sqrt(((vals - vals.mean()) ** 2).sum() / 2), abs=1e-12)  # ddof=1
        assert std != pytest.approx(vals.std(), abs=1e-6)  # not the population std
    assert ct.cell("gecc", "imagenet10").stats("acc") == (0.95, None, 1)  # one run: no std
    c100 = ct.cell("gecc", "cifar100")
    assert c100.runs == [] and c100.missing == [os.path.join(root, "gecc", "cifar100")]
    dogs = ct.cell("gecc", "imagenet_dogs")
    states = {os.path.basename(r.path): (r.state, r.why) for r in dogs.runs}
    assert states["seed1"] == ("unfinished", "epoch 37 of 1000")
    assert states["seed2"][0] == "flagged" and "num_epochs=100 (table expects 1000)" in states["seed2"][1]
    assert dogs.missing == [os.path.join(root, "gecc", "imagenet_dogs", "seed3")]
    mean, std, n = dogs.stats("acc")  # seeds 0 and 4 only; the 100-epoch run is not averaged
    assert n == 2 and mean == pytest.approx(0.61) and std == pytest.approx(np.std([0.60, 0.62], ddof=1))
    assert ct.ignored == [os.path.join(root, "extra_row")]
    assert collect(root, checkpoint="best").cell("gecc", "cifar10").stats("acc")[0] == pytest.approx(
        np.mean([r[0] for r in c10]) - 0.01)
    # --ignore=num_epochs: a table shortened on purpose is averaged
    assert collect(root, ignore=["num_epochs"]).cell("gecc", "imagenet_dogs").stats("acc")[2] == 3
    # --seeds=3: every cell should have seeds 0-2; ImageNet-10's single run is seed 0, seeds 1 and 2 missing
    ct3 = collect(root, seeds=3)
    assert [os.path.basename(p) for p in ct3.cell("gecc", "imagenet10").missing] == ["seed1", "seed2"]
    assert len(ct3.cell("gecc", "cifar100").missing) == 3


def test_other_backbone_duplicate_seed_and_metrics_of_an_earlier_end(tmp_path):
    root = tmp_path / "gecc-table3"
    base = root / "w_dsu" / "cifar10"
    write_run(base, "gecc-table3", "w_dsu", "cifar10", 0, (0.8, 0.7, 0.6))  # seed 0, plain folder
    write_run(base / "seed0", "gecc-table3", "w_dsu", "cifar10", 0, (0.8, 0.7, 0.6))  # the same seed again
    write_run(base / "seed1", "gecc-table3", "w_dsu", "cifar10", 1, (0.8, 0.7, 0.6), **{"model.backbone": "resnet18"})
    write_run(base / "seed2", "gecc-table3", "w_dsu", "cifar10", 2, (0.8, 0.7, 0.6), **{"gecc.reference": "cdsm"})
    write_run(base / "seed3", "gecc-table3", "w_dsu", "cifar10", 5, (0.8, 0.7, 0.6))  # seed 5 in folder seed3
    d = base / "seed4"
    write_run(d, "gecc-table3", "w_dsu", "cifar10", 4, (0.8, 0.7, 0.6))
    m = json.loads((d / "metrics.json").read_text())
    m["step"] //= 2  # evaluated when the run had half its epochs, then extended
    (d / "metrics.json").write_text(json.dumps(m))
    runs = {os.path.relpath(r.path, base): r for r in collect(str(root)).cell("w_dsu", "cifar10").runs}
    assert runs["."].state == "done"
    assert runs["seed0"].state == "flagged" and "already counted" in runs["seed0"].why
    assert runs["seed1"].state == "flagged" and "model.backbone='resnet18' (table expects 'resnet34')" in runs["seed1"].why
    assert runs["seed2"].state == "flagged" and "gecc.reference='cdsm' (table expects 'dsu')" in runs["seed2"].why
    assert runs["seed3"].state == "flagged" and "seed=5 in folder seed3" in runs["seed3"].why
    assert runs["seed4"].state == "unfinished" and "the run ends at step" in runs["seed4"].why


def test_markdown_csv_and_latex(gecc2):
    root, c10 = gecc2
    ct = collect(root)
    acc = np.array([r[0] for r in c10])
    mean, std = acc.mean(), acc.std(ddof=1)
    md = markdown(ct)
    assert "sample standard deviation (ddof=1)" in md
    assert f"{mean:.4f} ± {std:.4f} (n=3)<br>paper 0.8440, Δ \u2212{0.8440 - mean:.4f}" in md
    assert "| GeCC |" in md and "CIFAR-10 NMI | CIFAR-10 ACC | CIFAR-10 ARI" in md  # the paper's order
    assert "0.9500 (n=1)" in md
    assert "1 unfinished, 1 flagged, 1 missing" in md  # ImageNet-Dogs
    assert "- missing: " + os.path.join(root, "gecc", "cifar100") in md
    assert "- unfinished: " + os.path.join(root, "gecc", "imagenet_dogs", "seed1") + ": epoch 37 of 1000" in md
    rows = list(csv.DictReader(io.StringIO(csv_text(ct))))
    assert len(rows) == 1 and rows[0]["row"] == "gecc"
    r = rows[0]
    assert float(r["cifar10.acc.mean"]) == pytest.approx(mean) and float(r["cifar10.acc.std"]) == pytest.approx(std)
    assert r["cifar10.acc.n"] == "3" and float(r["cifar10.acc.paper"]) == 0.8440
    assert float(r["cifar10.acc.diff"]) == pytest.approx(mean - 0.8440)
    assert r["cifar100.acc.mean"] == "" and r["cifar100.missing"] == "1" and r["cifar100.acc.n"] == "0"
    assert (r["imagenet_dogs.unfinished"], r["imagenet_dogs.flagged"], r["imagenet_dogs.missing"]) == ("1", "1", "1")
    assert r["imagenet10.acc.std"] == ""
    tex = latex(ct)
    assert f"${mean:.4f} \\pm {std:.4f}$\\,{{\\scriptsize(3)}}" in tex
    assert "\\multicolumn{3}{c}{CIFAR-10}" in tex and "GeCC (paper) & 0.7559 & 0.8440 & 0.7108" in tex
    assert f"${mean - 0.8440:+.4f}$" in tex and "\\textit{1 missing}" in tex
    assert tex.count("\\begin{tabular}") == 1 and tex.rstrip().endswith("\\end{tabular}")


def test_command_writes_the_three_formats_and_refuses_a_wrong_folder(gecc2, tmp_path):
    root, _ = gecc2
    run = lambda *a: subprocess.run([sys.executable, "-m", "ccjax", "tables", *a], cwd=ROOT, env=env(),
                                    capture_output=True, text=True, timeout=120)
    p = run(root, "--format=csv")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("row,label,cifar10.nmi.mean")
    for ext in (".md", ".csv", ".tex"):
        assert os.path.getsize(os.path.join(root, "table" + ext)) > 0
    other = tmp_path / "not-a-table"
    other.mkdir()
    p = run(str(other))
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "not a table" in p.stderr


def _reproduce_lines(table: str) -> list[str]:
    out = subprocess.run(["bash", os.path.join(ROOT, "launch", "reproduce.sh"), table], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return [line for line in out.stdout.splitlines() if line.strip()]


def _value(text: str):
    return {"True": True, "False": False}.get(text, int(text) if re.fullmatch(r"-?\d+", text) else text)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_rows_are_what_reproduce_sh_runs(name):
    """Every (row, dataset) of the table is one command of `reproduce.sh TABLE`, with the row's config file
    and overrides, writing runs/<table>/<row>/<dataset>; and nothing else is."""
    t = TABLES[name]
    got = {}
    for line in _reproduce_lines(name):
        args = shlex.split(line)
        opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--"))
        _, tbl, row, ds = opts.pop("workdir").split("/")
        config = os.path.splitext(os.path.basename(opts.pop("config")))[0]
        assert tbl == name and opts.pop("config.seed") == "0"
        got[(row, ds)] = (config, {k[len("config."):]: _value(v) for k, v in opts.items()})
    want = {(r.key, ds): (r.config_stem(ds), dict(r.overrides)) for r in t.rows for ds in t.datasets}
    assert got == want


# ----------------------------------------------------------------------------- docs/results.md


def _section(text: str, heading_start: str) -> list[list[str]]:
    """The Markdown table rows (cells stripped) of the first table after the heading starting so."""
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("#") and line.lstrip("# ").startswith(heading_start))
    rows = []
    for line in lines[i + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            if not set(line.strip()) <= set("|-: "):  # not the separator line
                rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows


def _numbers(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d\.\d+", cell)]


def _docs() -> str:
    with open(os.path.join(ROOT, "docs", "results.md"), encoding="utf-8") as f:
        return f.read()


def _name_to_set(name: str) -> str:
    """A dataset as docs/results.md names it (CIFAR-100 with or without '(20)') -> its ccjax name."""
    return {v.replace(" (20)", ""): k for k, v in DATASET_NAMES.items()}[name.replace(" (20)", "")]


def test_docs_results_md_holds_the_papers_numbers():
    """Every paper number docs/results.md shows for GeCC Tables 2-3 and MFAVBs-CC Tables 2, 4 and 7 is the
    one in ccjax/results/paper_numbers.py, and every number there is shown."""
    docs = _docs()
    seen = 0
    # GeCC Table 2: dataset | "NMI / ACC / ARI" | ...
    t = TABLES["gecc-table2"]
    for cells in _section(docs, "GeCC (Chen et al., AAAI 2025), Table 2")[1:]:
        ds = _name_to_set(cells[0])
        assert _numbers(cells[1]) == [t.row("gecc").paper[ds][m] for m in t.metrics]
        seen += 1
    assert seen == 4
    # GeCC Table 3: row | override | four datasets "NMI / ACC / ARI" | ccjax
    t = TABLES["gecc-table3"]
    labels = {r.label: r for r in t.rows}
    body = _section(docs, "GeCC, Table 3")[1:]
    assert [c[0] for c in body] == [r.label for r in t.rows]
    for cells in body:
        row = labels[cells[0]]
        for ds, cell in zip(t.datasets, cells[2:6]):
            assert _numbers(cell) == [row.paper[ds][m] for m in t.metrics], (row.key, ds)
    # MFAVBs-CC Table 2: dataset | "ACC / NMI / ARI"
    t = TABLES["mfavbs-table2"]
    body = _section(docs, "MFAVBs-CC (Wang et al.), Table 2")[1:]
    assert [_name_to_set(c[0]) for c in body] == list(t.datasets)
    for cells in body:
        assert _numbers(cells[1]) == [t.row("mfavbs").paper[_name_to_set(cells[0])][m] for m in t.metrics]
    # MFAVBs-CC Table 4 (ACC, NMI, ARI blocks) and Table 7: row | config | one number per dataset
    for name, heading in (("mfavbs-table4", "MFAVBs-CC, Table 4"), ("mfavbs-table7", "MFAVBs-CC, Table 7")):
        t = TABLES[name]
        for metric in t.metrics:
            head = heading if len(t.metrics) == 1 else f"{heading}: ablations, {metric.upper()}"
            rows = _section(docs, head)
            sets = [_name_to_set(c) for c in rows[0][2:2 + len(t.datasets)]]
            assert sets == list(t.datasets), head
            assert [c[0] for c in rows[1:]] == [r.label for r in t.rows], head
            for cells, row in zip(rows[1:], t.rows):
                assert [float(c) for c in cells[2:2 + len(sets)]] == [row.paper[ds][metric] for ds in sets], (head, row.key)


def test_cost_tables_run_the_benchmark_for_vtcc_and_mfavbs():
    from ccjax.results.paper_numbers import MFAVBS_TABLE6

    for name, sets in (("mfavbs-table6", MFAVBS_TABLE6["datasets"]), ("mfavbs-table5", ("cifar10",))):
        got = set()
        for line in _reproduce_lines(name):
            bench = shlex.split(line.split("&&")[1])
            assert bench[:4] == ["python", "-m", "ccjax", "bench"]
            opts = dict(a[2:].split("=", 1) for a in bench[4:])
            got.add((opts["config"], opts["json"]))
        assert got == {(f"configs/{m}_{ds}.py", f"runs/{name}/{m}/{ds}.json") for ds in sets for m in ("vtcc", "mfavbs")}
