"""daily_summary: one day against the baseline — drift, SLOs, cost and the health score."""

from pathlib import Path
from typing import Any

import dagster as dg

from tars_pipeline.assets import checks
from tars_pipeline.assets.anomaly_events import anomaly_events
from tars_pipeline.assets.baseline import baseline
from tars_pipeline.assets.common import release_day, settings
from tars_pipeline.assets.day_fetch import read_reference
from tars_pipeline.assets.kpi_samples import kpi_samples
from tars_pipeline.judge import checks as verdicts
from tars_pipeline.judge.day import DayAnalysis, analyse_day
from tars_pipeline.judge.drift import drift_table_markdown
from tars_pipeline.partitions import (
    baseline_for_later_days,
    day_and_ga_day_samples,
    release_day_partitions,
)
from tars_pipeline.reporting import outputs
from tars_pipeline.resources import ReportsResource, StoreResource, TarsConfigResource
from tars_pipeline.sources import build_source
from tars_pipeline.store import open_store, read_day_inputs, replace_partition


@dg.asset(
    partitions_def=release_day_partitions,
    deps=[
        dg.AssetDep(kpi_samples, partition_mapping=day_and_ga_day_samples),
        anomaly_events,
        dg.AssetDep(baseline, partition_mapping=baseline_for_later_days),
    ],
    check_specs=checks.specs("daily_summary", checks.DAY_CHECKS),
    **settings("day"),
)
def daily_summary(
    context: dg.AssetExecutionContext,
    tars_config: TarsConfigResource,
    duckdb: StoreResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """The day's verdict: statistics per service and KPI, drift against the GA-day baseline
    (direction-aware, flagged at the KPI's threshold), SLO status, cost by resource type,
    and the 0-100 health score with each KPI's contribution (`judge.day.analyse_day`).

    The baseline is matched to the day's local hours, so a gap or a partial day is not
    drift; with a pre-GA reference week (`reference_date`, or by default the week before
    GA when the source holds it) it is also scaled to the day's weekday. Day 0 is compared
    with itself. Writes `daily_stats`, `drift`, `slo_daily`,
    `cost_daily`, `health`, `health_contributions` and `day_NN_summary.json`; checks
    `slo_compliance` and `drift_within_threshold`.
    """
    config = tars_config.load()
    release, day = release_day(context, config)
    reference = read_reference(build_source(config), config, release, day)
    if release.reference_date is not None and day > 0 and reference is None:
        context.log.warning(
            f"reference week from {release.reference_date} has no data for day {day}'s "
            "weekday or for GA's weekday: compared without a weekday factor"
        )
    with open_store(duckdb.for_config(config)) as conn:
        inputs = read_day_inputs(conn, release.name, day)
        analysis = analyse_day(
            **inputs, config=config, release=release, day=day, reference=reference
        )
        replace_partition(conn, release.name, day, analysis.tables())
    document = outputs.day_summary_doc(
        release,
        day,
        analysis,
        config,
        stored_anomalies=len(inputs["anomalies"]),
        reference_used=reference is not None,
    )
    path = reports.write_json(config, release.name, f"day_{day:02d}_summary.json", document)
    return dg.MaterializeResult(
        metadata=_metadata(release.name, day, analysis, reference is not None, path),
        check_results=[
            checks.result(verdicts.slo_compliance(analysis.slo), "daily_summary"),
            checks.result(
                verdicts.drift_within_threshold(analysis.drift, config.kpis), "daily_summary"
            ),
        ],
    )


def _metadata(
    release: str, day: int, analysis: DayAnalysis, reference_used: bool, path: Path
) -> dict[str, Any]:
    """The asset page's numbers: health, what was flagged, and what was left out."""
    health, drift = analysis.health, analysis.drift
    return {
        "release": release,
        "day": str(day),  # text: a label, not a number to plot
        "health_score": dg.MetadataValue.float(float(health.score)),
        "health_band": health.band,
        "flagged_kpis": dg.MetadataValue.int(int(drift["flagged"].sum())),
        "slo_breaches": dg.MetadataValue.int(len(analysis.breaches)),
        "anomalies": dg.MetadataValue.int(len(analysis.anomalies)),
        "samples_dropped": dg.MetadataValue.int(int(analysis.dropped["dropped_samples"].sum())),
        "samples_in_maintenance": dg.MetadataValue.int(
            int(analysis.excluded["excluded_samples"].sum())
        ),
        "reference_week": reference_used,
        "cost_usd": dg.MetadataValue.float(round(float(analysis.cost["cost_usd"].sum()), 2)),
        "drift": dg.MetadataValue.md(drift_table_markdown(drift)),
        "day_summary": dg.MetadataValue.path(str(path)),
    }
