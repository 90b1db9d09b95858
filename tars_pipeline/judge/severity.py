"""Classify a degradation: has it crossed its threshold, and how severe is it.

`crosses_threshold` is the pre-filter (a drift row moved the bad way by at least the
degradation threshold); `severity_of` grades a degradation rule by rule (SPEC §3
"Regression") and returns a `Severity` that lists each rule that fired with the number that
made it fire. The sentences for those rules are in `explain.severity_reasons`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from tars_pipeline.judge.formatting import finite_or_none

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}

# Severity from adverse drift as a multiple of the degradation threshold.
CRITICAL_MULTIPLE = 5.0
HIGH_MULTIPLE = 2.0
# The drift module flags at exactly the threshold; 150 → 165 ms is 9.999999999999998 %,
# and 180 / 150 − 1 is 0.19999999999999996: compare with the drift step's tolerance.
THRESHOLD_TOLERANCE = 1e-9


def crosses_threshold(row: Mapping, threshold_pct: float) -> bool:
    """The drift row moved the bad way by at least the degradation threshold.

    Relative rows: adverse_drift_pct ≥ threshold. Rows whose baseline is ~0 (`relative`
    False, no percentage exists): flagged by the drift step with a positive adverse change.
    """
    if bool(row["relative"]):
        adverse = finite_or_none(row["adverse_drift_pct"])
        return adverse is not None and adverse >= threshold_pct * (1 - THRESHOLD_TOLERANCE)
    adverse_change = finite_or_none(row.get("adverse_change"))
    moved_badly = adverse_change is None or adverse_change > 0
    return bool(row["flagged"]) and moved_badly


@dataclass(frozen=True)
class SloImpact:
    """The worst SLO on a KPI's service-day (several SLOs may watch one KPI)."""

    slo: str | None
    utilisation: float | None
    breached: bool
    exhausted: bool


def slo_impacts(slo_status: pd.DataFrame | None) -> dict[tuple[str, str, int], SloImpact]:
    """(service, kpi, day) → the SLO with the highest utilisation that day; breached and
    exhausted when any SLO on it is. A KPI-day without a row has no impact (no SLO)."""
    impacts: dict[tuple[str, str, int], SloImpact] = {}
    if slo_status is None or slo_status.empty:
        return impacts
    for row in slo_status.to_dict("records"):
        key = (row["service"], row["kpi"], int(row["day"]))
        utilisation = finite_or_none(row.get("utilisation"))
        current = impacts.get(key)
        breached = bool(row.get("breached", False))
        exhausted = bool(row.get("exhausted", False))
        if current is None:
            impacts[key] = SloImpact(row.get("slo"), utilisation, breached, exhausted)
            continue
        worse = utilisation is not None and (
            current.utilisation is None or utilisation > current.utilisation
        )
        impacts[key] = SloImpact(
            slo=row.get("slo") if worse else current.slo,
            utilisation=utilisation if worse else current.utilisation,
            breached=current.breached or breached,
            exhausted=current.exhausted or exhausted,
        )
    return impacts


@dataclass(frozen=True)
class SeverityRule:
    """One rule of `severity_of` that fired: which, the severity it set, and its number.

    rule: "baseline_near_zero" | "drift_multiple" | "small_effect" | "well_inside_slo" |
    "slo_breached" | "budget_exhausted". value: the threshold multiple, the effect
    magnitude, or the utilisation limit, where the rule has one.
    """

    rule: str
    severity: str
    value: float | str | None = None


@dataclass(frozen=True)
class Severity:
    """A degradation's severity and the rules that led to it, in the order applied."""

    level: str
    rules: tuple[SeverityRule, ...]


def severity_of(
    *,
    threshold_multiple: float | None,
    effect_magnitude: str,
    impacts: Sequence[SloImpact | None],
    well_inside_utilisation: float,
    budget_exhausted: bool = False,
) -> Severity:
    """Severity and the rules behind it, rule by rule (SPEC §3 "Regression"):

    1. base by adverse drift as a multiple m of the threshold: m ≥ 5 critical, m ≥ 2 high,
       else medium (medium too when the baseline is ~0 and m is undefined);
    2. a negligible or small effect (Cliff's delta) → low: significant but barely shifted;
    3. every degraded day well inside its SLO (not breached, utilisation ≤
       well_inside_utilisation) → at most medium;
    4. an SLO breached on any degraded day → at least high;
    5. the SLO's window budget exhausted (`budget_exhausted`, or an impact says so) →
       critical.
    """
    rules: list[SeverityRule] = []
    at_least = 1 - THRESHOLD_TOLERANCE
    if threshold_multiple is None:
        severity = "medium"
        rules.append(SeverityRule("baseline_near_zero", severity))
    else:
        if threshold_multiple >= CRITICAL_MULTIPLE * at_least:
            severity = "critical"
        elif threshold_multiple >= HIGH_MULTIPLE * at_least:
            severity = "high"
        else:
            severity = "medium"
        rules.append(SeverityRule("drift_multiple", severity, threshold_multiple))
    if effect_magnitude in ("negligible", "small"):
        severity = "low"
        rules.append(SeverityRule("small_effect", severity, effect_magnitude))
    known = [impact for impact in impacts if impact is not None and impact.slo is not None]
    if known and len(known) == len(impacts):
        well_inside = all(
            not impact.breached
            and impact.utilisation is not None
            and impact.utilisation <= well_inside_utilisation
            for impact in known
        )
        if well_inside and SEVERITY_RANK[severity] < SEVERITY_RANK["medium"]:
            severity = "medium"
            rules.append(SeverityRule("well_inside_slo", severity, well_inside_utilisation))
    if any(impact.breached for impact in known) and SEVERITY_RANK[severity] > SEVERITY_RANK["high"]:
        severity = "high"
        rules.append(SeverityRule("slo_breached", severity))
    if budget_exhausted or any(impact.exhausted for impact in known):
        if severity != "critical":
            rules.append(SeverityRule("budget_exhausted", "critical"))
        severity = "critical"
    return Severity(severity, tuple(rules))
