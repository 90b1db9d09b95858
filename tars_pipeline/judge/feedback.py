"""Feedback marks: the SRE's word on what the judge found (a ThirdEye-style feedback loop).

A user marks a finding of the retrospective `expected` (a real change, explained: a load
test, a planned migration), `not_an_anomaly` (the detector was wrong) or `confirmed` (a
real problem) in `tars.feedback.yaml` beside tars.yaml. The steps, each small and pure:

1. load and validate the file (`load_feedback`, `parse_feedback`): every mistake is a
   `TarsUserError` naming the file, the entry and the field;
2. match each finding to its marks (`Feedback.mark_of`): a mark selects by the fields it
   gives, the most specific match wins, equal specificity is an error; a mark on an
   incident is inherited by the incident's members that have no mark of their own;
3. apply (`apply_feedback`): each finding record carries its mark, "expected" degradations
   and SLO burns leave the verdict (health scores stay as measured), stale marks are
   reported, and each detector's precision is what the marks imply (`detector_precision`).

docs/methods/feedback.md has the file format and an example.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

from tars_pipeline.config import MAX_WINDOW_DAYS
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.formatting import finite_or_none
from tars_pipeline.judge.verdict import release_verdict

FindingKind = Literal["degradation", "anomaly", "unexpected_drift", "incident", "slo"]
MarkValue = Literal["expected", "not_an_anomaly", "confirmed"]

DEFAULT_FEEDBACK_NAME = "tars.feedback.yaml"
FINDING_KINDS: tuple[FindingKind, ...] = (
    "degradation", "anomaly", "unexpected_drift", "incident", "slo",
)  # fmt: skip
MARK_VALUES: tuple[MarkValue, ...] = ("expected", "not_an_anomaly", "confirmed")
# The detector whose precision a finding's mark speaks for. An incident is a grouping of
# other findings, not a detector: its mark counts through its members.
DETECTOR_OF: dict[str, str] = {
    "degradation": "degradation",  # the Mann-Whitney window judge (degradations.py)
    "anomaly": "anomaly",  # the EWMA z-score detector (anomaly.py)
    "unexpected_drift": "unexpected_drift",  # the watch band (drifts.py)
    "slo": "slo_burn",  # error budget and burn rate (slo.py)
}
DETECTORS: tuple[str, ...] = ("degradation", "anomaly", "unexpected_drift", "slo_burn")
# The fields that select findings, per kind; the record list each kind is read from.
SELECTORS: dict[str, tuple[str, ...]] = {
    "degradation": ("service", "kpi", "day"),
    "anomaly": ("service", "kpi", "day", "start"),
    "unexpected_drift": ("service", "kpi", "day"),
    "incident": ("id", "service", "kpi", "day"),
    "slo": ("service", "slo", "kpi", "day"),
}
RECORD_LISTS: dict[str, str] = {
    "degradation": "degradations",
    "anomaly": "anomalies",
    "unexpected_drift": "unexpected_drifts",
    "incident": "incidents",
    "slo": "slo_compliance",
}
DEFAULT_START_TOLERANCE = dt.timedelta(minutes=15)  # incidents.DEFAULT_GAP: one cluster
MAX_START_TOLERANCE_MINUTES = 24 * 60
_MARK_KEYS = ("finding", "release", "mark", "reason", "by", "at")
_TOP_KEYS = ("marks", "start_tolerance_minutes")
_FORMAT_HINT = "see docs/methods/feedback.md for the file format"


@dataclass(frozen=True)
class Mark:
    """One entry of the feedback file: which findings it selects, and what it says.

    `entry` is its index in `marks:` (0-based, as in the error messages `marks[2]`).
    `specificity` is the number of selecting fields it gives (release, service, kpi, slo,
    id, day, start): the more it names, the fewer findings it can mean.
    """

    entry: int
    finding: FindingKind
    mark: MarkValue
    release: str | None = None
    service: str | None = None
    kpi: str | None = None
    slo: str | None = None
    id: str | None = None
    day: int | None = None
    start: dt.datetime | None = None
    reason: str | None = None
    by: str | None = None
    at: dt.date | dt.datetime | None = None

    @property
    def selectors(self) -> dict[str, Any]:
        """The selecting fields this mark gives (release among them), by name."""
        names = ("release", *SELECTORS[self.finding])
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    @property
    def specificity(self) -> int:
        return len(self.selectors)

    def describe(self) -> str:
        """`marks[2] (anomaly service=checkout kpi=error_rate: expected)`."""
        chosen = " ".join(f"{name}={_text_of(value)}" for name, value in self.selectors.items())
        return f"marks[{self.entry}] ({self.finding} {chosen}: {self.mark})"

    def as_record(self) -> dict[str, Any]:
        """entry, finding, release, service, kpi, slo, id, day, start, mark, reason, by, at
        (null where not given; times as ISO 8601), specificity."""
        return {
            "entry": self.entry,
            "finding": self.finding,
            "release": self.release,
            "service": self.service,
            "kpi": self.kpi,
            "slo": self.slo,
            "id": self.id,
            "day": self.day,
            "start": self.start.isoformat() if self.start is not None else None,
            "mark": self.mark,
            "reason": self.reason,
            "by": self.by,
            "at": self.at.isoformat() if self.at is not None else None,
            "specificity": self.specificity,
        }


@dataclass(frozen=True)
class Feedback:
    """The marks of one feedback file.

    `path`: the file they came from (None: no file read). `release`: set by `for_release`;
    a mark naming a release applies only to that release, so without `for_release` only
    the marks that name none apply. `start_tolerance`: how far an anomaly mark's `start`
    may be from the event's start.
    """

    marks: tuple[Mark, ...] = ()
    path: str | None = None
    release: str | None = None
    start_tolerance: dt.timedelta = DEFAULT_START_TOLERANCE

    @property
    def applicable(self) -> tuple[Mark, ...]:
        return tuple(m for m in self.marks if m.release is None or m.release == self.release)

    def for_release(self, release: str) -> Feedback:
        """The marks for `release`: those naming it, and those naming no release."""
        kept = tuple(m for m in self.marks if m.release is None or m.release == release)
        return replace(self, marks=kept, release=release)

    def matches(self, finding: str, record: Mapping[str, Any]) -> list[Mark]:
        """Every applicable mark of kind `finding` whose fields all fit `record`."""
        return [
            mark
            for mark in self.applicable
            if mark.finding == finding and _fits(mark, record, self.start_tolerance)
        ]

    def mark_of(self, finding: str, record: Mapping[str, Any]) -> Mark | None:
        """The mark of one finding record (as the judgement carries it): the most specific
        matching mark, None without one. Two matching marks of equal specificity are a
        `TarsUserError` naming both: the file does not say which one is meant."""
        return _most_specific(self.matches(finding, record), finding_label(finding, record), self)


# --- reading the file -------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the
    last silently: `mark: confirmed` then `mark: expected` would read as expected)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice", key_node.start_mark
            )
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def feedback_path(config_path: Path, configured: str | Path | None = None) -> Path:
    """Where the feedback file is: `configured` (relative to tars.yaml's folder), else
    `tars.feedback.yaml` beside tars.yaml."""
    base = Path(config_path).resolve().parent
    chosen = Path(configured) if configured is not None else Path(DEFAULT_FEEDBACK_NAME)
    return chosen if chosen.is_absolute() else base / chosen


def load_feedback(path: Path | str | None, *, window_days: int = MAX_WINDOW_DAYS) -> Feedback:
    """The validated marks of the feedback file at `path`; an empty `Feedback` when `path`
    is None or no file is there (feedback is optional). `window_days` bounds `day:`."""
    if path is None:
        return Feedback()
    path = Path(path)
    where = str(path)
    if not path.exists():
        return Feedback()
    if not path.is_file():
        raise TarsUserError(
            "the feedback path is not a file",
            where=where,
            remedy=f"point it at a YAML file such as {DEFAULT_FEEDBACK_NAME}",
        )
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except (yaml.YAMLError, ValueError) as error:
        # PyYAML raises ValueError for impossible dates such as 2026-13-01.
        raise TarsUserError(
            f"not valid YAML: {error}",
            where=where,
            remedy="each mark is a mapping under marks:; dates are YYYY-MM-DD, times "
            "2026-03-05T14:30:00Z",
        ) from None
    except UnicodeDecodeError:
        raise TarsUserError("not UTF-8 text", where=where, remedy="save it as UTF-8") from None
    return parse_feedback(raw, where=where, window_days=window_days)


def parse_feedback(
    raw: Any, *, where: str = DEFAULT_FEEDBACK_NAME, window_days: int = MAX_WINDOW_DAYS
) -> Feedback:
    """`Feedback` from the file's parsed YAML (`raw`); `where` names the file in errors.
    An empty file, or `marks:` with nothing under it, is an empty `Feedback`."""
    if raw is None:
        return Feedback(path=where)
    if not isinstance(raw, dict):
        raise TarsUserError(
            f"expected a mapping with marks: at the top level, found {_type_of(raw)}",
            where=where,
            remedy="start the file with 'marks:' and list one mapping per mark under it",
        )
    unknown = sorted(str(key) for key in raw if key not in _TOP_KEYS)
    if unknown:
        raise TarsUserError(
            f"unknown top-level key {unknown[0]!r}",
            where=f"{where}: {unknown[0]}",
            remedy=f"the file takes {', '.join(_TOP_KEYS)}; {_FORMAT_HINT}",
        )
    tolerance = _tolerance(raw.get("start_tolerance_minutes"), where)
    entries = raw.get("marks")
    if entries is None:
        return Feedback(path=where, start_tolerance=tolerance)
    if not isinstance(entries, list):
        raise TarsUserError(
            f"marks must be a list, found {_type_of(entries)}",
            where=f"{where}: marks",
            remedy="write each mark as a list item starting with '- finding: ...'",
        )
    marks = []
    for index, entry in enumerate(entries):
        try:
            marks.append(_parse_mark(entry, index, window_days))
        except _EntryError as error:
            suffix = f".{error.field}" if error.field else ""
            raise TarsUserError(
                str(error), where=f"{where}: marks[{index}]{suffix}", remedy=error.remedy
            ) from None
    return Feedback(marks=tuple(marks), path=where, start_tolerance=tolerance)


class _EntryError(ValueError):
    """A problem with one field of one mark; `parse_feedback` adds the file and index."""

    def __init__(self, field_name: str, message: str, remedy: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.remedy = remedy


def _type_of(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _tolerance(value: Any, where: str) -> dt.timedelta:
    if value is None:
        return DEFAULT_START_TOLERANCE
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number < 0:
        shown = "NaN" if isinstance(number, float) and math.isnan(number) else repr(value)
        raise TarsUserError(
            f"start_tolerance_minutes must be a finite number of minutes ≥ 0, not {shown}",
            where=f"{where}: start_tolerance_minutes",
            remedy="e.g. start_tolerance_minutes: 15 (the default), or leave it out",
        )
    if number > MAX_START_TOLERANCE_MINUTES:
        raise TarsUserError(
            f"start_tolerance_minutes {number:g} is over a day",
            where=f"{where}: start_tolerance_minutes",
            remedy="to mark a whole day's anomalies, use day: instead of start:",
        )
    return dt.timedelta(minutes=float(number))


def _parse_mark(entry: Any, index: int, window_days: int) -> Mark:
    if not isinstance(entry, dict):
        raise _EntryError(
            "",
            f"a mark must be a mapping, found {_type_of(entry)}",
            "write 'finding:', the selecting fields and 'mark:' as keys of one list item",
        )
    finding = _choice(entry, "finding", FINDING_KINDS)
    allowed = (*_MARK_KEYS, *SELECTORS[finding])
    for key in entry:
        if key not in allowed:
            message = f"unknown key {str(key)!r} for a {finding} mark"
            raise _EntryError(str(key), message, _key_remedy(key, finding))
    mark = _choice(entry, "mark", MARK_VALUES)
    fields: dict[str, Any] = {
        name: _text(entry, name) for name in ("release", "service", "kpi", "slo", "id", "by")
    }
    fields["reason"] = _text(entry, "reason")
    if mark == "expected" and fields["reason"] is None:
        raise _EntryError(
            "reason",
            "an 'expected' mark needs a reason: it takes the finding out of the verdict",
            "say why it was expected, e.g. reason: load test of the payment provider",
        )
    if "day" in entry:
        fields["day"] = _day(entry["day"], window_days)
    if "start" in entry:
        fields["start"] = _moment(entry["start"], "start")
    if "at" in entry:
        fields["at"] = _when(entry["at"])
    parsed = Mark(entry=index, finding=finding, mark=mark, **fields)
    if not set(parsed.selectors) - {"release"}:
        raise _EntryError(
            "",
            f"this {finding} mark selects nothing: it would mark every {finding}",
            f"name at least one of {', '.join(SELECTORS[finding])}",
        )
    return parsed


def _key_remedy(key: Any, finding: str) -> str:
    takes = f"a {finding} mark takes {', '.join((*SELECTORS[finding], *_MARK_KEYS))}"
    owners = [kind for kind, names in SELECTORS.items() if key in names]
    if owners:
        return f"{key} selects {' and '.join(owners)} findings only; {takes}"
    return f"check the spelling: {takes}"


def _choice(entry: Mapping, name: str, allowed: tuple[str, ...]) -> Any:
    value = entry.get(name)
    if value is None:
        raise _EntryError(name, "required", f"set {name}: to one of {', '.join(allowed)}")
    if value not in allowed:
        raise _EntryError(
            name,
            f"{_shown(value)} is not one of {', '.join(allowed)}",
            f"use one of {', '.join(allowed)}",
        )
    return value


def _shown(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return repr(value)


def _text(entry: Mapping, name: str) -> str | None:
    if name not in entry or entry[name] is None:
        return None
    value = entry[name]
    if not isinstance(value, str):
        raise _EntryError(
            name,
            f"must be text, not {_shown(value)} ({_type_of(value)})",
            f'quote it, e.g. {name}: "{value}" (YAML reads 1.10 as the number 1.1, '
            "yes/no as true/false)",
        )
    if not value.strip():
        raise _EntryError(name, "is empty", f"give a value or leave {name} out")
    return value


def _day(value: Any, window_days: int) -> int:
    remedy = f"a release day is a whole number 0..{window_days} (0 is GA day)"
    if isinstance(value, bool) or not isinstance(value, int):
        raise _EntryError("day", f"must be a whole number, not {_shown(value)}", remedy)
    if not 0 <= value <= window_days:
        raise _EntryError("day", f"day {value} is outside the window 0..{window_days}", remedy)
    return value


def _moment(value: Any, name: str) -> dt.datetime:
    remedy = "write the time with its UTC offset, e.g. 2026-03-05T14:30:00Z or +01:00"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise _EntryError(name, f"{value!r} is not an ISO 8601 time", remedy) from None
    if not isinstance(value, dt.datetime):
        raise _EntryError(name, f"must be a time, not {_shown(value)}", remedy)
    if value.tzinfo is None or value.utcoffset() is None:
        raise _EntryError(name, f"{value.isoformat()} has no UTC offset", remedy)
    return value


def _when(value: Any) -> dt.date | dt.datetime:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    return _moment(value, "at")


def _text_of(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


# --- matching ---------------------------------------------------------------------------


def _day_or_none(value: Any) -> int | None:
    number = finite_or_none(value)
    return int(number) if number is not None and number == int(number) else None


def finding_days(finding: str, record: Mapping[str, Any]) -> set[int]:
    """The days a finding covers, which a mark's `day:` may name:

    - degradation: its degraded days (`days_degraded`, else `day_first`);
    - unexpected drift: the days its |drift| reached the KPI's threshold, and `day_of_max`;
    - anomaly: the day of the event;
    - incident: `first_day` and its members' days;
    - slo: the days it was not compliant (burned its budget faster than 1×).
    """
    if finding == "degradation":
        days = record.get("days_degraded") or [record.get("day_first")]
    elif finding == "unexpected_drift":
        threshold = finite_or_none(record.get("threshold_pct"))
        pairs = zip(record.get("days") or [], record.get("daily_drift_pct") or [], strict=False)
        days = [record.get("day_of_max")]
        if threshold is not None:
            days += [day for day, pct in pairs if abs(finite_or_none(pct) or 0.0) >= threshold]
    elif finding == "anomaly":
        days = [record.get("day")]
    elif finding == "incident":
        days = [record.get("first_day"), *(m.get("day") for m in record.get("members") or [])]
    else:
        days = [
            day.get("day") for day in record.get("by_day") or [] if day.get("compliant") is False
        ]
    return {day for day in map(_day_or_none, days) if day is not None}


def _moment_of(value: Any) -> dt.datetime | None:
    """A record's time (ISO text, datetime or pandas Timestamp) as an aware datetime; a
    naive one is UTC, as the store keeps times."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime) or pd.isna(value):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _fits(mark: Mark, record: Mapping[str, Any], tolerance: dt.timedelta) -> bool:
    for name, wanted in mark.selectors.items():
        if name == "release":
            continue  # Feedback.applicable decided
        if name == "kpi" and mark.finding == "incident":
            fits = wanted in (record.get("kpis") or [])
        elif name == "day":
            fits = wanted in finding_days(mark.finding, record)
        elif name == "start":
            started = _moment_of(record.get("start"))
            fits = started is not None and abs(started - wanted) <= tolerance
        else:
            fits = record.get(name) == wanted
        if not fits:
            return False
    return True


def _most_specific(candidates: list[Mark], label: str, feedback: Feedback) -> Mark | None:
    if not candidates:
        return None
    best = max(mark.specificity for mark in candidates)
    winners = [mark for mark in candidates if mark.specificity == best]
    if len(winners) > 1:
        first, second = winners[0], winners[1]
        raise TarsUserError(
            f"{first.describe()} and {second.describe()} both mark {label} with the same "
            f"specificity ({best} field{'s' if best != 1 else ''}): which one is meant?",
            where=feedback.path or DEFAULT_FEEDBACK_NAME,
            remedy="add a field (kpi, day, start) to the mark that should win, or remove one",
        )
    return winners[0]


def finding_label(finding: str, record: Mapping[str, Any]) -> str:
    """How a finding is named in the feedback section: `degradation checkout/error_rate`,
    `anomaly checkout/error_rate at 2026-03-08T15:00:00+00:00`, `incident checkout#1`,
    `slo api-gateway/latency_p99`."""
    if finding == "incident":
        return f"incident {record.get('id')}"
    name = record.get("slo") if finding == "slo" else record.get("kpi")
    label = f"{finding} {record.get('service')}/{name}"
    if finding == "anomaly":
        started = _moment_of(record.get("start"))
        label += f" at {started.isoformat() if started else record.get('start')}"
    return label


# --- applying ---------------------------------------------------------------------------


def slo_burned(record: Mapping[str, Any]) -> bool:
    """Whether an SLO record is a finding (an "slo_burn"): its window budget is exhausted,
    it missed its target over the window, it was not compliant on some day, its burn rate
    was above 1, or a multi-window burn-rate alert fired. A healthy SLO is no finding."""
    if record.get("exhausted") or (record.get("days_observed") and not record.get("met")):
        return True
    if (finite_or_none(record.get("burn_rate")) or 0.0) > 1.0 or record.get("alerts_fired"):
        return True
    return any(day.get("compliant") is False for day in record.get("by_day") or [])


@dataclass
class _Finding:
    kind: str
    record: dict[str, Any]
    label: str
    candidates: list[Mark]
    mark: Mark | None = None
    via: str | None = None  # the incident whose mark this finding inherited
    excluded: bool = False


@dataclass
class _MarkUse:
    applied_to: list[str] = field(default_factory=list)
    inherited_by: list[str] = field(default_factory=list)
    overridden_on: list[dict[str, Any]] = field(default_factory=list)


def _member_key(service: Any, member: Mapping[str, Any]) -> tuple:
    kind = member.get("type")
    if kind == "anomaly":
        return ("anomaly", service, member.get("kpi"), _moment_of(member.get("start")))
    if kind == "slo":
        return ("slo", service, member.get("slo"))
    return (kind, service, member.get("kpi"))


def _finding_key(finding: _Finding) -> tuple:
    record = finding.record
    if finding.kind == "anomaly":
        start = _moment_of(record.get("start"))
        return ("anomaly", record.get("service"), record.get("kpi"), start)
    if finding.kind == "slo":
        return ("slo", record.get("service"), record.get("slo"))
    return (finding.kind, record.get("service"), record.get("kpi"))


def _as_records(rows: Any) -> list[dict[str, Any]]:
    if rows is None:
        return []
    if isinstance(rows, pd.DataFrame):
        return [dict(row) for row in rows.to_dict("records")]
    return [dict(row) for row in copy.deepcopy(list(rows))]


def _would_have(finding: _Finding) -> dict[str, Any] | None:
    """The verdict reason an excluded finding gave as measured (None: it gave none)."""
    if finding.kind == "degradation":
        reasons = release_verdict([finding.record], []).reasons
    else:
        reasons = release_verdict([], [finding.record]).reasons
    return reasons[0].as_record() if reasons else None


def apply_feedback(
    feedback: Feedback,
    judgement: Mapping[str, Any],
    *,
    release: str | None = None,
    anomalies: Sequence[Mapping[str, Any]] | pd.DataFrame | None = None,
) -> dict[str, Any]:
    """A copy of `judgement` (as `judge_window` returns it, or regression_summary.json)
    with the marks of `feedback` applied:

    - every record of degradations, unexpected_drifts, incidents, slo_compliance and
      anomalies (`anomalies`, else the judgement's own) carries `feedback`: its mark
      (`mark`, `reason`, `by`, `at`, `entry`, `via` the incident it came from,
      `excluded_from_verdict`), or null;
    - `verdict` is recomputed without the "expected" degradations and SLOs; health scores
      and every other figure stay as measured;
    - `feedback` is the section: file, release, marks (each with status applied /
      overridden / stale and the findings it marked), stale_marks, excluded_from_verdict
      (with reasons), verdict_as_measured and precision (`detector_precision`).

    `release`: the judged release; marks naming another release are ignored (without it,
    only the marks of the feedback as given apply: see `Feedback.for_release`). Two marks of
    equal specificity on one finding raise `TarsUserError`.
    """
    if release is not None:
        feedback = feedback.for_release(release)
    result = copy.deepcopy(dict(judgement))
    if anomalies is not None or "anomalies" in result:
        source = anomalies if anomalies is not None else result.get("anomalies")
        result["anomalies"] = _as_records(source)
    findings: list[_Finding] = []
    for kind, key in RECORD_LISTS.items():
        for record in result.get(key) or []:
            record["feedback"] = None
            if kind == "slo" and not slo_burned(record):
                continue
            label = finding_label(kind, record)
            findings.append(_Finding(kind, record, label, feedback.matches(kind, record)))
    for finding in findings:
        finding.mark = _most_specific(finding.candidates, finding.label, feedback)
    _inherit_incident_marks(findings)
    for finding in findings:
        finding.excluded = (
            finding.mark is not None
            and finding.mark.mark == "expected"
            and finding.kind in ("degradation", "slo")
            and _would_have(finding) is not None
        )
        if finding.mark is not None:
            finding.record["feedback"] = _annotation(finding)
    measured = result.get("verdict")
    if measured is not None:
        excluded = {id(f.record) for f in findings if f.excluded}
        result["verdict"] = release_verdict(
            [r for r in result.get("degradations") or [] if id(r) not in excluded],
            [r for r in result.get("slo_compliance") or [] if id(r) not in excluded],
        ).as_record()
    result["feedback"] = _section(feedback, findings, measured)
    return result


def _inherit_incident_marks(findings: list[_Finding]) -> None:
    """A member of a marked incident without a mark of its own takes the incident's."""
    by_key = {_finding_key(f): f for f in findings if f.kind != "incident"}
    for incident in (f for f in findings if f.kind == "incident" and f.mark is not None):
        service = incident.record.get("service")
        for member in incident.record.get("members") or []:
            target = by_key.get(_member_key(service, member))
            if target is not None and target.mark is None:
                target.mark, target.via = incident.mark, incident.label


def _annotation(finding: _Finding) -> dict[str, Any]:
    mark = finding.mark
    assert mark is not None
    return {
        "mark": mark.mark,
        "reason": mark.reason,
        "by": mark.by,
        "at": mark.at.isoformat() if mark.at is not None else None,
        "entry": mark.entry,
        "via": finding.via,
        "excluded_from_verdict": finding.excluded,
    }


def _section(
    feedback: Feedback, findings: list[_Finding], measured: Mapping[str, Any] | None
) -> dict[str, Any]:
    uses = {mark.entry: _MarkUse() for mark in feedback.applicable}
    for finding in findings:
        if finding.mark is None:
            continue
        use = uses[finding.mark.entry]
        (use.inherited_by if finding.via else use.applied_to).append(finding.label)
        for loser in finding.candidates:
            if loser is not finding.mark:
                uses[loser.entry].overridden_on.append(
                    {"finding": finding.label, "by_entry": finding.mark.entry}
                )
    marks = [_mark_use_record(mark, uses[mark.entry]) for mark in feedback.applicable]
    excluded = []
    for finding in findings:
        if not finding.excluded:
            continue
        assert finding.mark is not None
        excluded.append(
            {
                "finding": finding.kind,
                "label": finding.label,
                "service": finding.record.get("service"),
                "kpi": finding.record.get("kpi"),
                "slo": finding.record.get("slo") if finding.kind == "slo" else None,
                "entry": finding.mark.entry,
                "via": finding.via,
                "reason": finding.mark.reason,
                "by": finding.mark.by,
                "verdict_reason": _would_have(finding),
            }
        )
    outcomes = [
        (DETECTOR_OF[f.kind], f.mark.mark if f.mark is not None else None)
        for f in findings
        if f.kind in DETECTOR_OF
    ]
    return {
        "file": feedback.path,
        "release": feedback.release,
        "start_tolerance_minutes": feedback.start_tolerance.total_seconds() / 60,
        "marks": marks,
        "stale_marks": [record for record in marks if record["status"] == "stale"],
        "excluded_from_verdict": excluded,
        "verdict_as_measured": copy.deepcopy(dict(measured)) if measured is not None else None,
        "precision": detector_precision(outcomes),
    }


def _mark_use_record(mark: Mark, use: _MarkUse) -> dict[str, Any]:
    marked = len(use.applied_to) + len(use.inherited_by)
    if marked:
        status = "applied"
        note = f"applies to {marked} finding{'s' if marked != 1 else ''}"
        if use.inherited_by:
            note += f" ({len(use.inherited_by)} through the incident)"
    elif use.overridden_on:
        status = "overridden"
        winners = sorted({f"marks[{o['by_entry']}]" for o in use.overridden_on})
        note = f"matches, but a more specific mark wins everywhere ({', '.join(winners)})"
    else:
        status = "stale"
        note = f"matches no {mark.finding} finding of this release: check its fields or remove it"
    return {
        **mark.as_record(),
        "status": status,
        "applied_to": use.applied_to,
        "inherited_by": use.inherited_by,
        "overridden_on": use.overridden_on,
        "note": note,
    }


def detector_precision(outcomes: Iterable[tuple[str, str | None]]) -> list[dict[str, Any]]:
    """Per detector, what the marks say about its findings, from (detector, mark or None)
    pairs, one per finding:

        precision = confirmed / (confirmed + not_an_anomaly)

    the share of the findings a user judged that were real problems (an "expected" finding
    was real but explained: it counts on neither side). None when no finding of the
    detector is marked confirmed or not_an_anomaly. One row per detector of `DETECTORS`,
    in that order: detector, findings, confirmed, not_an_anomaly, expected, unmarked,
    precision."""
    counts = {
        detector: {"findings": 0, "confirmed": 0, "not_an_anomaly": 0, "expected": 0, "unmarked": 0}
        for detector in DETECTORS
    }
    for detector, mark in outcomes:
        if detector not in counts:
            raise ValueError(f"unknown detector {detector!r}; one of {DETECTORS}")
        if mark is not None and mark not in MARK_VALUES:
            raise ValueError(f"unknown mark {mark!r}; one of {MARK_VALUES}")
        row = counts[detector]
        row["findings"] += 1
        row[mark if mark is not None else "unmarked"] += 1
    rows = []
    for detector, row in counts.items():
        judged = row["confirmed"] + row["not_an_anomaly"]
        precision = row["confirmed"] / judged if judged else None
        rows.append({"detector": detector, **row, "precision": precision})
    return rows
