"""Reading one release-day from the metric source: the window, the checks on what came back,
and the reference days of a pre-GA week. No Dagster: `kpi_samples` and `daily_summary` call
these, and the tests call them directly."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.day import reference_for_day
from tars_pipeline.judge.seasonality import ReferenceDays, date_bounds
from tars_pipeline.sources.base import DayFetch, MetricSource, empty_samples

COVERAGE_COLUMNS = ["service", "kpi", "expected_points", "points"]


@dataclass(frozen=True)
class DayWindow:
    """One release-day as fetched: its bounds, the samples and each series' coverage."""

    start: dt.datetime
    end: dt.datetime
    fetch: DayFetch

    @property
    def coverage(self) -> pd.DataFrame:
        rows = [
            {
                "service": c.service,
                "kpi": c.kpi,
                "expected_points": c.expected_points,
                "points": c.points,
            }
            for c in self.fetch.coverage
        ]
        return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"samples": self.fetch.samples, "coverage": self.coverage}

    def gap_lines(self) -> list[str]:
        return [f"no data: {gap.service}/{gap.kpi}" for gap in self.fetch.missing] + [
            f"incomplete: {gap.service}/{gap.kpi} {gap.completeness_pct:.1f} % of the day"
            for gap in self.fetch.incomplete
        ]

    def metadata(self, release: str, day: int, *, rows: int) -> dict[str, Any]:
        coverage = self.coverage
        expected = coverage["expected_points"].sum()
        completeness = 100.0 * coverage["points"].sum() / expected if expected else 0.0
        samples = self.fetch.samples
        return {
            "release": release,
            # Text, not numbers: the same on every day, they would plot as flat lines.
            "day": str(day),
            "window_start": self.start.isoformat(),
            "window_end": self.end.isoformat(),
            "rows": int(rows),
            "services": str(samples["service"].nunique()),
            "kpis": str(samples["kpi"].nunique()),
            "completeness_pct": round(float(completeness), 2),
            "missing_series": len(self.fetch.missing),
            "incomplete_series": len(self.fetch.incomplete),
        }


def read_window(
    source: MetricSource,
    config: TarsConfig,
    release: Release,
    day: int,
    *,
    now: dt.datetime | None = None,
) -> DayWindow:
    """The day's samples, up to the last whole step before `now` for a day in progress (the
    nightly run starts at 23:59), refusing a day in the future, an empty answer, and missing
    data on KPIs marked `fail_on_missing_data`, before anything is written."""
    start, end = release.day_bounds(day)
    now = now or dt.datetime.now(dt.UTC)
    where = f"partition {release.name} day_{day:02d}"
    if start >= now:
        raise TarsUserError(
            f"{release.name} day {day} starts at {start.isoformat()}, in the future",
            where=where,
            remedy="materialize days that have started (the nightly schedule does)",
        )
    step = dt.timedelta(seconds=config.step_seconds)
    end = min(end, start + ((now - start) // step) * step)
    fetch = source.fetch_day(release, start, end, config.kpis, config.step_seconds)
    if fetch.samples.empty:
        raise TarsUserError(
            f"the metric source returned no samples for {release.name} day {day} "
            f"({start.isoformat()} .. {end.isoformat()})",
            where=f"source ({config.source.type})",
            remedy="check the source settings and that the day has data",
        )
    required = {kpi.name for kpi in config.kpis if kpi.fail_on_missing_data}
    failing = [c for c in fetch.missing + fetch.incomplete if c.kpi in required]
    if failing:
        listed = ", ".join(f"{c.service}/{c.kpi} ({c.completeness_pct:.0f} %)" for c in failing)
        raise TarsUserError(
            f"required KPI data missing or incomplete: {listed}",
            where="kpis[].fail_on_missing_data",
            remedy="fix the source or set fail_on_missing_data: false for these KPIs",
        )
    return DayWindow(start, end, fetch)


def read_reference(
    source: MetricSource,
    config: TarsConfig,
    release: Release,
    day: int,
    *,
    include_ga_day: bool = False,
    date: dt.date | None = None,
) -> ReferenceDays | None:
    """`judge.day.reference_for_day` reading the pre-GA reference days from `source`, each
    a calendar date in the release timezone."""
    if release.reference_start is None or (day == 0 and not include_ga_day):
        return None

    def fetch_date(date: dt.date) -> pd.DataFrame:
        start, end = date_bounds(release, date)
        try:
            return source.fetch_day(release, start, end, config.kpis, config.step_seconds).samples
        except TarsUserError:
            if release.reference_date is not None:
                raise
            # The automatic week before GA is used only when the source holds it (a
            # Prometheus whose retention or discovery finds nothing there has none).
            return empty_samples()

    return reference_for_day(
        config, release, day, fetch_date, include_ga_day=include_ga_day, date=date
    )
