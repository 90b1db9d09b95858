"""The window judged as a whole (Day 7): the window's pure pipeline.

SLO summaries (`slo.slo_window_summary`) → degradations (Mann-Whitney on hour-matched,
cleaned samples) → unexpected drifts → cost (`cost.cost_analysis`) → successes → the
release's verdict (`verdict.release_verdict`). No store,
no Dagster: the `regression_summary` asset and the scenario tests call `judge_window`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from tars_pipeline.config import Release, TarsConfig, duration_seconds
from tars_pipeline.judge.annotations import Annotation
from tars_pipeline.judge.cost import cost_analysis
from tars_pipeline.judge.day import clean_samples
from tars_pipeline.judge.degradations import (
    FdrSettings,
    SeriesCells,
    TrafficSides,
    decide_degradations,
    held_by_counts,
    tested_series,
)
from tars_pipeline.judge.drifts import find_unexpected_drifts
from tars_pipeline.judge.incidents import build_incidents
from tars_pipeline.judge.maintenance import events_outside_maintenance
from tars_pipeline.judge.sensitivity import (
    merge_services,
    sensitivity_records,
    services_sensitivity,
)
from tars_pipeline.judge.slo import slo_window_summary
from tars_pipeline.judge.stats import keys_as_categories
from tars_pipeline.judge.successes import find_successes
from tars_pipeline.judge.verdict import release_verdict
from tars_pipeline.judge.why import BreakdownFetch, SeriesIndex, explain_findings


def slo_summaries(
    config: TarsConfig,
    release: Release,
    slo_daily: pd.DataFrame,
    day_samples: pd.DataFrame,
    daily_stats: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Each SLO per service over the analysed days (budget, burn rate, alerts).

    The budget is spent over the days analysed (a partial window does not extrapolate to
    the whole window); `day_samples` should be the judged samples (`clean_samples`), so a
    maintenance window neither burns budget nor fires a burn-rate alert.
    """
    keyed = _keyed_slo_summaries(
        config, release, slo_daily, day_samples, daily_stats, _analysed_days(slo_daily)
    )
    return [summary for _, summary in sorted(keyed, key=lambda item: item[0])]


def _analysed_days(slo_daily: pd.DataFrame) -> int:
    return max(int(slo_daily["day"].nunique()), 1) if len(slo_daily) else 1


def _keyed_slo_summaries(
    config: TarsConfig,
    release: Release,
    slo_daily: pd.DataFrame,
    day_samples: pd.DataFrame,
    daily_stats: pd.DataFrame,
    analysed_days: int,
) -> list[tuple[tuple[int, str], dict[str, Any]]]:
    """`slo_summaries` of the services these frames hold, each with its place in the
    window's list (the SLO's position in the config, then the service)."""
    kpis = config.kpis_by_name
    slo_kpis = sorted({slo.kpi for slo in config.slos})
    # Grouped once: each (service, KPI)'s samples and daily means, not filtered per SLO.
    samples_of = _groups(day_samples[day_samples["kpi"].isin(slo_kpis)], ["service", "kpi"])
    means_of = _groups(daily_stats[daily_stats["kpi"].isin(slo_kpis)], ["service", "kpi"])
    no_samples = day_samples.iloc[:0]
    no_means = daily_stats.iloc[:0]
    summaries = []
    for position, slo in enumerate(config.slos):
        rows = slo_daily[slo_daily["slo"] == slo.name]
        for service, by_day in rows.groupby("service"):
            samples = samples_of.get((service, slo.kpi), no_samples)
            summary = slo_window_summary(
                by_day,
                slo,
                window_days=min(analysed_days, release.window_days),
                samples=samples[["ts", "value"]],
                step_seconds=config.step_seconds,
                kpi=kpis[slo.kpi],
            )
            means = means_of.get((service, slo.kpi), no_means)
            weights = means["sample_count"].sum()
            kpi_mean = (
                float((means["mean"] * means["sample_count"]).sum() / weights) if weights else None
            )
            summaries.append(
                ((position, str(service)), {"service": service, **summary, "kpi_mean": kpi_mean})
            )
    return summaries


def _groups(frame: pd.DataFrame, keys: list[str]) -> dict[tuple, pd.DataFrame]:
    """`frame`'s rows by the values of `keys`, in one pass (rows keep their order)."""
    return {key: group for key, group in frame.groupby(keys, sort=False)}


#: About how many samples (GA day and the window's days) the window judge holds at once: the
#: services are judged a few at a time, so memory follows this, not the number of series.
CHUNK_ROWS = 3_000_000


class WindowSamples(Protocol):
    """Where the window judge reads the samples from, a few services at a time."""

    def rows_by_service(self) -> Mapping[str, int]:
        """Every service with samples, and how many (GA day and the window's days)."""
        ...

    def read(
        self, services: Sequence[str] | None = None, kpis: Sequence[str] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """GA day's and the window days' samples as stored: every row with neither given,
        else the rows of `services` and of the `kpis` of every service, in stored order."""
        ...


@dataclass(frozen=True)
class FrameSamples:
    """The samples already in memory (the scenario tests, a notebook)."""

    baseline: pd.DataFrame
    days: pd.DataFrame

    def rows_by_service(self) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for frame in (self.baseline, self.days):
            if frame is not None and len(frame):
                for service, count in frame["service"].astype(str).value_counts().items():
                    counts[str(service)] = counts.get(str(service), 0) + int(count)
        return counts

    def read(
        self, services: Sequence[str] | None = None, kpis: Sequence[str] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        if services is None and kpis is None:
            return self.baseline, self.days
        return _labelled(self.baseline, services, kpis), _labelled(self.days, services, kpis)


def _labelled(
    frame: pd.DataFrame, services: Sequence[str] | None, kpis: Sequence[str] | None
) -> pd.DataFrame:
    if frame is None or not len(frame):
        return frame
    keep = frame["service"].astype(str).isin(list(services or ()))
    keep |= frame["kpi"].astype(str).isin(list(kpis or ()))
    return frame[keep.to_numpy()]


def service_chunks(rows: Mapping[str, int], chunk_rows: int) -> Iterator[list[str]]:
    """The services in sorted order, cut into runs of about `chunk_rows` samples (one
    service per run at least): the window's lists are the runs' lists, concatenated."""
    chunk: list[str] = []
    held = 0
    for service in sorted(rows):
        if chunk and held + rows[service] > chunk_rows:
            yield chunk
            chunk, held = [], 0
        chunk.append(service)
        held += rows[service]
    if chunk:
        yield chunk


def judge_window(
    *,
    config: TarsConfig,
    release: Release,
    days: list[int],
    drift: pd.DataFrame,
    slo_daily: pd.DataFrame,
    daily_stats: pd.DataFrame,
    cost_daily: pd.DataFrame,
    baseline_samples: pd.DataFrame | None = None,
    day_samples: pd.DataFrame | None = None,
    samples: WindowSamples | None = None,
    anomalies: pd.DataFrame | None = None,
    annotations: Sequence[Annotation] = (),
    breakdown: BreakdownFetch | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any]:
    """The window's judgement as pure steps (no store, no Dagster), shared by the asset and
    the scenario tests: SLO summaries → degradations (Mann-Whitney on hour-matched, cleaned
    samples) → unexpected drifts → cost → successes.

    Inputs are what the daily summaries stored: `drift`, `slo_daily`, `daily_stats` (days 0
    and `days`), `cost_daily`, with a `day` column; the samples as stored, cleaned here like
    the daily summaries cleaned them: `samples` (read a few services at a time, about
    `chunk_rows` samples each, so the window's size does not decide the memory it takes),
    or `baseline_samples` (day 0) and `day_samples` (`days`) in memory. The judgement is
    the same to the last bit whatever the chunks. `anomalies` are the window's anomaly
    events (with `day`), grouped with the degradations and SLOs into incidents
    (`incidents.build_incidents`). Returns verdict, degradations, incidents,
    unexpected_drifts, successes, slo_compliance and cost_analysis.
    """
    if samples is None:
        samples = FrameSamples(baseline_samples, day_samples)
    kpis = config.kpis_by_name
    thresholds = config.thresholds
    # Catalog attributes the drift rows do not store.
    drift = drift.assign(
        direction=drift["kpi"].map(
            lambda name: kpis[name].direction if name in kpis else "neutral"
        ),
        kind=drift["kpi"].map(lambda name: kpis[name].kind if name in kpis else "resource"),
        unit=drift["kpi"].map(lambda name: kpis[name].unit if name in kpis else ""),
    )
    rows = dict(samples.rows_by_service())
    for frame in (drift, slo_daily, daily_stats):  # a service may have no samples left
        for service in frame["service"].astype(str).unique() if len(frame) else ():
            rows.setdefault(str(service), 0)
    chunks = list(service_chunks(rows, chunk_rows))
    seasonal = release.timezone if thresholds.seasonal_baseline else None
    fdr = FdrSettings(method=thresholds.fdr_method, q=thresholds.fdr_q)
    analysed_days = _analysed_days(slo_daily)
    # What needs no samples first: the cost step, and the drifts in the watch band (those
    # of degraded or held KPIs are left out once those are known: a filter of this list).
    cost = cost_analysis(
        cost_daily,
        daily_stats[["day", "service", "kpi", "mean"]],
        days_per_month=config.cost.days_per_month,
        low_utilisation_pct=config.cost.low_utilisation_pct,
        target_utilisation_pct=config.cost.target_utilisation_pct,
        growth_hint_pct=config.cost.growth_hint_pct,
        step_threshold_pct=thresholds.drift_pct,
    )
    watched = find_unexpected_drifts(drift, [], kpis, max_pct=thresholds.unexpected_drift_max_pct)
    # The series a finding may ask for (onsets): kept while their piece's samples go.
    wanted = {finding.key for finding in watched}
    if isinstance(cost, Mapping) and isinstance(cost.get("level_change"), Mapping):
        priced = {name for name, kpi in kpis.items() if kpi.kind == "cost"}
    else:
        priced = set()

    keyed_slos: list[tuple[tuple[int, str], dict[str, Any]]] = []
    tested: list[SeriesCells] = []
    held: set[tuple[str, str]] = set()
    mdes: dict[str, list[dict[str, Any]]] = {}
    kept: dict[tuple[str, str], Any] = {}
    for services in chunks:
        baseline, observed = _cleaned(samples, config, services=services)
        own_drift = _of(drift, services)
        traffic = TrafficSides(baseline, observed, config.step_seconds)
        keyed_slos += _keyed_slo_summaries(
            config,
            release,
            _of(slo_daily, services),
            observed,
            _of(daily_stats, services),
            analysed_days,
        )
        own = tested_series(
            own_drift,
            baseline,
            observed,
            kpis,
            p_value=thresholds.p_value,
            degradation_threshold_pct=config.degradation_threshold_pct,
            timezone=seasonal,
            zero_heavy_share=thresholds.zero_heavy_share,
            step_seconds=config.step_seconds,
            min_requests=thresholds.min_requests,
            fdr=fdr,
            counts=traffic,
        )
        tested += own
        held |= held_by_counts(
            own_drift, baseline, observed, kpis, config.step_seconds, counts=traffic
        )
        merge_services(
            mdes,
            services_sensitivity(
                baseline,
                observed,
                kpis,
                alpha=thresholds.p_value,
                power=thresholds.power,
                timezone=release.timezone,
            ),
        )
        index = SeriesIndex(baseline, observed, release.timezone)
        adverse = {
            (series.service, series.kpi.name)
            for series in own
            if any(cell.adverse for cell in series.cells)
        }
        for key in index.every_key():
            if key in adverse or key in wanted or key[1] in priced:
                kept[key] = index.series(*key)
        del baseline, observed, index, traffic
    slos = [summary for _, summary in sorted(keyed_slos, key=lambda item: item[0])]
    exhausted = {(s["service"], s["slo"]): s["exhausted"] for s in slos}
    slo_status = slo_daily.assign(
        exhausted=[exhausted.get((row.service, row.slo), False) for row in slo_daily.itertuples()]
    )
    degradations = decide_degradations(
        tested,
        slo_status,
        p_value=thresholds.p_value,
        well_inside_utilisation=thresholds.slo_well_inside_utilisation,
        last_day=max(days),
        fdr=fdr,
    )
    del tested
    left_out = {degradation.key for degradation in degradations} | held
    unexpected = [finding for finding in watched if finding.key not in left_out]
    successes = find_successes(
        slos,
        cost,
        kpis=kpis,
        cost_stable_max_pct=thresholds.drift_pct,
        drift=drift,
        degraded=[degradation.key for degradation in degradations],
    )
    # When and why: each finding's onset, the changes before it, what drove it.
    explained = explain_findings(
        {
            "degradations": [degradation.as_record() for degradation in degradations],
            "unexpected_drifts": [finding.as_record() for finding in unexpected],
            "cost_analysis": cost,
        },
        index=SeriesIndex.of_series(kept, release.timezone),
        release=release,
        kpis=kpis,
        annotations=annotations,
        lookback_minutes=config.annotations.lookback_minutes,
        breakdown=breakdown,
        rate_window=_rate_window(config),
    )
    degradation_records = explained["degradations"]
    counted = events_outside_maintenance(anomalies, config.maintenance_windows)
    return {
        "verdict": release_verdict(degradation_records, slos).as_record(),
        "degradations": degradation_records,
        "incidents": build_incidents(degradation_records, counted, slos),
        "unexpected_drifts": explained["unexpected_drifts"],
        "successes": [success.as_record() for success in successes],
        "slo_compliance": slos,
        "cost_analysis": explained["cost_analysis"],
        "annotations": [annotation.as_record() for annotation in annotations],
        "sensitivity": sensitivity_records(
            mdes,
            kpis,
            alpha=thresholds.p_value,
            power=thresholds.power,
            degradation_threshold_pct=config.degradation_threshold_pct,
        ),
    }


def _of(frame: pd.DataFrame, services: Sequence[str]) -> pd.DataFrame:
    """The rows of `frame` (a small per-day table) of these services."""
    if not len(frame):
        return frame
    return frame[frame["service"].astype(str).isin(services).to_numpy()]


def _cleaned(
    samples: WindowSamples,
    config: TarsConfig,
    *,
    services: Sequence[str] | None = None,
    kpis: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GA day's and the days' samples of these labels, cleaned as the daily summaries
    cleaned them, service and KPI as categories."""
    baseline, observed = samples.read(services, kpis)
    return (
        keys_as_categories(clean_samples(baseline, config)),
        keys_as_categories(clean_samples(observed, config)),
    )


def _rate_window(config: TarsConfig) -> dt.timedelta | None:
    """How far back a Prometheus rate() reaches: a step shows spread over it."""
    window = getattr(config.source, "rate_window", None)
    return dt.timedelta(seconds=duration_seconds(window)) if window else None
