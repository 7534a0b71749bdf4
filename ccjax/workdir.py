"""The run directory: created and checked up front, holding config.json.

A workdir belongs to one configuration. Resuming with a config that changes
what is computed (model, data, optimiser, seed, ...) would silently mix two
runs, so it is refused; fields that only change bookkeeping may differ.
"""

from __future__ import annotations

import json
import os
import tempfile

import jax

from ccjax.errors import UserError

# Fields that may differ between the launches of one run.
BOOKKEEPING_FIELDS = (
    "progress_bar",
    "log_every_steps",
    "num_epochs",  # extending a run is allowed (GeCC's t schedule follows the new value)
    "eval.",
    "checkpoint.",
    "dataset.data_dir",
    "dataset.manual_dir",
    "anchor.batch_size",
    "anchor.cache_dir",
    "bench.",
)


def with_defaults(stored: dict) -> dict:
    """A stored config.json completed with today's base defaults for fields it lacks.

    A run written by an older ccjax has no entry for a field added since; new
    fields default to the old behaviour, so such a run resumes and evaluates.
    """
    from ccjax.config_base import get_base_config

    def merge(base, over):
        if not (isinstance(base, dict) and isinstance(over, dict)):
            return over
        return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}

    return merge(json.loads(get_base_config().to_json_best_effort()), stored)


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def config_differences(old: dict, new: dict) -> list[str]:
    a, b = flatten(old), flatten(new)
    keys = sorted(set(a) | set(b))
    return [
        k for k in keys
        if a.get(k) != b.get(k) and not any(k == f or (f.endswith(".") and k.startswith(f)) for f in BOOKKEEPING_FIELDS)
    ]


def write_json_atomic(path: str, obj) -> None:
    """Writes JSON to a temporary file in the same folder, then renames it into place."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def prepare(workdir: str, config) -> None:
    """Creates `workdir`, checks it is writable and belongs to this config; writes config.json."""
    check(workdir, config)
    write_config(workdir, config)


def check(workdir: str, config) -> None:
    """Creates `workdir` and checks it is writable and holds no run of another config; writes no file.

    The trainer writes config.json (`write_config`) only once the run is built,
    so a config that fails to build (say, an unknown dataset) leaves nothing
    that would block the corrected command in the same workdir.
    """
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=workdir, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as e:
        raise UserError(
            f"cannot write to workdir {workdir!r} ({e.strerror or e}); pass --workdir=<a writable folder>"
        ) from None
    path = os.path.join(workdir, "config.json")
    new = json.loads(config.to_json_best_effort())
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
        except (OSError, ValueError):
            raise UserError(f"{path} is unreadable; remove it or use a new --workdir") from None
        diff = config_differences(with_defaults(old), new)
        if diff:
            raise UserError(
                f"workdir {workdir!r} holds a run with a different config ({', '.join(diff[:6])}"
                f"{', ...' if len(diff) > 6 else ''}); use a new --workdir or the same config to resume"
            )


def write_config(workdir: str, config) -> None:
    """Writes `workdir/config.json` (process 0 only), what `check` compares a later run against."""
    if jax.process_index() == 0:
        write_json_atomic(os.path.join(workdir, "config.json"), json.loads(config.to_json_best_effort()))
