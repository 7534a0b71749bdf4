"""The small-scale claims' table (`python -m ccjax tables runs/claims-small`): reads the runs of
ccjax/results/small_plan.py (a run counts when finished and its config is the plan's, ccjax/results/collect.py's
check), the measurements of small_measure.py, and gives each claim of small_claims.py its verdict
(ccjax/results/verdict.py). Cells are mean ± sample std (ddof=1) over n seeds.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ccjax.results.collect import _expected, default_configs_dir, read_run
from ccjax.results.small_claims import CLAIMS, early_and_epoch95, eval_curve
from ccjax.results.small_measure import CLAIMS_FILE, KMEANS_SETS
from ccjax.results.small_plan import CHECK_ROWS, CHECK_SETS, FIRST_SEEDS, ROW_LABELS, SEEDS, cells, plan, row_spec
from ccjax.results.verdict import combine, compare, welch_interval
from ccjax.run.rundir import read_json_or_none

TABLE_NAME = "claims-small"


@dataclasses.dataclass
class Collected:
    root: str
    seeds: int
    values: dict  # (row, dataset) -> {seed: {metric: value}}
    problems: list  # 'state: path: why' of every run not counted


def _run_values(path: str, run, configs_dir: str) -> tuple[dict | None, str]:
    """({metric: value} of a counted run, '') or (None, why it is not counted)."""
    # The data paths hold the root the run was trained under (relative, as reproduce.sh passes it), which need
    # not be the root the table reads from (an absolute path): compared by the folder's name instead.
    located = ("dataset.name", "dataset.data_dir")
    overrides = tuple((k, v) for k, v in run.overrides if k != "seed" and k not in located)
    expected = _expected(configs_dir, run.config, overrides)
    rec = read_run(path, run.seed, expected, "last", ignore=located)
    if rec.state != "done":
        return None, f"{rec.state}: {path}: {rec.why}"
    want = str(dict(run.overrides).get("dataset.name", expected.get("dataset.name")))
    got = ((read_json_or_none(os.path.join(path, "config.json")) or {}).get("dataset") or {}).get("name")
    if not isinstance(got, str) or os.path.basename(got) != os.path.basename(want):
        return None, f"flagged: {path}: dataset.name={got!r} (table expects a folder named {os.path.basename(want)})"
    values = dict(rec.metrics)
    measured = read_json_or_none(os.path.join(path, CLAIMS_FILE))
    if measured:
        values.update({k: measured[k] for k in ("nuisance_nmi", "cam_inside", "cam_area", "cam_ratio")
                       if measured.get(k) is not None})
    if run.row in ("mfavbs", "vtcc"):
        values.update(early_and_epoch95(eval_curve(path), rec.metrics, row_spec(run.row)[2]))
    return values, ""


def collect_small(root: str, seeds: int = SEEDS, configs_dir: str | None = None) -> Collected:
    configs_dir = configs_dir or default_configs_dir()
    values: dict = {cell: {} for cell in cells()}
    problems, later = [], []  # later: missing runs past FIRST_SEEDS, a problem only in an open cell
    for run in plan(root, seeds):
        path = run.workdir(root)
        if not os.path.isdir(path):
            (later if run.seed >= FIRST_SEEDS else problems).append((run, f"missing: {path}"))
            continue
        v, why = _run_values(path, run, configs_dir)
        if v is None:
            problems.append((run, why))
        else:
            values[(run.row, run.dataset)][run.seed] = v
    for ds in KMEANS_SETS:
        values[("kmeans", ds)] = {}
        for s in range(seeds):
            m = read_json_or_none(os.path.join(root, "kmeans", ds, f"seed{s}", "metrics.json"))
            if m is None:
                problems.append((None, f"missing: {os.path.join(root, 'kmeans', ds, f'seed{s}')} (python "
                                       "tools/claims_small.py measure)"))
            else:
                values[("kmeans", ds)][s] = m
    for row in ("mfavbs", "vtcc"):  # the masked-noise drop, paired by seed
        clean, masked = values[(row, "digits")], values[(row, "digits_masked")]
        for s in set(clean) & set(masked):
            clean[s]["acc_drop"] = clean[s]["acc"] - masked[s]["acc"]
    col = Collected(root, seeds, values, [why for _, why in problems])
    still_open = open_cells(col)
    col.problems += [why for run, why in later if (run.row, run.dataset) in still_open]
    return col


def open_cells(col: Collected) -> set:
    """The (row, dataset) cells whose spreads overlap in some comparison: both sides of every inconclusive claim
    comparison (with the masked twin of an ACC-drop one) and of every check that changed nothing detectable. The
    seeds' rule (small_plan.FIRST_SEEDS) runs more seeds for these only; k-means is measured for every seed."""
    out = set()
    for _, rows, _ in verdicts(col):
        for c, _, _, r in rows:
            if r.verdict == "inconclusive":
                out |= {(c.a, c.dataset), (c.b, c.dataset)}
                if "acc_drop" in (c.metric_a, c.metric_b):
                    out |= {(c.a, c.dataset + "_masked"), (c.b, c.dataset + "_masked")}
    for r in check_effects(col):
        if not r["changed"]:
            out |= {(r["row"], r["dataset"]), ("ours", r["dataset"])}
    return {cell for cell in out if cell[0] != "kmeans"}


def per_seed(col: Collected, row: str, dataset: str, metric: str) -> list[float]:
    return [v[metric] for _, v in sorted(col.values.get((row, dataset), {}).items()) if metric in v]


def _cell(vals: list[float]) -> str:
    if not vals:
        return "no runs"
    mean = float(np.mean(vals))
    return f"{mean:.3f}" + (f" ± {np.std(vals, ddof=1):.3f}" if len(vals) > 1 else "") + f" (n={len(vals)})"


def verdicts(col: Collected) -> list[tuple]:
    """[(claim, [(comparison, A values, B values, Comparison result)], verdict text)] for every claim."""
    out = []
    for claim in CLAIMS:
        rows = []
        for c in claim.comparisons:
            a, b = per_seed(col, c.a, c.dataset, c.metric_a), per_seed(col, c.b, c.dataset, c.metric_b)
            rows.append((c, a, b, compare(a, b, c.direction, c.margin)))
        out.append((claim, rows, combine([r[3] for r in rows])))
    return out


CHECK_METRICS = ("nmi", "nuisance_nmi", "cam_inside")


def check_effects(col: Collected) -> list[dict]:
    """What each check switch (small_plan.CHECK_ROWS) changed against GeCC as is, per dataset and figure:
    {'row', 'dataset', 'metric', 'a', 'b', 'diff', 'low', 'high', 'p', 'changed'}. 'changed' is None below 2 seeds
    a side, else whether Welch's 95% interval of mean(switch) - mean(GeCC) excludes 0 (the claims' rule)."""
    out = []
    for ds in CHECK_SETS:
        for row in CHECK_ROWS:
            for metric in CHECK_METRICS:
                a, b = per_seed(col, row, ds, metric), per_seed(col, "ours", ds, metric)
                rec = {"row": row, "dataset": ds, "metric": metric, "a": a, "b": b, "diff": None, "low": None,
                       "high": None, "p": None, "changed": None}
                if min(len(a), len(b)) >= 2:
                    d, low, high, p = welch_interval(a, b)
                    rec.update(diff=d, low=low, high=high, p=p, changed=bool(low > 0 or high < 0))
                out.append(rec)
    return out


def _check_lines(col: Collected) -> list[str]:
    lines = ["### Checks in ccjax", "",
             "Where a GeCC claim does not hold, the causes looked for in ccjax (issue 32), each one config switch "
             "on GeCC (docs/gecc.md), against GeCC as is on the same set and seeds: d = mean(switch) - mean(GeCC), "
             "Welch's 95% interval; 'changed' when it excludes 0.", "",
             "| switch | dataset | figure | switch | GeCC as is | d, 95% CI, p | effect |", "|---|---|---|---|---|---|---|"]
    for r in check_effects(col):
        if r["changed"] is None:
            stats, effect = "", f"inconclusive at {min(len(r['a']), len(r['b']))} seeds"
        else:
            stats = f"{r['diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}], p = {r['p']:.3g}"
            effect = "changed" if r["changed"] else "no change detected"
        lines.append(f"| {ROW_LABELS[r['row']]} | {r['dataset']} | {r['metric']} | {_cell(r['a'])} | {_cell(r['b'])} "
                     f"| {stats} | {effect} |")
    return lines + [""]


_SIGN = {"greater": ">", "less": "<", "not_less": ">= (margin)"}


def markdown(col: Collected) -> str:
    lines = [f"## Claims at small scale ({col.root})", "",
             "Rule (ccjax/results/verdict.py): Welch's 95% interval of mean(A) - mean(B) over the seeds; holds when it "
             "lies on the claimed side of 0 (of -margin for 'comparable'), does not hold when it lies on the other "
             "side, else inconclusive at n seeds. A claim of several comparisons holds when all hold.", ""]
    for claim, rows, verdict in verdicts(col):
        lines += [f"### {claim.key}: **{verdict}**", "", f"> \"{claim.words}\" ({claim.source})", "",
                  f"Measured: {claim.reading}.", "",
                  "| dataset | A | B | claim | A | B | verdict |", "|---|---|---|---|---|---|---|"]
        for c, a, b, r in rows:
            sign = _SIGN[c.direction].replace("(margin)", f"B - {c.margin}")
            lines.append(f"| {c.dataset} | {ROW_LABELS[c.a]} {c.metric_a} | {ROW_LABELS[c.b]} {c.metric_b} "
                         f"| A {sign} B "
                         f"| {_cell(a)} | {_cell(b)} | {r.text()} |")
        lines.append("")
    lines += _check_lines(col)
    lines += ["### Every cell", "", "| row | dataset | NMI | ACC | nuisance NMI | CAM mass inside | object area |",
              "|---|---|---|---|---|---|---|"]
    for (row, ds) in col.values:
        lines.append(f"| {ROW_LABELS[row]} | {ds} | " + " | ".join(
            _cell(per_seed(col, row, ds, m)) if per_seed(col, row, ds, m) else "" for m in
            ("nmi", "acc", "nuisance_nmi", "cam_inside", "cam_area")) + " |")
    lines += ["", "Not counted:" if col.problems else "Every planned run is finished and matches the plan's config."]
    lines += [f"- {p}" for p in col.problems]
    return "\n".join(lines) + "\n"
