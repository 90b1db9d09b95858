"""retrospective: the Day-7 report — Markdown, JSON and HTML rendered from one data model."""

from pathlib import Path
from typing import Any

import dagster as dg

from tars_pipeline.assets.anomaly_events import anomaly_events
from tars_pipeline.assets.baseline import baseline
from tars_pipeline.assets.common import release_of, settings
from tars_pipeline.assets.daily_summary import daily_summary
from tars_pipeline.assets.regression_summary import regression_summary
from tars_pipeline.errors import TarsUserError
from tars_pipeline.partitions import all_days_of_release, release_partitions
from tars_pipeline.reporting import RETRO_HTML, RETRO_JSON, RETRO_MD
from tars_pipeline.reporting.escape import markdown, signed_pct
from tars_pipeline.reporting.html import render_html
from tars_pipeline.reporting.retrospective import render_markdown
from tars_pipeline.reporting.schema import SchemaValidationError, validate_document
from tars_pipeline.reporting.week import retrospective_model
from tars_pipeline.resources import ReportsResource, StoreResource, TarsConfigResource
from tars_pipeline.store import open_store, read_document, read_week, replace_document


@dg.asset(
    partitions_def=release_partitions,
    deps=[
        regression_summary,
        dg.AssetDep(baseline, partition_mapping=all_days_of_release),
        dg.AssetDep(daily_summary, partition_mapping=all_days_of_release),
        dg.AssetDep(anomaly_events, partition_mapping=all_days_of_release),
    ],
    **settings("release", "html"),
)
def retrospective(
    context: dg.AssetExecutionContext,
    tars_config: TarsConfigResource,
    duckdb: StoreResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """The GA +7 retrospective, in the seed's seven sections: what went well, what could be
    improved, unexpected drifts, cost analysis, SLO compliance, recommendations (top 10,
    P0-P3, each with its evidence) and action items.

    Renders GA_7DAY_RETROSPECTIVE.md, .json and .html (charts: each KPI against its baseline
    band, health per day, SLO burn-down, cost by resource type, and the previous release
    when `previous_release` is set) from one model (`reporting.week.retrospective_model`),
    validated against schemas/retrospective.schema.json before anything is written.
    """
    config = tars_config.load()
    release = release_of(context, config)
    with open_store(duckdb.for_config(config)) as conn:
        regression = read_document(conn, release.name, "regression_summary")
        if regression is None:
            raise TarsUserError(
                f"no regression summary for release {release.name}",
                where="retrospective",
                remedy="materialize regression_summary first (tars-regression-analyzer)",
            )
        week = read_week(conn, release.name)
        previous = read_week(conn, release.previous_release) if release.previous_release else None
    model, notes = retrospective_model(release, config, regression, week, previous)
    for note in notes:
        context.log.warning(note)
    _validate(model)
    # Every format is rendered before anything is written: a rendering error leaves the
    # previous reports and stored document untouched. The JSON, which automation watches
    # for, is replaced last.
    markdown_text, html_text = render_markdown(model), render_html(model)
    with open_store(duckdb.for_config(config)) as conn:
        replace_document(conn, release.name, release.window_days, "retrospective", model)
    paths = [
        reports.write_text(config, release.name, RETRO_MD, markdown_text),
        reports.write_text(config, release.name, RETRO_HTML, html_text),
        reports.write_json(config, release.name, RETRO_JSON, model),
    ]
    return dg.MaterializeResult(metadata=_metadata(release.name, model, paths))


def _validate(model: dict[str, Any]) -> None:
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


def _metadata(release: str, model: dict[str, Any], paths: list[Path]) -> dict[str, Any]:
    action_items = model["action_items"]
    by_priority = {
        priority: sum(1 for item in action_items if item["priority"] == priority)
        for priority in ("P0", "P1", "P2", "P3")
    }
    summary = model["summary"]
    md_path, html_path, json_path = paths
    return {
        "release": release,
        "verdict": model["verdict"]["status"],
        "verdict_reasons": "; ".join(r["text"] for r in model["verdict"]["reasons"]),
        "average_health": dg.MetadataValue.float(float(summary["average_health"] or 0.0)),
        "degradations": dg.MetadataValue.int(summary["degradations"]),
        "unexpected_drifts": dg.MetadataValue.int(summary["unexpected_drifts"]),
        "recommendations": dg.MetadataValue.int(len(model["recommendations"])),
        "action_items": dg.MetadataValue.int(len(action_items)),
        "action_items_by_priority": dg.MetadataValue.json(by_priority),
        "retrospective_md": dg.MetadataValue.path(str(md_path)),
        "retrospective_json": dg.MetadataValue.path(str(json_path)),
        "retrospective_html": dg.MetadataValue.path(str(html_path)),
        "summary": dg.MetadataValue.md(_summary_markdown(model)),
    }


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
