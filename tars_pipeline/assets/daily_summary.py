"""daily_summary: one day against the baseline — drift, SLOs, cost and the health score."""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from tars_pipeline.analytics.cost import daily_cost
from tars_pipeline.analytics.drift import compute_drift, drift_table_markdown
from tars_pipeline.analytics.health import score_day
from tars_pipeline.analytics.slo import slo_day_status
from tars_pipeline.analytics.stats import summarise
from tars_pipeline.assets.common import GROUP, STORE_POOL, kpi_map, release_day
from tars_pipeline.config import TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.partitions import all_days_of_release
from tars_pipeline.reporting import outputs
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.store import open_store, read_table, replace_partition

SLO_COLUMNS = [
    "service", "slo", "kpi", "bad_fraction", "burn_rate", "utilisation", "compliant",
    "breached", "sample_count",
]  # fmt: skip


def slo_status_for_day(
    samples: pd.DataFrame, stats: pd.DataFrame, config: TarsConfig
) -> pd.DataFrame:
    """Each SLO's status per service for one day (bad fraction, burn rate, utilisation)."""
    kpis = kpi_map(config)
    rows = []
    for slo in config.slos:
        kpi = kpis[slo.kpi]
        series = samples[samples["kpi"] == slo.kpi]
        for service, values in series.groupby("service"):
            stat = stats[(stats["service"] == service) & (stats["kpi"] == slo.kpi)]
            statistic_value = float(stat[kpi.statistic].iloc[0]) if len(stat) else float("nan")
            status = slo_day_status(values["value"].to_numpy(), slo, kpi, statistic_value)
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
                }
            )
    return pd.DataFrame(rows, columns=SLO_COLUMNS)


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
    ) -> dg.MaterializeResult:
        """The day's verdict: statistics per service and KPI, drift against the GA-day
        baseline (direction-aware, flagged at the KPI's threshold), SLO status, cost by
        resource type, and the 0-100 health score with each KPI's contribution.

        Writes `daily_stats`, `drift`, `slo_daily`, `cost_daily`, `health`,
        `health_contributions` and `day_NN_summary.json`.
        """
        config = tars_config.load()
        release, day = release_day(context, config)
        kpis = kpi_map(config)
        start, end = release.day_bounds(day)
        with open_store(duckdb) as conn:
            samples = read_table(conn, "samples", release.name, [day])
            base = read_table(conn, "baseline_stats", release.name, [0]) if day else None
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
            stats = summarise(samples)
            # Day 0 is the baseline day: compared with itself, so the GA-day summary (its
            # cost, SLO status and anomalies) needs no baseline run before it.
            drift = compute_drift(stats, stats if base is None else base, kpis)
            slo = slo_status_for_day(samples, stats, config)
            hours = (end - start).total_seconds() / 3600
            cost = daily_cost(samples, kpis, hours_in_day=hours)
            breaches = {(row.service, row.kpi) for row in slo[slo["breached"]].itertuples()}
            health = score_day(drift, breaches, anomalies, kpis, config.health)
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
            release, day, health=health_doc, drift=drift, slo=slo, cost=cost, anomalies=anomalies
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
                "anomalies": dg.MetadataValue.int(len(anomalies)),
                "cost_usd": dg.MetadataValue.float(round(float(cost["cost_usd"].sum()), 2)),
                "drift": dg.MetadataValue.md(drift_table_markdown(drift)),
                "day_summary": dg.MetadataValue.path(str(path)),
            }
        )

    return daily_summary
