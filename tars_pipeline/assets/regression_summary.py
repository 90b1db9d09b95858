"""regression_summary: the window judged as a whole — degradations, drifts, SLOs, cost."""

from typing import Any

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from tars_pipeline.assets.common import GROUP, STORE_POOL, kpi_map, release_of
from tars_pipeline.assets.daily_summary import clean_samples
from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.cost import cost_analysis
from tars_pipeline.judge.regression import (
    find_degradations,
    find_successes,
    find_unexpected_drifts,
)
from tars_pipeline.judge.slo import slo_window_summary
from tars_pipeline.partitions import all_days_of_release, release_partitions
from tars_pipeline.reporting.escape import markdown, signed_pct
from tars_pipeline.reporting.jsonio import to_jsonable
from tars_pipeline.reporting.outputs import SCHEMA_VERSION
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.store import days_present, open_store, read_table, replace_document


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
    kpis = kpi_map(config)
    analysed_days = max(int(slo_daily["day"].nunique()), 1) if len(slo_daily) else 1
    summaries = []
    for slo in config.slos:
        rows = slo_daily[slo_daily["slo"] == slo.name]
        for service, by_day in rows.groupby("service"):
            samples = day_samples[
                (day_samples["service"] == service) & (day_samples["kpi"] == slo.kpi)
            ]
            summary = slo_window_summary(
                by_day,
                slo,
                window_days=min(analysed_days, release.window_days),
                samples=samples[["ts", "value"]],
                step_seconds=config.step_seconds,
                kpi=kpis[slo.kpi],
            )
            means = daily_stats[
                (daily_stats["service"] == service) & (daily_stats["kpi"] == slo.kpi)
            ]
            weights = means["sample_count"].sum()
            kpi_mean = (
                float((means["mean"] * means["sample_count"]).sum() / weights) if weights else None
            )
            summaries.append({"service": service, **summary, "kpi_mean": kpi_mean})
    return summaries


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
) -> dict[str, Any]:
    """The window's judgement as pure steps (no store, no Dagster), shared by the asset and
    the scenario tests: SLO summaries → degradations (Mann-Whitney on hour-matched, cleaned
    samples) → unexpected drifts → cost → successes.

    Inputs are what the daily summaries stored: `drift`, `slo_daily`, `daily_stats` (days 0
    and `days`), `cost_daily`, with a `day` column; `baseline_samples` (day 0) and
    `day_samples` (`days`) as stored, cleaned here like the daily summaries cleaned them.
    Returns degradations, unexpected_drifts, successes, slo_compliance and cost_analysis.
    """
    kpis = kpi_map(config)
    thresholds = config.thresholds
    baseline_samples = clean_samples(baseline_samples, config)
    day_samples = clean_samples(day_samples, config)
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
    )
    unexpected = find_unexpected_drifts(
        drift, degradations, kpis, max_pct=thresholds.unexpected_drift_max_pct
    )
    cost = cost_analysis(
        cost_daily,
        daily_stats[["day", "service", "kpi", "mean"]],
        days_per_month=config.cost.days_per_month,
        low_utilisation_pct=config.cost.low_utilisation_pct,
        target_utilisation_pct=config.cost.target_utilisation_pct,
        growth_hint_pct=config.cost.growth_hint_pct,
    )
    successes = find_successes(
        slos,
        cost,
        kpis=kpis,
        cost_stable_max_pct=thresholds.unexpected_drift_max_pct,
        drift=drift,
    )
    return {
        "degradations": degradations,
        "unexpected_drifts": unexpected,
        "successes": successes,
        "slo_compliance": slos,
        "cost_analysis": cost,
    }


def build(
    daily_summary: dg.AssetsDefinition, anomaly_events: dg.AssetsDefinition
) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=release_partitions,
        deps=[
            dg.AssetDep(daily_summary, partition_mapping=all_days_of_release),
            dg.AssetDep(anomaly_events, partition_mapping=all_days_of_release),
        ],
        group_name=GROUP,
        pool=STORE_POOL,
        kinds={"duckdb"},
    )
    def regression_summary(
        context: dg.AssetExecutionContext,
        tars_config: TarsConfigResource,
        duckdb: DuckDBResource,
        reports: ReportsResource,
    ) -> dg.MaterializeResult:
        """Regressions ranked over the whole window, the way automated canary judges work:
        a KPI-day degrades when its adverse drift crosses the threshold *and* a two-sided
        Mann-Whitney U test of GA-day vs that day's samples (same local hours, cleaned of
        counter resets and maintenance windows) is significant; severity from drift, effect
        size and SLO impact; day first seen and resolved/ongoing. Also unexpected drifts
        (10-30 %, with trend and potential causes), SLO budgets and burn-rate alerts, cost
        analysis and successes. Writes `regression_summary.json`.
        """
        config = tars_config.load()
        release = release_of(context, config)
        with open_store(duckdb) as conn:
            summarised = days_present(conn, "daily_stats", release.name)
            days = [day for day in summarised if 1 <= day <= release.window_days]
            if 0 not in summarised or not days:
                raise TarsUserError(
                    f"release {release.name} needs the GA-day summary and at least one later "
                    f"day (summarised so far: {summarised or 'none'})",
                    where="regression_summary",
                    remedy="run tars-ga-kpi and tars-stability-monitor, or tars-retro --auto",
                )
            baseline_samples = read_table(conn, "samples", release.name, [0])
            day_samples = read_table(conn, "samples", release.name, days)
            drift = read_table(conn, "drift", release.name, days)
            slo_daily = read_table(conn, "slo_daily", release.name, days)
            daily_stats = read_table(conn, "daily_stats", release.name, [0, *days])
            cost_daily = read_table(conn, "cost_daily", release.name, [0, *days])

        judgement = judge_window(
            config=config,
            release=release,
            days=days,
            baseline_samples=baseline_samples,
            day_samples=day_samples,
            drift=drift,
            slo_daily=slo_daily,
            daily_stats=daily_stats,
            cost_daily=cost_daily,
        )
        degradations = judgement["degradations"]
        unexpected = judgement["unexpected_drifts"]
        successes = judgement["successes"]
        document = to_jsonable(
            {
                "schema_version": SCHEMA_VERSION,
                "release": {
                    "name": release.name,
                    "ga_date": release.ga_date.isoformat(),
                    "timezone": release.timezone,
                    "window_days": release.window_days,
                },
                "days_analysed": days,
                "complete": days == list(range(1, release.window_days + 1)),
                **judgement,
            }
        )
        with open_store(duckdb) as conn:
            replace_document(conn, release.name, max(days), "regression_summary", document)
        path = reports.write_json(release.name, "regression_summary.json", document)
        ranking = "\n".join(
            f"{rank}. **{d['severity']}** {markdown(d['kpi'])} on {markdown(d['service'])}: "
            f"{signed_pct(d['change_pct'])} (day {d['day_first']}, {d['status']})"
            for rank, d in enumerate(degradations, start=1)
        )
        return dg.MaterializeResult(
            metadata={
                "release": release.name,
                "days_analysed": f"{min(days)}-{max(days)}",
                "degradations": dg.MetadataValue.int(len(degradations)),
                "unexpected_drifts": dg.MetadataValue.int(len(unexpected)),
                "successes": dg.MetadataValue.int(len(successes)),
                "ranking": dg.MetadataValue.md(ranking or "_No degradations._"),
                "regression_summary": dg.MetadataValue.path(str(path)),
            }
        )

    return regression_summary
