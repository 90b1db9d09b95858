"""The day's health score (0-100) and the contribution of each KPI to it.

SPEC §3 "Health score", every number from `HealthConfig`:

- each KPI scores 100 while its adverse drift is within its threshold, 0 at
  `zero_score_multiple` (5) × the threshold, linearly in between;
- a KPI whose baseline is ~0 (relative drift undefined) scores 100 unless it moved the bad
  way, then `undefined_drift_score` (50);
- a KPI whose SLO was breached that day scores at most `slo_breach_cap` (40);
- the day's score is the KPI scores' mean weighted by `KpiDefinition.weight`, minus an
  anomaly penalty (per event by severity, capped at `anomaly_penalty_cap` = 20), clamped
  to 0-100 and rounded to one decimal; its band comes from `bands`.

Every KPI's weighted points are kept, and they add up to the weighted mean, so a score is
always explainable: "latency_p99 gave 9.4 of a possible 12.5 points". Each contribution
also carries its threshold, the points it could have given (`max_points`), the points it
lost, and a one-line `reason` naming the rule that set its score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tars_pipeline.config import HealthConfig, KpiDefinition
from tars_pipeline.judge.incidents import cluster_events, worst
from tars_pipeline.judge.traffic import error_share

CONTRIBUTION_COLUMNS: tuple[str, ...] = (
    "service",
    "kpi",
    "adverse_drift_pct",
    "kpi_score",
    "weight",
    "slo_breached",
    "weighted_points",
    "threshold_pct",
    "max_points",
    "points_lost",
    "reason",
)
PERFECT_SCORE = 100.0
_DEFAULT_WEIGHT = 1.0


@dataclass(frozen=True, eq=False)
class DayHealth:
    """A day's health: the score, its band, and the numbers that produced it."""

    score: float
    band: str
    weighted_kpi_score: float
    anomaly_penalty: float
    contributions: pd.DataFrame


def kpi_score(
    adverse_drift_pct: float | np.ndarray,
    threshold_pct: float | np.ndarray,
    zero_score_multiple: float,
) -> float | np.ndarray:
    """100 at adverse drift ≤ threshold, 0 at `zero_score_multiple` × threshold, linear between.

        score = 100 · (m·t − a) / ((m − 1)·t), clipped to [0, 100]

    with a the adverse drift, t the threshold and m the multiple. Example: p99 latency
    150 → 180 ms is +20 % adverse against a 10 % threshold: 100 · (50 − 20) / 40 = 75.
    Works element-wise on arrays; a scalar in gives a float out. The adverse drift must be
    defined (not NaN): a KPI without a relative drift is scored by `score_day`.
    """
    adverse = np.asarray(adverse_drift_pct, dtype="float64")
    threshold = np.asarray(threshold_pct, dtype="float64")
    if np.isnan(adverse).any():
        raise ValueError("adverse drift is undefined (NaN); score such KPIs by their flag")
    if not (threshold > 0).all() or not np.isfinite(threshold).all():
        raise ValueError("threshold_pct must be positive and finite")
    if not zero_score_multiple > 1:
        raise ValueError(f"zero_score_multiple must be above 1, got {zero_score_multiple}")
    with np.errstate(over="ignore", invalid="ignore"):
        zero_at = zero_score_multiple * threshold
        linear = PERFECT_SCORE * (zero_at - adverse) / (zero_at - threshold)
    score = np.clip(np.where(adverse <= threshold, PERFECT_SCORE, linear), 0.0, PERFECT_SCORE)
    score = np.where(np.isnan(score), 0.0, score)
    return float(score) if score.ndim == 0 else score


def band_for(score: float, bands: Mapping[str, float]) -> str:
    """The name of the highest band whose minimum the score reaches.

    Default bands: ≥ 90 healthy, ≥ 75 watch, ≥ 50 degraded, else critical. A score below
    every minimum gets the lowest band.
    """
    if not bands:
        raise ValueError("bands must name at least one band")
    by_minimum = sorted(bands.items(), key=lambda item: item[1], reverse=True)
    for name, minimum in by_minimum:
        if score >= minimum:
            return name
    return by_minimum[-1][0]


def anomaly_penalty(
    anomalies: pd.DataFrame,
    per_incident: Mapping[str, float],
    cap: float,
    kind_weight: Mapping[str, float] | None = None,
    *,
    full_minutes: float = 0.0,
    step_seconds: float = 60.0,
) -> float:
    """Σ over the day's incidents (`incidents.cluster_events`: a service's events close in
    time) of per_incident[its worst severity] × the largest `kind_weight` of its KPIs'
    kinds (unknown severities cost 0; without `kind_weight` every kind weighs 1), at most
    `cap`. A latency step seen on p50, p95 and p99 is one incident and costs once.

    With `full_minutes`, an incident shorter than that costs duration / full_minutes of its
    penalty, its duration running from its first event's start to its last event's end
    plus one step (a one-sample event lasts one step)."""
    if anomalies.empty or "severity" not in anomalies.columns:
        return 0.0
    if not {"service", "start", "end"} <= set(anomalies.columns):  # no times: one each
        costs = [per_incident.get(severity, 0.0) for severity in anomalies["severity"]]
        return float(min(sum(costs), cap))
    costs = []
    for cluster in cluster_events(anomalies):
        weight = 1.0
        if kind_weight is not None and "kind" in cluster.columns:
            weight = max(kind_weight.get(str(kind), 1.0) for kind in cluster["kind"])
        if full_minutes > 0:
            span = (cluster["end"].max() - cluster["start"].min()).total_seconds()
            weight *= min(1.0, (span + step_seconds) / (60.0 * full_minutes))
        costs.append(per_incident.get(worst(cluster["severity"]) or "", 0.0) * weight)
    return float(min(sum(costs), cap))


def _empty_contributions() -> pd.DataFrame:
    dtypes = {"service": object, "kpi": object, "slo_breached": "bool", "reason": object}
    return pd.DataFrame(
        {name: pd.Series(dtype=dtypes.get(name, "float64")) for name in CONTRIBUTION_COLUMNS}
    )


def kpi_contributions(
    drift: pd.DataFrame,
    slo_breaches: set[tuple[str, str]],
    kpis: Mapping[str, KpiDefinition],
    config: HealthConfig,
    thin_traffic: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Each (service, kpi) drift row's score, weight and share of the weighted mean.

    weighted_points = weight · kpi_score / Σ weights, so the column sums to the weighted
    mean. A KPI missing from `kpis` weighs 1.0; if every weight is 0, no KPI earns points.
    `thin_traffic` (service → its requests that day, for services under
    `thresholds.min_requests`): their percentage-of-requests KPIs (error rate,
    availability) score 100 unless their SLO was breached, "insufficient traffic", as the
    SLO table says: a few failed requests of a few thousand move them by tens of percent.
    """
    if drift.empty:
        return _empty_contributions()
    relative = drift["relative"].to_numpy(dtype=bool)
    flagged = drift["flagged"].to_numpy(dtype=bool)
    adverse = drift["adverse_drift_pct"].to_numpy(dtype="float64")
    threshold = drift["threshold_pct"].to_numpy(dtype="float64")

    score = np.where(flagged, config.undefined_drift_score, PERFECT_SCORE)
    if relative.any():
        score[relative] = kpi_score(
            adverse[relative], threshold[relative], config.zero_score_multiple
        )
    thin_traffic = thin_traffic or {}
    thin = np.array(
        [
            service in thin_traffic and error_share(str(kpi)) is not None
            for service, kpi in zip(drift["service"], drift["kpi"], strict=True)
        ],
        dtype=bool,
    )
    score = np.where(thin, PERFECT_SCORE, score)
    pairs = zip(drift["service"], drift["kpi"], strict=True)
    slo_breached = np.array([pair in slo_breaches for pair in pairs], dtype=bool)
    score = np.where(slo_breached, np.minimum(score, config.slo_breach_cap), score)

    weight = np.array(
        [kpis[name].weight if name in kpis else _DEFAULT_WEIGHT for name in drift["kpi"]],
        dtype="float64",
    )
    total_weight = weight.sum()
    share = weight / total_weight if total_weight > 0 else np.zeros_like(weight)
    weighted_points = share * score
    max_points = share * PERFECT_SCORE
    directions = drift["direction"] if "direction" in drift.columns else None
    reasons = [
        _reason(
            relative=bool(relative[i]),
            flagged=bool(flagged[i]),
            adverse_pct=float(adverse[i]),
            threshold_pct=float(threshold[i]),
            score=float(score[i]),
            breached=bool(slo_breached[i]),
            neutral=directions is not None and directions.iloc[i] == "neutral",
            config=config,
            thin_requests=thin_traffic.get(drift["service"].iloc[i]) if thin[i] else None,
        )
        for i in range(len(drift))
    ]
    return pd.DataFrame(
        {
            "service": drift["service"].to_numpy(),
            "kpi": drift["kpi"].to_numpy(),
            "adverse_drift_pct": adverse,
            "kpi_score": score.astype("float64"),
            "weight": weight,
            "slo_breached": slo_breached,
            "weighted_points": weighted_points,
            "threshold_pct": threshold,
            "max_points": max_points,
            "points_lost": max_points - weighted_points,
            "reason": reasons,
        }
    )


def _reason(
    *,
    relative: bool,
    flagged: bool,
    adverse_pct: float,
    threshold_pct: float,
    score: float,
    breached: bool,
    neutral: bool,
    config: HealthConfig,
    thin_requests: float | None = None,
) -> str:
    """The rule behind one KPI's score, with its numbers, in one line."""
    if thin_requests is not None:
        text = f"insufficient traffic: {thin_requests:,.0f} requests on the day, not judged → 100"
    elif neutral:
        text = "neutral KPI: a move is not adverse → 100"
    elif not relative:
        text = (
            f"baseline ~0 and it moved the bad way → {config.undefined_drift_score:g}"
            if flagged
            else "baseline ~0, no adverse move → 100"
        )
    elif adverse_pct <= threshold_pct:
        text = f"adverse drift {adverse_pct:.1f} % ≤ threshold {threshold_pct:g} % → 100"
    else:
        zero_at = config.zero_score_multiple * threshold_pct
        unclamped = kpi_score(adverse_pct, threshold_pct, config.zero_score_multiple)
        text = (
            f"adverse drift {adverse_pct:.1f} % vs threshold {threshold_pct:g} % "
            f"(0 at {zero_at:g} %) → {unclamped:.1f}"
        )
    if breached:
        text += f"; SLO breached → at most {config.slo_breach_cap:g}"
    return f"{text} (score {score:.1f})"


def score_day(
    drift: pd.DataFrame,
    slo_breaches: set[tuple[str, str]],
    anomalies: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    config: HealthConfig,
    thin_traffic: Mapping[str, float] | None = None,
    step_seconds: float = 60.0,
) -> DayHealth:
    """The day's health score: weighted mean of KPI scores minus the anomaly penalty.

    `drift` is `drift.compute_drift` for the day, `slo_breaches` the (service, kpi) pairs
    whose SLO was breached that day, `anomalies` the day's `anomaly.detect_anomalies`
    events. Without drift rows (or with all weights 0) the weighted mean is 100.
    score = round(clamp(weighted mean − penalty, 0, 100), 1).
    """
    contributions = kpi_contributions(drift, slo_breaches, kpis, config, thin_traffic)
    has_weight = not contributions.empty and contributions["weight"].sum() > 0
    # Σ share · score can land a hair above 100 in floating point (100.00000000000001).
    weighted_kpi_score = (
        min(float(contributions["weighted_points"].sum()), PERFECT_SCORE)
        if has_weight
        else PERFECT_SCORE
    )
    kinds = anomalies
    if len(anomalies) and "kpi" in anomalies.columns:
        kinds = anomalies.assign(
            kind=anomalies["kpi"].map(lambda name: kpis[name].kind if name in kpis else "")
        )
    penalty = anomaly_penalty(
        kinds,
        config.incident_penalty,
        config.anomaly_penalty_cap,
        config.incident_kind_weight,
        full_minutes=config.incident_full_minutes,
        step_seconds=step_seconds,
    )
    score = round(float(np.clip(weighted_kpi_score - penalty, 0.0, PERFECT_SCORE)), 1)
    return DayHealth(
        score=score,
        band=band_for(score, config.bands),
        weighted_kpi_score=weighted_kpi_score,
        anomaly_penalty=penalty,
        contributions=contributions,
    )
