"""What a run writes as it goes: TensorBoard scalars and a JSON-lines history.

Only process 0 writes; on the others every method is a no-op.
"""

from __future__ import annotations

import json
import os

from ccjax.errors import UserError
from ccjax.run.rundir import HISTORY, TENSORBOARD_DIR, write_atomic
from ccjax.runtime.distributed import is_main_process


class RunLog:
    def __init__(self, workdir: str):
        self.enabled = is_main_process()
        self._tb = None
        self._history = os.path.join(workdir, HISTORY)
        self._tb_dir = os.path.join(workdir, TENSORBOARD_DIR)

    def _writer(self):
        if self._tb is None:
            # tensorboardX is optional: loaded only when it is installed and logging is on
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(self._tb_dir, flush_secs=30)
        return self._tb

    def scalars(self, step: int, values: dict[str, float], prefix: str = "train") -> None:
        if not self.enabled:
            return
        w = self._writer()
        for k, v in values.items():
            if isinstance(v, (int, float)):
                w.add_scalar(f"{prefix}/{k}", float(v), step)

    def history(self, record: dict) -> None:
        """Appends one JSON record (one per epoch) to history.jsonl."""
        if not self.enabled:
            return
        try:
            with open(self._history, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:
            raise UserError(f"cannot write {self._history} ({e.strerror or e}); free space or fix the folder's "
                            "permissions, then run the same command to resume") from None

    def truncate_history(self, after_step: int) -> None:
        """At the start of a launch: keep only the records up to `after_step`, the step it resumes
        from (0: none), so no epoch is logged twice; a torn line (a kill mid-write) is dropped."""
        if not self.enabled or not os.path.exists(self._history):
            return
        keep = []
        with open(self._history) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:  # torn or empty line
                    continue
                if isinstance(record, dict) and record.get("step", 0) <= after_step:
                    keep.append(json.dumps(record) + "\n")
        write_atomic(self._history, lambda f: f.write("".join(keep).encode()))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
