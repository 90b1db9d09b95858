"""retrospective: the Day-7 report — Markdown, JSON and HTML rendered from one data model."""

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from tars_pipeline.assets.common import GROUP, STORE_POOL, release_of
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.recommendations import recommend
from tars_pipeline.partitions import all_days_of_release, release_partitions
from tars_pipeline.reporting.escape import markdown, signed_pct
from tars_pipeline.reporting.html import render_html
from tars_pipeline.reporting.retrospective import (
    ReleaseWeek,
    build_retrospective,
    compare_releases,
    render_markdown,
)
from tars_pipeline.reporting.schema import SchemaValidationError, validate_document
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.store import open_store, read_document, read_table, replace_document

RETRO_MD = "GA_7DAY_RETROSPECTIVE.md"
RETRO_JSON = "GA_7DAY_RETROSPECTIVE.json"
RETRO_HTML = "GA_7DAY_RETROSPECTIVE.html"


def build(
    regression_summary: dg.AssetsDefinition,
    daily_summary: dg.AssetsDefinition,
    baseline: dg.AssetsDefinition,
    anomaly_events: dg.AssetsDefinition,
) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=release_partitions,
        deps=[
            regression_summary,
            baseline,
            dg.AssetDep(daily_summary, partition_mapping=all_days_of_release),
            dg.AssetDep(anomaly_events, partition_mapping=all_days_of_release),
        ],
        group_name=GROUP,
        pool=STORE_POOL,
        kinds={"duckdb"},
    )
    def retrospective(
        context: dg.AssetExecutionContext,
        tars_config: TarsConfigResource,
        duckdb: DuckDBResource,
        reports: ReportsResource,
    ) -> dg.MaterializeResult:
        """The GA +7 retrospective, in the seed's seven sections: what went well, what
        could be improved, unexpected drifts, cost analysis, SLO compliance,
        recommendations (top 10, P0-P3, each with its evidence) and action items.

        Renders GA_7DAY_RETROSPECTIVE.md, .json and .html (charts: each KPI against its
        baseline band, health per day, SLO burn-down, cost by resource type, and the
        previous release when `previous_release` is set) from one data model, built from
        the regression summary, the daily drift, health, cost and anomaly rows. The model
        is validated against schemas/retrospective.schema.json before anything is written.
        """
        config = tars_config.load()
        release = release_of(context, config)
        kpis = config.kpis_by_name
        with open_store(duckdb) as conn:
            regression = read_document(conn, release.name, "regression_summary")
            if regression is None:
                raise TarsUserError(
                    f"no regression summary for release {release.name}",
                    where="retrospective",
                    remedy="materialize regression_summary first (tars-regression-analyzer)",
                )
            health = read_table(conn, "health", release.name)
            contributions = read_table(conn, "health_contributions", release.name)
            anomalies = read_table(conn, "anomaly_events", release.name)
            drift = read_table(conn, "drift", release.name)
            cost_daily = read_table(conn, "cost_daily", release.name)
            comparison = None
            if release.previous_release:
                current = ReleaseWeek(
                    release.name, health, read_table(conn, "daily_stats", release.name), cost_daily
                )
                comparison = compare_releases(
                    current,
                    _stored_week(conn, release.previous_release),
                    kpis,
                    previous_name=release.previous_release,
                )
                if not comparison["available"]:
                    context.log.warning(
                        f"previous_release {release.previous_release} has no stored week; "
                        "the report leaves the comparison out"
                    )
            recommendations, action_items = recommend(
                regression, cost_growth_pct=config.cost.growth_hint_pct
            )
            model = build_retrospective(
                release,
                regression=regression,
                health=health,
                contributions=contributions,
                anomalies=anomalies,
                recommendations=recommendations,
                action_items=action_items,
                drift=drift,
                kpis=kpis,
                health_bands=config.health.bands,
                cost_daily=cost_daily,
                comparison=comparison,
            )
        # Contract first, then render every format, then write: a schema failure or a
        # rendering error leaves the previous reports and stored document untouched. The
        # store is closed meanwhile, as drawing the charts takes a few seconds.
        try:
            validate_document("retrospective", model)
        except SchemaValidationError as error:
            # A Failure reaches the UI and the CLI with its own message, not wrapped.
            raise dg.Failure(
                description=f"{error}\nNothing was written: the previous reports are intact. "
                "This is a TARS bug, or a contract change that needs a new schema_version; "
                "please report it with this message.",
                metadata={"schema_problems": dg.MetadataValue.json(error.problems[:50])},
                allow_retries=False,
            ) from error
        markdown_text = render_markdown(model)
        html_text = render_html(model)
        with open_store(duckdb) as conn:
            replace_document(conn, release.name, release.window_days, "retrospective", model)
        # Each file is replaced atomically; the JSON, which automation watches for, last.
        md_path = reports.write_text(release.name, RETRO_MD, markdown_text)
        html_path = reports.write_text(release.name, RETRO_HTML, html_text)
        json_path = reports.write_json(release.name, RETRO_JSON, model)
        by_priority = {
            priority: sum(1 for item in action_items if item["priority"] == priority)
            for priority in ("P0", "P1", "P2", "P3")
        }
        summary = model["summary"]
        return dg.MaterializeResult(
            metadata={
                "release": release.name,
                "average_health": dg.MetadataValue.float(float(summary["average_health"] or 0.0)),
                "degradations": dg.MetadataValue.int(summary["degradations"]),
                "unexpected_drifts": dg.MetadataValue.int(summary["unexpected_drifts"]),
                "recommendations": dg.MetadataValue.int(len(recommendations)),
                "action_items": dg.MetadataValue.int(len(action_items)),
                "action_items_by_priority": dg.MetadataValue.json(by_priority),
                "retrospective_md": dg.MetadataValue.path(str(md_path)),
                "retrospective_json": dg.MetadataValue.path(str(json_path)),
                "retrospective_html": dg.MetadataValue.path(str(html_path)),
                "summary": dg.MetadataValue.md(_summary_markdown(model)),
            }
        )

    return retrospective


def _summary_markdown(model: dict) -> str:
    """A short Markdown digest for the asset's page in the Dagster UI."""
    lines = [
        f"**{markdown(model['release']['name'])}** — average health "
        f"{model['summary']['average_health']}",
        "",
    ]
    for degradation in model["degradations"]:
        lines.append(
            f"- **{degradation['severity']}** {markdown(degradation['kpi'])} on "
            f"{markdown(degradation['service'])}: {signed_pct(degradation['change_pct'])} "
            f"(day {degradation['day_first']}, {degradation['status']})"
        )
    for rec in model["recommendations"][:5]:
        lines.append(f"- [{rec['priority']}] {markdown(rec['title'])}")
    return "\n".join(lines)


def _stored_week(conn: duckdb.DuckDBPyConnection, release_name: str) -> ReleaseWeek | None:
    """The previous release's week as stored (None when nothing is): the comparison reads
    the store, not the previous report, so it works whatever that report's version was."""
    health = read_table(conn, "health", release_name)
    if health.empty:
        return None
    return ReleaseWeek(
        release_name,
        health,
        read_table(conn, "daily_stats", release_name),
        read_table(conn, "cost_daily", release_name),
    )
