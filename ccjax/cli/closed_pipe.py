"""A command whose output goes into a pipe that closed early (`python -m ccjax --help | head -1`)
ends quietly, as `cat` or `git` do: no BrokenPipeError traceback, exit status 141 (128 + SIGPIPE, what a
shell reports for a process SIGPIPE ended)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys

EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE


@contextlib.contextmanager
def quiet_when_stdout_closes():
    """Runs the block, then flushes stdout; a BrokenPipeError because stdout's reader is gone (raised by a
    print, or by that flush) exits with EXIT_CLOSED_PIPE and nothing printed. Any other BrokenPipeError
    (a socket, a child's pipe) is re-raised."""
    try:
        try:
            yield
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        # The interpreter flushes stdout again at exit: point it at /dev/null so that flush is silent too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        sys.exit(EXIT_CLOSED_PIPE)


def _stdout_reader_gone() -> bool:
    """True when stdout is a pipe or socket whose reading end is closed (poll reports an error on it)."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True  # stdout cannot even be asked: it is the broken stream
