"""Orbax checkpoints of the train state, plus a small JSON of loop bookkeeping.

- Saves are asynchronous (training continues while the arrays are written) and
  cooperative across processes; the last `keep` are kept.
- A save becomes visible only once Orbax has finalised it (it writes to a
  temporary directory and renames), so a crash mid-save leaves the previous
  complete checkpoint as the latest one.
- Restoring takes target shardings, so a checkpoint written on 4 devices
  restores on 2 or 1.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

from ccjax.errors import UserError

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, directory: str, keep: int, async_save: bool = True):
        directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max(1, keep),
            create=True,
            enable_async_checkpointing=async_save,
        )
        self.directory = directory
        if jax.process_index() == 0:
            set_aside_incomplete(directory)
        self.manager = ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step."""
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: Any, meta: dict, force: bool = True) -> None:
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=force,
        )

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restores `step` into arrays with the shardings of `abstract_state` (ShapeDtypeStructs)."""
        try:
            out = self.manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
                ),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(
                f"the checkpoint at step {step} in {self.directory} does not match this config's model "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); use a new --workdir"
            ) from None
        return out.state, dict(out.meta)

    def restore_subset(self, step: int, abstract_subset: dict) -> tuple[dict, dict]:
        """Restores only the train-state entries named in `abstract_subset` (e.g. step, params,
        model_state: what inference needs), skipping the optimiser state. Use on a Checkpointer
        that has not saved (Orbax binds one handler per item)."""
        args = ocp.args.PyTreeRestore(item=abstract_subset,
                                      restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_subset),
                                      partial_restore=True)
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(state=args, meta=ocp.args.JsonRestore()))
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(
                f"the checkpoint at step {step} in {self.directory} does not match this run's model "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            ) from None
        return dict(out.state), dict(out.meta)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def reached_preemption(self, step: int) -> bool:
        """True on every process once a multi-process run has been told to stop (JAX's preemption sync)."""
        if jax.process_count() == 1:
            return False
        return self.manager.reached_preemption(step)

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()



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
