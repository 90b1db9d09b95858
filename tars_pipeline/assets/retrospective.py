"""retrospective: the Day-7 report — Markdown and JSON rendered from one data model."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from tars_pipeline.analytics.recommendations import build_action_items, build_recommendations
from tars_pipeline.assets.common import GROUP, STORE_POOL, release_of
from tars_pipeline.errors import TarsUserError
from tars_pipeline.partitions import all_days_of_release, release_partitions
from tars_pipeline.reporting.escape import markdown
from tars_pipeline.reporting.retrospective import build_retrospective, render_markdown
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.store import open_store, read_document, read_table, replace_document

RETRO_MD = "GA_7DAY_RETROSPECTIVE.md"
RETRO_JSON = "GA_7DAY_RETROSPECTIVE.json"


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

        Renders GA_7DAY_RETROSPECTIVE.md and .json from one data model, built from the
        regression summary, the daily health scores and the anomaly events.
        """
        config = tars_config.load()
        release = release_of(context, config)
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
            recommendations = build_recommendations(
                regression["degradations"],
                regression["unexpected_drifts"],
                regression["slo_compliance"],
                regression["cost_analysis"],
                limit=10,
            )
            action_items = build_action_items(recommendations)
            model = build_retrospective(
                release,
                regression=regression,
                health=health,
                contributions=contributions,
                anomalies=anomalies,
                recommendations=recommendations,
                action_items=action_items,
            )
            replace_document(conn, release.name, release.window_days, "retrospective", model)
        markdown = render_markdown(model)
        md_path = reports.write_text(release.name, RETRO_MD, markdown)
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
            f"{markdown(degradation['service'])}: {degradation['change_pct']:+.1f} % "
            f"(day {degradation['day_first']}, {degradation['status']})"
        )
    for rec in model["recommendations"][:5]:
        lines.append(f"- [{rec['priority']}] {markdown(rec['title'])}")
    return "\n".join(lines)
