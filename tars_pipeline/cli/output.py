"""The conventions every tars-* command shares: its options, where its text goes, its exit
statuses and its JSON result.

    --version        the seed's version line (with --json, as a JSON object)
    --json           the command's result as ONE JSON object on stdout; every human line
                     goes to stderr instead. On an error the object carries `error`.
    -q, --quiet      warnings and errors only: no progress, no result lines, no notes
    -v, --verbose    also run ids, each step's time, the checks that passed; -vv adds
                     the runs' own Dagster log (INFO) on stderr
    --no-color       no colour (so does a non-empty NO_COLOR, https://no-color.org, and
                     any output that is not a terminal)

Exit statuses (docs/cli.md): 0 ok; 1 a run failed or TARS hit a bug; 2 bad input (an
argument, the config, a data file, a metric source that cannot be reached or refuses a
query); 3 the verdict reached --fail-on; 130 interrupted (Ctrl-C).

Imports the standard library only: `--help` and `--version` must stay fast.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

from tars_pipeline import VERSION_LINE, __version__
from tars_pipeline.cli.interrupts import ctrl_c_pressed, remember_ctrl_c
from tars_pipeline.errors import RunFailedError, TarsUserError

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_VERDICT = 3
EXIT_INTERRUPTED = 130
EXIT_MEANINGS = {
    EXIT_OK: "ok",
    EXIT_RUN_FAILED: "run failed",
    EXIT_USER_ERROR: "bad input",
    EXIT_VERDICT: "verdict reached --fail-on",
    EXIT_INTERRUPTED: "interrupted",
}
EXIT_EPILOG = (
    "Output: --json prints the result as one JSON object on stdout (human text on stderr); "
    "-q warnings and errors only, -v more detail; --no-color or NO_COLOR=1 for plain text. "
    "Exit status: 0 ok, 1 run failed, 2 bad input, 3 the verdict reached --fail-on, "
    "130 interrupted (docs/cli.md)."
)
DEBUG_ENV_VAR = "TARS_DEBUG"
NO_COLOR_ENV_VAR = "NO_COLOR"

# Control characters (ESC above all) are dropped from what a label could put on a terminal;
# where colour is on, the colour sequences `paint` adds are kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_BUT_COLOUR = re.compile(r"\x1b(?!\[[0-9;]*m)|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f]")
_STYLES = {"red": "31", "yellow": "33", "green": "32", "bold": "1", "dim": "2"}
SEVERITY_STYLE = {"ERROR": "red", "WARN": "yellow", "fail": "red", "warn": "yellow",
                  "pass": "green"}  # fmt: skip

_json_requested = False  # set from argv before parsing: argparse's own errors honour it


def emit_json(document: dict[str, Any], stream: TextIO | None = None) -> None:
    """One JSON object, one line, on stdout."""
    out = stream or sys.stdout
    out.write(json.dumps(document, ensure_ascii=False, allow_nan=False, default=str) + "\n")
    out.flush()


class Parser(argparse.ArgumentParser):
    """argparse with the conventions: a usage error still answers --json."""

    def error(self, message: str) -> NoReturn:
        if _json_requested:
            emit_json(
                {
                    "command": self.prog.split()[0],
                    "version": __version__,
                    "ok": False,
                    "exit_code": EXIT_USER_ERROR,
                    "outcome": EXIT_MEANINGS[EXIT_USER_ERROR],
                    "error": {"kind": "usage", "message": message},
                }
            )
        super().error(message)


class _Version(argparse.Action):
    """--version: the seed's line; with --json, an object with it (`version_line`)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any) -> NoReturn:
        if _json_requested:
            emit_json(
                {
                    "command": parser.prog,
                    "version": __version__,
                    "version_line": VERSION_LINE,
                    "ok": True,
                    "exit_code": EXIT_OK,
                    "outcome": EXIT_MEANINGS[EXIT_OK],
                }
            )
        else:
            print(VERSION_LINE)
        parser.exit(EXIT_OK)


def add_conventions(parser: argparse.ArgumentParser, *, subcommand: bool = False) -> None:
    """--version (on the top parser), --json, -q/-v and --no-color. On a subcommand the
    options keep what was given before it (`tars-store --json migrate`)."""
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if subcommand else {}
    if not subcommand:
        parser.add_argument("--version", action=_Version)
    group = parser.add_argument_group("output")
    group.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON object on stdout (human text goes to stderr)",
        **default,
    )
    loudness = group.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="warnings and errors only (no progress, no result lines)",
        **default,
    )
    loudness.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="more detail: run ids, step times, passed checks; -vv adds the runs' Dagster log",
        **({"default": argparse.SUPPRESS} if subcommand else {"default": 0}),
    )
    group.add_argument(
        "--no-color",
        action="store_true",
        help=f"no colour (also when ${NO_COLOR_ENV_VAR} is set, or output is not a terminal)",
        **default,
    )


def _printable(text: object, *, colour: bool = False) -> str:
    return (_CONTROL_BUT_COLOUR if colour else _CONTROL).sub("", str(text))


def days_text(days: Iterable[int]) -> str:
    """`day 2`, `days 1-7`, `days 1, 3-5`: consecutive days as ranges."""
    ordered = sorted(set(days))
    if not ordered:
        return "no day"
    ranges: list[str] = []
    start = previous = ordered[0]
    for day in [*ordered[1:], None]:
        if day is not None and day == previous + 1:
            previous = day
            continue
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
        if day is not None:
            start = previous = day
    return ("day " if len(ordered) == 1 else "days ") + ", ".join(ranges)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


@dataclass(frozen=True)
class Finding:
    """One line of a check that did not pass: `WARN drift_within_threshold: <text>`."""

    severity: str  # ERROR or WARN
    check: str
    text: str


def group_findings(by_day: Iterable[tuple[int, Finding]]) -> list[tuple[Finding, list[int]]]:
    """The same finding on several days once, with its days; ERROR first, then in the
    order first seen."""
    days: dict[Finding, list[int]] = {}
    for day, finding in by_day:
        days.setdefault(finding, [])
        if day not in days[finding]:
            days[finding].append(day)
    grouped = list(days.items())
    grouped.sort(key=lambda item: item[0].severity != "ERROR")
    return grouped


class Output:
    """Where a command's text goes, by the conventions above; collects its JSON result."""

    def __init__(
        self,
        command: str,
        *,
        json_mode: bool = False,
        verbosity: int = 0,
        no_color: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ):
        self.command = command
        self.json_mode = json_mode
        self.verbosity = verbosity  # -1 quiet, 0 normal, 1 -v, 2 -vv
        self._stdout = stdout
        self._stderr = stderr
        self.no_color = no_color or bool(os.environ.get(NO_COLOR_ENV_VAR))
        self.result: dict[str, Any] = {"command": command, "version": __version__}
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self._saved_stdout_fd: int | None = None

    @classmethod
    def from_args(cls, command: str, args: argparse.Namespace) -> Output:
        quiet = getattr(args, "quiet", False)
        verbosity = -1 if quiet else int(getattr(args, "verbose", 0) or 0)
        return cls(
            command,
            json_mode=getattr(args, "json", False),
            verbosity=verbosity,
            no_color=getattr(args, "no_color", False),
        )

    # --- streams --------------------------------------------------------------------------

    @property
    def stderr(self) -> TextIO:
        return self._stderr or sys.stderr

    @property
    def human(self) -> TextIO:
        """Result lines: stdout, or stderr when stdout carries the JSON."""
        return self.stderr if self.json_mode else (self._stdout or sys.stdout)

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    def colors(self, stream: TextIO) -> bool:
        if self.no_color or os.environ.get("TERM") == "dumb":
            return False
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False

    def paint(self, text: str, style: str | None, stream: TextIO | None = None) -> str:
        if not style or not self.colors(stream or self.human):
            return text
        codes = ";".join(_STYLES[part] for part in style.split())
        return f"\x1b[{codes}m{text}\x1b[0m"

    def severity(self, word: str, stream: TextIO | None = None) -> str:
        return self.paint(word, SEVERITY_STYLE.get(word), stream)

    def _write(self, stream: TextIO, text: str) -> None:
        print(_printable(text, colour=self.colors(stream)), file=stream, flush=True)

    # --- lines ----------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        """A result line (not with -q)."""
        if not self.quiet:
            self._write(self.human, text)

    def detail(self, text: str) -> None:
        """A line for -v only."""
        if self.verbosity >= 1:
            self._write(self.human, text)

    def note(self, text: str) -> None:
        """Something worth knowing that is not a problem: stderr, not with -q."""
        self.notes.append(_printable(text))
        if not self.quiet:
            self._write(self.stderr, f"{self.paint('note:', 'dim', self.stderr)} {text}")

    def warning(self, text: str) -> None:
        """A problem that did not stop the command: stderr, also with -q."""
        self.warnings.append(_printable(text))
        self._write(self.stderr, f"{self.paint('warning:', 'yellow', self.stderr)} {text}")

    def error(self, message: str, *, kind: str, **fields: Any) -> None:
        """The error that stops the command: stderr always, and `error` in the JSON."""
        self._write(self.stderr, f"{self.paint('error:', 'red bold', self.stderr)} {message}")
        self.result["error"] = {
            "kind": kind,
            "message": message,
            **{key: value for key, value in fields.items() if value is not None},
        }

    def record(self, **fields: Any) -> None:
        """Fields of the JSON result."""
        self.result.update(fields)

    # --- the JSON channel -----------------------------------------------------------------

    def hold_stdout(self) -> None:
        """With --json, point file descriptor 1 at stderr until `finish`: whatever a library
        or a subprocess prints cannot land in the JSON."""
        if not self.json_mode or self._stdout is not None:
            return
        try:
            if sys.stdout.fileno() != 1:
                return
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return
        sys.stdout.flush()
        self._saved_stdout_fd = os.dup(1)
        os.dup2(2, 1)

    def _release_stdout(self) -> None:
        if self._saved_stdout_fd is not None:
            sys.stdout.flush()
            os.dup2(self._saved_stdout_fd, 1)
            os.close(self._saved_stdout_fd)
            self._saved_stdout_fd = None

    def finish(self, exit_code: int) -> int:
        """The exit status; with --json, the result object on stdout first."""
        self._release_stdout()
        if self.json_mode:
            document = {
                **self.result,
                "ok": exit_code == EXIT_OK,
                "exit_code": exit_code,
                "outcome": EXIT_MEANINGS.get(exit_code, "failed"),
                "warnings": self.warnings,
                "notes": self.notes,
            }
            emit_json(document, self._stdout)
        return exit_code


def run(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, Output], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse `argv`, run `body`, and turn what it raises into the documented exit status:
    a user error (TarsUserError) 2, a failed run (RunFailedError) 1, Ctrl-C 130, anything
    else 1 as "a TARS bug" (the traceback with TARS_DEBUG=1)."""
    global _json_requested
    arguments = list(sys.argv[1:] if argv is None else argv)
    _json_requested = "--json" in arguments
    args = parser.parse_args(arguments)
    out = Output.from_args(parser.prog, args)
    out.hold_stdout()
    try:
        with remember_ctrl_c():
            code = body(args, out)
            if ctrl_c_pressed():  # pressed, and swallowed where it landed: still a stop
                raise KeyboardInterrupt
    except TarsUserError as error:
        out.error(str(error), kind="user_error", where=error.where, remedy=error.remedy)
        code = EXIT_USER_ERROR
    except RunFailedError as error:
        out.error(str(error), kind="run_failed")
        code = EXIT_RUN_FAILED
    except KeyboardInterrupt as error:
        out.error(f"interrupted{f' ({error})' if str(error) else ''}", kind="interrupted")
        code = EXIT_INTERRUPTED
    except Exception as error:  # a TARS bug: one line, the traceback on request
        if os.environ.get(DEBUG_ENV_VAR):
            out._release_stdout()
            raise
        out.error(
            f"unexpected {type(error).__name__}: {error}\n"
            f"  -> this is a TARS bug: run again with {DEBUG_ENV_VAR}=1 for the traceback "
            "and report it",
            kind="bug",
        )
        code = EXIT_RUN_FAILED
    return out.finish(code)
