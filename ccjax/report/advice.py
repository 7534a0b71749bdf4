"""What to try after a verdict, as `python -m ccjax train ...` commands a user can copy.

Each command recreates the run's config (ccjax/run/command_line.py: its nearest config file plus the
fields that differ) with the advised fields changed:
- a run collapsed to near-uniform probabilities (not learnt yet), or unsure of most images: twice
  the epochs, at least the config file's, resumed in the same workdir (num_epochs may change between
  launches);
- a run collapsed into one cluster or many empty ones otherwise: the config file's learning rate when
  the run raised it, else a learning rate ten times lower, in a new workdir;
- the cue probe's warning: the settings it names (ccjax/explain/nuisance.py's REMEDIES), in a new workdir.
"""

from __future__ import annotations

import json
import os
import re
import shlex

from ccjax.explain.nuisance import REMEDIES
from ccjax.run.command_line import load_config_file, recreate_flags, train_command
from ccjax.run.rundir import CONFIG_FILE, flatten


def _configs(workdir: str) -> tuple[dict, dict | None]:
    """(the run's config fields, its nearest config file's fields or None), flattened."""
    with open(os.path.join(workdir, CONFIG_FILE)) as f:
        stored = json.load(f)
    path, _ = recreate_flags(stored)
    config = load_config_file(path) if path else None
    return flatten(stored), (flatten(json.loads(config.to_json_best_effort())) if config is not None else None)


def new_workdir(workdir: str, suffix: str) -> str:
    """runs/photos -> runs/photos_<suffix> (a free name: _2, _3, ... when it exists)."""
    safe = re.sub(r"[^\w.-]", "_", suffix)
    base = f"{os.path.normpath(workdir)}_{safe}"
    candidate, n = base, 2
    while os.path.exists(candidate):
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def command(workdir: str, overrides: dict, target: str) -> str:
    return train_command(workdir, overrides, target)


def collapse_advice(workdir: str, not_learnt_yet: bool) -> dict:
    """{'text': what to try, 'command': the command that does it} for a collapsed run: train longer when
    most probabilities are still near 1/K (`not_learnt_yet`), else a lower learning rate (the config
    file's when the run raised it, else ten times lower): a confident single cluster is the trivial
    solution a too-large step falls into."""
    if not_learnt_yet:
        return low_confidence_advice(workdir)
    try:
        run, base = _configs(workdir)
    except (OSError, ValueError):
        return {"text": "Try a lower --config.learning_rate, in a new workdir.", "command": ""}
    lr = float(run["learning_rate"])
    raised = base is not None and lr > float(base["learning_rate"])
    to = float(base["learning_rate"]) if raised else lr / 10
    why = f"the config file's learning rate {to:g}" if raised else f"a learning rate ten times lower, {to:g}"
    return {"text": f"Try {why} (this run: {lr:g}), in a new workdir:",
            "command": command(workdir, {"learning_rate": to}, new_workdir(workdir, f"lr{to:g}"))}


def low_confidence_advice(workdir: str) -> dict:
    """{'text', 'command'}: train longer (the same workdir resumes)."""
    try:
        run, base = _configs(workdir)
    except (OSError, ValueError):
        return {"text": "Try training longer (more --config.num_epochs; the same workdir resumes).", "command": ""}
    epochs = int(run["num_epochs"])
    to = max(2 * epochs, int(base["num_epochs"]) if base is not None else 0)
    return {"text": f"Try training longer, to {to} epochs (this run: {epochs}); the same workdir resumes:",
            "command": command(workdir, {"num_epochs": to}, workdir)}


def probe_overrides(nuisance: dict) -> dict:
    """{config field: value} of the settings the cue probe's warning advises ({} when it did not warn)."""
    if not nuisance.get("warnings"):
        return {}
    out = {}
    for family in nuisance.get("named", []):
        for flag in shlex.split((REMEDIES.get(family) or ("", None))[1] or ""):
            key, value = flag[len("--config."):].split("=", 1)
            out[key] = json.loads(value) if value in ("true", "false") else (
                float(value) if re.fullmatch(r"[-+0-9.eE]+", value) else value)
    return out


def probe_advice(workdir: str, nuisance: dict, k: int | None = None) -> dict:
    """{'text', 'command'} that retrains with the probe's advice (and K = `k` when given); {} when none."""
    overrides = probe_overrides(nuisance)
    if not overrides:
        return {}
    if k is not None:
        overrides["dataset.num_clusters"] = k
    return {"text": "Retrain with the settings the probe advises, in a new workdir:",
            "command": command(workdir, overrides, new_workdir(workdir, "advised"))}
