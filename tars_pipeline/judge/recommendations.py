"""Recommendations for the next release and the action items that track them.

SPEC §3 "Recommendations": one recommendation per finding, each P0-P3, actionable, and
traceable to its evidence (the numbers of the finding it came from):

- P0: a critical degradation, or an SLO whose error budget is exhausted;
- P1: a high degradation, or an SLO burning faster than its budget allows (burn rate > 1);
- P2: a medium degradation, an unexpected drift, or a burn-rate page that would have fired;
- P3: cost (the projected monthly bill and each optimisation hint) and hygiene (low
  degradations, ticket-level burn-rate alerts).

One incident (`incidents.build_incidents`: an error-rate step that is also an availability
dip and an SLO burn; a latency step on p50, p95 and p99) is one item, at the most urgent
priority of the findings it merges (`merge_by_incident`).

Within a priority: severity first, then impact (adverse drift %, |drift|, $ saving).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tars_pipeline.judge.explain import title_in_sentence
from tars_pipeline.judge.formatting import (
    finite_or_none,
    format_number,
    format_pct,
    format_with_unit,
)
from tars_pipeline.judge.severity import SEVERITY_RANK

PRIORITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3")
PRIORITY_BY_SEVERITY: dict[str, str] = {
    "critical": "P0",
    "high": "P1",
    "medium": "P2",
    "low": "P3",
}
DUE_BY_PRIORITY: dict[str, str] = {
    "P0": "immediate",
    "P1": "24-48h",
    "P2": "within sprint",
    "P3": "backlog",
}


def _label(record: Mapping) -> str:
    return title_in_sentence(
        str(record.get("kpi_title") or str(record.get("kpi", "")).replace("_", " "))
    )


def _recommendation(
    priority: str,
    title: str,
    action: str,
    evidence: Mapping | list,
    category: str,
    *,
    severity: str | None = None,
    impact: float = 0.0,
) -> dict:
    return {
        "priority": priority,
        "title": title,
        "action": action,
        "evidence": evidence,
        "category": category,
        "severity": severity,
        "impact": impact,
    }


# ---------------------------------------------------------------------------------------
# One finding → one recommendation
# ---------------------------------------------------------------------------------------


def _degradation_action(degradation: Mapping) -> str:
    service = degradation["service"]
    kpi = str(degradation["kpi"])
    first = degradation["day_first"]
    if degradation.get("status") == "resolved":
        return (
            f"It recovered by the last day: find what changed on {service} on day {first} "
            f"(deploys, config, dependencies) and add a regression check so it cannot return."
        )
    if "latency" in kpi:
        return (
            f"Compare traces of {service} on day {degradation['worst_day']} with GA day, fix the "
            f"slow path (dependency, query, lock), and gate releases on this latency."
        )
    if "error" in kpi or "availability" in kpi:
        return (
            f"Break the errors of {service} since day {first} down by endpoint and status code, "
            f"fix the top cause, and alert on the SLO burn rate."
        )
    if degradation.get("kind") == "resource":
        return (
            f"Profile {service} (heap, CPU) against GA day and fix the growth, or raise limits "
            f"and capacity deliberately."
        )
    return f"Find what changed on {service} on day {first} and restore the GA-day level."


def _degradation_recommendation(degradation: Mapping) -> dict:
    severity = str(degradation["severity"])
    priority = PRIORITY_BY_SEVERITY.get(severity, "P3")
    if degradation.get("slo_exhausted"):
        priority = "P0"
    unit = str(degradation.get("unit") or "")
    change = finite_or_none(degradation.get("change_pct"))
    values = (
        f"{format_number(finite_or_none(degradation.get('baseline')))} → "
        f"{format_with_unit(finite_or_none(degradation.get('observed')), unit)}"
    )
    size = format_pct(change) if change is not None else "from a ~0 baseline"
    resolved = degradation.get("status") == "resolved"
    verb = "Root-cause the resolved" if resolved else "Fix"
    title = (
        f"{verb} {_label(degradation)} regression on {degradation['service']} "
        f"({values}, {size}, first seen day {degradation['day_first']})"
    )
    evidence = {
        "kpi": degradation["kpi"],
        "service": degradation["service"],
        "day": degradation["day_first"],
        "worst_day": degradation.get("worst_day"),
        "baseline": finite_or_none(degradation.get("baseline")),
        "observed": finite_or_none(degradation.get("observed")),
        "change_pct": change,
        "p_value": finite_or_none(degradation.get("p_value")),
        "effect_size": finite_or_none(degradation.get("effect_size")),
        "severity": severity,
        "status": degradation.get("status"),
        "slo": degradation.get("slo"),
        "slo_utilisation": finite_or_none(degradation.get("slo_utilisation")),
    }
    return _recommendation(
        priority,
        title,
        _degradation_action(degradation),
        evidence,
        "degradation",
        severity=severity,
        impact=finite_or_none(degradation.get("adverse_drift_pct")) or 0.0,
    )


def _drift_recommendation(drift: Mapping) -> dict:
    service = drift["service"]
    unit = str(drift.get("unit") or "")
    change = float(drift["change_pct"])
    trend = drift.get("trend", "stable")
    if trend == "volatile":
        low, high = drift.get("range_pct") or [change, change]
        title = (
            f"Investigate volatile {_label(drift)} on {service} "
            f"(±{max(abs(low), abs(high)):.0f} %, {format_pct(low)} to {format_pct(high)})"
        )
    else:
        values = (
            f"{format_number(finite_or_none(drift.get('baseline')))} → "
            f"{format_with_unit(finite_or_none(drift.get('observed')), unit)}"
        )
        title = (
            f"Investigate {_label(drift)} drift on {service} ({values}, {format_pct(change)}, "
            f"{trend})"
        )
    causes = list(drift.get("potential_causes") or [])
    if causes:
        action = (
            f"Check whether it follows {causes[0]}: if so, update the capacity plan for "
            f"{service}; if not, profile it and set a drift alert."
        )
    elif drift.get("direction") == "neutral":
        action = (
            f"Confirm why the load on {service} changed (clients, campaigns, "
            f"retries) and update its capacity plan."
        )
    elif trend == "volatile":
        action = (
            f"Correlate the swings on {service} with deploys, batch jobs and GC/cache "
            f"behaviour; set limits that absorb the peaks."
        )
    else:
        action = (
            f"Find what changed on {service} around day {drift.get('day_of_max')} and set a "
            f"drift alert before it reaches the regression threshold."
        )
    evidence = {
        "kpi": drift["kpi"],
        "service": service,
        "day": drift.get("day_of_max"),
        "baseline": finite_or_none(drift.get("baseline")),
        "observed": finite_or_none(drift.get("observed")),
        "change_pct": change,
        "trend": trend,
        "potential_causes": causes,
    }
    return _recommendation("P2", title, action, evidence, "unexpected_drift", impact=abs(change))


def _slo_recommendations(summary: Mapping) -> list[dict]:
    service = summary.get("service")
    slo = summary.get("slo")
    consumed = finite_or_none(summary.get("budget_consumed_pct")) or 0.0
    burn = finite_or_none(summary.get("burn_rate")) or 0.0
    days_left = finite_or_none(summary.get("days_to_exhaustion"))
    period = summary.get("period_days", 30)
    evidence = {
        "kpi": summary.get("kpi"),
        "service": service,
        "slo": slo,
        "target": finite_or_none(summary.get("target")),
        "budget_consumed_pct": consumed,
        "burn_rate": burn,
        "days_to_exhaustion": days_left,
    }
    out: list[dict] = []
    if summary.get("exhausted") or consumed >= 100.0:
        out.append(
            _recommendation(
                "P0",
                f"Stop the error-budget burn of SLO {slo} on {service} "
                f"({consumed:.0f} % of the {period}-day budget consumed)",
                "Freeze risky changes on this service until the burn rate is below 1, and fix "
                "the top contributor to bad events first.",
                evidence,
                "slo",
                severity="critical",
                impact=consumed,
            )
        )
    elif burn > 1.0:
        left = f", exhausted in {days_left:.0f} days" if days_left is not None else ""
        out.append(
            _recommendation(
                "P1",
                f"Reduce the error-budget burn of SLO {slo} on {service} "
                f"(burn rate {burn:.1f}×{left})",
                "Find the days and endpoints behind the bad events and fix them before the "
                "budget runs out.",
                evidence,
                "slo",
                severity="high",
                impact=consumed,
            )
        )
    alerts = list(summary.get("alerts_fired") or [])
    if alerts and not out:
        pages = [alert for alert in alerts if alert.get("severity") == "page"]
        shown = (pages or alerts)[0]
        out.append(
            _recommendation(
                "P2" if pages else "P3",
                f"Wire multi-window burn-rate alerts for SLO {slo} on {service} "
                f"(a {shown['burn_rate_threshold']:g}× {shown['severity']} over "
                f"{shown['long_window']}/{shown['short_window']} would have fired)",
                "Add the SRE Workbook burn-rate alerts (14.4×/6× pages, 1× ticket) for this SLO "
                "and review what burned the budget at the first firing.",
                {**evidence, "alerts_fired": alerts},
                "slo",
                impact=consumed,
            )
        )
    return out


def _cost_recommendations(cost: Mapping, growth_pct: float) -> list[dict]:
    out: list[dict] = []
    monthly = finite_or_none(cost.get("projected_monthly"))
    change = finite_or_none(cost.get("change_pct"))
    hints = list(cost.get("hints") or [])
    # A bill that moved by noise (+0.3 %) is no finding; one that grew past the growth
    # threshold, or has a hint with a saving, is.
    grew = change is not None and change >= growth_pct
    if monthly is not None and monthly > 0 and (grew or hints):
        growing = [
            f"{row['resource_type']} {format_pct(row['change_pct'])}"
            for row in cost.get("by_resource") or []
            if finite_or_none(row.get("change_pct")) is not None and row["change_pct"] > 0
        ]
        trend = f", {format_pct(change)} vs GA day" if change is not None else ""
        action = "Review the cost drivers"
        action += f" ({', '.join(growing[:3])})" if growing else ""
        action += " and apply the optimisation hints below; set a budget alert at this level."
        out.append(
            _recommendation(
                "P3",
                f"Optimise cost (projected ${monthly:,.0f}/month{trend})",
                action,
                {
                    "kpi": "cost",
                    "service": None,
                    "ga_day_cost": finite_or_none(cost.get("ga_day_cost")),
                    "daily_average": finite_or_none(cost.get("daily_average")),
                    "change_pct": change,
                    "projected_monthly": monthly,
                },
                "cost",
                impact=monthly,
            )
        )
    for hint in hints:
        saving = finite_or_none(hint.get("estimated_monthly_saving")) or 0.0
        out.append(
            _recommendation(
                "P3",
                f"{hint['title']} — saves ~${saving:,.0f}/month",
                str(hint.get("detail", "")),
                {
                    "kpi": "cost",
                    "service": hint.get("service"),
                    "resource_type": hint.get("resource_type"),
                    "estimated_monthly_saving": saving,
                },
                "cost",
                impact=saving,
            )
        )
    return out


# ---------------------------------------------------------------------------------------
# The list
# ---------------------------------------------------------------------------------------


def _sort_key(recommendation: Mapping) -> tuple:
    severity = recommendation.get("severity")
    return (
        PRIORITIES.index(recommendation["priority"]),
        SEVERITY_RANK.get(severity, len(SEVERITY_RANK)) if severity else len(SEVERITY_RANK),
        -float(recommendation.get("impact") or 0.0),
        recommendation["title"],
    )


def _in_incident(recommendation: Mapping, incident: Mapping) -> bool:
    """A degradation item of the incident's service, KPIs and first day, or an urgent
    (P0/P1) SLO item on one of its KPIs."""
    evidence = recommendation.get("evidence")
    if not isinstance(evidence, Mapping) or evidence.get("service") != incident["service"]:
        return False
    if evidence.get("kpi") not in incident["kpis"]:
        return False
    if recommendation["category"] == "degradation":
        return evidence.get("day") == incident["first_day"]
    return recommendation["category"] == "slo" and recommendation["priority"] in ("P0", "P1")


def merge_by_incident(recommendations: Sequence[dict], incidents: Sequence[Mapping]) -> list[dict]:
    """One item per incident (`incidents.build_incidents`): the degradation items of its
    KPIs and its urgent SLO items become one, titled by its leading KPI, at the most urgent
    priority among them, naming the others; its evidence gains `incident` (the id), `kpis`
    and `members` (each merged item's evidence). Items outside every incident stay."""
    merged = list(recommendations)
    for incident in incidents:
        if incident.get("kind") != "regression":
            continue
        group = [r for r in merged if _in_incident(r, incident)]
        if not group:
            continue
        group.sort(key=_sort_key)
        leading = [
            r
            for r in group
            if r["category"] == "degradation" and r["evidence"]["kpi"] == incident["leading_kpi"]
        ]
        degradation_items = [r for r in group if r["category"] == "degradation"]
        base = (leading or degradation_items or group)[0]
        others = [r for r in group if r is not base]
        also = [
            f"SLO {r['evidence'].get('slo')}" if r["category"] == "slo" else _label(r["evidence"])
            for r in others
        ]
        title = base["title"]
        if also:
            title += f"; one incident with {', '.join(dict.fromkeys(also))}"
        item = {
            **base,
            "priority": group[0]["priority"],
            "severity": group[0].get("severity") or base.get("severity"),
            "title": title,
            "impact": max(float(r.get("impact") or 0.0) for r in group),
            "evidence": {
                **base["evidence"],
                "incident": incident["id"],
                "kpis": list(incident["kpis"]),
                "members": [r["evidence"] for r in group],
            },
        }
        merged = [r for r in merged if not any(r is g for g in group)] + [item]
    return merged


def build_recommendations(
    degradations: Iterable[Mapping],
    unexpected_drifts: Iterable[Mapping],
    slo_summaries: Iterable[Mapping],
    cost: Mapping | None,
    *,
    limit: int = 10,
    cost_growth_pct: float = 10.0,
    incidents: Sequence[Mapping] = (),
) -> list[dict]:
    """The top `limit` recommendations, one per finding, most urgent first.

    Inputs are the records (`as_record()`) of `degradations.find_degradations` and
    `drifts.find_unexpected_drifts`, `slo.slo_window_summary` (plus a `service` key)
    and `cost.cost_analysis`. Each recommendation: priority (P0-P3), title (specific and
    actionable, with the numbers), action, evidence (kpi, service, day and the finding's
    numbers), category (degradation / slo / unexpected_drift / cost), severity, impact.
    The P3 "optimise cost" item appears when the window's daily average grew by at least
    `cost_growth_pct` (`CostConfig.growth_hint_pct`) over GA day, or when a hint has one.
    With `incidents`, the items of one incident are one item (`merge_by_incident`).
    """
    recommendations: list[dict] = []
    recommendations.extend(_degradation_recommendation(d) for d in degradations)
    for summary in slo_summaries:
        recommendations.extend(_slo_recommendations(summary))
    recommendations.extend(_drift_recommendation(d) for d in unexpected_drifts)
    if cost:
        recommendations.extend(_cost_recommendations(cost, cost_growth_pct))
    recommendations = merge_by_incident(recommendations, incidents)
    return sorted(recommendations, key=_sort_key)[:limit]


def build_action_items(recommendations: Sequence[Mapping]) -> list[dict]:
    """Checkbox lines for the retrospective, grouped by priority (P0 first).

    Each: priority, description (the recommendation's title), done (False), due
    (P0 immediate, P1 24-48h, P2 within sprint, P3 backlog), category.
    """
    ordered = sorted(recommendations, key=lambda r: PRIORITIES.index(r["priority"]))
    return [
        {
            "priority": recommendation["priority"],
            "description": recommendation["title"],
            "done": False,
            "due": DUE_BY_PRIORITY[recommendation["priority"]],
            "category": recommendation.get("category"),
        }
        for recommendation in ordered
    ]


def recommend(
    judgement: Mapping, *, limit: int = 10, cost_growth_pct: float = 10.0
) -> tuple[list[dict], list[dict]]:
    """The recommendations of a judged window (a regression summary: degradations,
    unexpected_drifts, slo_compliance, cost_analysis) and their action items."""
    recommendations = build_recommendations(
        judgement["degradations"],
        judgement["unexpected_drifts"],
        judgement["slo_compliance"],
        judgement["cost_analysis"],
        limit=limit,
        cost_growth_pct=cost_growth_pct,
        incidents=judgement.get("incidents") or (),
    )
    return recommendations, build_action_items(recommendations)
