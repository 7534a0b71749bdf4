"""`python -m ccjax --help | head -1`: output into a pipe whose reader has gone ends quietly.

Every command's --help (and the top-level one, and the kept `python -m ccjax.main`) is run with its stdout the
write end of a real pipe whose read end is already closed, as after `head -1` exits: the write fails
with EPIPE. Each must exit 0 or 141 (128 + SIGPIPE, a shell's status for it) with nothing on stderr.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from ccjax.__main__ import COMMANDS
from test_cli import ROOT, env

QUIET_EXITS = (0, 141, -13)  # -13: killed by SIGPIPE, the other conventional ending


def test_help_into_a_closed_pipe_exits_quietly_for_every_command():
    # Catches: a print of --help (or the interpreter's final flush) whose BrokenPipeError ends in a traceback
    # and exit 1 / "Exception ignored ... BrokenPipeError" and exit 120.
    runs = [[sys.executable, "-m", "ccjax", "--help"], [sys.executable, "-m", "ccjax.main", "--help"]]  # ccjax.main: kept
    runs += [[sys.executable, "-m", "ccjax", name, "--help"] for name in COMMANDS]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: EPIPE on the first write, every time
    try:
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=write_end, stderr=subprocess.PIPE, text=True)
                 for cmd in runs]  # all at once: the suite pays for one interpreter start, not twelve
        results = [(cmd[2:], p.wait(timeout=120), p.stderr.read()) for cmd, p in zip(runs, procs)]
    finally:
        os.close(write_end)
    for args, rc, stderr in results:
        assert rc in QUIET_EXITS and stderr == "", (args, rc, stderr)


def test_a_broken_pipe_that_is_not_stdout_is_not_swallowed(monkeypatch):
    # Catches: a handler that turns every BrokenPipeError (a download's socket, a child's stdin) into a
    # silent exit, hiding a real failure.
    from ccjax.cli.closed_pipe import quiet_when_stdout_closes

    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb"), io.TextIOWrapper(os.fdopen(write_end, "wb")) as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)  # an open pipe: its reader is still there
        with pytest.raises(BrokenPipeError, match="a socket"):
            with quiet_when_stdout_closes():
                raise BrokenPipeError("a socket, not stdout")
        monkeypatch.undo()
