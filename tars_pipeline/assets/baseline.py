"""baseline: the GA-day (Day 0) statistics every later day is compared with."""

import dagster as dg

from tars_pipeline.assets.common import release_day, settings
from tars_pipeline.assets.kpi_samples import kpi_samples
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.day import clean_samples
from tars_pipeline.judge.stats import hourly_profile, summarise
from tars_pipeline.partitions import ga_day_partitions, ga_day_samples
from tars_pipeline.reporting import outputs
from tars_pipeline.resources import ReportsResource, StoreResource, TarsConfigResource
from tars_pipeline.store import open_store, read_table, replace_partition


@dg.asset(
    partitions_def=ga_day_partitions,
    deps=[dg.AssetDep(kpi_samples, partition_mapping=ga_day_samples)],
    **settings("release"),
)
def baseline(
    context: dg.AssetExecutionContext,
    tars_config: TarsConfigResource,
    duckdb: StoreResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """GA-day baseline per service and KPI: mean, p50, p95, p99, min, max, stddev, sample
    count, and an hour-of-day profile.

    Partitioned by release x day_00 only: it reads Day 0's samples, cleaned as the daily
    drift cleans them (pre-filter, maintenance windows left out), so ga_kpi_summary.json
    shows what the judgement uses. Writes `baseline_stats`, `baseline_profile` and
    `ga_kpi_summary.json`.
    """
    config = tars_config.load()
    release, _ = release_day(context, config)
    with open_store(duckdb.for_config(config)) as conn:
        samples = clean_samples(read_table(conn, "samples", release.name, [0]), config)
        if samples.empty:
            raise TarsUserError(
                f"no GA-day samples stored for release {release.name}",
                where="baseline",
                remedy="materialize kpi_samples for day_00 first (tars-ga-kpi does both)",
            )
        stats = summarise(samples)
        profile = hourly_profile(samples, release.timezone)
        replace_partition(
            conn, release.name, 0, {"baseline_stats": stats, "baseline_profile": profile}
        )
    summary = outputs.ga_kpi_summary(release, config, stats)
    path = reports.write_json(config, release.name, "ga_kpi_summary.json", summary)
    return dg.MaterializeResult(
        metadata={
            "release": release.name,
            "ga_date": release.ga_date.isoformat(),
            "series": dg.MetadataValue.int(len(stats)),
            "samples": dg.MetadataValue.int(int(stats["sample_count"].sum())),
            "baseline": dg.MetadataValue.md(outputs.baseline_markdown(stats, config)),
            "ga_kpi_summary": dg.MetadataValue.path(str(path)),
        }
    )
