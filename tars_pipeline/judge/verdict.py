"""The release's verdict — pass / warn / fail with its reasons — from the window's judgement.

Shaped like the last step of an automated canary judge (Kayenta's score → pass / marginal /
fail; Keptn's quality gate → pass / warning / fail): the findings are already classified,
this step only combines them, and every reason names the finding that produced it.

Rules, first match decides each finding's weight; the verdict is the worst weight:

- **fail**: a critical degradation; a high one still ongoing on the last day; an SLO whose
  window budget is exhausted or which missed its target over the window (burn rate > 1);
- **warn**: any other degradation (a resolved high one, medium, low); an SLO breached on
  some day while met over the window;
- **pass**: none of the above. Unexpected drifts and cost hints are work items, not gates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["pass", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail")


@dataclass(frozen=True)
class Reason:
    """One finding that moved the verdict: the rule, what it set, and on what."""

    rule: str
    status: Status
    kpi: str
    service: str
    text: str

    def as_record(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "status": self.status,
            "kpi": self.kpi,
            "service": self.service,
            "text": self.text,
        }


@dataclass(frozen=True)
class ReleaseVerdict:
    status: Status
    reasons: tuple[Reason, ...]

    def reaches(self, threshold: Status) -> bool:
        """True when this verdict is at least as bad as `threshold` (the CLIs' --fail-on)."""
        return STATUSES.index(self.status) >= STATUSES.index(threshold)

    def as_record(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": [r.as_record() for r in self.reasons]}


def _degradation_reason(degradation: Mapping[str, Any]) -> Reason:
    severity = degradation["severity"]
    ongoing = degradation.get("status") == "ongoing"
    if severity == "critical":
        rule, status = "critical_degradation", "fail"
    elif severity == "high" and ongoing:
        rule, status = "high_degradation_ongoing", "fail"
    else:
        rule, status = f"{severity}_degradation", "warn"
    state = "ongoing" if ongoing else "resolved"
    text = (
        f"{severity} degradation of {degradation['kpi']} on {degradation['service']} "
        f"from day {degradation['day_first']} ({state})"
    )
    return Reason(rule, status, degradation["kpi"], degradation["service"], text)


def _slo_reason(slo: Mapping[str, Any]) -> Reason | None:
    name, service = slo["slo"], slo["service"]
    if slo.get("exhausted"):
        text = f"SLO {name} on {service}: error budget exhausted over the window"
        return Reason("slo_budget_exhausted", "fail", slo["kpi"], service, text)
    if slo.get("days_observed") and not slo.get("met"):
        text = f"SLO {name} on {service} missed its {slo['target']:g} % target over the window"
        return Reason("slo_missed", "fail", slo["kpi"], service, text)
    breached = [day["day"] for day in slo.get("by_day", []) if day.get("compliant") is False]
    if breached:
        days = ", ".join(str(day) for day in breached)
        text = f"SLO {name} on {service} breached on day(s) {days}, met over the window"
        return Reason("slo_breached_on_a_day", "warn", slo["kpi"], service, text)
    return None


def release_verdict(
    degradations: Iterable[Mapping[str, Any]], slo_compliance: Iterable[Mapping[str, Any]]
) -> ReleaseVerdict:
    """The verdict over the window's degradation and SLO records (as `judge_window` returns
    them), the failing reasons first."""
    reasons = [_degradation_reason(d) for d in degradations]
    reasons += [r for r in (_slo_reason(slo) for slo in slo_compliance) if r is not None]
    reasons.sort(key=lambda r: -STATUSES.index(r.status))
    worst = max((STATUSES.index(r.status) for r in reasons), default=0)
    return ReleaseVerdict(STATUSES[worst], tuple(reasons))
