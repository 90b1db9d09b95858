"""release_notifications: tell people on Day 7 — Slack, GitHub issues, a JSON webhook."""

import os
from typing import Any

import dagster as dg

from tars_pipeline.assets.common import release_of, settings
from tars_pipeline.assets.retrospective import retrospective
from tars_pipeline.errors import TarsUserError
from tars_pipeline.notify.dispatch import (
    NotifyReport,
    is_configured,
    notify_p0,
    notify_retrospective,
    summary_lines,
)
from tars_pipeline.partitions import release_partitions
from tars_pipeline.reporting import RETRO_MD
from tars_pipeline.reporting.escape import markdown
from tars_pipeline.resources import ReportsResource, StoreResource, TarsConfigResource
from tars_pipeline.store import open_store, read_document

NOT_CONFIGURED = "no notifications configured"


@dg.asset(
    partitions_def=release_partitions,
    deps=[retrospective],
    **settings("release", "slack", "github"),
)
def release_notifications(
    context: dg.AssetExecutionContext,
    tars_config: TarsConfigResource,
    duckdb: StoreResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """Day-7 notifications from the stored retrospective: a Slack "retrospective
    ready" message with the headline numbers and top recommendations, a Slack "P0"
    message when the retrospective has P0 action items, one GitHub issue per P0/P1
    action item (de-duplicated by a fingerprint marker, so re-runs open no twins) and
    a generic JSON webhook. All optional (tars.yaml `notifications:`), secrets from
    environment variables; a channel in dry-run prints what it would send.
    """
    config = tars_config.load()
    release = release_of(context, config)
    settings = config.notifications
    if not is_configured(settings):
        context.log.info(f"{NOT_CONFIGURED} (tars.yaml `notifications:`)")
        return dg.MaterializeResult(metadata={"release": release.name, "status": NOT_CONFIGURED})
    with open_store(duckdb.for_config(config)) as conn:
        model = read_document(conn, release.name, "retrospective")
    if model is None:
        raise TarsUserError(
            f"no retrospective for release {release.name}",
            where="release_notifications",
            remedy="materialize retrospective first (tars-retro --auto)",
        )
    location = str(reports.folder(release.name, config) / RETRO_MD)
    report = notify_retrospective(
        model, settings, env=os.environ, report_location=location, echo=context.log.info
    )
    report.extend(
        notify_p0(model, settings, env=os.environ, report_location=location, echo=context.log.info)
    )
    metadata = _metadata(release.name, report)
    if report.failures:
        raise dg.Failure(
            description=f"{len(report.failures)} notification(s) failed:\n"
            + "\n".join(summary_lines(report.failures)),
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)


def _metadata(release: str, report: NotifyReport) -> dict[str, Any]:
    """What was sent, where (redacted) and whether for real: the asset page answers
    "did the team hear about it?" without opening logs."""
    rows = ["| channel | kind | status | what |", "| --- | --- | --- | --- |"]
    for delivery in report.deliveries:
        what = markdown(delivery.title)
        if delivery.link:
            what += f" ({markdown(delivery.link)})"
        if delivery.error:
            what += f" — {markdown(delivery.error)}"
        rows.append(f"| {delivery.channel} | {delivery.kind} | {delivery.status} | {what} |")
    status = "dry run: nothing sent" if report.dry_run else "sent"
    if not report.deliveries:
        status = "nothing to send"
    metadata: dict[str, Any] = {
        "release": release,
        "status": status,
        "dry_run": dg.MetadataValue.bool(report.dry_run),
        "messages_sent": dg.MetadataValue.int(report.count(status="sent")),
        "slack_messages": dg.MetadataValue.int(
            sum(1 for d in report.deliveries if d.channel == "slack" and d.status == "sent")
        ),
        "p0_alert": dg.MetadataValue.text(
            next((d.status for d in report.deliveries if d.kind == "p0"), "none")
        ),
        "issues_created": dg.MetadataValue.int(report.count(channel="github", status="created")),
        "issues_skipped_duplicates": dg.MetadataValue.int(
            report.count(channel="github", status="duplicate")
        ),
        "dry_run_deliveries": dg.MetadataValue.int(report.count(status="dry_run")),
        "failures": dg.MetadataValue.int(len(report.failures)),
        "deliveries": dg.MetadataValue.md("\n".join(rows)),
        "details": dg.MetadataValue.json([d.as_dict() for d in report.deliveries]),
    }
    would_send = [
        {**d.as_dict(), "payload": d.payload} for d in report.deliveries if d.status == "dry_run"
    ]
    if would_send:
        metadata["dry_run_payloads"] = dg.MetadataValue.json(would_send)
    return metadata
