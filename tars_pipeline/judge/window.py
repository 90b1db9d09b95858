"""The window judged as a whole (Day 7): the window's pure pipeline.

SLO summaries (`slo.slo_window_summary`) → degradations (Mann-Whitney on hour-matched,
cleaned samples) → unexpected drifts → cost (`cost.cost_analysis`) → successes → the
release's verdict (`verdict.release_verdict`). No store,
no Dagster: the `regression_summary` asset and the scenario tests call `judge_window`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd

from tars_pipeline.config import Release, TarsConfig, duration_seconds
from tars_pipeline.judge.annotations import Annotation
from tars_pipeline.judge.cost import cost_analysis
from tars_pipeline.judge.day import clean_samples
from tars_pipeline.judge.degradations import FdrSettings, find_degradations, held_by_counts
from tars_pipeline.judge.drifts import find_unexpected_drifts
from tars_pipeline.judge.incidents import build_incidents
from tars_pipeline.judge.maintenance import events_outside_maintenance
from tars_pipeline.judge.sensitivity import sensitivity
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
    kpis = config.kpis_by_name
    analysed_days = max(int(slo_daily["day"].nunique()), 1) if len(slo_daily) else 1
    slo_kpis = sorted({slo.kpi for slo in config.slos})
    # Grouped once: each (service, KPI)'s samples and daily means, not filtered per SLO.
    samples_of = _groups(day_samples[day_samples["kpi"].isin(slo_kpis)], ["service", "kpi"])
    means_of = _groups(daily_stats[daily_stats["kpi"].isin(slo_kpis)], ["service", "kpi"])
    no_samples = day_samples.iloc[:0]
    no_means = daily_stats.iloc[:0]
    summaries = []
    for slo in config.slos:
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
            summaries.append({"service": service, **summary, "kpi_mean": kpi_mean})
    return summaries


def _groups(frame: pd.DataFrame, keys: list[str]) -> dict[tuple, pd.DataFrame]:
    """`frame`'s rows by the values of `keys`, in one pass (rows keep their order)."""
    return {key: group for key, group in frame.groupby(keys, sort=False)}


def judge_window(
    *,
    config: TarsConfig,
    release: Release,
    days: list[int],
    baseline_samples: pd.DataFrame,
    day_samples: pd.DataFrame,
    drift: pd.DataFrame,
    slo_daily: pd.DataFrame,
    daily_stats: pd.DataFrame,
    cost_daily: pd.DataFrame,
    anomalies: pd.DataFrame | None = None,
    annotations: Sequence[Annotation] = (),
    breakdown: BreakdownFetch | None = None,
) -> dict[str, Any]:
    """The window's judgement as pure steps (no store, no Dagster), shared by the asset and
    the scenario tests: SLO summaries → degradations (Mann-Whitney on hour-matched, cleaned
    samples) → unexpected drifts → cost → successes.

    Inputs are what the daily summaries stored: `drift`, `slo_daily`, `daily_stats` (days 0
    and `days`), `cost_daily`, with a `day` column; `baseline_samples` (day 0) and
    `day_samples` (`days`) as stored, cleaned here like the daily summaries cleaned them.
    `anomalies` are the window's anomaly events (with `day`), grouped with the degradations
    and SLOs into incidents (`incidents.build_incidents`). Returns verdict, degradations,
    incidents, unexpected_drifts, successes, slo_compliance and cost_analysis.
    """
    kpis = config.kpis_by_name
    thresholds = config.thresholds
    baseline_samples = keys_as_categories(clean_samples(baseline_samples, config))
    day_samples = keys_as_categories(clean_samples(day_samples, config))
    # Catalog attributes the drift rows do not store.
    drift = drift.assign(
        direction=drift["kpi"].map(
            lambda name: kpis[name].direction if name in kpis else "neutral"
        ),
        kind=drift["kpi"].map(lambda name: kpis[name].kind if name in kpis else "resource"),
        unit=drift["kpi"].map(lambda name: kpis[name].unit if name in kpis else ""),
    )
    slos = slo_summaries(config, release, slo_daily, day_samples, daily_stats)
    exhausted = {(s["service"], s["slo"]): s["exhausted"] for s in slos}
    slo_status = slo_daily.assign(
        exhausted=[exhausted.get((row.service, row.slo), False) for row in slo_daily.itertuples()]
    )
    degradations = find_degradations(
        drift,
        baseline_samples,
        day_samples,
        slo_status,
        kpis,
        p_value=thresholds.p_value,
        degradation_threshold_pct=config.degradation_threshold_pct,
        well_inside_utilisation=thresholds.slo_well_inside_utilisation,
        last_day=max(days),
        timezone=release.timezone if thresholds.seasonal_baseline else None,
        zero_heavy_share=thresholds.zero_heavy_share,
        step_seconds=config.step_seconds,
        min_requests=thresholds.min_requests,
        fdr=FdrSettings(method=thresholds.fdr_method, q=thresholds.fdr_q),
    )
    unexpected = find_unexpected_drifts(
        drift,
        [degradation.key for degradation in degradations],
        kpis,
        max_pct=thresholds.unexpected_drift_max_pct,
        held=held_by_counts(drift, baseline_samples, day_samples, kpis, config.step_seconds),
    )
    cost = cost_analysis(
        cost_daily,
        daily_stats[["day", "service", "kpi", "mean"]],
        days_per_month=config.cost.days_per_month,
        low_utilisation_pct=config.cost.low_utilisation_pct,
        target_utilisation_pct=config.cost.target_utilisation_pct,
        growth_hint_pct=config.cost.growth_hint_pct,
        step_threshold_pct=thresholds.drift_pct,
    )
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
        index=SeriesIndex(baseline_samples, day_samples, release.timezone),
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
        "sensitivity": sensitivity(
            baseline_samples,
            day_samples,
            kpis,
            alpha=thresholds.p_value,
            power=thresholds.power,
            degradation_threshold_pct=config.degradation_threshold_pct,
            timezone=release.timezone,
        ),
    }


def _rate_window(config: TarsConfig) -> dt.timedelta | None:
    """How far back a Prometheus rate() reaches: a step shows spread over it."""
    window = getattr(config.source, "rate_window", None)
    return dt.timedelta(seconds=duration_seconds(window)) if window else None
