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

import logging
import os
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
            cleanup_tmp_directories=True,
        )
        self.directory = directory
        self.manager = ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step (incomplete saves are never listed)."""
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

