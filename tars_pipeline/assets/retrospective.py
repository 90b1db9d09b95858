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
from tars_pipeline.reporting.openmetrics import (
    METRICS_FILE,
    push_metrics,
    push_target,
    render_openmetrics,
)
from tars_pipeline.reporting.retrospective import render_markdown
from tars_pipeline.reporting.schema import SchemaValidationError, validate_document
from tars_pipeline.reporting.slo_rules import (
    RULES_FILE,
    SLOTH_FILE,
    render_rules,
    render_sloth,
    slo_targets,
)
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

    For the Prometheus toolbox (`exports:` in tars.yaml, docs/integrations.md): the same
    numbers as GA_7DAY_RETROSPECTIVE.prom (OpenMetrics, node-exporter textfile style),
    pushed to a Pushgateway when one is configured, and for the SLOs whose budget the week
    burned a Sloth spec (GA_7DAY_SLOTH.yaml) and multi-window burn-rate alerting rules
    (GA_7DAY_SLO_RULES.yaml).
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
    # Every format is rendered, and the Pushgateway setting resolved, before anything is
    # written: a rendering error or a missing variable leaves the previous reports and
    # stored document untouched. The JSON, which automation watches for, is replaced last.
    exports = config.exports
    markdown_text, html_text = render_markdown(model), render_html(model)
    target = push_target(exports, release.name)
    metrics_text = render_openmetrics(model)
    extra = {METRICS_FILE: metrics_text} if exports.openmetrics else {}
    if exports.slo_rules != "none":
        extra[RULES_FILE] = render_rules(model, config, exports.slo_rules)
        extra.update(render_sloth(model, config, exports.slo_rules))
    with open_store(duckdb.for_config(config)) as conn:
        replace_document(conn, release.name, release.window_days, "retrospective", model)
    paths = {
        RETRO_MD: reports.write_text(config, release.name, RETRO_MD, markdown_text),
        RETRO_HTML: reports.write_text(config, release.name, RETRO_HTML, html_text),
    }
    for name, text in extra.items():
        paths[name] = reports.write_text(config, release.name, name, text)
    paths[RETRO_JSON] = reports.write_json(config, release.name, RETRO_JSON, model)
    metadata = _metadata(release.name, model, paths)
    if exports.slo_rules != "none":
        targets = slo_targets(model, config, exports.slo_rules)
        metadata["slo_rules_slos"] = dg.MetadataValue.json(
            [{"service": t.service, "slo": t.slo.name, "why": list(t.reasons)} for t in targets]
        )
    if target is not None:
        # After the files: the push is a copy of them, and a Pushgateway that is down
        # must not cost the reports (the error says so, and a re-run pushes again).
        metadata["pushed_to"] = push_metrics(target, metrics_text)
        context.log.info(f"pushed the metrics to {metadata['pushed_to']}")
    return dg.MaterializeResult(metadata=metadata)


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


_PATH_KEYS = {
    RETRO_MD: "retrospective_md",
    RETRO_JSON: "retrospective_json",
    RETRO_HTML: "retrospective_html",
    METRICS_FILE: "openmetrics",
    RULES_FILE: "slo_rules",
    SLOTH_FILE: "sloth_spec",
}


def _metadata(release: str, model: dict[str, Any], paths: dict[str, Path]) -> dict[str, Any]:
    action_items = model["action_items"]
    by_priority = {
        priority: sum(1 for item in action_items if item["priority"] == priority)
        for priority in ("P0", "P1", "P2", "P3")
    }
    summary = model["summary"]
    metadata = {
        "release": release,
        "verdict": model["verdict"]["status"],
        "verdict_reasons": "; ".join(r["text"] for r in model["verdict"]["reasons"]),
        "average_health": dg.MetadataValue.float(float(summary["average_health"] or 0.0)),
        "degradations": dg.MetadataValue.int(summary["degradations"]),
        "unexpected_drifts": dg.MetadataValue.int(summary["unexpected_drifts"]),
        "recommendations": dg.MetadataValue.int(len(model["recommendations"])),
        "action_items": dg.MetadataValue.int(len(action_items)),
        "action_items_by_priority": dg.MetadataValue.json(by_priority),
        "summary": dg.MetadataValue.md(_summary_markdown(model)),
    }
    for name, path in paths.items():
        # The Sloth windows files (one per SLO period other than 30 days) by their name.
        key = _PATH_KEYS.get(name) or name.removeprefix("GA_7DAY_").removesuffix(".yaml").lower()
        metadata[key] = dg.MetadataValue.path(str(path))
    return metadata


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
