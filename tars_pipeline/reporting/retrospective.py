"""The Day-7 retrospective: one data model, rendered to Markdown, JSON and HTML.

`build_retrospective` assembles the model (plain JSON-ready dict whose keys are the contract
in SPEC §4, checked by `schemas/retrospective.schema.json`); the Markdown template and the
HTML report (`reporting/html.py`) render the same dict, so they never disagree. What the
charts plot (each KPI's daily values against its baseline band, the SLO burn-down, cost per
day by resource type, the comparison with the previous release) is in the model too, so a
dashboard reading the JSON can draw the same pictures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
import pandas as pd

from tars_pipeline import __version__
from tars_pipeline.config import KpiDefinition, Release
from tars_pipeline.judge.data_quality import week_data_quality
from tars_pipeline.judge.direction import adverse_sign
from tars_pipeline.judge.formatting import finite_or_none, format_figure, format_signed
from tars_pipeline.judge.verdict import release_verdict
from tars_pipeline.reporting import escape
from tars_pipeline.reporting.jsonio import to_jsonable
from tars_pipeline.reporting.outputs import SCHEMA_VERSION, release_window_fields
from tars_pipeline.reporting.why import why_lines

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
    "direction", "severity", "points", "alarm_ts",
)  # fmt: skip


def reference_week_record(release: Release, drift: pd.DataFrame | None) -> dict[str, Any]:
    """Which days were compared with a pre-GA reference week (drift rows whose
    baseline_method ends in "+weekday"), where that week came from, and a sentence saying so."""
    days: list[int] = []
    if drift is not None and len(drift) and "baseline_method" in drift.columns:
        method = drift["baseline_method"].astype(str)
        with_factor = drift[method.str.endswith("+weekday") & (drift["day"] >= 1)]
        days = sorted(int(day) for day in with_factor["day"].unique())
    start = release.reference_start
    source = "reference_date" if release.reference_date is not None else "auto"
    if days and start is not None:
        origin = (
            "the configured reference_date"
            if source == "reference_date"
            else "the week before GA, found in the source"
        )
        note = (
            f"days {', '.join(map(str, days))} compared with the reference week from "
            f"{start.isoformat()} ({origin}): weekday swings it shows are not drift"
        )
    else:
        note = (
            "no pre-GA reference week in the source: weekday swings (weekends) are judged "
            "against GA day alone"
        )
    return {
        "source": source if days else None,
        "first_date": start.isoformat() if days and start else None,
        "days": days,
        "note": note,
    }


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
    drift: pd.DataFrame | None = None,
    kpis: Mapping[str, KpiDefinition] | None = None,
    health_bands: Mapping[str, float] | None = None,
    cost_daily: pd.DataFrame | None = None,
    comparison: dict[str, Any] | None = None,
    coverage: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The retrospective's data model (JSON-ready).

    The optional inputs feed the charts and stay optional so the model can be built from a
    regression document alone (older stores, tests): `drift` (every day's drift rows) and
    `kpis` give `kpi_daily`; `health_bands` the score bands; `cost_daily` the per-day cost
    by resource type; `comparison` comes from `compare_releases`; `coverage` (every day's
    coverage rows) gives `data_quality`.
    """
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    scores = health_scores(health, contributions)
    later_days = [s["score"] for s in scores if s["day"] > 0]
    lowest = min((s for s in scores if s["day"] > 0), key=lambda s: s["score"], default=None)
    ordered_anomalies = (
        anomalies.sort_values(["day", "start"])[list(ANOMALY_FIELDS)] if len(anomalies) else []
    )
    degradations = [
        {**d, "why": why_lines(d, str(d.get("unit") or ""))}
        for d in regression.get("degradations", [])
    ]
    drifts = [
        {**u, "why": why_lines(u, str(u.get("unit") or ""))}
        for u in regression.get("unexpected_drifts", [])
    ]
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
            **release_window_fields(release),
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
            "incidents": len(regression.get("incidents", [])),
        },
        "sections": list(SECTIONS),
        "verdict": regression.get("verdict")
        or release_verdict(degradations, regression.get("slo_compliance", [])).as_record(),
        "health_scores": scores,
        "successes": regression.get("successes", []),
        "degradations": degradations,
        "unexpected_drifts": drifts,
        "anomalies": ordered_anomalies,
        "cost_analysis": with_daily_cost_by_resource(
            regression.get("cost_analysis", {}), cost_daily
        ),
        "slo_compliance": [with_burn_down(slo) for slo in regression.get("slo_compliance", [])],
        "recommendations": recommendations,
        "action_items": action_items,
        "health_bands": band_edges(health_bands or DEFAULT_HEALTH_BANDS),
        "kpi_daily": kpi_daily_series(
            drift,
            kpis or {},
            anomalies,
            degradations=degradations,
            unexpected_drifts=regression.get("unexpected_drifts", []),
        )
        if drift is not None
        else [],
        "comparison": comparison,
        "data_quality": {
            **week_data_quality(coverage),
            "reference_week": reference_week_record(release, drift),
            "insufficient_traffic": [
                {"service": slo.get("service"), "slo": slo.get("slo"), "day_count": count}
                for slo in regression.get("slo_compliance", [])
                if (count := slo.get("days_insufficient_traffic"))
            ],
        },
        "incidents": regression.get("incidents", []),
        "annotations": regression.get("annotations", []),
        "sensitivity": regression.get("sensitivity", []),
    }
    if regression.get("feedback") is not None:
        model["feedback"] = regression["feedback"]
    _mark_charts(model["kpi_daily"], [*degradations, *drifts], release)
    return to_jsonable(model)


def day_position(release: Release, moment: Any) -> float | None:
    """A moment on the charts' day axis: day d is drawn at d and spans d − ½ .. d + ½."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        return None
    for day in range(0, release.window_days + 1):
        start, end = release.day_bounds(day)
        first, last = pd.Timestamp(start), pd.Timestamp(end)
        if first <= stamp < last:
            return round(day - 0.5 + (stamp - first) / (last - first), 4)
    return None


def _mark_charts(
    series: list[dict[str, Any]], findings: Sequence[Mapping[str, Any]], release: Release
) -> None:
    """Each charted series of a finding gets `markers`: its onset and the changes named on
    it, as positions on the day axis (the HTML chart draws them)."""
    by_key = {(s["service"], s["kpi"]): s for s in series}
    for finding in findings:
        chart = by_key.get((finding.get("service"), finding.get("kpi")))
        onset = finding.get("onset")
        if chart is None or not isinstance(onset, Mapping) or "markers" in chart:
            continue
        chart["markers"] = {
            "onset": day_position(release, onset.get("onset")),
            "onset_label": onset.get("local_time"),
            "annotations": [
                {"x": x, "title": cause.get("title"), "kind": cause.get("kind")}
                for cause in finding.get("annotations") or []
                if (x := day_position(release, cause.get("ts"))) is not None
            ],
        }


# ---------------------------------------------------------------------------------------
# What the charts plot. Each helper adds data, never changes an existing key's meaning.

DEFAULT_HEALTH_BANDS: dict[str, float] = {
    "healthy": 90.0,
    "watch": 75.0,
    "degraded": 50.0,
    "critical": 0.0,
}

# A series' status, worst first: the order the report lists and charts them in.
SERIES_STATUSES: tuple[str, ...] = ("degraded", "drifted", "flagged", "anomalous", "ok")


def band_edges(bands: Mapping[str, float]) -> list[dict[str, Any]]:
    """Health bands as [{band, min_score, max_score}], best first, so a chart can shade them
    and a reader of the JSON knows which score range each band name covers."""
    ordered = sorted(bands.items(), key=lambda item: -item[1])
    edges = []
    upper = 100.0
    for name, lower in ordered:
        edges.append({"band": name, "min_score": float(lower), "max_score": upper})
        upper = float(lower)
    return edges


def kpi_daily_series(
    drift: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    anomalies: pd.DataFrame,
    *,
    degradations: Sequence[Mapping[str, Any]] = (),
    unexpected_drifts: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Each service × KPI's daily statistic against its GA-day baseline band.

    The band is baseline ± threshold_pct % of |baseline|: a day outside it is exactly a
    day `compute_drift` flagged. Where the baseline is ~0 (relative drift undefined) there
    is no band (`band` None) and the series says so with `relative` False.

    `status` is the worst of: degraded (a regression), drifted (an unexpected drift),
    flagged (outside the band on some day after GA day), anomalous (anomaly events only),
    ok. Series come worst status first, then by their largest |drift|.
    """
    if drift is None or drift.empty:
        return []
    degraded = {(d["service"], d["kpi"]) for d in degradations}
    drifted = {(u["service"], u["kpi"]) for u in unexpected_drifts}
    anomaly_counts: dict[tuple[str, str, int], int] = {}
    if anomalies is not None and len(anomalies):
        counts = anomalies.groupby(["service", "kpi", "day"]).size()
        anomaly_counts = {(str(s), str(k), int(d)): int(n) for (s, k, d), n in counts.items()}
    series = []
    ordered = drift.sort_values("day")
    # One conversion of the table, then each series' rows by position (a frame per series
    # cost ~2 ms: a second for a week of 500 series).
    records = ordered.to_dict("records")
    # `relative` is stored per day but depends only on the baseline: all or none.
    all_relative = ordered.groupby(["service", "kpi"])["relative"].all()
    for (service, kpi_name), positions in ordered.groupby(["service", "kpi"]).indices.items():
        rows = [records[position] for position in positions]
        kpi = kpis.get(str(kpi_name))
        first = rows[0]
        baseline = finite_or_none(first["baseline_value"])
        threshold_pct = finite_or_none(first["threshold_pct"])
        relative = bool(all_relative[(service, kpi_name)]) and baseline is not None
        band = None
        if relative and baseline is not None and threshold_pct is not None:
            half_width = abs(baseline) * threshold_pct / 100.0
            band = {"lower": baseline - half_width, "upper": baseline + half_width}
        days = []
        for row in rows:
            day = int(row["day"])
            days.append(
                {
                    "day": day,
                    "value": finite_or_none(row["observed_value"]),
                    "drift_pct": finite_or_none(row["drift_pct"]),
                    "flagged": bool(row["flagged"]),
                    "anomalies": anomaly_counts.get((str(service), str(kpi_name), day), 0),
                }
            )
        key = (service, kpi_name)
        if key in degraded:
            status = "degraded"
        elif key in drifted:
            status = "drifted"
        elif any(d["flagged"] for d in days if d["day"] > 0):
            status = "flagged"
        elif any(d["anomalies"] for d in days):
            status = "anomalous"
        else:
            status = "ok"
        drifts = [abs(d["drift_pct"]) for d in days if d["drift_pct"] is not None]
        series.append(
            {
                "service": service,
                "kpi": kpi_name,
                "kpi_title": kpi.title if kpi else str(kpi_name),
                "unit": kpi.unit if kpi else "",
                "kind": kpi.kind if kpi else None,
                "direction": kpi.direction if kpi else None,
                "statistic": first["statistic"],
                "threshold_pct": threshold_pct,
                "baseline": baseline,
                "relative": relative,
                "band": band,
                "status": status,
                "max_abs_drift_pct": max(drifts) if drifts else None,
                "days": days,
            }
        )
    return sorted(
        series,
        key=lambda s: (
            SERIES_STATUSES.index(s["status"]),
            -(s["max_abs_drift_pct"] or 0.0),
            s["service"],
            s["kpi"],
        ),
    )


def with_burn_down(slo: Mapping[str, Any]) -> dict[str, Any]:
    """An SLO summary plus `burn_down`: the share of the period's error budget consumed by
    the end of each day, cumulative, ending at the window's `budget_consumed_pct`.

    Each day's share is weighted by its samples exactly as `slo_window_summary` weights
    the window, so the last point equals `budget_consumed_pct`:

        consumed(≤ d) = Σ_{i ≤ d} bad_i · n_i / (Σ_i n_i · budget) × window_days / period_days × 100

    `sustainable_remaining_pct` is where a burn rate of exactly 1 would leave the budget
    (the reference line of a burn-down chart).
    """
    entry = dict(slo)
    by_day = sorted(slo.get("by_day", []), key=lambda d: d["day"])
    budget_pct = slo.get("error_budget_pct")
    period_days = slo.get("period_days") or 30
    window_days = slo.get("window_days") or len(by_day) or 1
    counted = [
        (d["day"], d["bad_fraction_pct"], d.get("sample_count") or 0)
        for d in by_day
        if d.get("bad_fraction_pct") is not None and (d.get("sample_count") or 0) > 0
    ]
    total = sum(count for _, _, count in counted)
    burn_down = []
    if budget_pct and total:
        consumed = 0.0
        first_day = by_day[0]["day"] if by_day else 1
        for day, bad_pct, count in counted:
            consumed += bad_pct / budget_pct * count / total * window_days / period_days * 100.0
            elapsed = day - first_day + 1
            burn_down.append(
                {
                    "day": int(day),
                    "budget_consumed_pct": consumed,
                    "budget_remaining_pct": max(0.0, 100.0 - consumed),
                    "sustainable_remaining_pct": max(0.0, 100.0 - elapsed / period_days * 100.0),
                }
            )
    entry["burn_down"] = burn_down
    return entry


def with_daily_cost_by_resource(
    cost: Mapping[str, Any], cost_daily: pd.DataFrame | None
) -> dict[str, Any]:
    """`cost_analysis` plus a `by_resource` mapping on each `by_day` entry (USD per
    resource type that day), so the cost chart can stack a day's bill by resource."""
    entry = dict(cost)
    if not cost or cost_daily is None or cost_daily.empty:
        return entry
    per_day = cost_daily.groupby(["day", "resource_type"])["cost_usd"].sum()
    entry["by_day"] = [
        {
            **day,
            "by_resource": {
                str(resource): float(value)
                for (day_number, resource), value in per_day.items()
                if int(day_number) == int(day["day"])
            },
        }
        for day in cost.get("by_day", [])
    ]
    return entry


@dataclass(frozen=True)
class ReleaseWeek:
    """What the release comparison needs from one release's stored week."""

    name: str
    health: pd.DataFrame  # day, score, band
    daily_stats: pd.DataFrame  # day, service, kpi, mean, p50, p95, p99, ...
    cost_daily: pd.DataFrame  # day, service, resource_type, cost_usd


def _window_cost_average(cost_daily: pd.DataFrame) -> float | None:
    window = cost_daily[cost_daily["day"] >= 1] if len(cost_daily) else cost_daily
    days = int(window["day"].nunique()) if len(window) else 0
    return float(window["cost_usd"].sum()) / days if days else None


def _window_kpi_values(week: ReleaseWeek, kpis: Mapping[str, KpiDefinition]) -> dict:
    """Mean over days 1..N of each series' judged statistic (the one drift compares)."""
    stats = week.daily_stats
    stats = stats[stats["day"] >= 1] if len(stats) else stats
    values: dict[tuple[str, str], float] = {}
    for (service, kpi_name), rows in stats.groupby(["service", "kpi"]):
        kpi = kpis.get(str(kpi_name))
        column = kpi.statistic if kpi is not None and kpi.statistic in rows else "mean"
        finite = [v for v in rows[column].tolist() if finite_or_none(v) is not None]
        if finite:
            values[(str(service), str(kpi_name))] = sum(finite) / len(finite)
    return values


def compare_releases(
    current: ReleaseWeek,
    previous: ReleaseWeek | None,
    kpis: Mapping[str, KpiDefinition],
    *,
    previous_name: str,
) -> dict[str, Any]:
    """This release's week against the previous release's, from the store.

    Per day: both health scores. Per service × KPI: the window mean (days 1..N) of the
    statistic drift judges, change_pct = (current − previous) / |previous| × 100 (None
    when the previous value is ~0) and whether the change is adverse for the KPI's
    direction beyond its drift threshold. Cost: both daily averages. When the previous
    release has nothing stored, `available` is False and the rest is left out.
    """
    if previous is None or previous.health.empty:
        return {"previous_release": previous_name, "available": False}
    current_health = {int(r.day): float(r.score) for r in current.health.itertuples()}
    previous_health = {int(r.day): float(r.score) for r in previous.health.itertuples()}
    health = [
        {"day": day, "current": current_health.get(day), "previous": previous_health.get(day)}
        for day in sorted(set(current_health) | set(previous_health))
    ]

    def _average(scores: dict[int, float]) -> float | None:
        later = [score for day, score in scores.items() if day > 0]
        return round(sum(later) / len(later), 1) if later else None

    now, before = _window_kpi_values(current, kpis), _window_kpi_values(previous, kpis)
    kpi_rows = []
    for service, kpi_name in sorted(set(now) & set(before)):
        kpi = kpis.get(kpi_name)
        value, old = now[(service, kpi_name)], before[(service, kpi_name)]
        near_zero = kpi.near_zero if kpi is not None else 1e-9
        change = (value - old) / abs(old) * 100.0 if abs(old) >= near_zero and old else None
        direction = kpi.direction if kpi is not None else "neutral"
        threshold = kpi.threshold_pct if kpi is not None else 10.0
        adverse = change is not None and adverse_sign(direction) * change >= threshold
        kpi_rows.append(
            {
                "service": service,
                "kpi": kpi_name,
                "kpi_title": kpi.title if kpi is not None else kpi_name,
                "unit": kpi.unit if kpi is not None else "",
                "kind": kpi.kind if kpi is not None else None,
                "direction": direction,
                "current": value,
                "previous": old,
                "change_pct": change,
                "threshold_pct": threshold,
                "adverse": bool(adverse),
            }
        )
    current_cost, previous_cost = (
        _window_cost_average(current.cost_daily),
        _window_cost_average(previous.cost_daily),
    )
    cost_change = (
        (current_cost - previous_cost) / abs(previous_cost) * 100.0
        if current_cost is not None and previous_cost
        else None
    )
    return {
        "previous_release": previous_name,
        "available": True,
        "average_health": {
            "current": _average(current_health),
            "previous": _average(previous_health),
        },
        "health": health,
        "cost_daily_average": {
            "current": current_cost,
            "previous": previous_cost,
            "change_pct": cost_change,
        },
        "kpis": sorted(
            kpi_rows,
            key=lambda row: (not row["adverse"], -abs(row["change_pct"] or 0.0)),
        ),
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tars_pipeline", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown: every value from a source goes through the md filter
    )
    env.filters["md"] = escape.markdown_text  # escapes only what Markdown would read
    env.filters["num"] = format_figure
    env.filters["signed"] = format_signed
    return env


def render_markdown(model: dict[str, Any]) -> str:
    return _environment().get_template("retrospective.md.j2").render(r=model)
