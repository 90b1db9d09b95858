"""Change annotations, and which of them came just before a finding began.

An annotation is one change an SRE would look for when a KPI moves: a deploy, a config
change, a feature flag, an incident, a release, an alert. The sources (a file, a
Prometheus series, GitHub deployments and releases) live in `sources/annotations.py`;
this module holds the model and the matching, pure and without I/O.

Matching: a finding has an onset (the first sample at the new level, from the change-point
step) and, optionally, the upper end of the onset's confidence interval. An annotation is
named on the finding when it applies to the finding's service and

    onset − lookback  ≤  ts  ≤  max(onset + grace, onset_high)

so a change after the onset is not taken for its cause, unless the onset itself is
uncertain enough that the change may still have come first. Those before the onset come
first, nearest first; then those after it, nearest first (docs/methods/annotations.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from tars_pipeline.errors import TarsUserError

KINDS = ("deploy", "config", "feature_flag", "incident", "release", "alert", "other")
"""What a change can be; `other` for anything else."""
SOURCES = ("file", "prometheus", "github")
MAX_TITLE_CHARS = 200
MAX_DETAIL_CHARS = 500
DEFAULT_LOOKBACK_MINUTES = 30.0

KIND_PHRASES = {
    "deploy": "deploy {title}",
    "config": "config change {title}",
    "feature_flag": "feature flag {title}",
    "incident": "incident {title}",
    "release": "release {title}",
    "alert": "alert {title}",
    "other": "{title}",
}
"""How each kind is named in a sentence: 'began 3 min after deploy checkout@4f2a'."""

Relation = Literal["before_onset", "after_onset"]


def clean_text(text: object, limit: int = MAX_TITLE_CHARS) -> str:
    """`text` on one line: whitespace runs become one space, control characters go, and
    anything longer than `limit` ends in '…'. Label values and release names are
    written by anyone; a line break in a title must not break a report's table."""
    flat = " ".join(str(text).split())
    printable = "".join(ch for ch in flat if ch.isprintable())
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def as_utc(moment: Any) -> pd.Timestamp:
    """A tz-aware moment as a UTC Timestamp; ValueError for a naive one, NaT or garbage."""
    stamp = pd.Timestamp(moment)
    if stamp is pd.NaT or pd.isna(stamp):
        raise ValueError("not a time (NaT)")
    if stamp.tzinfo is None:
        raise ValueError(f"{stamp.isoformat()} has no UTC offset")
    return stamp.tz_convert("UTC")


@dataclass(frozen=True)
class Annotation:
    """One change: when (`ts`, UTC; `end` for those that last), what, and for which service.

    `service` None means every service (a shared database's config change). `source` says
    where it was read from: `file`, `prometheus` or `github`. `detail` is free text (a
    deployment's description); `url` a link for the reader.
    """

    ts: pd.Timestamp
    kind: str
    title: str
    service: str | None
    source: str
    end: pd.Timestamp | None = None
    url: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        ts = as_utc(self.ts)
        end = None if self.end is None else as_utc(self.end)
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} is not one of {', '.join(SOURCES)}")
        title = clean_text(self.title)
        if not title:
            raise ValueError("an annotation needs a title")
        if end is not None and end < ts:
            raise ValueError(f"end {end.isoformat()} is before the time {ts.isoformat()}")
        service = None if self.service is None else clean_text(self.service)
        detail = None if self.detail is None else clean_text(self.detail, MAX_DETAIL_CHARS)
        for name, value in (
            ("ts", ts),
            ("end", end),
            ("title", title),
            ("service", service or None),
            ("detail", detail or None),
        ):
            object.__setattr__(self, name, value)

    def applies_to(self, service: str) -> bool:
        """True for this service's changes and for those of every service."""
        return self.service is None or self.service == service

    @property
    def label(self) -> str:
        """The change as a sentence names it: 'deploy checkout@4f2a', 'alert HighLatency'."""
        return KIND_PHRASES[self.kind].format(title=self.title)

    def as_record(self) -> dict[str, Any]:
        return {
            "ts": self.ts.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "kind": self.kind,
            "title": self.title,
            "service": self.service,
            "source": self.source,
            "url": self.url,
            "detail": self.detail,
        }


def merge_annotations(*groups: Iterable[Annotation]) -> list[Annotation]:
    """All annotations of all sources in time order, each (ts, kind, title, service) once:
    a deploy in the file and in GitHub under the same title is one change."""
    seen: dict[tuple, Annotation] = {}
    for group in groups:
        for annotation in group:
            key = (annotation.ts, annotation.kind, annotation.title, annotation.service)
            seen.setdefault(key, annotation)
    return sorted(seen.values(), key=lambda a: (a.ts, a.kind, a.title, a.service or ""))


def in_window(
    annotations: Iterable[Annotation],
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    service: str | None = None,
) -> list[Annotation]:
    """The annotations a chart of [start, end) shows, in time order: those that begin in
    it, and those that last (incidents, flags) and overlap it. With `service`, only that
    service's and every service's."""
    first, last = as_utc(start), as_utc(end)
    shown = [
        annotation
        for annotation in annotations
        if annotation.ts < last
        and (annotation.ts if annotation.end is None else annotation.end) >= first
        and (service is None or annotation.applies_to(service))
    ]
    return sorted(shown, key=lambda a: (a.ts, a.kind, a.title))


# --- matching -------------------------------------------------------------------------------


def _duration(minutes: float) -> str:
    """'3 min', '1 h 05 min'; whole minutes, as a reader compares them with a clock."""
    whole = round(minutes)
    if whole < 60:
        return f"{whole} min"
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


def match_sentence(annotation: Annotation, minutes_before_onset: float) -> str:
    """'began 3 min after deploy checkout@4f2a'; for a change recorded after the onset,
    'began 2 min before deploy X was recorded (within the onset's uncertainty)'."""
    if abs(minutes_before_onset) < 1:
        return f"began within a minute of {annotation.label}"
    if minutes_before_onset > 0:
        return f"began {_duration(minutes_before_onset)} after {annotation.label}"
    return (
        f"began {_duration(-minutes_before_onset)} before {annotation.label} was recorded "
        "(within the onset's uncertainty)"
    )


@dataclass(frozen=True)
class AnnotationMatch:
    """An annotation named on a finding: how long before the onset it came (negative:
    after the point estimate, inside the grace or the onset's confidence interval)."""

    annotation: Annotation
    minutes_before_onset: float
    relation: Relation
    sentence: str

    def as_record(self) -> dict[str, Any]:
        return {
            **self.annotation.as_record(),
            "minutes_before_onset": round(self.minutes_before_onset, 3),
            "relation": self.relation,
            "sentence": self.sentence,
        }


def _minutes_setting(value: float, name: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise TarsUserError(
            f"{value!r} is not a number of minutes",
            where=name,
            remedy="give a finite number of minutes, 0 or more",
        )
    return number


def _optional_moment(moment: Any) -> pd.Timestamp | None:
    if moment is None:
        return None
    try:
        return as_utc(moment)
    except (TypeError, ValueError):
        if pd.isna(moment):  # a finding without an onset (NaT): nothing to match
            return None
        raise


def annotations_before(
    annotations: Sequence[Annotation],
    onset: pd.Timestamp | None,
    *,
    service: str,
    lookback_minutes: float = DEFAULT_LOOKBACK_MINUTES,
    grace_minutes: float = 0.0,
    onset_high: pd.Timestamp | None = None,
) -> list[AnnotationMatch]:
    """The changes that may have caused a finding whose onset is `onset` on `service`.

    Kept: annotations of `service` or of every service with

        onset − lookback ≤ ts ≤ max(onset + grace, onset_high)

    `grace_minutes` allows for clocks: a deploy tool that records the deploy when it
    ends. `onset_high`, the upper end of the onset's confidence interval, lets a change
    that came after the point estimate but before the latest plausible onset be named,
    marked `after_onset`. Ordered: those at or before the onset nearest first, then those
    after it nearest first. No onset (None or NaT): no match.
    """
    lookback = _minutes_setting(lookback_minutes, "lookback_minutes")
    grace = _minutes_setting(grace_minutes, "grace_minutes")
    moment = _optional_moment(onset)
    if moment is None:
        return []
    latest = moment + pd.Timedelta(minutes=grace)
    high = _optional_moment(onset_high)
    if high is not None and high > latest:
        latest = high
    earliest = moment - pd.Timedelta(minutes=lookback)
    matches = []
    for annotation in annotations:
        if not annotation.applies_to(service) or not earliest <= annotation.ts <= latest:
            continue
        minutes = (moment - annotation.ts).total_seconds() / 60.0
        relation: Relation = "before_onset" if minutes >= 0 else "after_onset"
        matches.append(
            AnnotationMatch(annotation, minutes, relation, match_sentence(annotation, minutes))
        )
    return sorted(
        matches,
        key=lambda m: (
            m.relation != "before_onset",
            abs(m.minutes_before_onset),
            m.annotation.kind,
            m.annotation.title,
        ),
    )
