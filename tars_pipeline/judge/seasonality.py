"""Seasonality: tell the daily and weekly traffic cycle apart from drift.

Production KPIs follow the clock: throughput peaks in the afternoon and bottoms out at
night, latency and CPU follow load, and weekends are quieter than weekdays. A whole-day
mean compared with the GA day's whole-day mean is only fair when both days cover the same
hours in the same proportions. This module makes the comparison fair in two steps.

1. **Hour-of-day matching** (SPEC §3 "Baseline ... plus an hour-of-day profile"). Each
   series is compared only over the local hours both the day and the baseline have
   samples for, and the expected mean is the baseline's hourly profile weighted by the
   day's own hour coverage:

       expected_mean = Σ_h n_day(h) · μ_base(h) / Σ_h n_day(h)

   with h the hour of the local wall clock (release timezone), n_day(h) the day's samples
   in that hour and μ_base(h) the baseline's mean for it. For a complete day this is the
   baseline's mean, so an ordinary day compares exactly as before; for a day with a gap
   over the afternoon peak, or a day analysed before it ended, the night hours are no
   longer read as a drop. Other statistics (p50, p95, p99, min, max) are taken over the
   baseline's samples in the matched hours. This is the classical seasonal index of
   time-series decomposition (e.g. Hyndman & Athanasopoulos, *Forecasting: Principles and
   Practice*, 3rd ed., §3.4), applied as an expectation instead of an adjustment.

2. **Weekday factor** (optional; `Release.reference_date`). With a pre-GA reference week,
   day d's expectation is scaled by how that weekday compares with the GA weekday in the
   reference week, over the same hours:

       weekday_factor = Σ_h n_day(h) · μ_R(h) / Σ_h n_day(h) · μ_G(h)

   with R the reference day of day d's weekday and G the reference day of the GA weekday.
   A Saturday that carried 30 % less traffic than a Tuesday before the release is expected
   to do so after it. The factor is undefined (and not applied) when the GA-weekday
   reference level is ~0 or either reference day lacks the hours.

Everything here is a pure function of sample frames (service, kpi, ts, value).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tars_pipeline.config import KpiDefinition, Release
from tars_pipeline.judge.stats import hourly_profile, local_hour, summarise

_KEYS = ["service", "kpi"]
_HOUR_KEYS = ["service", "kpi", "hour"]
# Statistic columns a weekday factor scales (a multiplicative level change moves each).
SCALED_STATISTICS: tuple[str, ...] = ("mean", "p50", "p95", "p99", "min", "max")
SEASONAL_COLUMNS: tuple[str, ...] = (
    "service",
    "kpi",
    "baseline_method",
    "hours_compared",
    "weekday_factor",
)
HOURLY_COLUMNS: tuple[str, ...] = (
    "service",
    "kpi",
    "hour",
    "baseline_mean",
    "observed_mean",
    "drift_pct",
    "sample_count",
)
# A weekday factor is only a level ratio when the GA-weekday level is clearly non-zero.
_DEFAULT_NEAR_ZERO = 1e-9
REFERENCE_WEEK_DAYS = 7


def reference_week(release: Release) -> list[dt.date]:
    """The pre-GA reference week: `reference_date` and the following days, at most seven
    and never reaching the GA date. Empty without a reference date or when it is not
    before GA."""
    first = release.reference_start
    if first is None or first >= release.ga_date:
        return []
    length = min(REFERENCE_WEEK_DAYS, (release.ga_date - first).days)
    return [first + dt.timedelta(days=offset) for offset in range(length)]


def reference_dates(
    release: Release, day: int, date: dt.date | None = None
) -> tuple[dt.date, dt.date] | None:
    """(reference day of the weekday of day `day` (or of the local `date`, for the second
    date a 24-hour window from `ga_at` touches), reference day of the GA weekday), or None
    when the reference week lacks either weekday (or there is none)."""
    by_weekday = {date.weekday(): date for date in reference_week(release)}
    same_weekday = by_weekday.get((date or release.day_date(day)).weekday())
    ga_weekday = by_weekday.get(release.ga_date.weekday())
    if same_weekday is None or ga_weekday is None:
        return None
    return same_weekday, ga_weekday


def date_bounds(release: Release, date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """A calendar date's window in the release timezone, in UTC (as `Release.day_bounds`)."""
    start = dt.datetime.combine(date, dt.time(0), tzinfo=release.tz)
    end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(0), tzinfo=release.tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


@dataclass(frozen=True, eq=False)
class ReferenceDays:
    """Samples of two pre-GA reference days: the same weekday as the day being judged
    (`day_weekday`) and the same weekday as GA (`ga_weekday`); one frame for both when
    the day falls on GA's weekday."""

    day_weekday: pd.DataFrame
    ga_weekday: pd.DataFrame


@dataclass(frozen=True, eq=False)
class Expectation:
    """What the day is compared with, and over which samples.

    `day_stats` summarises the day's samples in the matched hours; `baseline_stats` is the
    expectation in the same shape (`stats.summarise` columns). `info` has one row per
    series: baseline_method ("hour_of_day", "hour_of_day+weekday", "overall",
    "overall+weekday"), hours_compared (local hours in the comparison) and weekday_factor
    (1.0 when none was applied).
    """

    day_stats: pd.DataFrame
    baseline_stats: pd.DataFrame
    info: pd.DataFrame
    # Made on the way, for the whole-day and hour-by-hour comparisons (drift.compare_day):
    # both frames summarised over all their hours, and the baseline's hourly profile (None
    # without hour-of-day matching).
    day_summary: pd.DataFrame | None = None
    baseline_summary: pd.DataFrame | None = None
    baseline_profile: pd.DataFrame | None = None


def with_local_hour(samples: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """The samples with an `hour` column: the local hour (0-23) in `timezone`."""
    if "hour" in samples.columns:
        return samples
    return samples.assign(hour=local_hour(samples["ts"], timezone) if len(samples) else 0)


def hour_counts(samples: pd.DataFrame) -> pd.DataFrame:
    """Finite samples per (service, kpi, hour) of a frame that has an `hour` column."""
    finite = samples[np.isfinite(samples["value"].to_numpy(dtype="float64"))]
    return finite.groupby(_HOUR_KEYS, sort=True).size().rename("sample_count").reset_index()


def matched_hours(baseline: pd.DataFrame, day: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames (with `hour`) restricted to the (service, kpi, hour) both have samples in."""
    common = _common_hours(baseline, day)
    keep_base = baseline.merge(common, on=_HOUR_KEYS, how="inner")
    keep_day = day.merge(common, on=_HOUR_KEYS, how="inner")
    return keep_base, keep_day


def _common_hours(baseline: pd.DataFrame, day: pd.DataFrame) -> pd.DataFrame:
    return (
        baseline[_HOUR_KEYS]
        .drop_duplicates()
        .merge(day[_HOUR_KEYS].drop_duplicates(), on=_HOUR_KEYS, how="inner")
    )


def _every_hour_in_common(baseline: pd.DataFrame, day: pd.DataFrame) -> bool:
    """Whether both frames cover exactly the same (service, kpi, hour) cells: the usual
    case of two whole days, where `matched_hours` would keep every row of both (an inner
    merge keeps the left frame's row order, so their statistics would be the same)."""
    base_cells = baseline[_HOUR_KEYS].drop_duplicates()
    day_cells = day[_HOUR_KEYS].drop_duplicates()
    if len(base_cells) != len(day_cells):
        return False
    return len(base_cells.merge(day_cells, on=_HOUR_KEYS, how="inner")) == len(base_cells)


def _empty_per_series(**dtypes: str) -> pd.DataFrame:
    """An empty per-series result with the columns and dtypes a non-empty one has."""
    columns: dict[str, object] = {"service": object, "kpi": object, **dtypes}
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def profile_expectation(profile: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Σ_h n(h) · μ(h) / Σ_h n(h) per series, over the hours both frames have.

    `profile`: service, kpi, hour, mean (`stats.hourly_profile`); `counts`: service, kpi,
    hour, sample_count (`hour_counts` of the day). Result: service, kpi, expected_mean,
    hours_compared.
    """
    merged = counts.merge(profile[[*_HOUR_KEYS, "mean"]], on=_HOUR_KEYS, how="inner")
    merged = merged[np.isfinite(merged["mean"].to_numpy(dtype="float64"))]
    if merged.empty:
        return _empty_per_series(expected_mean="float64", hours_compared="int64")
    merged = merged.assign(weighted=merged["sample_count"] * merged["mean"])
    grouped = merged.groupby(_KEYS, sort=True)
    result = pd.DataFrame(
        {
            "expected_mean": grouped["weighted"].sum() / grouped["sample_count"].sum(),
            "hours_compared": grouped["hour"].nunique().astype("int64"),
        }
    ).reset_index()
    return result


def weekday_factors(
    reference: ReferenceDays,
    counts: pd.DataFrame,
    timezone: str,
    kpis: Mapping[str, KpiDefinition] | None = None,
) -> pd.DataFrame:
    """weekday_factor per series = hour-matched level of the day's weekday in the reference
    week ÷ that of the GA weekday (see the module docstring); service, kpi, weekday_factor.

    Series whose factor is undefined (no common hours, GA-weekday level below the KPI's
    `near_zero`, a non-positive or non-finite ratio) are left out: no factor applies.
    """
    columns = {
        "service": pd.Series(dtype=object),
        "kpi": pd.Series(dtype=object),
        "weekday_factor": pd.Series(dtype="float64"),
    }
    if reference.day_weekday.empty or reference.ga_weekday.empty or counts.empty:
        return pd.DataFrame(columns)
    day_level = profile_expectation(hourly_profile(reference.day_weekday, timezone), counts)
    ga_level = profile_expectation(hourly_profile(reference.ga_weekday, timezone), counts)
    merged = day_level.merge(ga_level, on=_KEYS, suffixes=("_day", "_ga"))
    # Both levels over the same hours: keep series where both reference days had them all.
    merged = merged[merged["hours_compared_day"] == merged["hours_compared_ga"]]
    if merged.empty:
        return pd.DataFrame(columns)
    near_zero = merged["kpi"].map(
        lambda name: kpis[name].near_zero if kpis and name in kpis else _DEFAULT_NEAR_ZERO
    )
    numerator = merged["expected_mean_day"].to_numpy(dtype="float64")
    denominator = merged["expected_mean_ga"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        factor = numerator / denominator
    defined = (
        (np.abs(denominator) >= near_zero.to_numpy(dtype="float64"))
        & np.isfinite(factor)
        & (factor > 0)
    )
    result = merged.loc[defined, _KEYS].assign(weekday_factor=factor[defined])
    return result.reset_index(drop=True)


def expectation(
    day_samples: pd.DataFrame,
    baseline_samples: pd.DataFrame,
    timezone: str,
    *,
    hour_of_day: bool = True,
    reference: ReferenceDays | None = None,
    kpis: Mapping[str, KpiDefinition] | None = None,
    day_summary: pd.DataFrame | None = None,
) -> Expectation:
    """The day's statistics and the baseline's expectation for them (module docstring).

    With `hour_of_day`, series are compared over their matched local hours, the expected
    mean weighted by the day's hour coverage; a series with no hour in common with the
    baseline falls back to the whole-day comparison ("overall"). With `reference`, every
    statistic of the expectation is multiplied by the series' weekday factor.
    `day_summary`, when the caller has it, is `summarise(day_samples)`.
    """
    day_h = with_local_hour(day_samples, timezone)
    base_h = with_local_hour(baseline_samples, timezone)
    day_all = summarise(day_h) if day_summary is None else day_summary
    base_all = summarise(base_h)
    base_profile = None
    if hour_of_day:
        base_profile = hourly_profile(base_h, timezone)
        if _every_hour_in_common(base_h, day_h):
            # Every row of both is matched: the same statistics as the whole-day ones.
            day_matched, day_stats, base_stats = day_h, day_all, base_all.copy()
        else:
            base_matched, day_matched = matched_hours(base_h, day_h)
            day_stats = summarise(day_matched)
            base_stats = summarise(base_matched)
        expected = profile_expectation(base_profile, hour_counts(day_matched))
        base_stats = base_stats.merge(expected, on=_KEYS, how="left")
        base_stats["mean"] = base_stats["expected_mean"].fillna(base_stats["mean"])
        hours = base_stats[[*_KEYS, "hours_compared"]]
        base_stats = base_stats.drop(columns=["expected_mean", "hours_compared"])
        matched_keys = set(zip(day_stats["service"], day_stats["kpi"], strict=True))
        fallback = [
            key
            for key in zip(day_all["service"], day_all["kpi"], strict=True)
            if key not in matched_keys
        ]
        if fallback:
            wanted = pd.DataFrame(fallback, columns=_KEYS)
            day_stats = pd.concat([day_stats, day_all.merge(wanted, on=_KEYS)], ignore_index=True)
            base_stats = pd.concat(
                [base_stats, base_all.merge(wanted, on=_KEYS)], ignore_index=True
            )
        method = "hour_of_day"
    else:
        day_stats, base_stats = day_all, base_all
        hours = pd.DataFrame(columns=[*_KEYS, "hours_compared"])
        method = "overall"

    info = base_stats[_KEYS].merge(hours, on=_KEYS, how="left")
    info["baseline_method"] = np.where(info["hours_compared"].notna(), method, "overall")
    observed_hours = (
        day_h.groupby(_KEYS)["hour"].nunique().rename("observed_hours").reset_index()
        if len(day_h)
        else pd.DataFrame(columns=[*_KEYS, "observed_hours"])
    )
    info = info.merge(observed_hours, on=_KEYS, how="left")
    info["hours_compared"] = (
        info["hours_compared"].fillna(info["observed_hours"]).fillna(0).astype("int64")
    )
    info = info.drop(columns=["observed_hours"])
    info["weekday_factor"] = 1.0

    if reference is not None:
        counts = hour_counts(day_h)
        factors = weekday_factors(reference, counts, timezone, kpis)
        if len(factors):
            base_stats = base_stats.merge(factors, on=_KEYS, how="left")
            factor = base_stats.pop("weekday_factor").fillna(1.0).to_numpy(dtype="float64")
            for column in SCALED_STATISTICS:
                if column in base_stats.columns:
                    base_stats[column] = base_stats[column].to_numpy(dtype="float64") * factor
            info = info.drop(columns=["weekday_factor"]).merge(factors, on=_KEYS, how="left")
            applied = info["weekday_factor"].notna()
            info["weekday_factor"] = info["weekday_factor"].fillna(1.0)
            info.loc[applied, "baseline_method"] = info.loc[applied, "baseline_method"] + (
                "+weekday"
            )
    day_stats = day_stats.sort_values(_KEYS, kind="stable").reset_index(drop=True)
    base_stats = base_stats.sort_values(_KEYS, kind="stable").reset_index(drop=True)
    info = info[list(SEASONAL_COLUMNS)].sort_values(_KEYS, kind="stable").reset_index(drop=True)
    return Expectation(
        day_stats=day_stats,
        baseline_stats=base_stats,
        info=info,
        day_summary=day_all,
        baseline_summary=base_all,
        baseline_profile=base_profile,
    )


def hourly_comparison(
    day_samples: pd.DataFrame,
    baseline_samples: pd.DataFrame,
    timezone: str,
    kpis: Mapping[str, KpiDefinition] | None = None,
    *,
    baseline_profile: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each local hour of the day against the baseline's same hour (HOURLY_COLUMNS).

    drift_pct = (observed_mean − baseline_mean) / |baseline_mean| × 100, NaN when the
    baseline hour is ~0 (below the KPI's near_zero). This is where a shifted traffic peak
    shows: the day's mean can hold while 20:00 carries what 14:00 used to.
    `baseline_profile`, when the caller has it, is `hourly_profile(baseline_samples)`.
    """
    day_profile = hourly_profile(day_samples, timezone)
    base_profile = (
        hourly_profile(baseline_samples, timezone) if baseline_profile is None else baseline_profile
    )
    merged = day_profile.merge(
        base_profile[[*_HOUR_KEYS, "mean"]], on=_HOUR_KEYS, suffixes=("_day", "_base")
    )
    if merged.empty:
        return pd.DataFrame(
            {
                name: pd.Series(dtype=object if name in _KEYS else "float64")
                for name in HOURLY_COLUMNS
            }
        )
    near_zero = merged["kpi"].map(
        lambda name: kpis[name].near_zero if kpis and name in kpis else _DEFAULT_NEAR_ZERO
    )
    base = merged["mean_base"].to_numpy(dtype="float64")
    observed = merged["mean_day"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        drift = (observed - base) / np.abs(base) * 100.0
    relative = (np.abs(base) >= near_zero.to_numpy(dtype="float64")) & np.isfinite(drift)
    return pd.DataFrame(
        {
            "service": merged["service"],
            "kpi": merged["kpi"],
            "hour": merged["hour"].astype("int64"),
            "baseline_mean": base,
            "observed_mean": observed,
            "drift_pct": np.where(relative, drift, np.nan),
            "sample_count": merged["sample_count"].astype("int64"),
        }
    )


def largest_hourly_drift(hourly: pd.DataFrame) -> pd.DataFrame:
    """Per series the hour whose drift is largest in magnitude: service, kpi,
    max_hourly_drift_pct (signed), max_hourly_drift_hour. Series without any relative
    hourly drift are left out."""
    finite = hourly[np.isfinite(hourly["drift_pct"].to_numpy(dtype="float64"))]
    if finite.empty:
        return _empty_per_series(max_hourly_drift_pct="float64", max_hourly_drift_hour="int64")
    order = finite.assign(_size=finite["drift_pct"].abs()).sort_values(
        [*_KEYS, "_size", "hour"], ascending=[True, True, False, True], kind="stable"
    )
    top = order.drop_duplicates(_KEYS, keep="first")
    return pd.DataFrame(
        {
            "service": top["service"].to_numpy(),
            "kpi": top["kpi"].to_numpy(),
            "max_hourly_drift_pct": top["drift_pct"].to_numpy(dtype="float64"),
            "max_hourly_drift_hour": top["hour"].to_numpy(dtype="int64"),
        }
    )


def hour_matched_values(
    baseline: pd.DataFrame, day: pd.DataFrame, weekday_factor: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Values of one series for a rank test: baseline samples in the hours the day has
    (× the weekday factor) and the day's samples in the hours the baseline has. Frames need
    `hour` and `value`; without a common hour both sides are returned whole."""
    base_hours = set(baseline["hour"].tolist())
    day_hours = set(day["hour"].tolist())
    common = base_hours & day_hours
    if common:
        baseline = baseline[baseline["hour"].isin(common)]
        day = day[day["hour"].isin(common)]
    factor = weekday_factor if np.isfinite(weekday_factor) and weekday_factor > 0 else 1.0
    return (
        baseline["value"].to_numpy(dtype="float64") * factor,
        day["value"].to_numpy(dtype="float64"),
    )
