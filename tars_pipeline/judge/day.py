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
from tars_pipeline.judge import clock
from tars_pipeline.judge.anomaly import (
    SEASON_CLIP,
    WHOLE_DAY_MINUTES,
    DayProfile,
    day_profile,
    detect_anomalies,
    profile_factors,
    seasonal_bands,
    seasonal_factors,
)
from tars_pipeline.judge.cost import daily_cost
from tars_pipeline.judge.direction import adverse_sign
from tars_pipeline.judge.drift import compare_day
from tars_pipeline.judge.health import DayHealth, score_day
from tars_pipeline.judge.maintenance import (
    events_outside_maintenance,
    exclude_maintenance,
    excluded_counts,
)
from tars_pipeline.judge.seasonality import ReferenceDays, reference_dates
from tars_pipeline.judge.slo import slo_day_status
from tars_pipeline.judge.stats import keys_as_categories, prefilter, summarise
from tars_pipeline.judge.traffic import (
    THROUGHPUT_KPI,
    error_share,
    has_enough_traffic,
    request_count,
)

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
    judged = keys_as_categories(exclude_maintenance(filtered.samples, windows))
    baseline = keys_as_categories(clean_samples(baseline_samples, config))
    stats = summarise(judged)
    drift = compare_day(
        judged,
        baseline,
        kpis,
        timezone=release.timezone,
        hour_of_day=thresholds.seasonal_baseline,
        reference=reference,
        day_summary=stats,
    )
    slo = slo_status_for_day(judged, stats, config)
    start, end = release.day_bounds(day)
    hours = (end - start).total_seconds() / 3600
    cost = daily_cost(filtered.samples, kpis, hours_in_day=hours, cost=config.cost)
    counted = events_outside_maintenance(anomalies, windows)
    breaches = {(row.service, row.kpi) for row in slo[slo["breached"]].itertuples()}
    # GA day is the baseline: it scores 100 unless an SLO is breached on it.
    penalised = counted if day > 0 else counted.iloc[0:0]
    throughput = judged[judged["kpi"] == THROUGHPUT_KPI]
    requests = {
        service: request_count(rows["value"].to_numpy(), config.step_seconds)
        for service, rows in throughput.groupby("service")
    }
    thin = {
        service: count
        for service, count in requests.items()
        if not has_enough_traffic(count, thresholds.min_requests)
    }
    health = score_day(
        drift, breaches, penalised, kpis, config.health, thin, step_seconds=config.step_seconds
    )
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
    *,
    include_ga_day: bool = False,
    date: dt.date | None = None,
) -> ReferenceDays | None:
    """The pre-GA reference days for `day` (its weekday, and GA's weekday), cleaned like
    the judged samples; None for Day 0, without a usable reference week, or when either
    day has no data (the automatic week before GA, `Release.auto_reference`, is then just
    not there). `fetch_date` returns a calendar date's samples (the metric source in
    the asset, a generated week in the scenario tests)."""
    if release.reference_start is None or (day == 0 and not include_ga_day):
        return None
    if release.reference_date is not None and release.reference_date >= release.ga_date:
        raise TarsUserError(
            f"reference_date {release.reference_date} is not before GA ({release.ga_date})",
            where=f"releases[{release.name}].reference_date",
            remedy="use a pre-GA date, ideally the GA date minus 7 days",
        )
    dates = reference_dates(release, day, date)
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
    lags: np.ndarray | None = None,
) -> np.ndarray:
    """Per sample: its local date's weekday factor for its series (reference median on the
    date's weekday over the GA weekday's), 1 without a reference or a usable level.

    A KPI over a range (rate() over a window) still reads the previous day for its lag
    (`lags`, per sample) after local midnight, so the factor moves linearly from the
    previous date's to the new date's over that lag instead of jumping at midnight."""
    dates, since_midnight = _local_dates(samples, timezone)
    factors = _ratios_by_date(samples, references, dates)
    return _blend_midnight(
        factors, samples, dates, since_midnight, lags,
        lambda rows, previous: _ratios_by_date(samples[rows], references, previous),
    )  # fmt: skip


def _local_dates(samples: pd.DataFrame, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    local = clock.local_nanoseconds(samples["ts"], timezone)
    return clock.local_dates(local), clock.seconds_of_day(local).astype("float64")


def _blend_midnight(
    factors: np.ndarray,
    samples: pd.DataFrame,
    dates: np.ndarray,
    since_midnight: np.ndarray,
    lags: np.ndarray | None,
    on_previous: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """`factors`, moved linearly from the previous date's (`on_previous(rows, dates)`, NaN
    where unknown: no move) over each sample's lag after local midnight."""
    if lags is None:
        return factors
    blending = since_midnight < lags
    if not blending.any():
        return factors
    previous = np.array([date - dt.timedelta(days=1) for date in dates[blending]])
    before = on_previous(np.flatnonzero(blending), previous)
    share = since_midnight[blending] / lags[blending]
    factors = factors.copy()
    after = factors[blending]
    before = np.where(np.isfinite(before), before, after)  # nothing known of the day before
    factors[blending] = before + (after - before) * share
    return factors


def _reference_profile(
    samples: pd.DataFrame,
    references: Mapping[dt.date, ReferenceDays | None],
    timezone: str,
    dates: np.ndarray,
    cache: dict[int, DayProfile] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(factor, known) per sample: the reference day of its date's weekday at its local time
    of day over the reference GA weekday's median (one level for every date, so the factor
    is continuous across midnight). `cache` keeps each reference day's profile."""
    factors = np.ones(len(samples))
    known = np.zeros(len(samples), dtype=bool)
    cache = {} if cache is None else cache
    for date, reference in references.items():
        if reference is None:
            continue
        rows = np.flatnonzero(dates == date)
        if not len(rows):
            continue
        if id(reference) not in cache:
            level = reference.ga_weekday.groupby(["service", "kpi"])["value"].median()
            cache[id(reference)] = day_profile(reference.day_weekday, timezone, level)
        factor, seen = profile_factors(cache[id(reference)], samples.iloc[rows], timezone)
        factors[rows], known[rows] = factor, seen
    return factors, known


def anomaly_season(
    samples: pd.DataFrame,
    baseline: pd.DataFrame | None,
    references: Mapping[dt.date, ReferenceDays | None],
    timezone: str,
    lags: np.ndarray | None = None,
    cache: dict[int, DayProfile] | None = None,
) -> np.ndarray | None:
    """Per sample: the expected level at its local time over a level constant across the
    window (what `detect_anomalies` divides by), or None without anything to go on.

    1. With a pre-GA reference day of the sample's weekday: that day's profile (seasonal
       naive, one week back): its hours, its weekend, its lags (an hourly gauge that
       reports the past hour late does so on the reference day too).
    2. Else the GA day's hour-of-day profile (`baseline`) × the date's weekday factor.
    Over each KPI's lag after local midnight the factor moves from the previous date's.
    `cache` keeps the days' profiles between calls."""
    dates, since_midnight = _local_dates(samples, timezone)
    cache = {} if cache is None else cache
    from_reference, known = _reference_profile(samples, references, timezone, dates, cache)
    if baseline is None or baseline.empty:
        if not known.any():
            return None
        from_baseline = np.ones(len(samples))
    else:
        if id(baseline) not in cache:
            cache[id(baseline)] = day_profile(baseline, timezone)
        from_baseline = profile_factors(cache[id(baseline)], samples, timezone)[0]
        if references:
            from_baseline = from_baseline * _ratios_by_date(samples, references, dates)
    season = np.where(known, from_reference, from_baseline)

    def on_previous(rows: np.ndarray, previous: np.ndarray) -> np.ndarray:
        part = samples.iloc[rows]
        ref, seen = _reference_profile(part, references, timezone, previous, cache)
        if baseline is None or baseline.empty:
            base = np.full(len(rows), np.nan)
        else:
            base = profile_factors(cache[id(baseline)], part, timezone)[0]
            base = base * _ratios_by_date(part, references, previous)
        return np.where(seen, ref, base)

    return _blend_midnight(season, samples, dates, since_midnight, lags, on_previous)


# A latency quantile needs this many requests above it to be judged (`_thin_tail`).
MIN_TAIL_REQUESTS = 10.0


def _per_kpi(samples: pd.DataFrame, by_kpi: Mapping[str, float], default: float) -> np.ndarray:
    """Per row: `by_kpi` of its KPI, `default` for a KPI not in it."""
    return samples["kpi"].map(dict(by_kpi)).astype("float64").fillna(default).to_numpy()


def _with_ga_date(
    references: Mapping[dt.date, ReferenceDays | None],
    baseline: pd.DataFrame | None,
    timezone: str,
) -> dict[dt.date, ReferenceDays | None]:
    """`references` plus the GA date's own (its pre-GA weekday twice), taken from any
    reference's `ga_weekday`, so the warm-up tail of Day 1 (the end of GA day) is scored
    like GA day was."""
    out = dict(references)
    for reference in references.values():
        if reference is None or baseline is None or baseline.empty:
            continue
        ga_date = pd.Timestamp(baseline["ts"].min()).tz_convert(timezone).date()
        out.setdefault(ga_date, ReferenceDays(reference.ga_weekday, reference.ga_weekday))
        break
    return out


def _band(
    judged: pd.DataFrame,
    season: np.ndarray,
    base: pd.DataFrame | None,
    references: Mapping[dt.date, ReferenceDays | None],
    timezone: str,
    config: TarsConfig,
    minutes: int,
    cache: dict[int, DayProfile] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per judged sample: what was seen at its time of day, beyond which a
    move can be an anomaly (`anomaly.seasonal_bands`).

    Days ≥ 1 look at the GA day (never the pre-GA week: a return to the old level after a
    release is news); GA day looks at its pre-GA weekday. A move the bad way must leave
    the range seen within `minutes` of its time of day; a move the good way (a KPI with a
    bad side; memory after a collection, latency after a cache warms) must leave the
    range of the whole day."""
    if base is not None:
        day = base
        day_season = anomaly_season(base, None, references, timezone, None, cache)
        if day_season is None:  # seasonal_factors(base, base), with GA day's profile kept
            cache = {} if cache is None else cache
            if id(base) not in cache:
                cache[id(base)] = day_profile(base, timezone)
            day_season = profile_factors(cache[id(base)], base, timezone)[0]
    else:
        day = next((r.ga_weekday for r in references.values() if r is not None), None)
        if day is None or day.empty:
            nothing = np.full(len(judged), np.nan)
            return nothing, nothing.copy()
        day_season = seasonal_factors(day, day, timezone)
    (low, high), (whole_low, whole_high) = seasonal_bands(
        day, judged, timezone, season, day_season, (minutes, WHOLE_DAY_MINUTES)
    )
    sign = {kpi.name: adverse_sign(kpi.direction) for kpi in config.kpis}
    side = _per_kpi(judged, sign, 0.0)
    low = np.where(side > 0, np.fmin(low, whole_low), low)  # lower is better: dips
    high = np.where(side < 0, np.fmax(high, whole_high), high)  # higher is better: spikes
    return low, high


def _requests(samples: pd.DataFrame, config: TarsConfig) -> np.ndarray:
    """Per sample: the requests its value was computed on, the service's throughput at the
    same ts × the KPI's range (a rate over 5 m: 300 s of requests), else one step; NaN
    where the throughput is unknown."""
    trials = np.full(len(samples), np.nan)
    rate = samples[samples["kpi"] == THROUGHPUT_KPI][["service", "ts", "value"]]
    if rate.empty:
        return trials
    window = np.maximum(
        _per_kpi(samples, config.range_lag_seconds(), 0.0), float(config.step_seconds)
    )
    joined = samples[["service", "ts"]].merge(
        rate.drop_duplicates(["service", "ts"]), on=["service", "ts"], how="left"
    )
    return joined["value"].to_numpy(dtype="float64") * window


def _trials(samples: pd.DataFrame, requests: np.ndarray) -> np.ndarray:
    """`requests` on the rows of a percentage-of-requests KPI (`traffic.error_share`),
    NaN elsewhere: the binomial spread floor of `anomaly.binomial_spread`."""
    names = samples["kpi"].unique()
    share = _per_kpi(samples, {k: float(error_share(str(k)) is not None) for k in names}, 0.0) > 0
    return np.where(share, requests, np.nan)


def _thin_tail(samples: pd.DataFrame, requests: np.ndarray, config: TarsConfig) -> np.ndarray:
    """Rows of a latency quantile (`histogram_quantile(q, …)`) computed from fewer than
    MIN_TAIL_REQUESTS requests above it (requests × (1 − q)): a p99 of 300 requests is
    its three slowest, and jumps between histogram buckets on its own."""
    quantile = config.quantile_of_kpi()
    if not quantile:
        return np.zeros(len(samples), dtype=bool)
    q = _per_kpi(samples, quantile, np.nan)
    with np.errstate(invalid="ignore"):
        return np.isfinite(q) & (requests * (1.0 - q) < MIN_TAIL_REQUESTS)


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
    judged = keys_as_categories(clean_samples(history, config)[["service", "kpi", "ts", "value"]])
    references = _with_ga_date(references or {}, baseline, timezone)
    if config.thresholds.seasonal_anomalies:
        base = None
        if baseline is not None and len(baseline):
            base = keys_as_categories(clean_samples(baseline, config))
        lags = _per_kpi(judged, config.range_lag_seconds(), 0.0)
        cache: dict[int, DayProfile] = {}
        season = anomaly_season(judged, base, references, timezone, lags, cache)
        if season is not None:
            judged = judged.assign(season=season)
            minutes = config.thresholds.anomaly_band_minutes
            if minutes > 0:
                low, high = _band(
                    judged, season, base, references, timezone, config, minutes, cache
                )
                judged = judged.assign(band_low=low, band_high=high)
    requests = _requests(judged, config)
    judged = judged.assign(trials=_trials(judged, requests))
    thin = _thin_tail(judged, requests, config)
    if thin.any():  # not judged: a band that holds everything
        low = judged.get("band_low", pd.Series(np.nan, index=judged.index)).to_numpy(float)
        high = judged.get("band_high", pd.Series(np.nan, index=judged.index)).to_numpy(float)
        judged = judged.assign(
            band_low=np.where(thin, -np.inf, low), band_high=np.where(thin, np.inf, high)
        )
    events = detect_anomalies(judged, **settings)
    if events.empty:
        return events
    return events[pd.to_datetime(events["peak_ts"], utc=True) >= pd.Timestamp(judged_from)]
