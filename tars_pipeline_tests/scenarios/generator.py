"""Synthetic GA weeks with known injected changes, as sample frames.

A week is one service's default KPI catalog at one sample a minute, from a pre-GA reference
week (GA − 7 .. GA − 1) through Day 7, in a real timezone. Every series is a level × a daily
traffic cycle × Gaussian noise, like `test_data/generate.py` but small and seeded, so each
scenario differs from the quiet week only by what it injects:

- `Step`: a level change from a day on (a regression, or a cost jump);
- `Ramp`: a level that creeps a little every day (CPU following load);
- `Spike`: minutes far above normal (an incident the day-level judge must not over-read);
- `WeekendDip`: less traffic on Saturdays and Sundays, the reference week included;
- `Gap`, `Truncate`: hours without samples (a scrape outage, a day analysed before its end);
- `CounterReset`: one naive delta of a counter that restarted, a large negative rate;
- `SparseErrors`: errors in only some minutes, down to none at all (zero-heavy series);
- `PeakShift`: the daily peak moving to another hour, the daily mean unchanged;
- `Volatile`: a level that swings up and down from day to day;
- `Burst`: values replaced in a time range (errors during planned maintenance).

`generate_week` returns the samples by date; the scenario tests run the pipeline's pure
judgement (`analyse_day`, `judge_window`, recommendations) over them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tars_pipeline.config import KpiDefinition, Release
from tars_pipeline.judge.seasonality import date_bounds

SERVICE = "shop"
TIMEZONE = "Europe/Berlin"
GA_DATE = dt.date(2025, 6, 3)  # a Tuesday: Day 4 is a Saturday, Day 5 a Sunday
WINDOW_DAYS = 7
REFERENCE_DAYS = 7
STEP_SECONDS = 60
PEAK_HOUR = 14.0


@dataclass(frozen=True)
class Shape:
    """A KPI's normal day: level, relative swing with traffic (+ at the peak), noise."""

    level: float
    cycle: float
    noise: float
    decimals: int = 4


SHAPES: dict[str, Shape] = {
    "error_rate": Shape(0.05, 0.0, 0.10),
    "throughput": Shape(800.0, 0.35, 0.01, 2),
    "latency_p50": Shape(40.0, 0.03, 0.015, 2),
    "latency_p95": Shape(90.0, 0.04, 0.025, 2),
    "latency_p99": Shape(150.0, 0.05, 0.04, 2),
    "cpu_utilization": Shape(55.0, 0.08, 0.015),
    "memory_utilization": Shape(60.0, 0.0, 0.006),
    "cost_compute": Shape(6.0, 0.04, 0.01),
    "cost_memory": Shape(2.0, 0.015, 0.006),
    "cost_storage": Shape(1.2, 0.0, 0.006),
    "cost_network": Shape(0.8, 0.10, 0.02),
}
# availability = 100 − error rate: both come from the same request counters.
KPI_NAMES: tuple[str, ...] = ("availability", *SHAPES)

# A business KPI that follows traffic and where more is better: what a weekend dip hurts.
CHECKOUTS = KpiDefinition(
    name="checkouts",
    title="Checkouts",
    unit="1/min",
    direction="higher_is_better",
    kind="user_facing",
)
EXTRA_SHAPES: dict[str, Shape] = {"checkouts": Shape(120.0, 0.35, 0.02, 2)}


# --- injected changes -----------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    kpi: str
    from_day: int
    pct: float
    until_day: int | None = None


@dataclass(frozen=True)
class Ramp:
    kpi: str
    pct_per_day: float


@dataclass(frozen=True)
class Spike:
    kpi: str
    day: int
    hour: float
    minutes: int
    factor: float


@dataclass(frozen=True)
class WeekendDip:
    kpis: tuple[str, ...]
    pct: float


@dataclass(frozen=True)
class Gap:
    day: int
    from_hour: float
    to_hour: float


@dataclass(frozen=True)
class Truncate:
    day: int
    until_hour: float


@dataclass(frozen=True)
class CounterReset:
    day: int
    hour: float
    kpi: str = "throughput"


@dataclass(frozen=True)
class SparseErrors:
    """error_rate is 0 except in a share of minutes, where it is `level` % (± noise)."""

    share_by_day: dict[int, float]
    level: float = 0.5
    default_share: float = 0.0


@dataclass(frozen=True)
class PeakShift:
    kpis: tuple[str, ...]
    from_day: int
    peak_hour: float


@dataclass(frozen=True)
class Volatile:
    kpi: str
    pct_by_day: tuple[float, ...]


@dataclass(frozen=True)
class Burst:
    kpi: str
    start: dt.datetime
    end: dt.datetime
    value: float


Change = (
    Step
    | Ramp
    | Spike
    | WeekendDip
    | Gap
    | Truncate
    | CounterReset
    | SparseErrors
    | PeakShift
    | Volatile
    | Burst
)


@dataclass(frozen=True)
class Week:
    """The generated samples: `days[d]` for Day d (0..7), `reference[date]` pre-GA."""

    release: Release
    days: dict[int, pd.DataFrame]
    reference: dict[dt.date, pd.DataFrame] = field(default_factory=dict)

    def samples(self, day: int) -> pd.DataFrame:
        return self.days[day]


def release(*, reference: bool | str = False) -> Release:
    """reference: True sets reference_date (GA − 7); "auto" leaves it unset for the default
    discovery of the week before GA; False turns both off (a source without that week)."""
    return Release(
        name="scenario",
        ga_date=GA_DATE,
        timezone=TIMEZONE,
        window_days=WINDOW_DAYS,
        reference_date=GA_DATE - dt.timedelta(days=REFERENCE_DAYS) if reference is True else None,
        auto_reference=reference == "auto",
    )


# --- generation -----------------------------------------------------------------------


def _cycle(local_hour: np.ndarray, peak_hour: np.ndarray | float) -> np.ndarray:
    """+1 at the peak hour, −1 twelve hours later, a plain cosine (mean 0 over a day)."""
    return np.cos(2.0 * np.pi * (local_hour - peak_hour) / 24.0)


def generate_week(
    changes: Sequence[Change] = (), *, seed: int = 1, extra_kpis: Sequence[str] = ()
) -> Week:
    """The quiet week, then each change applied in order. Deterministic for a seed.

    `extra_kpis` adds series from EXTRA_SHAPES (e.g. "checkouts") after the default ones,
    so the default series are the same with or without them."""
    shapes = {**SHAPES, **{name: EXTRA_SHAPES[name] for name in extra_kpis}}
    names = (*KPI_NAMES, *extra_kpis)
    rel = release(reference=True)
    dates = [GA_DATE + dt.timedelta(days=offset) for offset in range(-REFERENCE_DAYS, 8)]
    start, _ = date_bounds(rel, dates[0])
    _, end = date_bounds(rel, dates[-1])
    ts = pd.date_range(start, end, freq=f"{STEP_SECONDS}s", inclusive="left", tz="UTC")
    local = ts.tz_convert(TIMEZONE)
    local_hour = np.asarray(local.hour + local.minute / 60.0, dtype="float64")
    local_date = np.array([d.date() for d in local.normalize()])
    day = np.array([(d - GA_DATE).days for d in local_date])
    weekend = np.array([d.weekday() >= 5 for d in local_date])
    rng = np.random.default_rng(seed)

    peak = {kpi: np.full(len(ts), PEAK_HOUR) for kpi in shapes}
    for change in changes:
        if isinstance(change, PeakShift):
            for kpi in change.kpis:
                peak[kpi] = np.where(day >= change.from_day, change.peak_hour, peak[kpi])

    values: dict[str, np.ndarray] = {}
    for kpi, shape in shapes.items():
        noise = rng.normal(0.0, shape.noise, len(ts))
        values[kpi] = shape.level * (1 + shape.cycle * _cycle(local_hour, peak[kpi])) * (1 + noise)

    keep = np.ones(len(ts), dtype=bool)
    for change in changes:
        if isinstance(change, Step):
            until = change.until_day if change.until_day is not None else WINDOW_DAYS
            hit = (day >= change.from_day) & (day <= until)
            values[change.kpi] = values[change.kpi] * np.where(hit, 1 + change.pct / 100, 1.0)
        elif isinstance(change, Ramp):
            factor = 1 + change.pct_per_day * np.clip(day, 0, None) / 100
            values[change.kpi] = values[change.kpi] * factor
        elif isinstance(change, Spike):
            hit = (day == change.day) & (local_hour >= change.hour)
            hit &= local_hour < change.hour + change.minutes / 60.0
            values[change.kpi] = values[change.kpi] * np.where(hit, change.factor, 1.0)
        elif isinstance(change, WeekendDip):
            for kpi in change.kpis:
                values[kpi] = values[kpi] * np.where(weekend, 1 - change.pct / 100, 1.0)
        elif isinstance(change, Gap):
            keep &= ~(
                (day == change.day)
                & (local_hour >= change.from_hour)
                & (local_hour < change.to_hour)
            )
        elif isinstance(change, Truncate):
            keep &= ~((day == change.day) & (local_hour >= change.until_hour))
        elif isinstance(change, SparseErrors):
            share = np.array([change.share_by_day.get(int(d), change.default_share) for d in day])
            has_errors = rng.random(len(ts)) < share
            level = change.level * (1 + rng.normal(0.0, 0.2, len(ts)))
            values["error_rate"] = np.where(has_errors, np.clip(level, 0.01, None), 0.0)
        elif isinstance(change, Volatile):
            pct = np.array(
                [change.pct_by_day[d] if 0 <= d < len(change.pct_by_day) else 0.0 for d in day]
            )
            values[change.kpi] = values[change.kpi] * (1 + pct / 100)
        elif isinstance(change, Burst):
            hit = (ts >= pd.Timestamp(change.start)) & (ts < pd.Timestamp(change.end))
            values[change.kpi] = np.where(hit, change.value, values[change.kpi])

    for change in changes:
        if isinstance(change, CounterReset):
            # The counter behind the rate restarted at 0; a delta taken without reset
            # handling reads −(everything counted since the reference week began) / step.
            counted = np.cumsum(values[change.kpi]) * STEP_SECONDS
            at = np.flatnonzero((day == change.day) & (local_hour >= change.hour))[0]
            values[change.kpi] = values[change.kpi].copy()
            values[change.kpi][at] = -counted[at - 1] / STEP_SECONDS

    for kpi, shape in shapes.items():
        rounded = np.round(values[kpi], shape.decimals)
        values[kpi] = np.where(rounded == 0, 0.0, rounded)  # no −0.0
    values["availability"] = np.round(100.0 - values["error_rate"], 4)

    frame = pd.concat(
        [
            pd.DataFrame(
                {"service": SERVICE, "kpi": kpi, "ts": ts[keep], "value": values[kpi][keep]}
            ).assign(_day=day[keep], _date=local_date[keep])
            for kpi in names
        ],
        ignore_index=True,
    )
    days = {
        d: rows.drop(columns=["_day", "_date"]).reset_index(drop=True)
        for d, rows in frame[frame["_day"] >= 0].groupby("_day")
    }
    reference = {
        date: rows.drop(columns=["_day", "_date"]).reset_index(drop=True)
        for date, rows in frame[frame["_day"] < 0].groupby("_date")
    }
    for d in range(WINDOW_DAYS + 1):
        days.setdefault(d, frame.iloc[:0].drop(columns=["_day", "_date"]))
    return Week(release=rel, days={int(k): v for k, v in days.items()}, reference=reference)
