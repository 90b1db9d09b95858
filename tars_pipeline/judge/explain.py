"""Every English sentence of the judgement, in one place shared by all renderers.

The judge's steps (`degradations`, `drifts`, `successes`) return typed results that carry
numbers only; this module turns them into the sentences the JSON records, the Markdown and
HTML retrospective and the notifications show. Numbers are written by `formatting`.

To reword a finding, change it here: no step builds a sentence of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tars_pipeline.config import KpiDefinition
from tars_pipeline.judge.formatting import (
    format_number,
    format_p_value,
    format_pct,
    format_with_unit,
)
from tars_pipeline.judge.severity import Severity

if TYPE_CHECKING:  # the steps import this module; their types are only annotations here
    from tars_pipeline.judge.degradations import Degradation
    from tars_pipeline.judge.drifts import Cause, UnexpectedDrift


# --- names ------------------------------------------------------------------------------


def title_in_sentence(title: str) -> str:
    """A title as it reads mid-sentence: 'Latency p99' → 'latency p99', but 'CPU
    utilisation' keeps its acronym (a second capital letter says so)."""
    if len(title) > 1 and title[1].islower():
        return title[0].lower() + title[1:]
    return title


def kpi_label(kpi: KpiDefinition | None, name: str) -> str:
    """The KPI's title in a sentence: 'latency p99', 'CPU utilisation', 'throughput'."""
    return title_in_sentence(kpi.title if kpi is not None else name.replace("_", " "))


def capitalised(text: str) -> str:
    """The first letter upper-cased, the rest untouched (unlike str.capitalize)."""
    return text[0].upper() + text[1:]


# --- degradations -----------------------------------------------------------------------


# One sentence per `severity.severity_of` rule; `value` is the rule's number, if it has one.
SEVERITY_REASONS: dict[str, str] = {
    "baseline_near_zero": "baseline ~0, relative drift undefined → {severity}",
    "drift_multiple": "adverse drift {value:.1f}× threshold → {severity}",
    "small_effect": "{value} effect size → {severity}",
    "well_inside_slo": "well inside the SLO (utilisation ≤ {value:g}) → at most {severity}",
    "slo_breached": "SLO breached on a degraded day → at least {severity}",
    "budget_exhausted": "SLO error budget exhausted → {severity}",
}


def severity_reasons(severity: Severity) -> list[str]:
    """One line per rule that fired, in the order `severity.severity_of` applied them."""
    return [
        SEVERITY_REASONS[rule.rule].format(value=rule.value, severity=rule.severity)
        for rule in severity.rules
    ]


def degradation(finding: Degradation) -> str:
    """What degraded, by how much against its threshold, the rank test's evidence and the
    SLO: 'Latency p99 on api-gateway rose from 150 ms to 180 ms on day 2 (+20 %), 2.0× its
    10 % degradation threshold; Mann-Whitney U p < 1e-16 (significant at 0.01), ...'."""
    unit = finding.kpi.unit
    label = capitalised(kpi_label(finding.kpi, finding.kpi.name))
    baseline, observed = finding.baseline, finding.observed
    verb = "rose" if (observed or 0) >= (baseline or 0) else "fell"
    values = f"from {format_with_unit(baseline, unit)} to {format_with_unit(observed, unit)}"
    multiple = finding.threshold_multiple
    if multiple is not None:
        size = (
            f"({format_pct(finding.change_pct)}), {multiple:.1f}× its "
            f"{finding.threshold_pct:g} % degradation threshold"
        )
    else:
        size = (
            f"(baseline ~0, so no percentage: absolute change "
            f"{format_number(finding.abs_change)} {unit})"
        )
    comparison = finding.comparison
    effect = f"Cliff's delta {comparison.effect_size:+.2f} ({comparison.effect_magnitude})"
    if comparison.zero_heavy:
        effect = (
            f"Cliff's delta {comparison.effect_size:+.2f}, {comparison.untied_effect_size:+.2f} "
            f"among untied pairs ({comparison.effect_magnitude}); non-zero in "
            f"{format_number(comparison.nonzero_observed_pct)} % of samples vs "
            f"{format_number(comparison.nonzero_baseline_pct)} % on GA day"
        )
    test = (
        f"Mann-Whitney U {format_p_value(comparison.p_value)} "
        f"(significant at {finding.p_threshold:g}), {effect}"
    )
    if comparison.test == "poisson_rate":
        test = (
            f"rate test on request counts {format_p_value(comparison.p_value)} "
            f"(significant at {finding.p_threshold:g}): "
            f"{format_number(comparison.observed_errors)} errors in "
            f"{format_number(comparison.observed_requests)} requests vs "
            f"{format_number(comparison.baseline_errors)} in "
            f"{format_number(comparison.baseline_requests)} on GA day"
        )
    factor = finding.weekday_factor
    if factor is not None and abs(factor - 1.0) > 1e-12:
        test += f"; baseline × weekday factor {factor:.3f} from the reference week"
    slo = ""
    impact = finding.worst_slo
    if impact is not None and impact.slo is not None:
        utilisation = "n/a" if impact.utilisation is None else f"{impact.utilisation:.2f}"
        state = "breached" if impact.breached else "met"
        slo = f"; SLO {impact.slo} {state}, utilisation {utilisation}"
    return (
        f"{label} on {finding.service} {verb} {values} on day {finding.worst_day} {size}; "
        f"{test}{slo}."
    )


# --- unexpected drifts ------------------------------------------------------------------


def cause(lead: Cause) -> str:
    """'throughput up 12.0 %, increasing (r = 1.00)'."""
    moved = "up" if lead.change_pct > 0 else "down"
    trend_note = f", {lead.trend}" if lead.trend != "stable" else ""
    return (
        f"{kpi_label(lead.kpi, lead.kpi.name)} {moved} {abs(lead.change_pct):.1f} %"
        f"{trend_note} (r = {lead.r:.2f})"
    )


def unexpected_drift(drift: UnexpectedDrift) -> str:
    """How far it moved, how (trend, with the test behind the word), why it is not a
    regression, and what moved with it."""
    kpi, trend = drift.kpi, drift.trend
    label = capitalised(kpi_label(kpi, kpi.name))
    values = f"{format_number(drift.baseline)} → {format_with_unit(drift.observed, kpi.unit)}"
    low, high = drift.range_pct
    moving = trend.trend in ("increasing", "decreasing")
    if trend.trend == "volatile":
        how = (
            f"fluctuated between {format_pct(low)} and {format_pct(high)} (day-to-day spread "
            f"{format_pct(trend.spread_pct, signed=False)})"
        )
    elif moving and trend.outcome == "tested":
        how = (
            f"is {trend.trend} (Theil-Sen {trend.slope_pct_per_day:+.1f} %/day, "
            f"Kendall p = {trend.p_value:.2g})"
        )
    elif moving:
        how = f"is {trend.trend} (too few days for a trend test: first-to-last move)"
    else:
        how = "held that level"
    change = format_pct(drift.change_pct)
    if moving:
        move = f"drifted {change} ({values}) by day {drift.day_of_max}"
    else:
        move = f"peaked at {change} ({values}) on day {drift.day_of_max}"
    if kpi.direction == "neutral":
        verdict = "a neutral KPI: worth explaining, never a regression"
    else:
        verdict = (
            f"inside the {kpi.threshold_pct:g}-{drift.watch_band_max_pct:g} % watch band, "
            "not a regression"
        )
    sentence = f"{label} on {drift.service} {move} and {how}; {verdict}"
    if drift.causes:
        sentence += "; moves with " + ", ".join(cause(lead) for lead in drift.causes[:3])
    return sentence + "."


# --- successes --------------------------------------------------------------------------


def slo_success(
    *,
    kpi: KpiDefinition | None,
    kpi_name: str,
    service: str | None,
    sli_kind: str | None,
    objective: float | None,
    sli_pct: float,
    target_pct: float,
    kpi_mean: float | None,
) -> str:
    """'api-gateway: Maintained 99.950 % availability (target 99.9 %)'; a threshold SLI
    says the objective, an error-rate SLO the rate it kept."""
    label = kpi_label(kpi, kpi_name)
    unit = kpi.unit if kpi is not None else ""
    target = f"(target {target_pct:g} %)"
    if sli_kind == "threshold" and objective is not None:
        side = "≥" if kpi is not None and kpi.direction == "higher_is_better" else "≤"
        description = (
            f"Kept {label} {side} {format_with_unit(objective, unit)} in {sli_pct:.3f} % "
            f"of samples {target}"
        )
    elif kpi is not None and kpi.direction == "lower_is_better":
        mean = (
            f"Kept {label} at {format_with_unit(kpi_mean, unit)} on average: " if kpi_mean else ""
        )
        start = "maintained" if mean else "Maintained"
        description = f"{mean}{start} {sli_pct:.3f} % good events {target}"
    else:
        description = f"Maintained {sli_pct:.3f} % {label} {target}"
    return f"{service}: {description}" if service else description


def cost_success(
    *, daily_average: float, change_pct: float, ga_day_cost: float, max_pct: float
) -> str:
    """'Cost stability: $305/day average, 1.7 % above GA day ($300; within ±10 %)'."""
    direction = "above" if change_pct >= 0 else "below"
    return (
        f"Cost stability: ${daily_average:,.0f}/day average, {abs(change_pct):.1f} % "
        f"{direction} GA day (${ga_day_cost:,.0f}; within ±{max_pct:g} %)"
    )


def stability_success(
    kpi: KpiDefinition, service: str, baseline: float, mean: float, worst_adverse_pct: float
) -> str:
    """'Held latency p50 on api-gateway within 10 % of GA day every day (...)'."""
    return (
        f"Held {kpi_label(kpi, kpi.name)} on {service} within {kpi.threshold_pct:g} % "
        f"of GA day every day ({format_with_unit(baseline, kpi.unit)} → "
        f"{format_with_unit(mean, kpi.unit)} average; worst adverse drift "
        f"{worst_adverse_pct:.1f} %)"
    )
