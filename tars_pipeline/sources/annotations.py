"""Where change annotations come from: a file, a Prometheus series, GitHub.

Three adapters, each returning `judge.annotations.Annotation`s (UTC times, one-line
titles), which `judge.annotations.annotations_before` matches to findings:

- **A file** (YAML or JSON) the team writes or its deploy tooling appends to. Every
  mistake is a `TarsUserError` naming the file, the line, the entry (index and title)
  and the field, with the fix. Times must carry their UTC offset: `14:29` alone is a
  different moment in every timezone.
- **A Prometheus series**, through the source's own `PrometheusClient` (auth, TLS,
  retries and credential scrubbing as for the KPIs). `mode: changes` reads a level (a
  deployment's observed generation, a config hash) and makes one annotation wherever a
  series' value changes; `mode: firing` reads a condition (`ALERTS{alertstate="firing"}`,
  `changes(...[2m]) > 0`) and makes one wherever a series starts to be present.
- **GitHub deployments and releases**, through the notifier's `HttpClient` (timeouts,
  retries, rate limits, no redirects), the token sent only to the API's origin and
  scrubbed from every error and every annotation.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlencode, urlsplit

import numpy as np
import pandas as pd
import yaml

from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.annotations import KINDS, MAX_DETAIL_CHARS, Annotation, as_utc, clean_text
from tars_pipeline.notify.github import API_VERSION
from tars_pipeline.notify.http import HttpClient, HttpError, redact_url, scrub
from tars_pipeline.sources.prometheus import (
    PrometheusClient,
    merge_chunks,
    parse_values,
    range_chunks,
)

Warn = Callable[[str], None]

# --- the file -------------------------------------------------------------------------------

FILE_FIELDS = ("time", "kind", "title", "service", "end", "url", "detail")
REQUIRED_FIELDS = ("time", "kind", "title")
TOP_LEVEL_KEYS = ("annotations",)
TIME_EXAMPLE = "2026-03-05T14:29:00Z or 2026-03-05T09:29:00-05:00"
FILE_EXAMPLE = (
    "annotations:\n  - time: 2026-03-05T14:29:00Z\n    kind: deploy\n    title: checkout@4f2a"
)


class _FieldError(ValueError):
    """One field's problem and its fix, before the file and entry are known."""

    def __init__(self, message: str, remedy: str):
        super().__init__(message)
        self.remedy = remedy


class _TextTimesLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a time stays the text that was written.

    The stock loader turns `2026-03-05 14:29:00` (no offset) into a naive datetime and
    `2026-03-05` into a date, losing what was written; the offset rule is checked on text.
    """


_TextTimesLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Entry(NamedTuple):
    raw: Any
    line: int | None
    duplicates: tuple[str, ...]


class _JsonObject(dict):
    """A JSON object that remembers the keys it was given twice (json keeps the last)."""

    duplicates: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    result = _JsonObject(pairs)
    keys = [key for key, _ in pairs]
    result.duplicates = tuple(sorted({key for key in keys if keys.count(key) > 1}))
    return result


def _mapping_duplicates(node: yaml.Node) -> tuple[str, ...]:
    if not isinstance(node, yaml.MappingNode):
        return ()
    keys = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)]
    return tuple(sorted({key for key in keys if keys.count(key) > 1}))


def _read_yaml(text: str, path: Path) -> tuple[Any, list[_Entry] | None]:
    loader = _TextTimesLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        data = loader.construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise TarsUserError(
            f"not valid YAML: {problem}",
            where=f"{path}:{mark.line + 1}" if mark else str(path),
            remedy="fix the syntax there; quote a title that contains ': ' or starts with "
            "a special character",
        ) from None
    finally:
        loader.dispose()
    duplicated = _mapping_duplicates(node)
    if duplicated:
        raise TarsUserError(
            f"top-level key(s) {', '.join(duplicated)} given twice",
            where=str(path),
            remedy="keep one `annotations:` list",
        )
    entries = None
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == "annotations" and isinstance(
                value, yaml.SequenceNode
            ):
                entries = [
                    _Entry(None, item.start_mark.line + 1, _mapping_duplicates(item))
                    for item in value.value
                ]
    return data, entries


def _read_json(text: str, path: Path) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as error:
        raise TarsUserError(
            f"not valid JSON: {error.msg} (column {error.colno})",
            where=f"{path}:{error.lineno}",
            remedy="fix the syntax there (a trailing comma, a missing quote)",
        ) from None
    duplicated = getattr(data, "duplicates", ())
    if duplicated:
        raise TarsUserError(
            f"top-level key(s) {', '.join(duplicated)} given twice",
            where=str(path),
            remedy="keep one `annotations` list",
        )
    return data


def _read_entries(path: Path) -> list[_Entry]:
    """The file's `annotations` list as raw entries, each with its line when known."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise TarsUserError(
            f"unknown annotation file type {path.suffix or '(none)'!r}",
            where=str(path),
            remedy="name it *.yaml, *.yml or *.json",
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise TarsUserError(
            "annotation file not found",
            where=str(path),
            remedy="create it, or fix the path (a relative path is taken from tars.yaml's folder)",
        ) from None
    except IsADirectoryError:
        raise TarsUserError(
            "is a folder, not an annotation file", where=str(path), remedy="name the file"
        ) from None
    except UnicodeDecodeError as error:
        raise TarsUserError(
            f"not UTF-8 text (byte {error.start})",
            where=str(path),
            remedy="save the file as UTF-8",
        ) from None
    except OSError as error:
        raise TarsUserError(
            f"cannot read the file ({error.strerror})",
            where=str(path),
            remedy="check its permissions",
        ) from None
    if suffix == ".json":
        data, lines = _read_json(text, path), None
    else:
        data, lines = _read_yaml(text, path)
    if data is None:
        raise TarsUserError(
            "the file is empty",
            where=str(path),
            remedy="write `annotations: []` for none yet, or a list such as\n" + FILE_EXAMPLE,
        )
    if not isinstance(data, Mapping):
        raise TarsUserError(
            f"expected a mapping with an `annotations` list, got {_type_name(data)}",
            where=str(path),
            remedy="start the file with `annotations:`, e.g.\n" + FILE_EXAMPLE,
        )
    unknown = sorted(str(key) for key in data if key not in TOP_LEVEL_KEYS)
    if unknown:
        raise TarsUserError(
            f"unknown top-level key(s) {', '.join(unknown)}",
            where=str(path),
            remedy="the file holds one key, `annotations`, a list of entries",
        )
    if "annotations" not in data:
        raise TarsUserError(
            "no `annotations` list", where=str(path), remedy="e.g.\n" + FILE_EXAMPLE
        )
    raw = data["annotations"]
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TarsUserError(
            f"`annotations` must be a list of entries, got {_type_name(raw)}",
            where=f"{path} annotations",
            remedy="write each entry as a list item starting with `- time: ...`",
        )
    if lines is None:
        return [_Entry(item, None, getattr(item, "duplicates", ())) for item in raw]
    return [entry._replace(raw=item) for entry, item in zip(lines, raw, strict=True)]


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text ({clean_text(value, 40)!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def parse_time(value: Any) -> pd.Timestamp:
    """An ISO-8601 time with its UTC offset, as a UTC Timestamp; `_FieldError` otherwise."""
    if not isinstance(value, str):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        hint = (
            "a number is ambiguous (seconds? milliseconds? which zone?)"
            if number and np.isfinite(value)
            else "not a time"
        )
        raise _FieldError(
            f"expected an ISO-8601 time as text, got {_type_name(value)}: {hint}",
            f"write it as {TIME_EXAMPLE}",
        )
    text = value.strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _FieldError(
            f"{clean_text(text, 60)!r} is not an ISO-8601 time", f"write it as {TIME_EXAMPLE}"
        ) from None
    if moment.tzinfo is None:
        raise _FieldError(
            f"{text!r} has no UTC offset, so it names a different moment in every timezone",
            f"add the offset: {text}Z for UTC, or e.g. {text}-05:00",
        )
    try:
        return as_utc(moment)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise _FieldError(
            f"{text!r} is outside the supported years (1677-2262)", "check the year"
        ) from None


def _text_field(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise _FieldError(
            f"expected text, got {_type_name(value)}",
            f'quote it: {name}: "{value}" (YAML reads 1.10 as a number and yes/no as booleans)',
        )
    text = clean_text(value, limit)
    if not text:
        raise _FieldError(f"{name} is empty", f"write a {name}, or leave the field out")
    return text


def _services(value: Any) -> list[str | None]:
    if value is None:
        return [None]
    if isinstance(value, list):
        if not value:
            raise _FieldError(
                "an empty list of services", "leave `service` out to mean every service"
            )
        return [_text_field(item, "service", 200) for item in value]
    return [_text_field(value, "service", 200)]


def check_link(value: Any) -> str:
    """An http(s) URL without credentials, for a report's link."""
    text = _text_field(value, "url", 2000)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _FieldError(
            f"{clean_text(text, 60)!r} is not an http(s) URL",
            "write the full address, e.g. https://ci.example.com/deploys/4f2a",
        )
    if parts.username or parts.password:
        raise _FieldError(
            "the URL carries credentials, which would be printed in every report",
            "link to the page without user:password@",
        )
    return text


def _kind(value: Any) -> str:
    if isinstance(value, str) and value in KINDS:
        return value
    if not isinstance(value, str):
        raise _FieldError(
            f"the kind must be text, got {_type_name(value)}", f"one of: {', '.join(KINDS)}"
        )
    close = difflib.get_close_matches(value.lower().replace("-", "_"), KINDS, n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    raise _FieldError(f"unknown kind {value!r}", f"{suggestion}one of: {', '.join(KINDS)}")


def _entry_where(path: Path, entry: _Entry, index: int) -> Callable[[str | None], str]:
    title = entry.raw.get("title") if isinstance(entry.raw, Mapping) else None
    named = f" ({clean_text(title, 60)!r})" if isinstance(title, str) and title.strip() else ""
    place = f"{path}:{entry.line}" if entry.line else str(path)

    def where(field: str | None) -> str:
        return f"{place} annotations[{index}]{named}" + (f".{field}" if field else "")

    return where


def _parse_entry(path: Path, entry: _Entry, index: int) -> list[Annotation]:
    where = _entry_where(path, entry, index)
    raw = entry.raw
    if not isinstance(raw, Mapping):
        raise TarsUserError(
            f"an entry must be a mapping of fields, got {_type_name(raw)}",
            where=where(None),
            remedy="write it as `- time: ...` with kind and title below it",
        )
    unknown = [str(key) for key in raw if key not in FILE_FIELDS]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, FILE_FIELDS, n=1)
        raise TarsUserError(
            f"unknown field {name!r}",
            where=where(name),
            remedy=(f"did you mean {close[0]!r}? " if close else "")
            + f"the fields are: {', '.join(FILE_FIELDS)}",
        )
    if entry.duplicates:
        raise TarsUserError(
            f"field {entry.duplicates[0]!r} is given twice",
            where=where(entry.duplicates[0]),
            remedy="keep one of them",
        )
    for name in REQUIRED_FIELDS:
        if name not in raw or raw[name] is None:
            raise TarsUserError(
                f"the required field {name!r} is missing",
                where=where(name),
                remedy=f"every entry needs {', '.join(REQUIRED_FIELDS)}; e.g.\n" + FILE_EXAMPLE,
            )
    field = "time"
    try:
        ts = parse_time(raw["time"])
        field = "kind"
        kind = _kind(raw["kind"])
        field = "title"
        title = _text_field(raw["title"], "title", 10_000)
        field = "service"
        services = _services(raw.get("service"))
        field = "end"
        end = None if raw.get("end") is None else parse_time(raw["end"])
        if end is not None and end < ts:
            raise _FieldError(
                f"ends ({end.isoformat()}) before it begins ({ts.isoformat()})",
                "swap time and end, or fix the date",
            )
        field = "url"
        url = None if raw.get("url") is None else check_link(raw["url"])
        field = "detail"
        detail = (
            None
            if raw.get("detail") is None
            else _text_field(raw["detail"], "detail", MAX_DETAIL_CHARS)
        )
    except _FieldError as error:
        raise TarsUserError(str(error), where=where(field), remedy=error.remedy) from None
    return [
        Annotation(
            ts=ts,
            kind=kind,
            title=title,
            service=service,
            source="file",
            end=end,
            url=url,
            detail=detail,
        )
        for service in services
    ]


def load_annotation_file(path: Path | str, *, base_dir: Path | None = None) -> list[Annotation]:
    """The annotations of a YAML or JSON file, in time order.

    A relative `path` is taken from `base_dir` (tars.yaml's folder). An entry with a list
    of services becomes one annotation per service.
    """
    path = Path(path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    annotations = []
    for index, entry in enumerate(_read_entries(path)):
        annotations.extend(_parse_entry(path, entry, index))
    return sorted(annotations, key=lambda a: (a.ts, a.kind, a.title))


# --- Prometheus -------------------------------------------------------------------------------

Mode = Literal["changes", "firing"]
MODES: tuple[str, ...] = ("changes", "firing")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([a-zA-Z_][a-zA-Z0-9_]*)\}|[{}]")
TEMPLATE_VALUES = ("value", "previous")
"""Placeholders a title template has besides the series' labels."""


class SeriesEvent(NamedTuple):
    """One change in one series: when (epoch ms), until when (firing mode), the value."""

    ts_ms: int
    end_ms: int | None
    value: float
    previous: float | None


def title_placeholders(template: str, *, where: str = "title") -> list[str]:
    """The `{label}` names of a title template; `{{`/`}}` are literal braces.

    Only plain names: `{0}`, `{x.attr}` or `{x!r}` would let a template reach into Python's
    format machinery, and a stray brace is a typo.
    """
    if not isinstance(template, str) or not template.strip():
        raise TarsUserError(
            "the title template is empty",
            where=where,
            remedy='write one from the series\' labels, e.g. "{deployment} generation {value}"',
        )
    names = []
    for token in _TEMPLATE_TOKEN.finditer(template):
        if token.group(0) in ("{", "}"):
            raise TarsUserError(
                f"stray {token.group(0)!r} at character {token.start() + 1} of {template!r}",
                where=where,
                remedy="placeholders are {label_name}; write {{ or }} for a literal brace",
            )
        if token.group(1):
            names.append(token.group(1))
    return names


def render_title(template: str, values: Mapping[str, str]) -> str:
    """The template filled in; a label the series lacks reads '?'."""

    def fill(token: re.Match[str]) -> str:
        if token.group(1):
            return values.get(token.group(1), "?")
        return token.group(0)[0]

    return _TEMPLATE_TOKEN.sub(fill, template)


def _format_value(value: float | None) -> str:
    if value is None:
        return "none"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def series_events(
    stamps_ms: np.ndarray,
    values: np.ndarray,
    *,
    mode: Mode,
    first_ms: int,
    last_ms: int,
    step_ms: int,
) -> list[SeriesEvent]:
    """The changes in one series evaluated at first, first + step, ..., last.

    `changes`: each evaluation whose value differs from the series' previous finite
    value, and the first evaluation of a series that was not there at `first` (a new
    deployment, a new version label). NaN/Inf evaluations are skipped, so a scrape
    returning NaN once is not two changes.

    `firing`: the first evaluation of each run of evaluations where the series is present
    with a finite non-zero value (so `changes(x[2m])` works with or without `> 0`); a run
    already present at `first` began before the window and is left out. `end_ms` is the
    run's last evaluation, None when it is still present at `last`.
    """
    stamps = np.asarray(stamps_ms, dtype=np.int64)
    numbers = np.asarray(values, dtype=np.float64)
    if mode == "changes":
        finite = np.isfinite(numbers)
        stamps, numbers = stamps[finite], numbers[finite]
        if len(stamps) == 0:
            return []
        events = []
        if stamps[0] > first_ms:
            events.append(SeriesEvent(int(stamps[0]), None, float(numbers[0]), None))
        for index in np.flatnonzero(numbers[1:] != numbers[:-1]) + 1:
            events.append(
                SeriesEvent(
                    int(stamps[index]), None, float(numbers[index]), float(numbers[index - 1])
                )
            )
        return events
    present = np.isfinite(numbers) & (numbers != 0)
    stamps, numbers = stamps[present], numbers[present]
    if len(stamps) == 0:
        return []
    breaks = np.flatnonzero(np.diff(stamps) > step_ms) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks - 1, [len(stamps) - 1]])
    events = []
    for start, end in zip(starts, ends, strict=True):
        if stamps[start] <= first_ms:
            continue
        still = stamps[end] >= last_ms
        events.append(
            SeriesEvent(
                int(stamps[start]), None if still else int(stamps[end]), float(numbers[start]), None
            )
        )
    return events


def _series_key(metric: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(name), str(value)) for name, value in metric.items()))


def _range_query(
    client: PrometheusClient,
    query: str,
    first: dt.datetime,
    last: dt.datetime,
    step_seconds: int,
    where: str,
) -> list[dict[str, Any]]:
    """A range query through the client's error handling, with this setting as the culprit.

    `PrometheusClient.query_range` words its errors for a KPI (`kpis[name].query`, "the
    query of KPI ..."); here the query is an annotation source's, so the client's `_call`
    is used directly and a rejected query is reported against `where`.
    """
    try:
        result = client._call(
            lambda: client.connection.custom_query_range(
                query, start_time=first, end_time=last, step=str(step_seconds)
            ),
            doing=f"reading annotations ({where})",
            kpi=None,
            query=query,
        )
    except TarsUserError as error:
        if error.where != client.url:  # auth, TLS, timeouts: the source's settings
            raise
        message = str(error).removeprefix(f"{error.where}: ")
        raise TarsUserError(
            f"{message}\n  query: {query}",
            where=f"{where}.query",
            remedy="fix the PromQL (try it in the Prometheus UI first)",
        ) from None
    if not isinstance(result, list):
        raise TarsUserError(
            f"Prometheus answered the annotation query with {type(result).__name__}, not a "
            "list of series",
            where=f"{where}.query",
            remedy="check that the URL is a Prometheus-compatible query API",
        )
    return result


def _check_prometheus_arguments(
    *,
    query: str,
    mode: str,
    kind: str,
    service_label: str | None,
    start: Any,
    end: Any,
    step_seconds: Any,
    where: str,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    if not isinstance(query, str) or not query.strip():
        raise TarsUserError("the query is empty", where=f"{where}.query", remedy="write PromQL")
    if mode not in MODES:
        raise TarsUserError(
            f"unknown mode {mode!r}",
            where=f"{where}.mode",
            remedy="changes (a level whose changes are the events, e.g. an observed "
            'generation) or firing (a condition, e.g. ALERTS{alertstate="firing"})',
        )
    if kind not in KINDS:
        raise TarsUserError(
            f"unknown kind {kind!r}", where=f"{where}.kind", remedy=f"one of: {', '.join(KINDS)}"
        )
    if service_label is not None and not LABEL_NAME.match(str(service_label)):
        raise TarsUserError(
            f"{service_label!r} is not a label name",
            where=f"{where}.service_label",
            remedy="a Prometheus label name such as deployment or service; leave it out for "
            "changes that concern every service",
        )
    if isinstance(step_seconds, bool) or not isinstance(step_seconds, int) or step_seconds < 1:
        raise TarsUserError(
            f"step {step_seconds!r} is not a whole number of seconds ≥ 1",
            where=f"{where}.step_seconds",
            remedy="use the source's step, e.g. 60",
        )
    try:
        first, last = as_utc(start), as_utc(end)
    except (TypeError, ValueError) as error:
        raise TarsUserError(
            f"start/end: {error}", where=where, remedy="pass tz-aware times"
        ) from None
    if last <= first:
        raise TarsUserError(
            f"the window {first.isoformat()} .. {last.isoformat()} is empty",
            where=where,
            remedy="end must come after start",
        )
    return first, last


def annotations_from_prometheus(
    client: PrometheusClient,
    *,
    query: str,
    mode: Mode,
    kind: str,
    title: str,
    service_label: str | None,
    start: dt.datetime | pd.Timestamp,
    end: dt.datetime | pd.Timestamp,
    step_seconds: int,
    where: str = "annotations.prometheus",
) -> list[Annotation]:
    """One annotation per change that `query` shows between start and end (both included).

    The query is evaluated at start, start + step, ..., so an annotation's time is the
    first evaluation that shows the change: at most one step after it happened. `title` is
    a template over the series' labels plus `{value}` (and `{previous}` in changes mode);
    the service is the value of `service_label` (absent: every service). `where` names the
    setting in error messages. Windows longer than the source's points limit are queried
    in chunks, as the KPIs are.
    """
    first, last = _check_prometheus_arguments(
        query=query,
        mode=mode,
        kind=kind,
        service_label=service_label,
        start=start,
        end=end,
        step_seconds=step_seconds,
        where=where,
    )
    placeholders = title_placeholders(title, where=f"{where}.title")
    step = dt.timedelta(seconds=step_seconds)
    points = int((last - first) / step) + 1
    parts: dict[tuple[tuple[str, str], ...], list[tuple[np.ndarray, np.ndarray]]] = {}
    chunks = range_chunks(
        first.to_pydatetime(), points, step_seconds, client.settings.max_points_per_query
    )
    for chunk_first, chunk_last in chunks:
        for series in _range_query(client, query, chunk_first, chunk_last, step_seconds, where):
            metric = series.get("metric") if isinstance(series, Mapping) else None
            if not isinstance(metric, Mapping):
                continue
            values = series.get("values") or []
            parts.setdefault(_series_key(metric), []).append(parse_values(values))
    first_ms = int(first.timestamp() * 1000)
    last_ms = first_ms + (points - 1) * step_seconds * 1000
    found: list[Annotation] = []
    seen_labels: set[str] = set()
    for key in sorted(parts):
        labels = dict(key)
        seen_labels.update(labels)
        stamps, numbers = merge_chunks(parts[key], first_ms, last_ms + 1)
        events = series_events(
            stamps,
            numbers,
            mode=mode,
            first_ms=first_ms,
            last_ms=last_ms,
            step_ms=step_seconds * 1000,
        )
        for event in events:
            values = {
                **labels,
                "value": _format_value(event.value),
                "previous": _format_value(event.previous),
            }
            found.append(
                Annotation(
                    ts=pd.Timestamp(event.ts_ms, unit="ms", tz="UTC"),
                    kind=kind,
                    title=render_title(title, values),
                    service=labels.get(service_label) if service_label else None,
                    source="prometheus",
                    end=None
                    if event.end_ms is None
                    else pd.Timestamp(event.end_ms, unit="ms", tz="UTC"),
                )
            )
    missing = [name for name in placeholders if name not in seen_labels | set(TEMPLATE_VALUES)]
    if parts and missing:
        raise TarsUserError(
            f"the title template {title!r} names {', '.join(missing)}, a label no series "
            f"of the query has (labels: {', '.join(sorted(seen_labels)) or 'none'})",
            where=f"{where}.title",
            remedy="use one of those labels, {value} or {previous}; an aggregation such as "
            "sum by (deployment) (...) keeps only the labels it names",
        )
    return sorted(found, key=lambda a: (a.ts, a.title))


# --- GitHub -----------------------------------------------------------------------------------

GITHUB_FEEDS: tuple[str, ...] = ("deployments", "releases")
PER_PAGE = 100
MAX_PAGES = 50
"""5,000 deployments inside one window: past that, narrow the environment."""
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([^",;]+)"?')


def _next_page(header: str | None) -> str | None:
    for url, rel in _LINK.findall(header or ""):
        if rel.strip() == "next":
            return url
    return None


def _github_time(value: Any) -> pd.Timestamp | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except _FieldError:
        return None


def _github_error(error: HttpError, *, repo: str, where: str, token: str | None) -> TarsUserError:
    text = scrub(str(error), [token] if token else [])
    if error.status == 401:
        remedy = (
            "GitHub refused the token: export a valid one (classic: repo scope; fine-grained: "
            "read access to Deployments and Contents) in the variable the config names"
        )
    elif error.status == 403:
        remedy = (
            "the token may not read this repository's deployments or releases, or the API "
            "rate limit is spent: grant read access, or retry after the limit resets"
        )
    elif error.status == 404:
        remedy = (
            f"check the repository {repo!r} and api_url (GitHub Enterprise: "
            "https://HOST/api/v3); a private repository answers 404 to a token that cannot "
            "see it"
        )
    else:
        remedy = "GitHub did not answer properly: retry later, or check api_url"
    return TarsUserError(text, where=where, remedy=remedy)


def _pages(
    http: HttpClient,
    url: str,
    *,
    target: str,
    headers: Mapping[str, str],
    token: str | None,
    since: pd.Timestamp,
    listed_at: Callable[[Mapping[str, Any]], pd.Timestamp | None],
    repo: str,
    where: str,
) -> Iterator[Mapping[str, Any]]:
    """The items of every page, newest first as GitHub lists them, until a page holds
    only items listed before `since`. The `Link: rel="next"` URL is followed only on the
    API's own origin, never twice: the token goes with each request."""
    origin = urlsplit(url)[:2]
    seen: set[str] = set()
    next_url: str | None = url
    for _ in range(MAX_PAGES):
        if next_url is None:
            return
        seen.add(next_url)
        try:
            response = http.request(
                "GET", next_url, target=target, headers=headers, secrets=[token] if token else []
            )
        except HttpError as error:
            raise _github_error(error, repo=repo, where=where, token=token) from None
        try:
            items = response.json()
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise TarsUserError(
                f"{target}: the answer is not a JSON list",
                where=f"{where}.api_url",
                remedy="point api_url at the REST API (https://api.github.com, or "
                "https://HOST/api/v3 for GitHub Enterprise)",
            )
        listed = [item for item in items if isinstance(item, Mapping)]
        yield from listed
        stamps = [listed_at(item) for item in listed]
        if listed and all(stamp is not None and stamp < since for stamp in stamps):
            return  # the rest is older still
        next_url = _next_page(response.header("link"))
        if next_url is not None and (next_url in seen or urlsplit(next_url)[:2] != origin):
            raise TarsUserError(
                f"{target}: the next-page link points to another host or loops; not "
                "following it with the token",
                where=f"{where}.api_url",
                remedy="check api_url and any proxy in front of it",
            )
    raise TarsUserError(
        f"{target}: more than {MAX_PAGES * PER_PAGE} items since {since.isoformat()}",
        where=where,
        remedy="set `environment` to the one the release is deployed to",
    )


def _deployment(
    item: Mapping[str, Any], ts: pd.Timestamp, service: str | None, token: str | None
) -> Annotation:
    sha = str(item.get("sha") or "")
    ref = str(item.get("ref") or "")
    short = sha[:7]
    if ref and short and ref != sha:
        title = f"{ref}@{short}"
    else:
        title = ref or short or f"deployment {item.get('id', '?')}"
    environment = item.get("environment")
    if isinstance(environment, str) and environment:
        title += f" to {environment}"
    description = item.get("description")
    secrets = [token] if token else []
    return Annotation(
        ts=ts,
        kind="deploy",
        title=scrub(title, secrets),
        service=service,
        source="github",
        detail=scrub(description, secrets) if isinstance(description, str) else None,
    )


def _release(
    item: Mapping[str, Any], ts: pd.Timestamp, service: str | None, token: str | None
) -> Annotation:
    tag = str(item.get("tag_name") or "")
    name = item.get("name")
    title = tag or str(name or f"release {item.get('id', '?')}")
    if isinstance(name, str) and name.strip() and name.strip() != tag:
        title = f"{tag} ({name.strip()})" if tag else name
    secrets = [token] if token else []
    link = item.get("html_url")
    try:
        url = check_link(link) if link else None
    except _FieldError:
        url = None
    return Annotation(
        ts=ts,
        kind="release",
        title=scrub(title, secrets),
        service=service,
        source="github",
        url=scrub(url, secrets) if url else None,
        detail="pre-release" if item.get("prerelease") else None,
    )


def annotations_from_github(
    http: HttpClient,
    *,
    api_url: str,
    repo: str,
    token: str | None,
    since: dt.datetime | pd.Timestamp,
    until: dt.datetime | pd.Timestamp,
    environment: str | None = None,
    include: Iterable[str] = GITHUB_FEEDS,
    service: str | None = None,
    where: str = "annotations.github",
    warn: Warn | None = None,
) -> list[Annotation]:
    """Deployments (`GET /repos/{repo}/deployments`, at `created_at`) and published
    releases (`GET /repos/{repo}/releases`, at `published_at`) with since ≤ time ≤ until.

    `environment` narrows the deployments (GitHub filters them); `service` is the service
    the repository deploys (None: every service). Drafts have no publication time and are
    left out; an item whose time does not parse is skipped and reported through `warn`.
    """
    feeds = tuple(dict.fromkeys(include))
    unknown = [feed for feed in feeds if feed not in GITHUB_FEEDS]
    if unknown or not feeds:
        raise TarsUserError(
            f"unknown GitHub feed(s) {', '.join(map(repr, unknown)) or '(none)'}",
            where=f"{where}.include",
            remedy=f"list one or both of: {', '.join(GITHUB_FEEDS)}",
        )
    if not isinstance(repo, str) or not REPOSITORY.match(repo):
        raise TarsUserError(
            f"{repo!r} is not owner/name", where=f"{where}.repository", remedy="e.g. acme/shop"
        )
    parts = urlsplit(str(api_url))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise TarsUserError(
            f"{redact_url(str(api_url))!r} is not an http(s) API URL without credentials",
            where=f"{where}.api_url",
            remedy="https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise",
        )
    try:
        first, last = as_utc(since), as_utc(until)
    except (TypeError, ValueError) as error:
        raise TarsUserError(
            f"since/until: {error}", where=where, remedy="pass tz-aware times"
        ) from None
    base = str(api_url).rstrip("/")
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    report = warn or (lambda message: None)
    found: list[Annotation] = []
    for feed in feeds:
        query: dict[str, Any] = {"per_page": PER_PAGE}
        if feed == "deployments" and environment:
            query["environment"] = environment
        url = f"{base}/repos/{repo}/{feed}?{urlencode(query)}"
        target = f"GitHub {feed} of {repo} ({redact_url(url, keep_path=True)})"
        stamp_field = "created_at" if feed == "deployments" else "published_at"

        def listed_at(item: Mapping[str, Any], field: str = stamp_field) -> pd.Timestamp | None:
            # Both lists are ordered by creation, newest first; a draft published later
            # keeps its creation time in that order.
            return _github_time(item.get("created_at")) or _github_time(item.get(field))

        skipped = 0
        items = _pages(
            http,
            url,
            target=target,
            headers=headers,
            token=token,
            since=first,
            listed_at=listed_at,
            repo=repo,
            where=where,
        )
        for item in items:
            if feed == "releases" and (item.get("draft") or item.get("published_at") is None):
                continue
            ts = _github_time(item.get(stamp_field))
            if ts is None:
                skipped += 1
                continue
            if not first <= ts <= last:
                continue
            make = _deployment if feed == "deployments" else _release
            found.append(make(item, ts, service, token))
        if skipped:
            report(f"{target}: {skipped} item(s) without a readable {stamp_field} skipped")
    return sorted(found, key=lambda a: (a.ts, a.kind, a.title))
