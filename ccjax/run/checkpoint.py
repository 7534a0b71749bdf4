"""Orbax checkpoints of the train state, plus a small JSON of loop bookkeeping.

- Saves are asynchronous (training continues while the arrays are written) and
  cooperative across processes; the last `keep` are kept.
- A save becomes visible only once Orbax has finalised it (it writes to a
  temporary directory and renames), so a crash mid-save leaves the previous
  complete checkpoint as the latest one.
- Restoring takes target shardings, so a checkpoint written on 4 devices
  restores on 2 or 1.
- A failed save (a full disk, say) is one SaveFailed line naming that save's
  step, raised at the first `check()` after it failed (every training step);
  its temporary folder is removed at once (else by the next launch), and
  Orbax's own error logs and tracebacks about it are not printed: the line
  says all of it (docs/reliability.md).
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import shutil
import sys
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

from ccjax.errors import UserError
from ccjax.runtime.distributed import is_main_process

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, directory: str, keep: int, async_save: bool = True, resume_directory: str | None = None):
        """`resume_directory`: where a resume reads from, when not here (the best-by-loss checkpoints are
        kept apart from the training ones): a failed save names the step kept there."""
        directory = os.path.abspath(directory)
        self.resume_directory = os.path.abspath(resume_directory) if resume_directory else directory
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max(1, keep),
            create=True,
            enable_async_checkpointing=async_save,
        )
        self.directory = directory
        self._saving: int | None = None  # the step of the newest save started (named when one fails)
        _quiet_orbax_failures(directory)
        _silence_closed_loop_callbacks()
        if is_main_process():
            set_aside_incomplete(directory)
        self.manager = ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step."""
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: Any, meta: dict, force: bool = True) -> None:
        """Starts an asynchronous save of `step`; a failure (now or of an earlier save) is a SaveFailed.

        The previous save is waited for first, so its failure names its own step, not this one.
        """
        self.wait()
        self._saving = step
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
                force=force,
            )
        except Exception as e:  # noqa: BLE001 - disk full, permissions, any I/O failure
            raise self._failed(e) from None

    def check(self) -> None:
        """Raises SaveFailed as soon as an asynchronous save has failed (cheap: call it every step).

        Orbax's `check_for_errors` does not see a failure of the background write itself: a
        finished save is therefore waited for (at once) here, which re-raises its error. With
        several processes only `save` and `wait` report it, at the same step on every process
        (each would see the background thread end at a different step, and stop alone).
        """
        try:
            self.manager.check_for_errors()
            if self._saving is not None and jax.process_count() == 1 and not self.manager.is_saving_in_progress():
                self.manager.wait_until_finished()  # returns at once, or raises the finished save's error
        except Exception as e:  # noqa: BLE001
            raise self._failed(e) from None

    def _failed(self, e: BaseException) -> "SaveFailed":
        step = self._saving
        if step is not None and is_main_process():
            _remove_temporary(self.directory, step)  # frees the space the partial write took
        # From the disk: Orbax has already dropped the step a failed save would have replaced from its list
        # (and a keep=1 manager may have deleted its previous step already: hence resume_directory). The
        # failed step is left out only here: the training folder may hold that step complete (a failed
        # best save of the last epoch, reported after the training save of the same step finished).
        own = self.resume_directory == self.directory
        done = [s for s in complete_steps(self.resume_directory) if s != step or not own]
        kept = f"the previous complete checkpoint (step {max(done)}) is kept" if done else "no complete checkpoint exists"
        full = any(getattr(x, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(x)
                   for x in _chain(e))
        what = "the disk is full" if full else _why(e)
        return SaveFailed(f"saving checkpoint step {step} in {self.directory} failed ({what}); {kept}; "
                          "free space (or fix the folder's permissions), then run the same command to resume")

    def _restore(self, step: int, state_args) -> tuple[Any, dict]:
        out = self.manager.restore(step, args=ocp.args.Composite(state=state_args, meta=ocp.args.JsonRestore()))
        meta = out.meta
        if not isinstance(meta, dict):  # an empty or damaged meta item restores as None or garbage
            raise ValueError(f"the bookkeeping item (meta) of step {step} is unreadable")
        return out.state, dict(meta)

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restores `step` into arrays with the shardings of `abstract_state` (ShapeDtypeStructs)."""
        try:
            return self._restore(step, ocp.args.StandardRestore(abstract_state))
        except Exception as e:  # noqa: BLE001 - Orbax/TensorStore raise many types
            raise UserError(f"the checkpoint at step {step} in {self.directory} cannot be restored into this "
                            f"config's model ({_why(e)}); use a new --workdir") from None

    def restore_subset(self, step: int, abstract_subset: dict) -> tuple[dict, dict]:
        """Restores only the train-state entries named in `abstract_subset` (e.g. step, params,
        model_state: what inference needs), skipping the optimiser state. Use on a Checkpointer
        that has not saved (Orbax binds one handler per item)."""
        args = ocp.args.PyTreeRestore(item=abstract_subset,
                                      restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_subset),
                                      partial_restore=True)
        state, meta = self._restore(step, args)
        return dict(state), meta

    def restore_newest(self, abstract: Any, subset: bool = False) -> tuple[int, Any, dict] | None:
        """(step, state, meta) of the newest checkpoint that restores, or None when there is none.

        A newer checkpoint that cannot be restored (truncated or missing data,
        empty or missing metadata or manifest, unreadable files) while an older
        one can is damaged: it is moved aside to `<step>.damaged-<time>` with one
        warning line and the older one is used. When none restores, nothing is
        moved and the one-line error says so (a changed config or damaged files).
        `subset`: restore only the entries of `abstract` (restore_subset).
        """
        failures = []
        for step in sorted(self.all_steps(), reverse=True):
            try:
                _check_no_empty_files(os.path.join(self.directory, str(step)))
                if subset:
                    state, meta = self.restore_subset(step, abstract)
                else:
                    state, meta = self._restore(step, ocp.args.StandardRestore(abstract))
            except Exception as e:  # noqa: BLE001 - any failure: try the previous step
                _silence_closed_loop_callbacks()
                failures.append((step, e))
                continue
            if failures and is_main_process():
                for bad, e in failures:
                    target = f"{os.path.join(self.directory, str(bad))}.damaged-{int(time.time())}"
                    os.replace(os.path.join(self.directory, str(bad)), target)
                    print(f"ccjax: warning: checkpoint step {bad} in {self.directory} cannot be restored "
                          f"({_why(e)}); moved it to {target}; using step {step}", file=sys.stderr,
                          flush=True)
            if failures:
                self.manager.reload()
            return step, state, meta
        if failures:
            step, e = failures[0]
            raise UserError(
                f"no checkpoint in {self.directory} can be restored into this config's model (newest, step "
                f"{step}: {_why(e)}); if the config changed, use a new --workdir; if the files are damaged, "
                "move them away"
            )
        return None

    def wait(self) -> None:
        """Waits for the asynchronous saves; SaveFailed if one failed."""
        try:
            self.manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001
            raise self._failed(e) from None
        self.check()

    def reached_preemption(self, step: int) -> bool:
        """True on every process once a multi-process run has been told to stop (JAX's preemption sync)."""
        if jax.process_count() == 1:
            return False
        return self.manager.reached_preemption(step)

    def close(self) -> None:
        self.wait()
        self.manager.close()


class SaveFailed(UserError):
    """A checkpoint could not be written (disk full, permission lost, any I/O failure)."""


def _chain(e: BaseException):
    """`e` and the exceptions it was raised from or during."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _why(e: BaseException) -> str:
    """One short line naming an exception."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


def _remove_temporary(directory: str, step: int, settle_s: float = 0.5, limit_s: float = 10.0) -> None:
    """Deletes the unfinished temporary folder(s) of a failed save of `step` (what Orbax wrote so far).

    When one part of a save fails, Orbax reports it while the other parts' writes are still in flight
    (tensorstore's own threads, which nothing here can join), and they recreate the folder. So the
    folder is removed until it stays gone for `settle_s` (at most `limit_s`); a launch also removes any
    left (`set_aside_incomplete`).
    """
    pattern = os.path.join(directory, f"{step}.orbax-checkpoint-tmp*")
    deadline, quiet_since = time.monotonic() + limit_s, time.monotonic()
    while time.monotonic() < deadline:
        found = glob.glob(pattern)
        for tmp in found:
            shutil.rmtree(tmp, ignore_errors=True)
        now = time.monotonic()
        if found:
            quiet_since = now
        elif now - quiet_since >= settle_s:
            return
        time.sleep(0.05)


class _OrbaxFailureFilter(logging.Filter):
    """Drops the error records of a save or restore that a Checkpointer reports itself: Orbax's own
    (logged through absl's logger, from Orbax's files), and asyncio's "exception was never
    retrieved" for the write coroutines Orbax left behind (raised in Orbax's code, or naming a
    checkpoint folder). Every such failure reaches `check`, `wait` or a restore, which report it
    in one line (SaveFailed, or a warning that names the checkpoint set aside); all other records pass.
    """

    def __init__(self):
        super().__init__()
        self.directories: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if _ORBAX_FILES in (record.pathname or ""):
            return False
        exc = record.exc_info[1] if record.exc_info else None
        text = record.getMessage() + " " + " ".join(str(x) for x in _chain(exc))
        return not (any(d in text for d in self.directories) or _raised_in_orbax(exc))


_ORBAX_FILES = f"{os.sep}orbax{os.sep}"


def _raised_in_orbax(exc: BaseException | None) -> bool:
    for e in _chain(exc):
        tb = e.__traceback__
        while tb is not None:
            if _ORBAX_FILES in tb.tb_frame.f_code.co_filename:
                return True
            tb = tb.tb_next
    return False


_ORBAX_FILTER = _OrbaxFailureFilter()
_FILTERED_LOGGERS = ("absl", "asyncio")  # Orbax logs through absl's logger


def _quiet_orbax_failures(directory: str) -> None:
    """Registers `directory` with the filter on the loggers Orbax's failures reach."""
    _ORBAX_FILTER.directories.add(directory)
    for name in _FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if _ORBAX_FILTER not in logger.filters:
            logger.addFilter(_ORBAX_FILTER)


def _silence_closed_loop_callbacks() -> None:
    """After a failed save or restore, TensorStore's writes or reads still in flight call back into
    Orbax's closed asyncio loop, and each prints an 'Event loop is closed' traceback (through
    sys.unraisablehook) that says nothing the error or warning line does not. Drop exactly those;
    every other unraisable error still prints."""
    previous = sys.unraisablehook
    if getattr(previous, "_ccjax_filter", False):
        return

    def hook(unraisable):
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
            return
        previous(unraisable)

    hook._ccjax_filter = True
    sys.unraisablehook = hook


def _check_no_empty_files(step_dir: str) -> None:
    """Raises ValueError naming an empty file in a step folder: every file Orbax writes has content,
    and reading an empty manifest through TensorStore fails noisily (tracebacks from its threads)."""
    for root, _, files in os.walk(step_dir):
        for name in files:
            path = os.path.join(root, name)
            if os.path.getsize(path) == 0:
                raise ValueError(f"{os.path.relpath(path, step_dir)} is empty")


def complete_steps(directory: str) -> list[int]:
    """The steps of the finished checkpoints in `directory`, read from the disk."""
    if not os.path.isdir(directory):
        return []
    return sorted(int(n) for n in os.listdir(directory) if n.isdigit() and is_complete(os.path.join(directory, n)))


def is_complete(step_dir: str) -> bool:
    """A finalised Orbax step: its metadata and every item's metadata were written.

    Orbax writes into a temporary folder and renames it when done (local disks),
    or writes commit_success.txt last (object stores); either way these files
    exist only for a finished save.
    """
    if not os.path.exists(os.path.join(step_dir, "_CHECKPOINT_METADATA")):
        return False
    return all(
        os.path.exists(os.path.join(step_dir, item, "_METADATA"))
        or os.path.exists(os.path.join(step_dir, item, "metadata"))
        for item in ("state", "meta")
    )


def set_aside_incomplete(directory: str) -> list[str]:
    """Moves aside what a crash mid-save left behind, so the previous complete step is the latest.

    Unfinished temporary folders are deleted (they hold nothing a finished
    checkpoint does not); a numbered folder that is not complete is renamed to
    `<step>.incomplete-<time>` (kept for inspection, never restored).
    """
    if not os.path.isdir(directory):
        return []
    moved = []
    for tmp in glob.glob(os.path.join(directory, "*.orbax-checkpoint-tmp*")):
        shutil.rmtree(tmp, ignore_errors=True)
        moved.append(tmp)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.isdigit() and os.path.isdir(path) and not is_complete(path):
            target = f"{path}.incomplete-{int(time.time())}"
            os.replace(path, target)
            log.warning("checkpoint step %s is incomplete (a crash mid-save?); moved to %s", name, target)
            moved.append(path)
    return moved
