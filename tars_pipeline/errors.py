"""The one exception type for mistakes a user can fix.

Every message names the file or setting at fault and what to do about it; the CLIs print
it without a traceback and exit with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class TarsUserError(Exception):
    """A problem in the user's input (config, data files, arguments) with its remedy."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, remedy: str | None = None):
        self.where = where
        self.remedy = remedy
        parts = [f"{where}: {message}" if where else message]
        if remedy:
            parts.append(f"  -> {remedy}")
        super().__init__("\n".join(parts))


class RunFailedError(Exception):
    """A Dagster run failed for a reason that is not a user error (the CLIs exit 1)."""


def exit_status(body: Callable[[], int]) -> int:
    """`body()`'s exit status, with a user error as one line on stderr and its exit code
    (2), and Ctrl-C as "interrupted" and 130: no traceback as the interface."""
    try:
        return body()
    except TarsUserError as error:
        print(f"error: {error}", file=sys.stderr)
        return TarsUserError.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
