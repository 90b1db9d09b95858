"""regression_summary: the window judged as a whole — degradations, drifts, SLOs, cost."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from tars_pipeline.assets.common import GROUP, STORE_POOL, release_of
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.window import judge_window
from tars_pipeline.partitions import all_days_of_release, release_partitions
from tars_pipeline.reporting.escape import markdown, signed_pct
from tars_pipeline.reporting.jsonio import to_jsonable
from tars_pipeline.reporting.outputs import SCHEMA_VERSION
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.store import days_present, open_store, read_table, replace_document


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
