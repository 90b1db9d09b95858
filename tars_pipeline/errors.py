"""The one exception type for mistakes a user can fix.

Every message names the file or setting at fault and what to do about it; the CLIs print
it without a traceback and exit with status 2.
"""

from __future__ import annotations


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
