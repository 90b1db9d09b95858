"""daily_summary: one day against the baseline — drift, SLOs, cost and the health score."""

import datetime as dt

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from tars_pipeline.assets.common import GROUP, STORE_POOL, release_day
from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.day import analyse_day, reference_for_day
from tars_pipeline.judge.drift import (
    DAY_COMPARISON_COLUMNS,
    drift_table_markdown,
)
from tars_pipeline.judge.maintenance import (
    windows_between,
)
from tars_pipeline.judge.seasonality import ReferenceDays, date_bounds, reference_dates
from tars_pipeline.partitions import all_days_of_release
from tars_pipeline.reporting import outputs
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.sources import PrometheusResource, build_source
from tars_pipeline.store import open_store, read_table, replace_partition


def fetch_reference(
    config: TarsConfig,
    release: Release,
    day: int,
    prometheus: PrometheusResource | None = None,
) -> ReferenceDays | None:
    """`reference_for_day` reading the reference days from the configured metric source,
    with each date's bounds computed like `Release.day_bounds`."""
    if release.reference_date is None or day == 0:
        return None
    source = build_source(config, prometheus=prometheus)

    def fetch_date(date: dt.date) -> pd.DataFrame:
        start, end = date_bounds(release, date)
        return source.fetch_day(release, start, end, config.kpis, config.step_seconds).samples

    return reference_for_day(config, release, day, fetch_date)


def build(
    kpi_samples: dg.AssetsDefinition,
    baseline: dg.AssetsDefinition,
    anomaly_events: dg.AssetsDefinition,
) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=kpi_samples.partitions_def,
        deps=[
            kpi_samples,
            anomaly_events,
            dg.AssetDep(baseline, partition_mapping=all_days_of_release),
        ],
        group_name=GROUP,
        pool=STORE_POOL,
        kinds={"duckdb"},
    )
    def daily_summary(
        context: dg.AssetExecutionContext,
        tars_config: TarsConfigResource,
        duckdb: DuckDBResource,
        reports: ReportsResource,
        prometheus: PrometheusResource,
    ) -> dg.MaterializeResult:
        """The day's verdict: statistics per service and KPI, drift against the GA-day
        baseline (direction-aware, flagged at the KPI's threshold), SLO status, cost by
        resource type, and the 0-100 health score with each KPI's contribution.

        The baseline is matched to the day's local hours (its hour-of-day profile), so a
        gap or a partial day is not drift; with a pre-GA reference week (`reference_date`)
        it is also scaled to the day's weekday. Negative samples (counter resets) and
        samples inside maintenance windows are left out of drift, SLOs and the anomaly
        penalty, and counted in the metadata.

        Writes `daily_stats`, `drift`, `slo_daily`, `cost_daily`, `health`,
        `health_contributions` and `day_NN_summary.json`.
        """
        config = tars_config.load()
        release, day = release_day(context, config)
        start, end = release.day_bounds(day)
        # The pre-GA reference week comes from the same source as the samples (the
        # prometheus resource is on for a prometheus config or a CLI's --prometheus-url).
        reference = fetch_reference(
            config, release, day, prometheus if prometheus.enabled else None
        )
        if release.reference_date is not None and day > 0 and reference is None:
            context.log.warning(
                f"reference week from {release.reference_date} has no data for day {day}'s "
                "weekday or for GA's weekday: compared without a weekday factor"
            )
        with open_store(duckdb) as conn:
            samples = read_table(conn, "samples", release.name, [day])
            base = read_table(conn, "baseline_stats", release.name, [0]) if day else None
            baseline_samples = read_table(conn, "samples", release.name, [0]) if day else samples
            anomalies = read_table(conn, "anomaly_events", release.name, [day])
            if samples.empty:
                raise TarsUserError(
                    f"no samples stored for {release.name} day {day}",
                    where="daily_summary",
                    remedy=f"materialize kpi_samples for day_{day:02d} first",
                )
            if base is not None and base.empty:
                raise TarsUserError(
                    f"no baseline for release {release.name}",
                    where="daily_summary",
                    remedy="materialize the baseline (tars-ga-kpi) before the daily summaries",
                )
            # Day 0 is the baseline day: compared with itself, so the GA-day summary (its
            # cost, SLO status and anomalies) needs no baseline run before it.
            analysis = analyse_day(
                samples=samples,
                baseline_samples=baseline_samples,
                anomalies=anomalies,
                config=config,
                release=release,
                day=day,
                reference=reference,
            )
            stats, drift, slo, cost, health = (
                analysis.stats,
                analysis.drift,
                analysis.slo,
                analysis.cost,
                analysis.health,
            )
            breaches = {(row.service, row.kpi) for row in slo[slo["breached"]].itertuples()}
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
            replace_partition(
                conn,
                release.name,
                day,
                {
                    "daily_stats": stats,
                    "drift": drift,
                    "slo_daily": slo,
                    "cost_daily": cost,
                    "health": health_row,
                    "health_contributions": health.contributions,
                },
            )
        health_doc = {
            "score": health.score,
            "band": health.band,
            "weighted_kpi_score": health.weighted_kpi_score,
            "anomaly_penalty": health.anomaly_penalty,
            "contributions": health.contributions,
        }
        summary = outputs.day_summary(
            release,
            day,
            health=health_doc,
            drift=drift,
            slo=slo,
            cost=cost,
            anomalies=analysis.anomalies,
        )
        keys = ["service", "kpi"]
        summary["drift"] = summary["drift"].merge(
            drift[[*keys, *DAY_COMPARISON_COLUMNS]], on=keys, how="left"
        )
        summary["data_quality"] = {
            "dropped_samples": analysis.dropped,
            "maintenance_excluded_samples": analysis.excluded,
            "maintenance_windows": [
                window.model_dump(mode="json")
                for window in windows_between(config.maintenance_windows, start, end)
            ],
            "anomalies_in_maintenance": len(anomalies) - len(analysis.anomalies),
        }
        summary["reference_week"] = (
            None
            if reference is None
            else {"dates": [d.isoformat() for d in reference_dates(release, day) or ()]}
        )
        path = reports.write_json(release.name, f"day_{day:02d}_summary.json", summary)
        return dg.MaterializeResult(
            metadata={
                "release": release.name,
                "day": day,
                "health_score": dg.MetadataValue.float(float(health.score)),
                "health_band": health.band,
                "flagged_kpis": dg.MetadataValue.int(int(drift["flagged"].sum())),
                "slo_breaches": dg.MetadataValue.int(len(breaches)),
                "anomalies": dg.MetadataValue.int(len(analysis.anomalies)),
                "samples_dropped": dg.MetadataValue.int(
                    int(analysis.dropped["dropped_samples"].sum())
                ),
                "samples_in_maintenance": dg.MetadataValue.int(
                    int(analysis.excluded["excluded_samples"].sum())
                ),
                "reference_week": reference is not None,
                "cost_usd": dg.MetadataValue.float(round(float(cost["cost_usd"].sum()), 2)),
                "drift": dg.MetadataValue.md(drift_table_markdown(drift)),
                "day_summary": dg.MetadataValue.path(str(path)),
            }
        )

    return daily_summary
