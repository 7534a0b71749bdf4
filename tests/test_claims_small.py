"""`launch/reproduce.sh small` and `python -m ccjax tables runs/claims-small` (ccjax/results/small_*.py) on run
folders written as `ccjax train` leaves them, with known figures: the plan's commands, finished runs skipped, a run
of another config not counted, each claim's comparisons and verdicts, the curve figures of the MFAVBs-CC claim.
No model is trained."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from ccjax.results.collect import _expected, default_configs_dir
from ccjax.results.small_claims import CLAIMS, early_and_epoch95
from ccjax.results.small_collect import collect_small, markdown, verdicts
from ccjax.results.small_plan import FIRST_SEEDS, SHIFT_SETS, plan
from tests.test_cli import ROOT
from tests.test_cli import env as cli_env


def env() -> dict:
    """test_cli's environment, with this interpreter's `python` first on PATH: reproduce.sh calls `python`, which
    must be the one that has ccjax's stack (CI runs pytest through a virtual environment it does not activate)."""
    e = cli_env()
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    return e

SEEDS = 5
NMI = {"ours": 0.90, "w_aug": 0.85, "w_dsu": 0.95, "cc": 0.80, "wo_w": 0.89, "w_wc": 0.70, "w_wz": 0.71,
       "mfavbs": 0.82, "vtcc": 0.80,
       "ours_first": 0.90, "ours_t1": 0.95, "ours_clean": 0.905}  # + 0.01 * seed


def write_fake_run(root, run, nmi, **changes):
    """config.json (the plan's config file with the run's overrides + `changes`), metrics.json at the last step."""
    cfg = dict(_expected(default_configs_dir(), run.config, tuple((k, v) for k, v in run.overrides if k != "seed")))
    cfg.update({"seed": run.seed, **changes})
    nested: dict = {}
    for k, v in cfg.items():
        node = nested
        *parents, leaf = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    path = run.workdir(root)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(nested, f)
    n = 1797
    step = cfg["num_epochs"] * (n // cfg["batch_size"])
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump({"acc": nmi + 0.05, "nmi": nmi, "ari": nmi - 0.1, "num_examples": n, "step": step}, f)
    return path, cfg


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    """Every planned run finished except seed 4 of GeCC on ds_frame; w W_z's seed 0 run on the digits with other
    epochs (not counted); CAM mass and nuisance NMI of the domain-shift runs; k-means on every set."""
    base = tmp_path_factory.mktemp("claims")
    root = str(base / "runs" / "claims-small")
    for run in plan(root, SEEDS):
        if (run.row, run.dataset, run.seed) == ("ours", "ds_frame", 4):
            continue
        masked = run.dataset == "digits_masked"
        nmi = NMI[run.row] + 0.01 * run.seed - (0.02 if masked and run.row == "mfavbs" else 0.0) \
            - (0.10 if masked and run.row == "vtcc" else 0.0)
        changes = {"num_epochs": 7} if (run.row, run.dataset, run.seed) == ("w_wz", "digits", 0) else {}
        path, cfg = write_fake_run(root, run, nmi, **changes)
        if run.dataset in SHIFT_SETS:
            inside = (0.6 if run.row == "ours" else 0.3) + 0.01 * run.seed
            with open(os.path.join(path, "claims.json"), "w") as f:
                json.dump({"step": 0, "nuisance_nmi": 0.5 - 0.01 * run.seed, "cam_inside": inside, "cam_area": 0.3,
                           "cam_ratio": inside / 0.3}, f)
        if run.row in ("mfavbs", "vtcc"):  # ACC reaches 95% of its final value at epoch 10 (MFAVBs-CC), 30 (VTCC)
            reach = 10 if run.row == "mfavbs" else 30
            with open(os.path.join(path, "history.jsonl"), "w") as f:
                for e in range(2, cfg["num_epochs"], 2):
                    acc = (nmi + 0.05) * (0.96 if e >= reach else 0.5)
                    f.write(json.dumps({"epoch": e, "loss": 1.0, "eval_acc": acc, "eval_nmi": nmi - 0.005}) + "\n")
    for ds in ("digits",) + SHIFT_SETS:
        for s in range(SEEDS):
            os.makedirs(os.path.join(root, "kmeans", ds, f"seed{s}"))
            with open(os.path.join(root, "kmeans", ds, f"seed{s}", "metrics.json"), "w") as f:
                json.dump({"acc": 0.5, "nmi": 0.5 + 0.01 * s, "ari": 0.3}, f)
    return str(base), root


def test_verdicts_of_the_claims_on_known_runs(fake_root):
    """Clear gaps hold, a reversed one does not hold, overlapping spreads and missing seeds are inconclusive,
    and the flagged run and the missing one are listed, never averaged. Catches a collector that averages runs
    of another config, or reads the wrong figure for a claim."""
    _, root = fake_root
    col = collect_small(root, SEEDS)
    got = {claim.key: verdict for claim, _, verdict in verdicts(col)}
    assert got["gecc_t3_aug"] == "holds at 5 seeds"  # 0.90 vs 0.85
    assert got["gecc_t3_guidance"] == "does not hold at 4 seeds"  # ours 0.90 < w DSU 0.95 (ds_frame: 4 seeds)
    assert got["gecc_t3_no_weights"] == "inconclusive at 5 seeds"  # 0.90 vs 0.89, spreads 0.016
    assert got["gecc_t3_one_weight"] == "holds at 4 seeds"  # w W_z on the digits: seed 0 not counted
    assert got["gecc_fig1_objects"] == "holds at 4 seeds"  # ds_frame: seed 4 missing
    assert got["gecc_abstract_domain"] == "inconclusive at 4 seeds"  # the same nuisance NMI for GeCC and CC
    assert got["floor_kmeans"] == "holds at 5 seeds"  # CC 0.80 vs k-means 0.50
    assert got["mfavbs_cost_60"] == "holds at 5 seeds"  # early NMI = final - 0.005; epoch 10 vs 30
    assert got["mfavbs_t7_masked"] == "holds at 5 seeds"  # ACC drop 0.02 vs 0.10
    assert set(got) == {c.key for c in CLAIMS}
    assert any("flagged" in p and "w_wz/digits/seed0" in p and "num_epochs" in p for p in col.problems)
    assert any(p.startswith("missing") and "ours/ds_frame/seed4" in p for p in col.problems)
    assert sum("w_wz/digits" in p for p in col.problems) == 1
    text = markdown(col)
    assert "### gecc_t3_aug: **holds at 5 seeds**" in text and "marginally outperforms random augmentation" in text


def test_checks_report_what_each_switch_changed_against_gecc(fake_root):
    """The check rows against GeCC as is on ds_background: a clear gain and a clear loss are 'changed', the same
    figures and a gap inside the seed spread are not (the claims' Welch rule). Catches checks compared with the
    wrong row (CC), a one-sided rule, or a missing row."""
    from ccjax.results.small_collect import check_effects

    _, root = fake_root
    col = collect_small(root, SEEDS)
    nmi = {r["row"]: r for r in check_effects(col) if r["metric"] == "nmi"}
    assert set(nmi) == {"ours_first", "ours_t1", "ours_clean"}
    assert nmi["ours_t1"]["changed"] and abs(nmi["ours_t1"]["diff"] - 0.05) < 1e-9
    assert nmi["ours_first"]["changed"] is False and nmi["ours_first"]["diff"] == 0.0
    assert nmi["ours_clean"]["changed"] is False  # 0.005 inside a spread of 0.016
    cam = {r["row"]: r for r in check_effects(col) if r["metric"] == "cam_inside"}
    assert abs(cam["ours_first"]["diff"] + 0.30) < 1e-9  # the fixture's CAM mass: 0.3 off GeCC's 0.6
    assert "### Checks in ccjax" in markdown(col) and "| GeCC, t = 1 from the start | ds_background | nmi |" in markdown(col)


# The fixture's cells whose spreads overlap (by construction): GeCC and CC's nuisance NMI on every ds_* (equal),
# GeCC vs w/o W (0.90 vs 0.89), and every check with a figure it leaves unchanged (with GeCC, their reference).
OPEN = ({(r, d) for r in ("ours", "cc") for d in SHIFT_SETS} | {("ours", "digits"), ("wo_w", "digits"),
        ("wo_w", "ds_background")} | {(r, "ds_background") for r in ("ours_first", "ours_t1", "ours_clean")})


def test_the_seeds_rule_adds_seeds_only_where_spreads_overlap(fake_root):
    """small_collect.open_cells: both sides of every inconclusive comparison and of every check that changed
    nothing detectable; never a cell whose every comparison is clear, never k-means. A closed cell's missing
    later seeds are not listed as problems, an open cell's are."""
    from ccjax.results.small_collect import open_cells

    _, root = fake_root
    col = collect_small(root, SEEDS)
    assert open_cells(col) == OPEN
    assert ("w_aug", "digits") not in open_cells(col)  # holds clearly at 5 seeds


def test_early_nmi_and_epoch_to_95_percent():
    """NMI at the last evaluation at or before 60% of the epochs; the first epoch reaching 95% of the final ACC,
    the final epoch counting (hand case over 40 epochs: 24 is the last evaluation <= 24)."""
    curve = {8: {"acc": 0.5, "nmi": 0.4}, 16: {"acc": 0.9, "nmi": 0.6}, 24: {"acc": 0.96, "nmi": 0.7},
             32: {"acc": 0.99, "nmi": 0.8}}
    assert early_and_epoch95(curve, {"acc": 1.0, "nmi": 0.85}, 40) == {"nmi_early": 0.7, "epoch95": 24.0}
    assert early_and_epoch95({}, {"acc": 1.0, "nmi": 0.85}, 40) == {"epoch95": 40.0}


def test_reproduce_small_lists_the_plan_and_skips_finished_runs(fake_root):
    """`reproduce.sh small` (no --run) prints the generator, one `ccjax train` command per unfinished run of the plan
    with the plan's overrides (the flagged run is unfinished for the plan's epochs: a metrics.json of step 7 x 7),
    '# done' for the finished ones, then the measurement and the table commands."""
    base, root = fake_root
    for d in ("tools", "configs"):  # reproduce.sh runs from a checkout's root
        if not os.path.exists(os.path.join(base, d)):
            os.symlink(os.path.join(ROOT, d), os.path.join(base, d))
    out = subprocess.run(["bash", os.path.join(ROOT, "launch", "reproduce.sh"), "small", f"--seeds={SEEDS}"],
                         capture_output=True, text=True, cwd=base, env=env(), timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "python tools/domain_shift_family.py --out=runs/claims-small/data"
    assert lines[-2:] == [f"python tools/claims_small.py measure --seeds={SEEDS}",
                          f"python -m ccjax tables runs/claims-small --seeds={SEEDS}"]
    todo = [shlex.split(x) for x in lines[1:-2] if not x.startswith("# done: ")]
    want = {r.workdir("runs/claims-small"): r for r in plan("runs/claims-small", SEEDS)
            if r.seed < FIRST_SEEDS or (r.row, r.dataset) in OPEN}  # the seeds' rule
    assert len(want) < len(plan("runs/claims-small", SEEDS))
    assert len(lines) - 3 == len(want)
    assert {dict(a.split("=", 1) for a in c if a.startswith("--workdir"))["--workdir"] for c in todo} == {
        "runs/claims-small/ours/ds_frame/seed4", "runs/claims-small/w_wz/digits/seed0"}
    for c in todo:
        opts = dict(a[2:].split("=", 1) for a in c[4:])  # python -m ccjax train --...
        run = want[opts.pop("workdir")]
        assert opts.pop("config") == f"configs/{run.config}.py" and opts.pop("config.progress_bar") == "False"
        assert opts == {f"config.{k}": str(v) for k, v in run.overrides}


def test_tables_command_writes_the_claims_table(fake_root, tmp_path):
    _, root = fake_root
    out = str(tmp_path / "claims")
    p = subprocess.run([sys.executable, "-m", "ccjax", "tables", root, f"--out={out}"], capture_output=True,
                       text=True, cwd=ROOT, env=env(), timeout=120)
    assert p.returncode == 0, p.stderr
    with open(out + ".md") as f:
        text = f.read()
    assert text == p.stdout and "## Claims at small scale" in text and "Not counted:" in text
    assert os.path.getsize(out + "_cam_mass.png") > 10_000  # the CAM-mass figure beside the table


def test_cam_mass_figure_has_a_bar_per_row_and_the_object_area(fake_root, tmp_path):
    """Per domain-shift set, GeCC vs CC vs w DSU (and the check rows on ds_background) with each run's CAM mass
    and the digit's share of the image: the fixture's values, every row labelled with its n."""
    from ccjax.report.figures import figure_texts
    from ccjax.results.small_figure import cam_mass_figure, panels

    _, root = fake_root
    col = collect_small(root, SEEDS)
    got = {ds: (dict(bars), area) for ds, bars, area in panels(col)}
    assert set(got) == set(SHIFT_SETS)
    bars, area = got["ds_background"]
    assert bars["GeCC"] == [0.6 + 0.01 * s for s in range(SEEDS)] and bars["CC"][0] == 0.3 and abs(area - 0.3) < 1e-12
    assert "GeCC: t = 1" in bars and "GeCC: t = 1" not in got["ds_frame"][0]
    assert len(got["ds_frame"][0]["GeCC"]) == 4  # seed 4 missing
    fig_path = str(tmp_path / "cam.png")
    cam_mass_figure(col, fig_path)
    assert os.path.getsize(fig_path) > 10_000


def test_reproduce_small_run_with_jobs_runs_the_unfinished_and_reports_a_failure(fake_root, tmp_path):
    """`reproduce.sh small --run --jobs=2` starts only the unfinished runs (in the background, each with its log), and
    a failed run makes the command end non-zero naming the logs (a rerun resumes it). `python` is a stand-in
    that records `-m ccjax train` calls (the one of ds_frame fails) and the generator/measurement, and runs the rest."""
    base, root = fake_root
    for d in ("tools", "configs"):
        if not os.path.exists(os.path.join(base, d)):
            os.symlink(os.path.join(ROOT, d), os.path.join(base, d))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    (bin_dir / "python").write_text(
        "#!/bin/bash\n"
        "if [[ $1 == -m && $2 == ccjax && $3 == train ]] || [[ $1 == tools/domain_shift_family.py ]] || "
        "[[ $2 == measure ]]; then\n"
        f"  echo \"$*\" >> {calls}; [[ $* == *ds_frame* ]] && exit 3; exit 0\nfi\n"
        f"exec {sys.executable} \"$@\"\n")
    (bin_dir / "python").chmod(0o755)
    e = env()
    e["PATH"] = f"{bin_dir}:{e['PATH']}"
    p = subprocess.run(["bash", os.path.join(ROOT, "launch", "reproduce.sh"), "small", "--run", f"--seeds={SEEDS}",
                        "--jobs=2"], capture_output=True, text=True, cwd=base, env=e, timeout=300)
    assert p.returncode == 1 and "some runs failed" in p.stderr, p.stderr
    made = calls.read_text().splitlines()
    trained = [x.split("--workdir=")[1].split()[0] for x in made if x.startswith("-m ccjax train")]
    assert set(trained) == {"runs/claims-small/ours/ds_frame/seed4", "runs/claims-small/w_wz/digits/seed0"}
    # Two passes (the seeds' rule): the first FIRST_SEEDS seeds, measured, then the later seeds of the open cells
    # (the stand-in never finishes a run, so the first pass's run is listed again in the second).
    first_measure = made.index(f"tools/claims_small.py measure --seeds={FIRST_SEEDS}")
    assert [x for x in made[:first_measure] if x.startswith("-m")] == [
        x for x in made if "w_wz/digits/seed0" in x][:1]
    assert any("ours/ds_frame/seed4" in x for x in made[first_measure:])
    logs = os.listdir(os.path.join(root, "logs"))
    assert "ours_ds_frame_seed4.log.failed" in logs and "w_wz_digits_seed0.log" in logs
    assert "w_wz_digits_seed0.log.failed" not in logs


def test_docs_quote_every_claim_and_the_command():
    """docs/results.md, "Claims at small scale", gives the exact command and lists every claim of
    ccjax/results/small_claims.py with its paper's words (shortened with [...] at most). Catches a claim added or
    reworded in one place only."""
    with open(os.path.join(ROOT, "docs", "results.md")) as f:
        text = f.read()
    section = text[text.index("## Claims at small scale"):]
    assert "launch/reproduce.sh small --run --seeds=5 --jobs=2" in section
    for claim in CLAIMS:
        row = next(line for line in section.splitlines() if line.startswith(f"| {claim.key} |"))
        quoted = row.split('"')[1]  # the docs may shorten the words with [...], never change them
        assert all(part in claim.words for part in quoted.split(" [...] ")), claim.key
