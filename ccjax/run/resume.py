"""What a relaunch may ask of a run that already has checkpoints.

A relaunch may train longer (`num_epochs` is bookkeeping in config.json, see
rundir.BOOKKEEPING_FIELDS) but not shorter: the checkpoints already hold more
epochs than asked, and rewriting config.json to the smaller number would leave
it disagreeing with them. Such a launch is refused before anything is written.
"""

from __future__ import annotations

import math
import shlex

from ccjax.errors import UserError
from ccjax.run.checkpoint import complete_steps


def refuse_fewer_epochs(checkpoint_dir: str, workdir: str, num_epochs: int, steps_per_epoch: int) -> None:
    """UserError when `checkpoint_dir` holds a finished checkpoint past `num_epochs` x `steps_per_epoch`
    steps: it names the epoch reached and the commands that evaluate the run or train the shorter one."""
    steps = complete_steps(checkpoint_dir)
    if not steps or steps[-1] <= num_epochs * steps_per_epoch:
        return
    newest = steps[-1]
    epoch = f"{newest // steps_per_epoch}" if newest % steps_per_epoch == 0 else f"{newest / steps_per_epoch:.2f}"
    raise UserError(
        f"workdir {workdir!r} holds a run trained to epoch {epoch} (step {newest}), more than num_epochs="
        f"{num_epochs}, and a run is never shortened: to evaluate it as it is, run `python -m ccjax evaluate "
        f"--workdir={shlex.quote(workdir)}`; to train {num_epochs} epochs, use a new --workdir; to continue "
        f"this run, pass --config.num_epochs={math.ceil(newest / steps_per_epoch)} or more"
    )
