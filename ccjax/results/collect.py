"""Collect the runs `launch/reproduce.sh TABLE --run` wrote into one table: runs/<table>/<row>/<dataset>[/seed<k>].

For each (row, dataset) cell every run folder is classified:
- done: its metrics.json holds the final checkpoint's ACC/NMI/ARI (the step it was evaluated at is the
  config's last: num_epochs x steps per epoch);
- unfinished: no metrics.json yet (the epoch reached is read from history.jsonl), or metrics of an
  earlier end (a run since extended);
- flagged: its config.json differs from what the table expects (the row's config file with the row's
  overrides) in a field that changes what is computed (num_epochs included), its seed is already counted,
  or it has no labels. Flagged runs are listed with the differing fields and never averaged.
A cell's expected seeds are 0..seeds-1 (`seeds`, else up to the highest seed folder found); those
without a run folder are missing.

The mean and the SAMPLE standard deviation (ddof=1; none for a single run) are over the done runs.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import os
import re
from typing import Iterable

import numpy as np

from ccjax.errors import UserError
from ccjax.results.paper_numbers import TABLES, PaperTable, Row
from ccjax.run.rundir import (BOOKKEEPING_FIELDS, CONFIG_FILE, HISTORY, METRICS, flatten, read_json_or_none,
                             with_defaults)

STD_DDOF = 1  # sample standard deviation over seeds
_SEED_DIR = re.compile(r"^seed(\d+)$")
# Bookkeeping fields that may differ between a run and the table's config; num_epochs is one for
# resuming, but a table run with other epochs is not the paper's run.
_IGNORED = tuple(f for f in BOOKKEEPING_FIELDS if f != "num_epochs") + ("seed",)


@dataclasses.dataclass
class RunRecord:
    """One run folder of a cell. state: done | unfinished | flagged; why: what is unfinished or differs."""

    path: str
    seed: int | None
    state: str
    metrics: dict = dataclasses.field(default_factory=dict)
    why: str = ""


@dataclasses.dataclass
class Cell:
    """The runs of one (row, dataset) of a table, and the seeds expected there that have no folder."""

    row: Row
    dataset: str
    runs: list[RunRecord]
    missing: list[str]  # folders expected and absent

    @property
    def done(self) -> list[RunRecord]:
        return [r for r in self.runs if r.state == "done"]

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.runs)

    def stats(self, metric: str) -> tuple[float | None, float | None, int]:
        """(mean, sample std (ddof=1; None below 2 runs), n) of `metric` over the done runs."""
        values = np.array([r.metrics[metric] for r in self.done], np.float64)
        n = len(values)
        if n == 0:
            return None, None, 0
        return float(values.mean()), (float(values.std(ddof=STD_DDOF)) if n > 1 else None), n

    def paper(self, metric: str) -> float | None:
        return self.row.paper.get(self.dataset, {}).get(metric)


@dataclasses.dataclass
class CollectedTable:
    table: PaperTable
    root: str
    checkpoint: str  # last | best (best by training loss)
    cells: dict  # (row key, dataset) -> Cell
    ignored: list[str]  # folders under root that are no row/dataset of the table

    def cell(self, row: str, dataset: str) -> Cell:
        return self.cells[(row, dataset)]


def table_for(root: str, name: str | None = None) -> PaperTable:
    """The table named `name`, else the one the folder `root` is named after (runs/<table>)."""
    name = name or os.path.basename(os.path.normpath(root))
    if name not in TABLES:
        raise UserError(f"{name!r} is not a table of launch/reproduce.sh ({', '.join(TABLES)}); pass the "
                        "folder runs/<table> it wrote, or --table=<name>")
    return TABLES[name]


def default_configs_dir() -> str:
    """The configs/ folder of this ccjax checkout (beside the package), else ./configs."""
    beside = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
    return beside if os.path.isdir(beside) else os.path.abspath("configs")


@functools.lru_cache(maxsize=None)
def _expected(configs_dir: str, stem: str, overrides: tuple) -> dict:
    """The flattened JSON config of configs/<stem>.py with `overrides` ((field, value) pairs) applied."""
    path = os.path.join(configs_dir, stem + ".py")
    if not os.path.isfile(path):
        raise UserError(f"{path} does not exist; pass --configs=<the ccjax configs folder>")
    spec = importlib.util.spec_from_file_location(f"_table_config_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    for field, value in overrides:
        *parents, leaf = field.split(".")
        node = config
        for p in parents:
            node = node[p] if p in node else None
            if node is None:
                break
        if node is not None:  # a field today's config lacks (e.g. not yet added) stays out of the comparison
            node[leaf] = value
    return flatten(json.loads(config.to_json_best_effort()))


def config_mismatch(stored: dict, expected: dict, ignore: Iterable[str] = ()) -> list[str]:
    """'field=run value (table expects x)' for each field both configs have and that differs.

    Fields only one side has (added or removed since the run) and bookkeeping fields are left out.
    """
    ignored = _IGNORED + tuple(ignore)
    run = flatten(with_defaults(stored))
    out = []
    for k in sorted(set(run) & set(expected)):
        if any(k == f or (f.endswith(".") and k.startswith(f)) for f in ignored):
            continue
        if run[k] != expected[k]:
            out.append(f"{k}={run[k]!r} (table expects {expected[k]!r})")
    return out



def _last_epoch(run_dir: str) -> int | None:
    """The last epoch history.jsonl records (None without one)."""
    try:
        with open(os.path.join(run_dir, HISTORY)) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["epoch"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line
    return None


def read_run(run_dir: str, folder_seed: int | None, expected: dict, checkpoint: str,
             ignore: Iterable[str] = ()) -> RunRecord:
    """Classifies one run folder (see the module docstring)."""
    stored = read_json_or_none(os.path.join(run_dir, CONFIG_FILE))
    if stored is None:
        return RunRecord(run_dir, folder_seed, "unfinished", why=f"no readable {CONFIG_FILE} (not started?)")
    seed = int(stored.get("seed", 0))
    epochs = int(stored.get("num_epochs", 0))
    diffs = config_mismatch(stored, expected, ignore)
    if folder_seed is not None and seed != folder_seed:
        diffs.insert(0, f"seed={seed} in folder seed{folder_seed}")
    if diffs:
        return RunRecord(run_dir, seed, "flagged", why="; ".join(diffs))
    metrics = read_json_or_none(os.path.join(run_dir, METRICS))
    if metrics is None:
        epoch = _last_epoch(run_dir)
        return RunRecord(run_dir, seed, "unfinished",
                         why=f"epoch {epoch} of {epochs}" if epoch is not None else f"no {METRICS} yet")
    n, batch = int(metrics.get("num_examples", 0)), int(stored.get("batch_size", 1))
    final = epochs * (n // max(batch, 1))
    if n and int(metrics.get("step", final)) < final:
        return RunRecord(run_dir, seed, "unfinished",
                         why=f"{METRICS} is of step {metrics['step']}, the run ends at step {final}")
    if checkpoint == "best":
        metrics = metrics.get("best_by_train_loss", {})
    if not all(m in metrics for m in ("acc", "nmi", "ari")):
        return RunRecord(run_dir, seed, "flagged", why=f"{METRICS} has no ACC/NMI/ARI ({checkpoint} checkpoint)")
    return RunRecord(run_dir, seed, "done", {m: float(metrics[m]) for m in ("acc", "nmi", "ari")})


def _is_run_dir(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, f)) for f in (CONFIG_FILE, METRICS, HISTORY, "checkpoints"))


def collect_cell(root: str, row: Row, dataset: str, configs_dir: str, checkpoint: str,
                 seeds: int | None, ignore: Iterable[str] = ()) -> Cell:
    """The runs of one cell: runs/<table>/<row>/<dataset> itself (one seed) and its seed<k> folders."""
    base = os.path.join(root, row.key, dataset)
    if not os.path.isdir(base):
        expected_seeds = range(seeds) if seeds and seeds > 1 else [None]
        return Cell(row, dataset, [], [base if s is None else os.path.join(base, f"seed{s}") for s in expected_seeds])
    expected = _expected(configs_dir, row.config_stem(dataset), tuple(sorted(row.overrides.items())))
    found: list[tuple[str, int | None]] = [(base, None)] if _is_run_dir(base) else []
    for name in sorted(os.listdir(base), key=lambda s: (len(s), s)):
        m = _SEED_DIR.match(name)
        if m and os.path.isdir(os.path.join(base, name)):
            found.append((os.path.join(base, name), int(m.group(1))))
    runs = [read_run(p, s, expected, checkpoint, ignore) for p, s in found]
    seen: dict[int, str] = {}
    for r in runs:  # a seed counted once: the same config and seed give the same run
        if r.state != "done":
            continue
        if r.seed in seen:
            r.state, r.why = "flagged", f"seed {r.seed} is already counted ({seen[r.seed]})"
        else:
            seen[r.seed] = r.path
    have = {r.seed for r in runs}
    top = seeds if seeds else max((s + 1 for _, s in found if s is not None), default=0)
    missing = [os.path.join(base, f"seed{s}") for s in range(top) if s not in have]
    if not found and not missing:
        runs = [RunRecord(base, None, "unfinished", why="an empty folder (not started?)")]
    return Cell(row, dataset, runs, missing)


def collect(root: str, table_name: str | None = None, configs_dir: str | None = None, checkpoint: str = "last",
            seeds: int | None = None, ignore: Iterable[str] = ()) -> CollectedTable:
    """Every cell of the table whose runs are under `root` (runs/<table>); see the module docstring.

    checkpoint: 'last' (the final checkpoint, what the papers report) or 'best' (lowest training loss).
    seeds: the number of seeds each cell should have (None: as many as seed folders show).
    ignore: config fields whose differences do not flag a run (e.g. num_epochs for a shortened table).
    """
    if checkpoint not in ("last", "best"):
        raise UserError(f"checkpoint={checkpoint!r} must be last or best")
    if not os.path.isdir(root):
        raise UserError(f"{root!r} is not a folder; pass runs/<table>, written by launch/reproduce.sh TABLE --run")
    table = table_for(root, table_name)
    configs_dir = configs_dir or default_configs_dir()
    ignore = tuple(ignore)
    cells = {(r.key, ds): collect_cell(root, r, ds, configs_dir, checkpoint, seeds, ignore)
             for r in table.rows for ds in table.datasets}
    rows, sets = {r.key for r in table.rows}, set(table.datasets)
    ignored = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            continue
        if name not in rows:
            ignored.append(path)
            continue
        ignored += [os.path.join(path, d) for d in sorted(os.listdir(path))
                    if d not in sets and os.path.isdir(os.path.join(path, d))]
    return CollectedTable(table, root, checkpoint, cells, ignored)
