"""The day's checks as verdicts: the data is complete, the KPIs' drift is within their
thresholds, and the SLOs held. Pure: the assets turn each verdict into a Dagster asset check
result (assets/checks.py), evaluated in the step of the asset it checks.

Severity is chosen by what a failure means:
- data completeness: ERROR — with a series missing or mostly empty, every verdict of the
  day is built on sand; WARN for small gaps (the day is still judged, with care).
- drift within threshold (one check over every KPI, each KPI in its details): WARN — drift
  is a finding to look at, not a broken pipeline; the regression analysis decides whether it
  is a degradation.
- SLO compliance: ERROR — a breached SLO is a broken promise to users.
None is blocking: a bad day must still reach the retrospective.

Each verdict lists its `findings`, one plain line per thing that failed (a series, a KPI
with the services beyond its threshold, an SLO on a service): the CLI prints exactly these
lines and counts them, so a day's "2 KPIs beyond threshold" is followed by two lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from tars_pipeline.config import KpiDefinition
from tars_pipeline.reporting.escape import markdown

COMPLETENESS_CHECK = "data_completeness"
SLO_CHECK = "slo_compliance"
DRIFT_CHECK = "drift_within_threshold"
COMPLETE_PCT = 99.0
USABLE_PCT = 50.0


class Markdown(str):
    """A detail meant to be rendered as Markdown (a table or a list)."""


@dataclass(frozen=True)
class Verdict:
    """One check's outcome and the numbers behind it."""

    check_name: str
    passed: bool
    severity: Literal["warn", "error"] = "warn"
    summary: str = ""
    details: dict[str, int | float | str] = field(default_factory=dict)
    findings: tuple[str, ...] = ()


def completeness(coverage: pd.DataFrame) -> Verdict:
    """ERROR below USABLE_PCT or with a series absent, WARN below COMPLETE_PCT."""
    name = COMPLETENESS_CHECK
    if coverage.empty:
        return Verdict(name, False, "error", "no coverage recorded for the day")
    pct = (
        100.0
        * coverage["points"]
        / coverage["expected_points"].where(coverage["expected_points"] > 0)
    )
    coverage = coverage.assign(completeness_pct=pct.fillna(0.0).round(2))
    broken = coverage[coverage["completeness_pct"] < USABLE_PCT]
    gappy = coverage[
        (coverage["completeness_pct"] >= USABLE_PCT) & (coverage["completeness_pct"] < COMPLETE_PCT)
    ]
    overall = float(coverage["points"].sum() / max(coverage["expected_points"].sum(), 1) * 100)
    details = {
        "completeness_pct": round(overall, 2),
        "series": str(len(coverage)),  # text: the same number every day is no plot
        "series_below_usable": len(broken),
        "series_with_gaps": len(gappy),
    }
    findings = tuple(
        f"{r.service} / {r.kpi}: {r.completeness_pct:.1f} % of the day"
        for r in pd.concat([broken, gappy]).itertuples()
    )
    worst = pd.concat([broken, gappy]).head(20)
    if len(worst):
        details["worst_series"] = Markdown(
            "\n".join(
                f"- {markdown(r.service)} / {markdown(r.kpi)}: {r.completeness_pct:.1f} %"
                for r in worst.itertuples()
            )
        )
    if len(broken):
        summary = f"{len(broken)} series missing or below {USABLE_PCT:.0f} % of the day"
        return Verdict(name, False, "error", summary, details, findings)
    if len(gappy):
        summary = f"{len(gappy)} series with gaps (below {COMPLETE_PCT:.0f} % of the day)"
        return Verdict(name, False, "warn", summary, details, findings)
    return Verdict(name, True, summary=f"all {len(coverage)} series complete", details=details)


def adverse_rows(drift: pd.DataFrame, kpi: KpiDefinition) -> pd.DataFrame:
    """The KPI's flagged rows that moved its bad way (any flagged row for a neutral KPI)."""
    rows = drift[drift["kpi"] == kpi.name]
    if kpi.direction == "neutral":
        return rows[rows["flagged"]]
    return rows[
        rows["flagged"]
        & ((rows["adverse_drift_pct"].fillna(0) > 0) | ~rows["relative"].astype(bool))
    ]


def drift_within_threshold(drift: pd.DataFrame, kpis: Sequence[KpiDefinition]) -> Verdict:
    """WARN when any KPI drifted beyond its threshold, in its bad direction, on any service.
    The metadata has one line per KPI (its threshold and the services beyond it)."""
    lines: list[str] = []
    beyond: list[str] = []
    for kpi in kpis:
        rows = drift[drift["kpi"] == kpi.name]
        if rows.empty:
            continue
        adverse = adverse_rows(drift, kpi)
        worst = ", ".join(
            f"{markdown(r.service)} {r.drift_pct:+.1f} %"
            if pd.notna(r.drift_pct)
            else f"{markdown(r.service)} (baseline ~0)"
            for r in adverse.itertuples()
        )
        state = f"**beyond** on {worst}" if len(adverse) else "within"
        lines.append(f"- {markdown(kpi.title)} (threshold {kpi.threshold_pct:g} %): {state}")
        if len(adverse):
            beyond.append(f"{kpi.title} on {', '.join(sorted(adverse['service']))}")
    details = {
        "kpis": Markdown("\n".join(lines) or "no drift rows for the day"),
        "kpis_beyond_threshold": len(beyond),
    }
    if beyond:
        summary = "drifted beyond threshold: " + "; ".join(beyond)
        return Verdict(DRIFT_CHECK, False, "warn", summary, details, tuple(beyond))
    return Verdict(
        DRIFT_CHECK, True, summary=f"all {len(lines)} KPIs within threshold", details=details
    )


def slo_compliance(slo_daily: pd.DataFrame) -> Verdict:
    """ERROR when any SLO was breached on the day."""
    name = SLO_CHECK
    if slo_daily.empty:
        return Verdict(name, True, summary="no SLO data for the day")
    breached = slo_daily[slo_daily["breached"]]
    table = "\n".join(
        f"- {markdown(r.slo)} / {markdown(r.service)}: burn rate {r.burn_rate:.2f}"
        + (" — **breached**" if r.breached else "")
        for r in slo_daily.itertuples()
    )
    details = {
        "slos": Markdown(table),
        "max_burn_rate": round(float(slo_daily["burn_rate"].max()), 3),
    }
    if len(breached):
        pairs = tuple(sorted(f"{r.slo} on {r.service}" for r in breached.itertuples()))
        summary = f"SLO breached: {', '.join(pairs)}"
        return Verdict(name, False, "error", summary, details, pairs)
    summary = f"all {len(slo_daily)} SLO-service pairs held"
    return Verdict(name, True, summary=summary, details=details)
