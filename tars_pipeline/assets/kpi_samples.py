"""kpi_samples: one release-day of KPI samples from the metric source, into the store."""

import datetime as dt

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from tars_pipeline.assets.common import GROUP, STORE_POOL, release_day
from tars_pipeline.errors import TarsUserError
from tars_pipeline.resources import TarsConfigResource
from tars_pipeline.sources import PrometheusResource, build_source
from tars_pipeline.sources.prometheus import run_progress
from tars_pipeline.store import open_store, replace_partition


def build(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=partitions_def,
        group_name=GROUP,
        pool=STORE_POOL,
        kinds={"duckdb"},
    )
    def kpi_samples(
        context: dg.AssetExecutionContext,
        tars_config: TarsConfigResource,
        duckdb: DuckDBResource,
        prometheus: PrometheusResource,
    ) -> dg.MaterializeResult:
        """KPI samples (service, KPI, timestamp, value) for one release-day.

        Reads the configured metric source for the day's window (the calendar day in the
        release's timezone) at the configured step and replaces the partition's rows in
        the `samples` and `coverage` tables. Missing or partial series are reported in
        the metadata, never filled with zeros; KPIs marked `fail_on_missing_data` fail
        the partition instead, and nothing is written.

        With a configured `prometheus` resource (source.type prometheus, or a CLI's
        --prometheus-url) the samples come from range queries of the KPIs' PromQL; a
        failed query fails the partition with the KPI or setting to fix, before any write.
        """
        config = tars_config.load()
        release, day = release_day(context, config)
        start, end = release.day_bounds(day)
        # The nightly run starts at 23:59: a day still in progress is read up to the last
        # whole step before now, and its coverage is judged against that, not the future.
        now = dt.datetime.now(dt.UTC)
        if start >= now:
            raise TarsUserError(
                f"{release.name} day {day} starts at {start.isoformat()}, in the future",
                where=f"partition {context.partition_key}",
                remedy="materialize days that have started (the nightly schedule does)",
            )
        step = dt.timedelta(seconds=config.step_seconds)
        end = min(end, start + ((now - start) // step) * step)
        source_type = "prometheus" if prometheus.enabled else config.source.type
        source = build_source(
            config,
            prometheus=prometheus,
            progress=run_progress(context.run.tags),
            warn=context.log.warning,
        )
        fetch = source.fetch_day(release, start, end, config.kpis, config.step_seconds)
        if fetch.samples.empty:
            raise TarsUserError(
                f"the metric source returned no samples for {release.name} day {day} "
                f"({start.isoformat()} .. {end.isoformat()})",
                where=f"source ({source_type})",
                remedy="check the source settings and that the day has data",
            )
        required = {kpi.name for kpi in config.kpis if kpi.fail_on_missing_data}
        failing = [c for c in fetch.missing + fetch.incomplete if c.kpi in required]
        if failing:
            listed = ", ".join(f"{c.service}/{c.kpi} ({c.completeness_pct:.0f} %)" for c in failing)
            raise TarsUserError(
                f"required KPI data missing or incomplete: {listed}",
                where="kpis[].fail_on_missing_data",
                remedy="fix the source or set fail_on_missing_data: false for these KPIs",
            )
        coverage = pd.DataFrame(
            [
                {
                    "service": c.service,
                    "kpi": c.kpi,
                    "expected_points": c.expected_points,
                    "points": c.points,
                }
                for c in fetch.coverage
            ],
            columns=["service", "kpi", "expected_points", "points"],
        )
        with open_store(duckdb) as conn:
            written = replace_partition(
                conn, release.name, day, {"samples": fetch.samples, "coverage": coverage}
            )
        for gap in fetch.missing:
            context.log.warning(f"no data: {gap.service}/{gap.kpi}")
        for gap in fetch.incomplete:
            context.log.warning(
                f"incomplete: {gap.service}/{gap.kpi} {gap.completeness_pct:.1f} % of the day"
            )
        completeness = (
            100.0 * coverage["points"].sum() / coverage["expected_points"].sum()
            if coverage["expected_points"].sum()
            else 0.0
        )
        return dg.MaterializeResult(
            metadata={
                "release": release.name,
                "day": day,
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "rows": dg.MetadataValue.int(written["samples"]),
                "services": dg.MetadataValue.int(int(fetch.samples["service"].nunique())),
                "kpis": dg.MetadataValue.int(int(fetch.samples["kpi"].nunique())),
                "completeness_pct": dg.MetadataValue.float(round(float(completeness), 2)),
                "missing_series": dg.MetadataValue.int(len(fetch.missing)),
                "incomplete_series": dg.MetadataValue.int(len(fetch.incomplete)),
            }
        )

    return kpi_samples
