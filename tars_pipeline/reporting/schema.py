"""The JSON contract: load the shipped JSON Schemas and validate outputs against them.

Automation (the seed's GitHub-issue and cost-dashboard snippets, Slack bots, dashboards)
reads our JSON files by key. Each output has a draft 2020-12 schema in
`tars_pipeline/schemas/`, shipped in the package so a consumer can validate what it reads
with the same file we test against. The retrospective asset validates its model before it
writes anything, so a contract break fails the run instead of reaching a consumer.

JSON has no NaN or Infinity, and a JSON Schema validator fed Python floats would accept
them as numbers, so `schema_errors` also rejects non-finite floats explicitly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_NAMES: tuple[str, ...] = (
    "ga_kpi_summary",
    "day_summary",
    "anomaly_events",
    "regression_summary",
    "retrospective",
)

# Output file name -> schema name (the seed names the files; day files share one schema).
_FILE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^ga_kpi_summary\.json$"), "ga_kpi_summary"),
    (re.compile(r"^day_\d{2}_summary\.json$"), "day_summary"),
    (re.compile(r"^anomaly_events\.json$"), "anomaly_events"),
    (re.compile(r"^regression_summary\.json$"), "regression_summary"),
    (re.compile(r"^GA_\d+DAY_RETROSPECTIVE\.json$"), "retrospective"),
)

# How many problems a failure message lists before "... and N more".
_MAX_REPORTED = 8


class SchemaValidationError(ValueError):
    """An output does not match its JSON Schema; the message lists where and why."""

    def __init__(self, schema_name: str, problems: list[str]):
        self.schema_name = schema_name
        self.problems = problems
        shown = problems[:_MAX_REPORTED]
        more = len(problems) - len(shown)
        lines = "\n  ".join(shown + ([f"... and {more} more"] if more else []))
        super().__init__(
            f"output does not match {schema_name}.schema.json "
            f"({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n  {lines}"
        )


def schema_path(name: str) -> Path:
    """Where the packaged schema file is (for docs and for consumers to copy)."""
    return Path(str(resources.files("tars_pipeline") / "schemas" / f"{name}.schema.json"))


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema `name` (one of SCHEMA_NAMES) as shipped in the package."""
    if name not in SCHEMA_NAMES:
        raise KeyError(f"no JSON Schema named {name!r} (known: {', '.join(SCHEMA_NAMES)})")
    text = (resources.files("tars_pipeline") / "schemas" / f"{name}.schema.json").read_text(
        encoding="utf-8"
    )
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        load_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def schema_for_file(filename: str) -> str:
    """The schema name for an output file name (`day_03_summary.json` -> `day_summary`)."""
    for pattern, name in _FILE_PATTERNS:
        if pattern.match(filename):
            return name
    raise KeyError(f"{filename!r} is not a TARS JSON output with a schema")


def _json_path(parts: Iterator[Any] | list[Any]) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def non_finite_numbers(value: Any, path: str = "$") -> Iterator[str]:
    """JSON paths of NaN/Infinity floats anywhere in `value`."""
    if isinstance(value, float):
        if not math.isfinite(value):
            yield path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from non_finite_numbers(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from non_finite_numbers(item, f"{path}[{index}]")


def schema_errors(name: str, document: Any) -> list[str]:
    """Every problem of `document` against schema `name`, as "json.path: message" lines."""
    problems = [f"{path}: {'NaN/Infinity is not JSON'}" for path in non_finite_numbers(document)]
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    for error in errors:
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        problems.append(f"{_json_path(list(error.absolute_path))}: {message}")
    return problems


def validate_document(name: str, document: Any) -> None:
    """Raise SchemaValidationError unless `document` matches schema `name`."""
    problems = schema_errors(name, document)
    if problems:
        raise SchemaValidationError(name, problems)


def validate_file(path: str | Path) -> str:
    """Validate one output file against the schema its name implies; return that name."""
    path = Path(path)
    name = schema_for_file(path.name)
    validate_document(name, json.loads(path.read_text(encoding="utf-8")))
    return name
