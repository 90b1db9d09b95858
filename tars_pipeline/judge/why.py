"""Why and when: each finding's onset, the changes that preceded it, and what drove it.

The window judge says *that* a KPI degraded (or drifted, or cost stepped) on a day; this
step adds, to each finding's record (docs/methods/change-points.md, annotations.md,
contributors.md):

- `onset`: the change point of the KPI's samples over the first affected day and the day
  before it (`changepoint.find_change_point`), measured against GA day's same-hour level,
  in the adverse direction for a degradation: the minute it began, its confidence interval
  and the levels before and after;
- `annotations`: the deploys, config changes, flags and incidents within
  `lookback_minutes` before that onset (`annotations.annotations_before`);
- `contributors`: for a degradation, the KPI broken down by label for GA day and for the
  degraded window (onset to the end of that day), ranked by their share of the change
  (`contributors.rank_contributors`); the breakdown comes from the caller (the source).

Pure: no store, no Dagster, no network. `breakdown` is a callback the asset builds from
the metric source; without one there are no contributors.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tars_pipeline.config import KpiDefinition, Release
from tars_pipeline.judge import clock
from tars_pipeline.judge.annotations import Annotation, annotations_before
from tars_pipeline.judge.changepoint import ChangePoint, find_change_point
from tars_pipeline.judge.contributors import Contributors, rank_contributors

BreakdownFetch = Callable[
    [str, KpiDefinition, tuple[dt.datetime, dt.datetime], tuple[dt.datetime, dt.datetime]],
    "tuple[pd.DataFrame, Mapping[str, Any]] | None",
]
"""(service, kpi, baseline window, observed window) → (breakdown frame, the keyword
arguments of `rank_contributors` for it: scale, ratio, complement, measure) or None when the
KPI has no breakdown."""

ONSET_GRACE_MINUTES = 5.0
"""An annotation after the onset's point estimate is named only inside its confidence
interval, and never more than this after it: a change after the onset is not its cause."""
MIN_OBSERVED_MINUTES = 30
"""The degraded window of a breakdown spans at least this long."""


@dataclass(frozen=True)
class _Series:
    ts: np.ndarray  # datetime64[ns] UTC, sorted
    values: np.ndarray
    day: np.ndarray  # int: 0 = GA day


class SeriesIndex:
    """Every (service, KPI)'s samples over GA day and the window, found by key. Only the
    series a finding asks for are gathered (a week holds millions of samples, a report a
    few dozen findings); the rows of each frame are grouped once, on first use."""

    def __init__(self, baseline: pd.DataFrame, days: pd.DataFrame, timezone: str) -> None:
        self.timezone = timezone
        self._frames: list[tuple[pd.DataFrame, int | None]] = []  # (frame, its day or None)
        if baseline is not None and len(baseline):
            self._frames.append((baseline, 0))
        if days is not None and len(days):
            self._frames.append((days, None))
        self._positions: list[dict[tuple[str, str], np.ndarray]] | None = None
        self._series: dict[tuple[str, str], _Series | None] = {}
        self._profiles: dict[tuple[str, str], tuple[np.ndarray, float]] = {}

    @classmethod
    def of_series(cls, series: Mapping[tuple[str, str], _Series], timezone: str) -> SeriesIndex:
        """An index of series already gathered (`series` of other indexes): the window
        judge keeps the few a finding may ask for and lets the samples go."""
        index = cls(None, None, timezone)
        index._positions = []  # no frames: a key not given has no series
        index._series = dict(series)
        return index

    def _rows(self) -> list[dict[tuple[str, str], np.ndarray]]:
        if self._positions is None:
            self._positions = [
                {
                    (str(key[0]), str(key[1])): rows
                    for key, rows in frame.groupby(
                        ["service", "kpi"], sort=False, observed=True
                    ).indices.items()
                }
                for frame, _ in self._frames
            ]
        return self._positions

    def _gather(self, key: tuple[str, str]) -> _Series | None:
        parts = []
        for (frame, day), positions in zip(self._frames, self._rows(), strict=True):
            rows = positions.get(key)
            if rows is None:
                continue
            # Only the rows asked for are converted, never a whole column of the window.
            ts = pd.to_datetime(frame["ts"].iloc[rows], utc=True)
            values = frame["value"].iloc[rows].to_numpy(dtype="float64")
            days = (
                np.full(len(rows), day, dtype="int64")
                if day is not None
                else frame["day"].iloc[rows].to_numpy(dtype="int64")
            )
            parts.append((ts.to_numpy(dtype="datetime64[ns]"), values, days))
        if not parts:
            return None
        ts, values, days = (np.concatenate([part[k] for part in parts]) for k in range(3))
        order = np.argsort(ts, kind="stable")
        return _Series(ts[order], values[order], days[order])

    def every_key(self) -> list[tuple[str, str]]:
        """Every (service, KPI), in the order the frames first list them (then any series
        given ready-gathered)."""
        listed = (key for positions in self._rows() for key in positions)
        given = (key for key, series in self._series.items() if series is not None)
        return list(dict.fromkeys([*listed, *given]))

    def series(self, service: str, kpi: str) -> _Series | None:
        key = (service, kpi)
        if key not in self._series:
            self._series[key] = self._gather(key)
        return self._series[key]

    def expected(self, service: str, kpi: str, ts: np.ndarray) -> np.ndarray | None:
        """GA day's level at each sample's local time of day: the median of each local hour,
        interpolated linearly between hour centres (round the clock), so neither the daily
        cycle nor an hourly staircase is taken for a change. Hours without GA-day samples
        take the day's median."""
        key = (service, kpi)
        if key not in self._profiles:
            series = self.series(service, kpi)
            if series is None:
                return None
            ga = series.day == 0
            if not ga.any():
                return None
            hours = _local_hours(series.ts[ga], self.timezone).astype("int64")
            values = series.values[ga]
            overall = float(np.median(values))
            profile = np.full(24, overall)
            for hour in np.unique(hours):
                profile[hour] = float(np.median(values[hours == hour]))
            self._profiles[key] = (profile, overall)
        profile, _ = self._profiles[key]
        position = _local_hours(ts, self.timezone) - 0.5  # hour centres at h + 0.5
        lower = np.floor(position).astype("int64")
        weight = position - lower
        return profile[lower % 24] * (1.0 - weight) + profile[(lower + 1) % 24] * weight


def _local_hours(ts: np.ndarray, timezone: str) -> np.ndarray:
    """Fractional local hour of day of each UTC timestamp."""
    local = clock.local_nanoseconds(np.asarray(ts, dtype="datetime64[ns]"), timezone)
    hour, minute = clock.hour_of_day(local), clock.minute_of_hour(local)
    return hour + minute / 60.0 + clock.second_of_minute(local) / 3600.0


def onset_of(
    index: SeriesIndex,
    release: Release,
    *,
    service: str,
    kpi: KpiDefinition,
    first_day: int,
    direction: str | None,
    min_change_pct: float | None,
    rate_window: dt.timedelta | None = None,
) -> ChangePoint | None:
    """The change point of (service, kpi) that began what `first_day` shows: searched over
    that day and the day before it (a change late in the evening shows on the next day's
    mean), in `direction` ("up"/"down") when given."""
    series = index.series(service, kpi.name)
    if series is None:
        return None
    first = max(first_day - 1, 0)
    chosen = (series.day >= first) & (series.day <= first_day)
    if chosen.sum() < 20:
        return None
    ts, values = series.ts[chosen], series.values[chosen]
    expected = index.expected(service, kpi.name, ts)
    start, _ = release.day_bounds(first)
    _, end = release.day_bounds(first_day)
    return find_change_point(
        ts,
        values,
        expected=expected,
        direction=direction,  # type: ignore[arg-type]
        within=(pd.Timestamp(start), pd.Timestamp(end)),
        min_change_pct=min_change_pct,
        rate_window=pd.Timedelta(rate_window) if rate_window is not None else None,
        near_zero=kpi.near_zero,
    )


def onset_record(change: ChangePoint | None, release: Release) -> dict[str, Any] | None:
    """The change point as the JSON record: its fields, plus the day it fell on and the
    local time, for sentences ("at 14:32 ± 3 min on day 2")."""
    if change is None:
        return None
    local = change.onset.tz_convert(release.timezone)
    return {
        **change.as_record(),
        "day": day_of(release, change.onset),
        "local_time": local.strftime("%H:%M"),
    }


def day_of(release: Release, moment: pd.Timestamp) -> int | None:
    for day in range(0, release.window_days + 1):
        start, end = release.day_bounds(day)
        if pd.Timestamp(start) <= moment < pd.Timestamp(end):
            return day
    return None


def _adverse_direction(kpi: KpiDefinition) -> str | None:
    if kpi.direction == "lower_is_better":
        return "up"
    if kpi.direction == "higher_is_better":
        return "down"
    return None


def _matches(
    annotations: Sequence[Annotation],
    change: ChangePoint | None,
    service: str,
    lookback_minutes: float,
) -> list[dict[str, Any]]:
    if change is None or not annotations:
        return []
    latest = min(change.onset_high, change.onset + pd.Timedelta(minutes=ONSET_GRACE_MINUTES))
    return [
        match.as_record()
        for match in annotations_before(
            annotations,
            change.onset,
            service=service,
            lookback_minutes=lookback_minutes,
            onset_high=latest,
        )
    ]


def _contributors(
    breakdown: BreakdownFetch | None,
    release: Release,
    *,
    service: str,
    kpi: KpiDefinition,
    day: int,
    change: ChangePoint | None,
) -> tuple[Contributors | None, dict[str, Any] | None]:
    if breakdown is None:
        return None, None
    baseline = release.day_bounds(0)
    day_start, day_end = release.day_bounds(day)
    start = change.onset.to_pydatetime() if change is not None else day_start
    if not day_start <= start < day_end:
        start = day_start
    start = min(start, day_end - dt.timedelta(minutes=MIN_OBSERVED_MINUTES))
    observed = (start, day_end)
    fetched = breakdown(service, kpi, baseline, observed)
    if fetched is None:
        return None, None
    frame, options = fetched
    ranked = rank_contributors(frame, **options)
    window = {
        "baseline": [baseline[0].isoformat(), baseline[1].isoformat()],
        "observed": [observed[0].isoformat(), observed[1].isoformat()],
    }
    return ranked, window


def explain_findings(
    judgement: Mapping[str, Any],
    *,
    index: SeriesIndex,
    release: Release,
    kpis: Mapping[str, KpiDefinition],
    annotations: Sequence[Annotation] = (),
    lookback_minutes: float = 30.0,
    breakdown: BreakdownFetch | None = None,
    rate_window: dt.timedelta | None = None,
) -> dict[str, Any]:
    """A copy of `judgement` (judge_window's result) whose degradations and unexpected
    drifts carry `onset`, `annotations` and (degradations) `contributors`, and whose
    cost analysis's level change carries `onset` and `annotations`."""
    out = dict(judgement)
    degradations = []
    for record in judgement.get("degradations", []):
        kpi = kpis.get(record["kpi"])
        if kpi is None:
            degradations.append(record)
            continue
        change = onset_of(
            index,
            release,
            service=record["service"],
            kpi=kpi,
            first_day=int(record["day_first"]),
            direction=_adverse_direction(kpi),
            min_change_pct=_half(record.get("threshold_pct")),
            rate_window=rate_window,
        )
        ranked, window = _contributors(
            breakdown,
            release,
            service=record["service"],
            kpi=kpi,
            day=int(record["day_first"]),
            change=change,
        )
        degradations.append(
            {
                **record,
                "onset": onset_record(change, release),
                "annotations": _matches(annotations, change, record["service"], lookback_minutes),
                "contributors": _contributors_record(ranked, window, kpi),
            }
        )
    out["degradations"] = degradations
    drifts = []
    for record in judgement.get("unexpected_drifts", []):
        kpi = kpis.get(record["kpi"])
        days = record.get("days") or []
        change = None
        if kpi is not None and days:
            change = onset_of(
                index,
                release,
                service=record["service"],
                kpi=kpi,
                first_day=int(days[0]),
                direction=_drift_direction(record),
                min_change_pct=_half(record.get("threshold_pct")),
                rate_window=rate_window,
            )
        drifts.append(
            {
                **record,
                "onset": onset_record(change, release),
                "annotations": _matches(annotations, change, record["service"], lookback_minutes),
            }
        )
    out["unexpected_drifts"] = drifts
    cost = judgement.get("cost_analysis")
    if isinstance(cost, Mapping) and isinstance(cost.get("level_change"), Mapping):
        out["cost_analysis"] = {
            **cost,
            "level_change": _cost_onset(
                cost["level_change"], index, release, kpis, annotations, lookback_minutes
            ),
        }
    return out


def _half(threshold: Any) -> float | None:
    return float(threshold) / 2.0 if isinstance(threshold, int | float) else None


def _drift_direction(record: Mapping[str, Any]) -> str | None:
    change = record.get("change_pct")
    if not isinstance(change, int | float):
        return None
    return "up" if change > 0 else "down"


def _contributors_record(
    ranked: Contributors | None, window: dict[str, Any] | None, kpi: KpiDefinition
) -> dict[str, Any] | None:
    if ranked is None:
        return None
    return {
        **ranked.as_record(),
        "headline": ranked.headline(kpi.title, kpi.unit),
        "window": window,
    }


def _cost_onset(
    level_change: Mapping[str, Any],
    index: SeriesIndex,
    release: Release,
    kpis: Mapping[str, KpiDefinition],
    annotations: Sequence[Annotation],
    lookback_minutes: float,
) -> dict[str, Any]:
    """The cost step's onset on the total cost per sample (every service's cost KPIs)."""
    day = level_change.get("day")
    if not isinstance(day, int):
        return dict(level_change)
    first = max(day - 1, 0)
    moments, amounts = [], []
    # Summed in one order whatever the frames' layout: the total comes out to the last bit.
    for service, name in sorted(index.every_key()):
        kpi = kpis.get(name)
        series = index.series(service, name) if kpi is not None and kpi.kind == "cost" else None
        if series is None:
            continue
        chosen = (series.day >= first) & (series.day <= day)
        moments.append(series.ts[chosen])
        amounts.append(series.values[chosen])
    change = None
    if moments:
        # The total at each moment, summed service by service in the index's order.
        ts, at = np.unique(np.concatenate(moments), return_inverse=True)
        values = np.bincount(at, weights=np.concatenate(amounts), minlength=len(ts))
    if moments and len(ts) >= 20:
        start, _ = release.day_bounds(first)
        _, end = release.day_bounds(day)
        rising = level_change.get("change_pct")
        # A step, not a ramp: the change point must carry half the level change itself.
        change = find_change_point(
            ts,
            values,
            direction=("up" if not isinstance(rising, int | float) or rising > 0 else "down"),
            within=(pd.Timestamp(start), pd.Timestamp(end)),
            min_change_pct=abs(rising) / 2 if isinstance(rising, int | float) else None,
        )
    # The total cost has no one service: every service's changes may explain it.
    everyone = [dataclasses.replace(annotation, service=None) for annotation in annotations]
    return {
        **level_change,
        "onset": onset_record(change, release),
        "annotations": _matches(everyone, change, "", lookback_minutes),
    }
