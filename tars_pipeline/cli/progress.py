"""Progress of a command's runs, on stderr: a `rich` spinner with the elapsed time on a
terminal, one plain line when a step starts and one when it ends everywhere else (a log
file, a pipe, CI), nothing with -q.

Why the terminal's console writes to its own copy of stderr: the runs execute in this
process, and for the length of a step Dagster points file descriptors 1 and 2 at the
step's compute log (the UI's "stdout/stderr" tabs). The spinner, drawn ten times a second,
must reach the terminal and not that log. Lines the step prints to `sys.stderr` (the
Prometheus source's "… day 3: latency_p99 (6/12)") go through rich and appear above the
spinner.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


def _is_terminal_fd(stream: TextIO) -> bool:
    """A real terminal behind a real file descriptor (not just `isatty()` saying so)."""
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


class Progress:
    """Start and end of each step a command runs.

    `enabled=False` (-q, or a caller that prints its own) shows nothing. Otherwise a
    terminal gets rich's spinner, and anything else plain lines:
    `… v1.0.1 day 3/7: kpi_samples, anomaly_events, daily_summary` and
    `✓ v1.0.1 day 3/7: … (1.2 s)`.
    """

    def __init__(
        self, enabled: bool | None = None, *, color: bool = True, stream: TextIO | None = None
    ):
        self.enabled = True if enabled is None else enabled
        self.color = color
        self.stream = stream
        self._console: Any = None

    @property
    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    @property
    def terminal(self) -> bool:
        """Whether progress goes to a terminal (then steps may add their own lines)."""
        return self.enabled and self._out.isatty()

    def step(self, message: str) -> None:
        """One plain progress line (kept for callers of the first API)."""
        if self.enabled:
            print(f"… {message}", file=self._out, flush=True)

    def _rich_console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            out = self._out
            own = os.fdopen(
                os.dup(out.fileno()), "w", buffering=1, encoding="utf-8", errors="replace"
            )
            self._console = Console(file=own, no_color=not self.color, highlight=False)
        return self._console

    @contextmanager
    def task(self, label: str) -> Iterator[None]:
        """Show `label` while the block runs, then its outcome and duration."""
        if not self.enabled:
            yield
            return
        started = time.monotonic()
        if self.terminal and _is_terminal_fd(self._out):
            with self._rich_task(label, started):
                yield
            return
        print(f"… {label}", file=self._out, flush=True)
        try:
            yield
        except BaseException:
            print(f"✗ {label} ({time.monotonic() - started:.1f} s)", file=self._out, flush=True)
            raise
        print(f"✓ {label} ({time.monotonic() - started:.1f} s)", file=self._out, flush=True)

    @contextmanager
    def _rich_task(self, label: str, started: float) -> Iterator[None]:
        from rich.markup import escape
        from rich.progress import Progress as Bar
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        console = self._rich_console()
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        shown = escape(label)
        try:
            with Bar(*columns, console=console, transient=True, redirect_stdout=False) as bar:
                bar.add_task(shown, total=None)
                yield
        except BaseException:
            console.print(f"[red]✗[/] {shown} [dim]({time.monotonic() - started:.1f} s)[/]")
            raise
        console.print(f"[green]✓[/] {shown} [dim]({time.monotonic() - started:.1f} s)[/]")
