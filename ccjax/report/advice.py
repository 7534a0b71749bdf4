"""What to try after a verdict, as `python -m ccjax train ...` commands a user can copy.

Each command recreates the run's config (ccjax/cli/command_line.py: its nearest config file plus the
fields that differ) with the advised fields changed:
- a collapsed run: the config file's learning rate when the run raised it (a run that diverged into
  one cluster), else the config file's number of epochs when the run stopped short of it (resumed in
  the same workdir: num_epochs may change between launches), else a learning rate ten times lower;
- a run unsure of most images: twice the epochs (at least the config file's), resumed in place;
- the cue probe's warning: the settings it names (ccjax/eval/nuisance.py's REMEDIES), in a new workdir.
"""

from __future__ import annotations

import json
import os
import re
import shlex

from ccjax.run.rundir import CONFIG_FILE, flatten


def _configs(workdir: str) -> tuple[dict, dict | None]:
    """(the run's config fields, its nearest config file's fields or None), flattened."""
    from ccjax.cli.command_line import load_config_file, recreate_flags

    with open(os.path.join(workdir, CONFIG_FILE)) as f:
        stored = json.load(f)
    path, _ = recreate_flags(stored)
    config = load_config_file(path) if path else None
    return flatten(stored), (flatten(json.loads(config.to_json_best_effort())) if config is not None else None)


def new_workdir(workdir: str, suffix: str) -> str:
    """runs/photos -> runs/photos_<suffix> (a free name: _2, _3, ... when it exists)."""
    base = re.sub(r"[^\w.-]", "_", f"{os.path.normpath(workdir)}_{suffix}")
    base = os.path.join(os.path.dirname(os.path.normpath(workdir)), os.path.basename(base))
    candidate, n = base, 2
    while os.path.exists(candidate):
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def command(workdir: str, overrides: dict, target: str) -> str:
    from ccjax.cli.command_line import train_command

    return train_command(workdir, overrides, target)


def collapse_advice(workdir: str) -> dict:
    """{'text': what to try, 'command': the command that does it} for a collapsed run."""
    try:
        run, base = _configs(workdir)
    except (OSError, ValueError):
        return {"text": "Try a lower --config.learning_rate or more --config.num_epochs.", "command": ""}
    lr, epochs = float(run["learning_rate"]), int(run["num_epochs"])
    if base is not None and lr > float(base["learning_rate"]):
        to = float(base["learning_rate"])
        return {"text": f"Try the config file's learning rate {to:g} (this run: {lr:g}), in a new workdir:",
                "command": command(workdir, {"learning_rate": to}, new_workdir(workdir, f"lr{to:g}"))}
    if base is not None and epochs < int(base["num_epochs"]):
        to = int(base["num_epochs"])
        return {"text": f"Try training to the config file's {to} epochs (this run stopped at {epochs}); "
                        "the same workdir resumes:",
                "command": command(workdir, {"num_epochs": to}, workdir)}
    return {"text": f"Try a learning rate ten times lower ({lr / 10:g}, this run: {lr:g}), in a new workdir:",
            "command": command(workdir, {"learning_rate": lr / 10}, new_workdir(workdir, f"lr{lr / 10:g}"))}


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
    from ccjax.eval.nuisance import REMEDIES

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
