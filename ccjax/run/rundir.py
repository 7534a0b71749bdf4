"""The run directory: every file name in it, its config.json, and atomic writes.

    <workdir>/config.json        the exact config (CONFIG_FILE)
              run.json           dataset shape, classes, clusters: what inference needs (RUN_INFO)
              history.jsonl      one JSON record per epoch (HISTORY)
              tensorboard/       scalars (TENSORBOARD_DIR)
              checkpoints/       the last few (CHECKPOINTS_DIR)
              checkpoints_best/  the lowest epoch-mean training loss (BEST_CHECKPOINTS_DIR)
              metrics.json       the final metrics (METRICS)
              report/            figures and tables (REPORT_DIR)

A workdir belongs to one configuration. Resuming with a config that changes
what is computed (model, data, optimiser, seed, ...) would silently mix two
runs, so it is refused; fields that only change bookkeeping may differ.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import tempfile
from typing import Callable, IO

import jax
import ml_collections

from ccjax.config import get_base_config
from ccjax.errors import UserError
from ccjax.runtime.distributed import is_main_process

CONFIG_FILE = "config.json"
RUN_INFO = "run.json"
HISTORY = "history.jsonl"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINTS_DIR = "checkpoints"
BEST_CHECKPOINTS_DIR = "checkpoints_best"
METRICS = "metrics.json"
REPORT_DIR = "report"

# Fields that may differ between the launches of one run.
BOOKKEEPING_FIELDS = (
    "progress_bar",
    "log_every_steps",
    "num_epochs",  # extending a run is allowed (GeCC's t schedule follows the new value)
    "eval.",
    "checkpoint.",
    "dataset.data_dir",
    "dataset.manual_dir",
    # how the data is read, not what: streamed and in-memory batches are bit-identical, so a run
    # may resume streamed after running out of memory (tests/test_streaming.py)
    "dataset.in_memory",
    "dataset.memory_share",
    "dataset.stream_workers",
    "dataset.stream_buffer",
    "anchor.batch_size",
    # `objective` was a field until it was derived from `method`: an older run's config.json holds it, and
    # `method` already tells the objective, so its presence or absence is no difference.
    "objective",
    "anchor.cache_dir",
    "bench.",
    # method=temi: how the features and the exact kNN are computed, not what (the kNN is read back
    # from <workdir>/knn.npz, keyed by the features and temi.knn)
    "features.batch_size",
    "features.cache_dir",
    "temi.knn_query_block",
    "temi.knn_key_chunk",
)


def with_defaults(stored: dict) -> dict:
    """A stored config.json completed with today's base defaults for fields it lacks.

    A run written by an older ccjax has no entry for a field added since; new
    fields default to the old behaviour, so such a run resumes and evaluates.
    """
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


def write_atomic(path: str, write: Callable[[IO[bytes]], object]) -> None:
    """Writes a file via `write(binary file)` to a temporary file in the same folder, then renames it
    over `path`: a reader sees the old file or the whole new one, never a part. The file gets the mode
    any new file gets (0666 less the umask: 0644 under umask 022). An I/O failure (a
    full disk, a folder not writable) is one UserError line naming the file, with nothing left behind."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = _create_temporary(folder)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise UserError(f"cannot write {path} ({_why_not_written(e)}); free space (or fix the folder's "
                            "permissions), then run the same command again") from None
        raise


def _create_temporary(folder: str) -> tuple[int, str]:
    """A new file `.tmp-<random>` in `folder`, created with mode 0666 less the umask, as open() makes
    files: the renamed file is then readable by whom the user's umask allows (tempfile.mkstemp's
    0600 would make every report private to its writer)."""
    for _ in range(100):
        path = os.path.join(folder, f".tmp-{secrets.token_hex(6)}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)


def _why_not_written(e: OSError) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    return e.strerror or str(e)


def write_json_atomic(path: str, obj) -> None:
    """Writes `obj` as indented, key-sorted JSON, atomically (see write_atomic)."""
    write_atomic(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True).encode()))


def read_json_or_none(path: str):
    """The JSON in `path`, or None when it is missing or unreadable (a report's optional inputs)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def lock(workdir: str):
    """Holds an exclusive lock on `workdir` for a training run (process 0; others pass through).

    A second launch on the same workdir gets one line naming the process that
    holds it and touches nothing. The lock is an OS lock (flock) on the folder
    itself, so no file is created and it goes away with the process, however it
    ends: a killed run never leaves a stale lock. A launch that fails before it
    wrote anything leaves no empty workdir behind when it was the one to create it.
    """
    if jax.process_index() != 0:
        yield
        return
    created = not os.path.exists(workdir)
    try:
        os.makedirs(workdir, exist_ok=True)
        fd = os.open(workdir, os.O_RDONLY)
    except OSError as e:
        raise UserError(
            f"cannot write to workdir {workdir!r} ({e.strerror or e}); pass --workdir=<a writable folder>"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"workdir {workdir!r} is in use by {_lock_holder(fd)} (a run is training there); "
                            "wait for it to end, or use another --workdir") from None
        try:
            yield
        except BaseException:
            if created:
                with contextlib.suppress(OSError):
                    os.rmdir(workdir)  # only while still empty: a run that wrote anything keeps its folder
            raise
    finally:
        os.close(fd)  # releases the lock


def _lock_holder(fd: int) -> str:
    """'process <pid>' of the flock holder of `fd`'s file (from /proc/locks on Linux), else 'another process'."""
    st = os.fstat(fd)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if "FLOCK" in parts and len(parts) >= 6 and parts[5] == dev:
                    return f"process {parts[4]}"
    except OSError:
        pass
    return "another process"


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
    path = os.path.join(workdir, CONFIG_FILE)
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
    if is_main_process():
        write_json_atomic(os.path.join(workdir, CONFIG_FILE), json.loads(config.to_json_best_effort()))


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run was trained with (its workdir's config.json, completed with today's defaults)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise UserError(f"{workdir!r} has no {CONFIG_FILE}: not a ccjax run directory (train with `python -m ccjax train` first)")
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        raise UserError(f"{path} is unreadable or corrupt; it must be the JSON `ccjax train` wrote") from None
    return ml_collections.ConfigDict(_tuples(with_defaults(d)))


def _tuples(d):
    """JSON has no tuples: turn lists back into tuples (config fields are tuples)."""
    if isinstance(d, dict):
        return {k: _tuples(v) for k, v in d.items()}
    if isinstance(d, list):
        return tuple(_tuples(v) for v in d)
    return d


def read_run_info(workdir: str) -> dict:
    """The run's run.json: dataset, num_examples, image_shape, num_clusters, class_names, anchor_dim."""
    path = os.path.join(workdir, RUN_INFO)
    if not os.path.exists(path):
        raise UserError(f"{workdir!r} has no {RUN_INFO}; it was not written by `ccjax train`")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        raise UserError(f"{path} is unreadable or corrupt; it must be the JSON `ccjax train` wrote") from None
