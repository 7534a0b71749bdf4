"""The `ccjax train` command line that recreates a run's config: its nearest config file plus one
`--config.<field>=value` per field that differs (what `evaluate --suggest_k` prints to retrain with
another K); and `recluster_advice`, the fast path it prints beside: TEMI on the run's own features.

A run stores its whole config (config.json), not the file and flags it came from; the config file
whose fields differ from it in the fewest places, plus those fields as flags, gives the same config.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import json
import os
import re
import shlex

from ccjax.run.rundir import flatten

# Fields that do not change what is trained (derived from others, or only how a run is shown).
IGNORED = ("objective", "progress_bar", "log_every_steps")


def config_files() -> list[str]:
    """configs/*.py under the current folder, else beside this checkout of ccjax."""
    for folder in ("configs", os.path.join(os.path.dirname(__file__), "..", "..", "configs")):
        found = sorted(glob.glob(os.path.join(folder, "*.py")))
        if found:
            here = os.path.normpath(folder) == "configs"
            return [f if here else os.path.normpath(f) for f in found]
    return []


def load_config_file(path: str):
    """`get_config()` of a config file, loaded by path as the command line does; None if it fails."""
    name = "ccjax_config_" + re.sub(r"\W", "_", os.path.abspath(path))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.get_config()
    except Exception:  # a broken or foreign file is simply not a candidate
        return None


def flag_value(value) -> str:
    """A config value as --config.<field>= takes it (tuples as Python literals, the rest as text)."""
    if isinstance(value, (list, tuple)):
        return repr(tuple(value))
    return str(value)


@functools.lru_cache(maxsize=None)
def _file_fields(path: str, mtime: float) -> dict | None:
    """A config file's flattened fields (None if it does not load), once per file version: a report
    recreates several commands."""
    config = load_config_file(path)
    if config is None:
        return None
    return {k: v for k, v in flatten(json.loads(config.to_json_best_effort())).items() if k not in IGNORED}


def recreate_flags(stored: dict, overrides: dict | None = None) -> tuple[str | None, list[str]]:
    """(config file, ['--config.x=v', ...]) that give the stored config (config.json's dict) with
    `overrides` (dotted field -> value) applied; (None, the override flags) when no config file is found."""
    target = {k: v for k, v in flatten(stored).items() if k not in IGNORED}
    target.update(overrides or {})
    best = None
    for path in config_files():
        fields = _file_fields(path, os.path.getmtime(path))
        if fields is None:
            continue
        if set(target) - set(fields):  # the run has fields this file does not know
            continue
        differ = [k for k in fields if k in target and target[k] != fields[k]]
        if best is None or len(differ) < len(best[1]):
            best = (path, differ)
    if best is None:
        return None, [f"--config.{k}={flag_value(v)}" for k, v in (overrides or {}).items()]
    path, differ = best
    return path, [f"--config.{k}={flag_value(target[k])}" for k in differ]


def train_command(workdir: str, overrides: dict, new_workdir: str) -> str:
    """`python -m ccjax train ...` that trains the run in `workdir` again with `overrides`, into `new_workdir`."""
    with open(os.path.join(workdir, "config.json")) as f:
        stored = json.load(f)
    path, flags = recreate_flags(stored, overrides)
    if path is None:
        return (f"python -m ccjax train --config=<the run's config file> {' '.join(flags)} "
                f"--workdir={shlex.quote(new_workdir)}")
    return " ".join(["python -m ccjax train", f"--config={shlex.quote(path)}", *(shlex.quote(f) for f in flags),
                     f"--workdir={shlex.quote(new_workdir)}"])


def workdir_for_k(workdir: str, k: int) -> str:
    """runs/photos_k20 -> runs/photos_k12; runs/photos -> runs/photos_k12; a free name if that exists."""
    base = re.sub(r"_k\d+$", "", os.path.normpath(workdir)) + f"_k{k}"
    candidate, n = base, 2
    while os.path.exists(candidate):
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def retrain_advice(workdir: str, k: int, trained_k: int) -> str:
    """What to do with the suggested K: nothing when it is the run's, else the command that retrains."""
    if k == trained_k:
        return f"ccjax: the suggested K = {k} is this run's K; no need to retrain"
    command = train_command(workdir, {"dataset.num_clusters": k}, workdir_for_k(workdir, k))
    return f"ccjax: to retrain with the suggested K = {k} (this run: K = {trained_k}) in a new workdir:\n  {command}"


def recluster_advice(workdir: str, k: int, trained_k: int, method: str | None = None) -> str | None:
    """The fast path to K clusters: TEMI's heads on this run's backbone features (docs/temi.md), in seconds.
    None when K is the run's own, or when the run is itself TEMI on frozen features (`method`)."""
    if k == trained_k or method == "temi":
        return None
    target = f"{workdir.rstrip(os.sep)}_temi_k{k}"
    command = ("python -m ccjax train --config=configs/temi_run.py "
               f"--config.features.source={shlex.quote('run:' + workdir)} --config.dataset.num_clusters={k} "
               f"--workdir={shlex.quote(target)}")
    return f"ccjax: fast path, no retraining: re-cluster this run's features into K = {k} (seconds):\n  {command}"
