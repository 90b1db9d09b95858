"""The Day-7 retrospective: one data model, rendered to Markdown and JSON.

`build_retrospective` assembles the model (plain JSON-ready dict whose keys are the contract
in SPEC §4); the Markdown template renders the same dict, so the two never disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2
import pandas as pd

from tars_pipeline import __version__
from tars_pipeline.config import Release
from tars_pipeline.reporting import escape
from tars_pipeline.reporting.jsonio import to_jsonable
from tars_pipeline.reporting.outputs import SCHEMA_VERSION

SECTIONS = (
    "What went well",
    "What could be improved",
    "Unexpected drifts",
    "Cost analysis",
    "SLO compliance summary",
    "Recommendations for the next release",
    "Action items",
)

ANOMALY_FIELDS = (
    "kpi", "service", "day", "start", "end", "peak_z", "peak_value", "expected_value",
    "direction", "severity", "points",
)  # fmt: skip


def window_days(release: Release) -> list[dict[str, Any]]:
    days = []
    for day in release.days:
        start, end = release.day_bounds(day)
        days.append(
            {
                "day": day,
                "date": release.day_date(day).isoformat(),
                "start": start.isoformat(),
                "end": end.isoformat(),
                "hours": (end - start).total_seconds() / 3600,
            }
        )
    return days


def health_scores(health: pd.DataFrame, contributions: pd.DataFrame) -> list[dict[str, Any]]:
    scores = []
    for row in health.sort_values("day").to_dict(orient="records"):
        day_rows = contributions[contributions["day"] == row["day"]]
        scores.append(
            {
                "day": int(row["day"]),
                "score": row["score"],
                "band": row["band"],
                "weighted_kpi_score": row["weighted_kpi_score"],
                "anomaly_penalty": row["anomaly_penalty"],
                "contributions": day_rows.drop(columns=["release", "day"]).sort_values(
                    ["kpi_score", "service", "kpi"]
                ),
            }
        )
    return scores


def build_retrospective(
    release: Release,
    *,
    regression: dict[str, Any],
    health: pd.DataFrame,
    contributions: pd.DataFrame,
    anomalies: pd.DataFrame,
    recommendations: list[dict[str, Any]],
    action_items: list[dict[str, Any]],
    generated_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The retrospective's data model (JSON-ready)."""
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    scores = health_scores(health, contributions)
    later_days = [s["score"] for s in scores if s["day"] > 0]
    lowest = min((s for s in scores if s["day"] > 0), key=lambda s: s["score"], default=None)
    ordered_anomalies = (
        anomalies.sort_values(["day", "start"])[list(ANOMALY_FIELDS)] if len(anomalies) else []
    )
    degradations = regression.get("degradations", [])
    model = {
        "schema_version": SCHEMA_VERSION,
        "generator": f"tars-observability {__version__}",
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "release": {
            "name": release.name,
            "ga_date": release.ga_date.isoformat(),
            "timezone": release.timezone,
            "window_days": release.window_days,
            "previous_release": release.previous_release,
        },
        "window": {
            "days": window_days(release),
            "days_analysed": regression.get("days_analysed", []),
            "complete": regression.get("complete", False),
        },
        "summary": {
            "average_health": round(sum(later_days) / len(later_days), 1) if later_days else None,
            "lowest_health": ({"day": lowest["day"], "score": lowest["score"]} if lowest else None),
            "successes": len(regression.get("successes", [])),
            "degradations": len(degradations),
            "degradations_by_severity": {
                severity: sum(1 for d in degradations if d.get("severity") == severity)
                for severity in ("critical", "high", "medium", "low")
            },
            "unexpected_drifts": len(regression.get("unexpected_drifts", [])),
            "anomalies": len(anomalies),
            "recommendations": len(recommendations),
        },
        "sections": list(SECTIONS),
        "health_scores": scores,
        "successes": regression.get("successes", []),
        "degradations": degradations,
        "unexpected_drifts": regression.get("unexpected_drifts", []),
        "anomalies": ordered_anomalies,
        "cost_analysis": regression.get("cost_analysis", {}),
        "slo_compliance": regression.get("slo_compliance", []),
        "recommendations": recommendations,
        "action_items": action_items,
    }
    return to_jsonable(model)


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _signed(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tars_pipeline", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown: every value from a source goes through the md filter
    )
    env.filters["md"] = escape.markdown
    env.filters["num"] = _number
    env.filters["signed"] = _signed
    return env


def render_markdown(model: dict[str, Any]) -> str:
    return _environment().get_template("retrospective.md.j2").render(r=model)
