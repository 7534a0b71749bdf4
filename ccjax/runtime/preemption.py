"""SIGTERM handling: finish the current step, save, exit 0.

SLURM and preemptible VMs send SIGTERM before killing a job. The handler only
sets a flag; the training loop checks it at each step boundary, saves a
checkpoint there and returns, so the next launch resumes from that step.
"""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """A flag set by SIGTERM (or SIGINT when asked), read at step boundaries."""

    def __init__(self, signals=(signal.SIGTERM,)):
        self._event = threading.Event()
        self._previous = {}
        self.signal_name = None
        if threading.current_thread() is threading.main_thread():
            for sig in signals:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def restore(self) -> None:
        """Puts back the handlers that were there before."""
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
        self._previous = {}
