"""The retrospective's data model from a release's stored week: recommendations, the
comparison with the previous release, and the model every renderer draws from."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.judge.feedback import apply_feedback, load_feedback
from tars_pipeline.judge.recommendations import recommend
from tars_pipeline.reporting.retrospective import (
    ReleaseWeek,
    build_retrospective,
    compare_releases,
)

Week = dict[str, pd.DataFrame]  # store.read_week: table name -> every day's rows


def _release_week(name: str, week: Week | None) -> ReleaseWeek | None:
    if week is None or week["health"].empty:
        return None
    return ReleaseWeek(name, week["health"], week["daily_stats"], week["cost_daily"])


def retrospective_model(
    release: Release,
    config: TarsConfig,
    regression: dict[str, Any],
    week: Week,
    previous: Week | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The JSON-ready model and the warnings an operator should see (a previous release
    named in the config with nothing stored)."""
    kpis = config.kpis_by_name
    notes: list[str] = []
    comparison = None
    if release.previous_release:
        current = ReleaseWeek(release.name, week["health"], week["daily_stats"], week["cost_daily"])
        comparison = compare_releases(
            current,
            _release_week(release.previous_release, previous),
            kpis,
            previous_name=release.previous_release,
        )
        if not comparison["available"]:
            notes.append(
                f"previous_release {release.previous_release} has no stored week; "
                "the report leaves the comparison out"
            )
    regression = with_feedback(config, release, regression, week.get("anomaly_events"))
    recommendations, action_items = recommend(
        _without_expected(regression), cost_growth_pct=config.cost.growth_hint_pct
    )
    model = build_retrospective(
        release,
        regression=regression,
        health=week["health"],
        contributions=week["health_contributions"],
        anomalies=week["anomaly_events"],
        recommendations=recommendations,
        action_items=action_items,
        drift=week["drift"],
        kpis=kpis,
        health_bands=config.health.bands,
        cost_daily=week["cost_daily"],
        comparison=comparison,
        coverage=week["coverage"],
    )
    return model, notes


def with_feedback(
    config: TarsConfig,
    release: Release,
    regression: dict[str, Any],
    anomalies: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """`regression` with the marks of the feedback file applied (docs/methods/feedback.md):
    each marked finding carries its mark, the verdict leaves out the "expected" ones with
    their reason, and `feedback` has the marks and each detector's precision. Without a
    feedback file the document is returned as it is. Read fresh on every call, so a mark
    added after the nightly runs changes the next retrospective."""
    if config.feedback_file is None:
        return regression
    feedback = load_feedback(config.feedback_file, window_days=release.window_days)
    if not feedback.marks:
        return regression
    marked = apply_feedback(feedback, regression, release=release.name, anomalies=anomalies)
    if "anomalies" not in regression:
        marked.pop("anomalies", None)  # used for the precision; the document lists none
    return marked


def _without_expected(regression: dict[str, Any]) -> dict[str, Any]:
    """The findings a recommendation is made for: an "expected" one needs no action."""

    def keep(record: Any) -> bool:
        mark = record.get("feedback") if isinstance(record, dict) else None
        return not (isinstance(mark, dict) and mark.get("mark") == "expected")

    return {
        **regression,
        **{
            key: [record for record in regression.get(key) or [] if keep(record)]
            for key in ("degradations", "unexpected_drifts", "incidents")
            if key in regression
        },
    }
