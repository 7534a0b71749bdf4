"""Errors a user can cause, and the one-line reporting of them at the command line.

Parsing flags and loading config files (which fail in their own ways) is ccjax/cli/flags.py.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


class UserError(Exception):
    """Something the user can fix (bad config value, missing data, ...).

    The message is one line that says what is wrong and what to do.
    """


def exit_on_user_error(fn: F) -> F:
    """Wraps a command-line `main`: a UserError becomes one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            print(f"ccjax: error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
