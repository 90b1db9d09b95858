"""regression_summary: the window judged as a whole — degradations, drifts, SLOs, cost."""

import dagster as dg

from tars_pipeline.assets.anomaly_events import anomaly_events
from tars_pipeline.assets.common import release_of, settings
from tars_pipeline.assets.daily_summary import daily_summary
from tars_pipeline.assets.kpi_samples import kpi_samples
from tars_pipeline.config import config_digest
from tars_pipeline.judge.window import judge_window
from tars_pipeline.partitions import all_days_of_release, release_partitions
from tars_pipeline.reporting import outputs
from tars_pipeline.reporting.week import with_feedback
from tars_pipeline.resources import ReportsResource, StoreResource, TarsConfigResource
from tars_pipeline.sources.context import breakdown_fetcher, load_annotations
from tars_pipeline.store import (
    StoredSamples,
    open_store,
    read_window_inputs,
    replace_document,
)


@dg.asset(
    partitions_def=release_partitions,
    deps=[
        dg.AssetDep(kpi_samples, partition_mapping=all_days_of_release),
        dg.AssetDep(daily_summary, partition_mapping=all_days_of_release),
        dg.AssetDep(anomaly_events, partition_mapping=all_days_of_release),
    ],
    **settings("release"),
)
def regression_summary(
    context: dg.AssetExecutionContext,
    tars_config: TarsConfigResource,
    duckdb: StoreResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """Regressions ranked over the whole window, the way automated canary judges work: a
    KPI-day degrades when its adverse drift crosses the threshold *and* a two-sided
    Mann-Whitney U test of GA-day vs that day's samples (same local hours, cleaned of counter
    resets and maintenance windows) is significant; severity from drift, effect size and SLO
    impact; day first seen and resolved/ongoing. Also unexpected drifts (10-30 %, with trend
    and potential causes), SLO budgets and burn-rate alerts, cost analysis and successes
    (`judge.window.judge_window`). Writes `regression_summary.json`.
    """
    config = tars_config.load()
    release = release_of(context, config)
    location = duckdb.for_config(config)
    with open_store(location) as conn:
        days, inputs = read_window_inputs(conn, release.name, release.window_days)
    annotations = load_annotations(config, release, warn=context.log.warning)
    judgement = judge_window(
        config=config,
        release=release,
        days=days,
        samples=StoredSamples(
            lambda: open_store(location), release.name, days, inputs["daily_stats"]
        ),
        annotations=annotations,
        breakdown=breakdown_fetcher(config, release),
        **inputs,
    )
    judgement = with_feedback(config, release, judgement, inputs.get("anomalies"))
    document = outputs.regression_summary_doc(release, days, judgement)
    with open_store(duckdb.for_config(config)) as conn:
        replace_document(conn, release.name, max(days), "regression_summary", document)
    path = reports.write_json(config, release.name, "regression_summary.json", document)
    return dg.MaterializeResult(
        metadata={
            "release": release.name,
            "verdict": judgement["verdict"]["status"],
            "verdict_reasons": "; ".join(r["text"] for r in judgement["verdict"]["reasons"]),
            "days_analysed": f"{min(days)}-{max(days)}",
            "degradations": dg.MetadataValue.int(len(judgement["degradations"])),
            "unexpected_drifts": dg.MetadataValue.int(len(judgement["unexpected_drifts"])),
            "successes": dg.MetadataValue.int(len(judgement["successes"])),
            "annotations": dg.MetadataValue.int(len(annotations)),
            **_feedback_metadata(judgement.get("feedback")),
            "onsets": dg.MetadataValue.md(outputs.onsets_markdown(document["degradations"])),
            "ranking": dg.MetadataValue.md(outputs.ranking_markdown(document["degradations"])),
            "regression_summary": dg.MetadataValue.path(str(path)),
            "config_digest": config_digest(config),
        }
    )


def _feedback_metadata(feedback: dict | None) -> dict:
    """The marks the run applied, for the asset's page: what left the verdict and why,
    and each detector's precision by the marks (docs/methods/feedback.md)."""
    if not feedback:
        return {}
    excluded = feedback.get("excluded_from_verdict") or []
    return {
        "feedback_file": str(feedback.get("file") or ""),
        "excluded_from_verdict": dg.MetadataValue.md(
            "\n".join(f"- {e['label']}: {e.get('reason') or 'expected'}" for e in excluded)
            or "none"
        ),
        "precision_by_marks": dg.MetadataValue.json(
            {p["detector"]: p["precision"] for p in feedback.get("precision") or []}
        ),
        "stale_marks": dg.MetadataValue.int(len(feedback.get("stale_marks") or [])),
    }
