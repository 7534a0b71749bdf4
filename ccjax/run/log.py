"""What a run writes as it goes: TensorBoard scalars and a JSON-lines history.

Only process 0 writes; on the others every method is a no-op.
"""

from __future__ import annotations

import json
import os

import jax

from ccjax.run.rundir import HISTORY, TENSORBOARD_DIR


class RunLog:
    def __init__(self, workdir: str):
        self.enabled = jax.process_index() == 0
        self._tb = None
        self._history = os.path.join(workdir, HISTORY)
        self._tb_dir = os.path.join(workdir, TENSORBOARD_DIR)

    def _writer(self):
        if self._tb is None:
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
        with open(self._history, "a") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_history(self, after_step: int) -> None:
        """On resume: drop records written after the checkpoint we resume from."""
        if not self.enabled or not os.path.exists(self._history):
            return
        with open(self._history) as f:
            keep = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= after_step]
        tmp = self._history + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(keep)
        os.replace(tmp, self._history)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
