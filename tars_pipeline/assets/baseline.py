"""baseline: the GA-day (Day 0) statistics every later day is compared with."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from tars_pipeline.assets.common import GROUP, STORE_POOL, release_of
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.day import clean_samples
from tars_pipeline.judge.stats import hourly_profile, summarise
from tars_pipeline.partitions import all_days_of_release, release_partitions
from tars_pipeline.reporting import outputs
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.store import open_store, read_table, replace_partition


def build(kpi_samples: dg.AssetsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=release_partitions,
        deps=[dg.AssetDep(kpi_samples, partition_mapping=all_days_of_release)],
        group_name=GROUP,
        pool=STORE_POOL,
        kinds={"duckdb"},
    )
    def baseline(
        context: dg.AssetExecutionContext,
        tars_config: TarsConfigResource,
        duckdb: DuckDBResource,
        reports: ReportsResource,
    ) -> dg.MaterializeResult:
        """GA-day baseline per service and KPI: mean, p50, p95, p99, min, max, stddev,
        sample count, and an hour-of-day profile.

        Reads only Day 0's samples (the release's GA day) and writes `baseline_stats`,
        `baseline_profile` and `ga_kpi_summary.json`.
        """
        config = tars_config.load()
        release = release_of(context, config)
        with open_store(duckdb) as conn:
            samples = read_table(conn, "samples", release.name, [0])
            if samples.empty:
                raise TarsUserError(
                    f"no GA-day samples stored for release {release.name}",
                    where="baseline",
                    remedy="materialize kpi_samples for day_00 first (tars-ga-kpi does both)",
                )
            # The same samples the daily drift compares against (pre-filtered, maintenance
            # windows left out), so ga_kpi_summary.json shows what the judgement uses.
            samples = clean_samples(samples, config)
            stats = summarise(samples)
            profile = hourly_profile(samples, release.timezone)
            replace_partition(
                conn, release.name, 0, {"baseline_stats": stats, "baseline_profile": profile}
            )
        summary = outputs.ga_kpi_summary(release, config, stats)
        path = reports.write_json(release.name, "ga_kpi_summary.json", summary)
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

    return baseline
