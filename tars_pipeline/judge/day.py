"""One day judged against the GA-day baseline: the day's pure pipeline.

pre-filter (`stats.prefilter`, `maintenance.exclude_maintenance`) → compare (`drift.compare_day`,
against the baseline's hour-of-day expectation × the reference week's weekday factor) → SLO
status → cost → score (`health.score_day`). No store, no Dagster: the `daily_summary` asset,
the `anomaly_events` asset, the continuous sensor and the scenario tests all call these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.anomaly import SEASON_CLIP, detect_anomalies, seasonal_factors
from tars_pipeline.judge.cost import daily_cost
from tars_pipeline.judge.drift import compare_day
from tars_pipeline.judge.health import DayHealth, score_day
from tars_pipeline.judge.maintenance import (
    events_outside_maintenance,
    exclude_maintenance,
    excluded_counts,
)
from tars_pipeline.judge.seasonality import ReferenceDays, reference_dates
from tars_pipeline.judge.slo import slo_day_status
from tars_pipeline.judge.stats import prefilter, summarise
from tars_pipeline.judge.traffic import request_count

SLO_COLUMNS = [
    "service", "slo", "kpi", "bad_fraction", "burn_rate", "utilisation", "compliant",
    "breached", "sample_count", "requests", "insufficient_traffic", "reason",
]  # fmt: skip


def slo_status_for_day(
    samples: pd.DataFrame, stats: pd.DataFrame, config: TarsConfig
) -> pd.DataFrame:
    """Each SLO's status per service for one day (bad fraction, burn rate, utilisation);
    a ratio SLO judged on fewer than `thresholds.min_requests` requests (from the service's
    throughput) is "insufficient traffic", neither met nor breached."""
    kpis = config.kpis_by_name
    throughput = samples[samples["kpi"] == "throughput"]
    requests_by_service = {
        service: request_count(rows["value"].to_numpy(), config.step_seconds)
        for service, rows in throughput.groupby("service")
    }
    rows = []
    for slo in config.slos:
        kpi = kpis[slo.kpi]
        series = samples[samples["kpi"] == slo.kpi]
        for service, values in series.groupby("service"):
            stat = stats[(stats["service"] == service) & (stats["kpi"] == slo.kpi)]
            statistic_value = float(stat[kpi.statistic].iloc[0]) if len(stat) else float("nan")
            status = slo_day_status(
                values["value"].to_numpy(),
                slo,
                kpi,
                statistic_value,
                requests=requests_by_service.get(service),
                min_requests=config.thresholds.min_requests,
            )
            rows.append(
                {
                    "service": service,
                    "slo": slo.name,
                    "kpi": slo.kpi,
                    "bad_fraction": status.bad_fraction,
                    "burn_rate": status.burn_rate,
                    "utilisation": status.utilisation,
                    "compliant": status.compliant,
                    "breached": status.breached,
                    "sample_count": status.sample_count,
                    "requests": status.requests,
                    "insufficient_traffic": status.insufficient_traffic,
                    "reason": status.reason,
                }
            )
    return pd.DataFrame(rows, columns=SLO_COLUMNS)


@dataclass(frozen=True, eq=False)
class DayAnalysis:
    """One day judged against the baseline: every frame the asset stores, and what was
    left out of the judgement (`dropped` by the pre-filter, `excluded` by maintenance)."""

    stats: pd.DataFrame
    drift: pd.DataFrame
    slo: pd.DataFrame
    cost: pd.DataFrame
    health: DayHealth
    anomalies: pd.DataFrame
    dropped: pd.DataFrame
    excluded: pd.DataFrame

    @property
    def breaches(self) -> set[tuple[str, str]]:
        """(service, KPI) pairs whose SLO was breached on the day."""
        return {(row.service, row.kpi) for row in self.slo[self.slo["breached"]].itertuples()}

    def tables(self) -> dict[str, pd.DataFrame]:
        """What the store keeps of the day, by table name (store.TABLES)."""
        health = self.health
        health_row = pd.DataFrame(
            [
                {
                    "score": health.score,
                    "band": health.band,
                    "weighted_kpi_score": health.weighted_kpi_score,
                    "anomaly_penalty": health.anomaly_penalty,
                }
            ]
        )
        return {
            "daily_stats": self.stats,
            "drift": self.drift,
            "slo_daily": self.slo,
            "cost_daily": self.cost,
            "health": health_row,
            "health_contributions": health.contributions,
        }


def clean_samples(samples: pd.DataFrame, config: TarsConfig) -> pd.DataFrame:
    """The samples the judgement sees: pre-filtered (non-finite, and negative values when
    `thresholds.drop_negative_samples`) and outside every maintenance window."""
    kept = prefilter(samples, drop_negative=config.thresholds.drop_negative_samples).samples
    return exclude_maintenance(kept, config.maintenance_windows)


def analyse_day(
    *,
    samples: pd.DataFrame,
    baseline_samples: pd.DataFrame,
    anomalies: pd.DataFrame,
    config: TarsConfig,
    release: Release,
    day: int,
    reference: ReferenceDays | None = None,
) -> DayAnalysis:
    """The day's judgement as pure steps (no store, no Dagster), shared by the asset and
    the scenario tests:

    1. pre-filter the day's and the GA day's samples (`stats.prefilter`), then leave out
       maintenance windows (`maintenance.exclude_maintenance`);
    2. summarise the day; drift vs the baseline's hour-of-day expectation, × the weekday
       factor with a reference week (`drift.compare_day`);
    3. SLO status per service on the judged samples;
    4. cost on every pre-filtered sample (maintenance costs money too);
    5. the health score, with anomaly events inside maintenance windows not counted, and
       none on GA day (the baseline scores 100 unless an SLO is breached on it).
    """
    kpis = config.kpis_by_name
    windows = config.maintenance_windows
    thresholds = config.thresholds
    filtered = prefilter(samples, drop_negative=thresholds.drop_negative_samples)
    judged = exclude_maintenance(filtered.samples, windows)
    baseline = clean_samples(baseline_samples, config)
    stats = summarise(judged)
    drift = compare_day(
        judged,
        baseline,
        kpis,
        timezone=release.timezone,
        hour_of_day=thresholds.seasonal_baseline,
        reference=reference,
    )
    slo = slo_status_for_day(judged, stats, config)
    start, end = release.day_bounds(day)
    hours = (end - start).total_seconds() / 3600
    cost = daily_cost(filtered.samples, kpis, hours_in_day=hours)
    counted = events_outside_maintenance(anomalies, windows)
    breaches = {(row.service, row.kpi) for row in slo[slo["breached"]].itertuples()}
    # GA day is the baseline: it scores 100 unless an SLO is breached on it.
    penalised = counted if day > 0 else counted.iloc[0:0]
    health = score_day(drift, breaches, penalised, kpis, config.health)
    return DayAnalysis(
        stats=stats,
        drift=drift,
        slo=slo,
        cost=cost,
        health=health,
        anomalies=counted,
        dropped=filtered.dropped,
        excluded=excluded_counts(filtered.samples, windows),
    )


def reference_for_day(
    config: TarsConfig,
    release: Release,
    day: int,
    fetch_date: Callable[[dt.date], pd.DataFrame],
) -> ReferenceDays | None:
    """The pre-GA reference days for `day` (its weekday, and GA's weekday), cleaned like
    the judged samples; None for Day 0, without a usable reference week, or when either
    day has no data (the automatic week before GA, `Release.auto_reference`, is then just
    not there). `fetch_date` returns a calendar date's samples (the metric source in
    the asset, a generated week in the scenario tests)."""
    if release.reference_start is None or day == 0:
        return None
    if release.reference_date is not None and release.reference_date >= release.ga_date:
        raise TarsUserError(
            f"reference_date {release.reference_date} is not before GA ({release.ga_date})",
            where=f"releases[{release.name}].reference_date",
            remedy="use a pre-GA date, ideally the GA date minus 7 days",
        )
    dates = reference_dates(release, day)
    if dates is None:
        return None
    frames = {date: clean_samples(fetch_date(date), config) for date in set(dates)}
    same_weekday, ga_weekday = (frames[date] for date in dates)
    if same_weekday.empty or ga_weekday.empty:
        return None
    return ReferenceDays(day_weekday=same_weekday, ga_weekday=ga_weekday)


def _ratios_by_date(
    samples: pd.DataFrame, references: Mapping[dt.date, ReferenceDays | None], dates: np.ndarray
) -> np.ndarray:
    """Per sample: the weekday factor of `dates[i]` for its series (1 where unknown)."""
    factors = np.ones(len(samples))
    for date, reference in references.items():
        if reference is None:
            continue
        on_date = dates == date
        if not on_date.any():
            continue
        day_level = reference.day_weekday.groupby(["service", "kpi"])["value"].median()
        ga_level = reference.ga_weekday.groupby(["service", "kpi"])["value"].median()
        ratio = (day_level / ga_level.where(ga_level > 0)).clip(*SEASON_CLIP)
        keys = pd.MultiIndex.from_frame(samples.loc[on_date, ["service", "kpi"]])
        factors[on_date] = ratio.reindex(keys).fillna(1.0).to_numpy()
    return factors


def _weekday_factors(
    samples: pd.DataFrame,
    references: Mapping[dt.date, ReferenceDays | None],
    timezone: str,
    lag_seconds: float = 0.0,
) -> np.ndarray:
    """Per sample: its local date's weekday factor for its series (reference median on the
    date's weekday over the GA weekday's), 1 without a reference or a usable level.

    A rate() over a window still reads the previous day for `lag_seconds` after local
    midnight, so the factor moves linearly from the previous date's to the new date's over
    that window instead of jumping at midnight."""
    local = pd.to_datetime(samples["ts"], utc=True).dt.tz_convert(timezone)
    dates = local.dt.date.to_numpy()
    factors = _ratios_by_date(samples, references, dates)
    if lag_seconds <= 0:
        return factors
    since_midnight = (local.dt.hour * 3600 + local.dt.minute * 60 + local.dt.second).to_numpy(
        dtype="float64"
    )
    blending = since_midnight < lag_seconds
    if blending.any():
        previous = np.array([date - dt.timedelta(days=1) for date in dates[blending]])
        before = _ratios_by_date(samples[blending], references, previous)
        share = since_midnight[blending] / lag_seconds
        factors[blending] = before + (factors[blending] - before) * share
    return factors


def day_anomalies(
    history: pd.DataFrame,
    config: TarsConfig,
    *,
    judged_from: dt.datetime,
    z_threshold: float | None = None,
    baseline: pd.DataFrame | None = None,
    timezone: str = "UTC",
    references: Mapping[dt.date, ReferenceDays | None] | None = None,
) -> pd.DataFrame:
    """Anomaly events peaking at or after `judged_from`, on the judged samples.

    `history` is the window to judge plus the detector's warm-up before it (the nightly asset
    passes the previous day's tail, the continuous sensor the minutes before its lookback).
    Cleaned exactly as the day's judgement cleans (`clean_samples`), so the nightly run and
    the live sensor see the same series and agree on what is an event.

    With `baseline` (the GA-day samples; days ≥ 1) and `thresholds.seasonal_anomalies`,
    each sample is scored against the GA-day level at its local time of day
    (`anomaly.seasonal_factors`): a daily cycle the baseline had is not an anomaly. With
    `references` (a local date's pre-GA reference days, `reference_for_day`), that date's
    samples are also scaled by its weekday factor (the reference week's level on its
    weekday over GA's weekday), so a weekend's lower level is not a dip at midnight.
    """
    settings = config.detector_settings(z_threshold)
    judged = clean_samples(history, config)[["service", "kpi", "ts", "value"]]
    if baseline is not None and len(baseline) and config.thresholds.seasonal_anomalies:
        reference = clean_samples(baseline, config)
        season = seasonal_factors(reference, judged, timezone)
        if references:
            lag = float(settings.get("gap_edge_seconds") or 0.0)
            season = season * _weekday_factors(judged, references, timezone, lag)
        judged = judged.assign(season=season)
    events = detect_anomalies(judged, **settings)
    if events.empty:
        return events
    return events[pd.to_datetime(events["peak_ts"], utc=True) >= pd.Timestamp(judged_from)]
