"""What went well: SLOs met, cost stable, KPIs that held their GA-day level (SPEC §3).

Each `Success` says how far it beat its target (`achievement_pct`); one without that number
(a ~0 value on either side) has no evidence and is left out. Sentences: `explain`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from tars_pipeline.config import KpiDefinition
from tars_pipeline.judge import explain
from tars_pipeline.judge.direction import has_bad_side
from tars_pipeline.judge.formatting import finite_or_none


@dataclass(frozen=True)
class Success:
    """One success. category: "slo" (value = SLI %, target = the SLO's target), "cost"
    (value = daily average, target = the watch band's ceiling) or "stability" (value = the
    window mean, target = GA day). `slo` names the SLO of an "slo" success."""

    category: str
    kpi: str
    service: str | None
    value: float
    target: float
    achievement_pct: float | None
    description: str
    slo: str | None = None

    def as_record(self) -> dict:
        """category, kpi, service, slo (SLO successes only), value, target,
        achievement_pct, description."""
        record: dict = {"category": self.category, "kpi": self.kpi, "service": self.service}
        if self.category == "slo":
            record["slo"] = self.slo
        record.update(
            value=self.value,
            target=self.target,
            achievement_pct=self.achievement_pct,
            description=self.description,
        )
        return record


def _slo_success(summary: Mapping, kpis: Mapping[str, KpiDefinition]) -> Success | None:
    sli = finite_or_none(summary.get("sli_pct"))
    target = finite_or_none(summary.get("target"))
    if not summary.get("met") or sli is None or not target:
        return None
    kpi_name = summary.get("kpi", "")
    description = explain.slo_success(
        kpi=kpis.get(kpi_name),
        kpi_name=kpi_name,
        service=summary.get("service"),
        sli_kind=summary.get("sli"),
        objective=finite_or_none(summary.get("objective")),
        sli_pct=sli,
        target_pct=target,
        kpi_mean=finite_or_none(summary.get("kpi_mean")),
    )
    return Success(
        category="slo",
        kpi=kpi_name,
        service=summary.get("service"),
        slo=summary.get("slo"),
        value=sli,
        target=target,
        achievement_pct=sli / target * 100.0,
        description=description,
    )


def _cost_success(cost: Mapping, max_pct: float) -> Success | None:
    ga_day = finite_or_none(cost.get("ga_day_cost"))
    average = finite_or_none(cost.get("daily_average"))
    change = finite_or_none(cost.get("change_pct"))
    if ga_day is None or average is None or change is None or abs(change) >= max_pct:
        return None
    return Success(
        category="cost",
        kpi="cost",
        service="all",
        value=average,
        target=ga_day,
        # Lower is better, as for any cost: GA day's cost over the window's average, so a
        # rise reads below 100 % and a saving above it.
        achievement_pct=ga_day / average * 100.0 if average > 0 else None,
        description=explain.cost_success(
            daily_average=average, change_pct=change, ga_day_cost=ga_day, max_pct=max_pct
        ),
    )


def _stable_kpi_successes(
    drift: pd.DataFrame, kpis: Mapping[str, KpiDefinition], covered: set[tuple[str, str]]
) -> list[Success]:
    successes: list[Success] = []
    drift = drift[drift["day"] >= 1]
    for (service, kpi_name), rows in drift.groupby(["service", "kpi"], sort=True):
        kpi = kpis.get(kpi_name)
        if (
            kpi is None
            or kpi.kind != "user_facing"
            or not has_bad_side(kpi.direction)
            or (service, kpi_name) in covered
            or rows["flagged"].astype(bool).any()
            or not rows["relative"].astype(bool).all()
        ):
            continue
        baseline = float(rows["baseline_value"].iloc[0])
        observed = float(rows["observed_value"].mean())
        worst = float(rows["adverse_drift_pct"].max())
        # How far the window beat GA day: a ratio oriented so that > 100 is better.
        if kpi.direction == "lower_is_better":
            achievement = baseline / observed * 100.0 if observed > 0 else None
        else:
            achievement = observed / baseline * 100.0 if baseline > 0 else None
        successes.append(
            Success(
                category="stability",
                kpi=kpi_name,
                service=service,
                value=observed,
                target=baseline,
                achievement_pct=finite_or_none(achievement),
                description=explain.stability_success(kpi, service, baseline, observed, worst),
            )
        )
    return successes


def find_successes(
    slo_summaries: Iterable[Mapping],
    cost: Mapping | None,
    *,
    kpis: Mapping[str, KpiDefinition] | None = None,
    cost_stable_max_pct: float = 10.0,
    drift: pd.DataFrame | None = None,
    degraded: Iterable[tuple[str, str]] = (),
) -> list[Success]:
    """What went well, each with kpi, service, value, target, achievement_pct, description.

    - every met SLO (`slo_summaries` items: service, slo, kpi, target, sli_pct, met,
      kpi_mean, optionally sli and objective as `slo_window_summary` returns them):
      value = SLI %, achievement_pct = SLI ÷ target × 100 (99.95 vs 99.9 → 100.05);
    - cost stability (`cost` as `cost.cost_analysis` returns it) when the window's daily
      average is within ±`cost_stable_max_pct` of GA day (the drift threshold: a larger move
      is a drift to explain, not a success): value = daily average, target = GA-day cost,
      achievement_pct = GA day ÷ average × 100 (lower is better);
    - with `drift` (days 1..N): user-facing KPIs with a bad direction never flagged on any
      day and not already covered by an SLO success: value = window mean, target = GA day,
      achievement_pct = GA day ÷ mean (lower is better) or mean ÷ GA day × 100.

    A (service, KPI) in `degraded` is never a success: a met window SLO on a KPI that
    regressed is reported with the regression, not beside it.
    """
    kpis = kpis or {}
    degraded = set(degraded)
    successes: list[Success] = []
    for summary in slo_summaries:
        if (summary.get("service"), summary.get("kpi")) in degraded:
            continue
        success = _slo_success(summary, kpis)
        if success is not None:
            successes.append(success)
    if cost:
        success = _cost_success(cost, cost_stable_max_pct)
        if success is not None:
            successes.append(success)
    if drift is not None and not drift.empty:
        covered = {(s.service, s.kpi) for s in successes}
        successes.extend(_stable_kpi_successes(drift, kpis, covered))
    # A success states how far it beat its target; without that number it is not one.
    return [s for s in successes if finite_or_none(s.achievement_pct) is not None]
