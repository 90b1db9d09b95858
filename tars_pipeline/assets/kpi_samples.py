"""kpi_samples: one release-day of KPI samples from the metric source, into the store."""

import dagster as dg

from tars_pipeline.assets import checks
from tars_pipeline.assets.common import release_day, settings
from tars_pipeline.assets.day_fetch import read_window
from tars_pipeline.judge import checks as verdicts
from tars_pipeline.partitions import release_day_partitions
from tars_pipeline.resources import StoreResource, TarsConfigResource
from tars_pipeline.sources import build_source
from tars_pipeline.sources.prometheus import run_progress
from tars_pipeline.store import open_store, replace_partition


@dg.asset(
    partitions_def=release_day_partitions,
    check_specs=checks.specs("kpi_samples", checks.SAMPLE_CHECKS),
    **settings("day", "prometheus"),
)
def kpi_samples(
    context: dg.AssetExecutionContext, tars_config: TarsConfigResource, duckdb: StoreResource
) -> dg.MaterializeResult:
    """KPI samples (service, KPI, timestamp, value) for one release-day.

    Reads the configured metric source for the day's window (the calendar day in the
    release's timezone; a day still in progress up to the last whole step before now) at
    the configured step and replaces the partition's rows in the `samples` and `coverage`
    tables. Missing or partial series are reported (check `data_completeness`), never
    filled with zeros; KPIs marked `fail_on_missing_data` fail the partition instead, and
    nothing is written. A failed Prometheus query fails the partition with the KPI or
    setting to fix, before any write.
    """
    config = tars_config.load()
    release, day = release_day(context, config)
    source = build_source(config, progress=run_progress(context.run.tags), warn=context.log.warning)
    window = read_window(source, config, release, day)
    with open_store(duckdb.for_config(config)) as conn:
        written = replace_partition(conn, release.name, day, window.tables())
    for line in window.gap_lines():
        context.log.warning(line)
    return dg.MaterializeResult(
        metadata=window.metadata(release.name, day, rows=written["samples"]),
        check_results=[checks.result(verdicts.completeness(window.coverage), "kpi_samples")],
    )
