"""Ctrl-C that sticks: the command remembers it was pressed, even where it was swallowed.

Python raises KeyboardInterrupt at whatever bytecode runs when SIGINT arrives. Inside a
finaliser, a weakref callback or a library's `except BaseException` the exception is lost,
and the command would go on to its next run. The handler installed for the length of a
command therefore also sets a flag, which the runner reads before and after every run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_pressed = {"ctrl_c": False}


def ctrl_c_pressed() -> bool:
    """Whether Ctrl-C arrived since the command began (inside `remember_ctrl_c`)."""
    return _pressed["ctrl_c"]


@contextmanager
def remember_ctrl_c() -> Iterator[None]:
    """Raise KeyboardInterrupt on Ctrl-C, as Python does, and remember it. Left alone off
    the main thread (no handler can be set there) and where SIGINT is ignored (a job a
    non-interactive shell started in the background must stay deaf to it)."""
    _pressed["ctrl_c"] = False
    try:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)
        if previous == signal.SIG_IGN:
            yield
            return
        with _handler(previous):
            yield
    finally:
        # The flag belongs to this command: a later command (or a library call that runs
        # the runner in the same process, as tests and notebooks do) starts unpressed.
        _pressed["ctrl_c"] = False


@contextmanager
def _handler(previous: signal.Handlers | object) -> Iterator[None]:
    """Python's own behaviour (KeyboardInterrupt), plus the flag, until the block ends."""

    def on_ctrl_c(_signo: int, _frame: FrameType | None) -> None:
        _pressed["ctrl_c"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)  # type: ignore[arg-type]
