"""Unexpected drifts: KPIs that moved notably without being regressions (SPEC §3).

For each (service, KPI) whose largest daily drift falls in the watch band:

1. classify its daily drift series (`classify_trend`: Theil-Sen slope, Kendall's tau);
2. look for other KPIs of the service that moved with it (`potential_causes`);
3. explain (`explain.unexpected_drift`, `explain.cause`).

`find_unexpected_drifts` returns `UnexpectedDrift`s; `as_record()` is the JSON record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tars_pipeline.config import KpiDefinition
from tars_pipeline.judge import explain
from tars_pipeline.judge.direction import adverse_sign
from tars_pipeline.judge.finding import KpiFinding
from tars_pipeline.judge.formatting import finite_or_none

TrendOutcome = Literal["no_data", "too_few_days", "tested"]


@dataclass(frozen=True)
class Trend:
    """How a daily drift series moved, and the numbers behind the word.

    slope_pct_per_day: Theil-Sen slope (scipy.stats.theilslopes), robust to one odd day.
    kendall_tau / p_value: Kendall's tau of drift vs day and its two-sided p-value (the
    Mann-Kendall trend test). spread_pct: standard deviation of the day-to-day changes.
    sign_changes: times the drift crossed the baseline; reversals: times the day-to-day
    move changed direction. outcome: "tested" with ≥ 3 finite days; "too_few_days" (the
    first-to-last move decided, no p-value); "no_data" without a finite day.
    """

    trend: str
    slope_pct_per_day: float | None
    kendall_tau: float | None
    p_value: float | None
    spread_pct: float | None
    sign_changes: int
    reversals: int
    outcome: TrendOutcome = "tested"


def _sign_flips(values: np.ndarray) -> int:
    signs = np.sign(values)
    signs = signs[signs != 0]
    return int((signs[1:] != signs[:-1]).sum()) if signs.size > 1 else 0


def classify_trend(
    days: Sequence[int] | np.ndarray,
    drift_pct: Sequence[float] | np.ndarray,
    *,
    threshold_pct: float,
    p_value: float = 0.05,
) -> Trend:
    """increasing / decreasing / volatile / stable, first matching rule:

    - volatile: the series crosses the baseline or reverses direction at least twice, and
      its day-to-day spread (std of daily changes) is ≥ the KPI's threshold;
    - increasing / decreasing: Kendall tau significant (p < `p_value`), sign of the
      Theil-Sen slope;
    - stable: otherwise (a level shift that stays put is stable).

    With fewer than 3 days there is no test: increasing/decreasing when the first-to-last
    move is ≥ the threshold, else stable.
    """
    from scipy import stats  # imported when used: ~0.5 s a process

    x = np.asarray(days, dtype="float64")
    y = np.asarray(drift_pct, dtype="float64")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if y.size < 3:
        move = float(y[-1] - y[0]) if y.size == 2 else 0.0
        trend = "stable"
        if abs(move) >= threshold_pct:
            trend = "increasing" if move > 0 else "decreasing"
        outcome: TrendOutcome = "too_few_days" if y.size else "no_data"
        return Trend(trend, move if y.size == 2 else None, None, None, None, 0, 0, outcome)
    changes = np.diff(y)
    spread = float(np.std(changes, ddof=1)) if changes.size > 1 else float(abs(changes[0]))
    sign_changes = _sign_flips(y)
    reversals = _sign_flips(changes)
    if np.ptp(y) == 0:
        return Trend("stable", 0.0, None, 1.0, spread, sign_changes, reversals)
    slope = float(stats.theilslopes(y, x).slope)
    tau_result = stats.kendalltau(x, y)
    tau = finite_or_none(tau_result.statistic)
    tau_p = finite_or_none(tau_result.pvalue)
    if (sign_changes >= 2 or reversals >= 2) and spread >= threshold_pct:
        trend = "volatile"
    elif tau_p is not None and tau_p < p_value and slope != 0:
        trend = "increasing" if slope > 0 else "decreasing"
    else:
        trend = "stable"
    return Trend(
        trend, slope, tau, 1.0 if tau_p is None else tau_p, spread, sign_changes, reversals
    )


@dataclass(frozen=True)
class Cause:
    """Another KPI of the service whose daily drift moved with the drifting one.

    change_pct at day_of_max: its own largest drift; r: the stronger of Pearson's and
    Spearman's correlation of the two daily drift series (`method` says which).
    """

    kpi: KpiDefinition
    change_pct: float
    day_of_max: int
    trend: str
    r: float
    method: str

    @property
    def text(self) -> str:
        return explain.cause(self)

    def as_detail(self) -> dict:
        return {
            "kpi": self.kpi.name,
            "change_pct": self.change_pct,
            "day_of_max": self.day_of_max,
            "trend": self.trend,
            "r": self.r,
            "method": self.method,
        }


def _correlation(a: pd.Series, b: pd.Series) -> tuple[float, str] | None:
    """The stronger of Pearson's r and Spearman's rho over the days both series have."""
    from scipy import stats  # imported when used: ~0.5 s a process

    joined = pd.concat([a, b], axis=1, join="inner").dropna()
    if len(joined) < 3:
        return None
    x, y = joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy()
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    pearson = finite_or_none(stats.pearsonr(x, y).statistic)
    spearman = finite_or_none(stats.spearmanr(x, y).statistic)
    candidates = [(r, name) for r, name in ((pearson, "pearson"), (spearman, "spearman")) if r]
    if not candidates:
        return None
    return max(candidates, key=lambda item: abs(item[0]))


def _peak(series: pd.Series) -> tuple[int, float] | None:
    finite = series.dropna()
    if finite.empty:
        return None
    day = int(finite.abs().idxmax())
    return day, float(finite.loc[day])


def _only_improved(series: pd.Series, kpi: KpiDefinition) -> bool:
    """A KPI with a bad side that never moved the bad way beyond its threshold: lower
    errors or faster responses are not a drift to investigate (successes report them)."""
    sign = adverse_sign(kpi.direction)
    finite = series.dropna()
    if sign == 0 or finite.empty:
        return False
    return bool((sign * finite < kpi.threshold_pct).all())


def _series_trend(series: pd.Series, threshold_pct: float, p_value: float) -> Trend:
    finite = series.dropna()
    return classify_trend(
        finite.index.to_numpy(), finite.to_numpy(), threshold_pct=threshold_pct, p_value=p_value
    )


def potential_causes(
    service: str,
    kpi: KpiDefinition,
    daily_drift: Mapping[tuple[str, str], pd.Series],
    kpis: Mapping[str, KpiDefinition],
    *,
    min_correlation: float = 0.8,
    trend_p_value: float = 0.05,
) -> list[Cause]:
    """Other KPIs of the same service whose daily drift moves with this one.

    A candidate qualifies when |r| ≥ `min_correlation` (Pearson or Spearman, whichever is
    stronger, ≥ 3 common days) and its own largest drift is at least half its threshold.
    Cost KPIs follow resources and are never causes; for a neutral (load) KPI such as
    throughput, resource KPIs are effects rather than causes and are left out.
    Sorted by |r|, strongest first. Correlation is a lead to check, not proof.
    """
    own = daily_drift[(service, kpi.name)]
    causes: list[Cause] = []
    for (other_service, other_name), series in daily_drift.items():
        other = kpis.get(other_name)
        if other_service != service or other_name == kpi.name or other is None:
            continue
        if other.kind == "cost" or (kpi.direction == "neutral" and other.kind == "resource"):
            continue
        peak = _peak(series)
        if peak is None or abs(peak[1]) < other.threshold_pct / 2:
            continue
        correlation = _correlation(own, series)
        if correlation is None or abs(correlation[0]) < min_correlation:
            continue
        trend = _series_trend(series, other.threshold_pct, trend_p_value).trend
        r, method = correlation
        causes.append(Cause(other, peak[1], peak[0], trend, r, method))
    return sorted(causes, key=lambda cause: -abs(cause.r))


@dataclass(frozen=True)
class UnexpectedDrift(KpiFinding):
    """A KPI that drifted inside the watch band (or a neutral KPI that drifted at all).

    change_pct, baseline and observed are at day_of_max, the day of the largest |drift|;
    daily_drift_pct is by day (None where undefined), range_pct its [min, max];
    watch_band_max_pct is the band's ceiling the drift stayed under.
    """

    change_pct: float
    baseline: float | None
    observed: float | None
    day_of_max: int
    days: tuple[int, ...]
    daily_drift_pct: tuple[float | None, ...]
    range_pct: tuple[float, float]
    trend: Trend
    causes: tuple[Cause, ...]
    watch_band_max_pct: float

    def as_record(self) -> dict:
        """kpi, kpi_title, service, kind, unit, direction, change_pct, baseline, observed,
        day_of_max, days, daily_drift_pct, range_pct, trend, slope_pct_per_day,
        kendall_tau, trend_p_value, spread_pct, threshold_pct, potential_causes
        (sentences), cause_details, explanation."""
        trend = self.trend
        return {
            **self.identity(),
            "change_pct": self.change_pct,
            "baseline": self.baseline,
            "observed": self.observed,
            "day_of_max": self.day_of_max,
            "days": list(self.days),
            "daily_drift_pct": list(self.daily_drift_pct),
            "range_pct": list(self.range_pct),
            "trend": trend.trend,
            "slope_pct_per_day": finite_or_none(trend.slope_pct_per_day),
            "kendall_tau": finite_or_none(trend.kendall_tau),
            "trend_p_value": finite_or_none(trend.p_value),
            "spread_pct": finite_or_none(trend.spread_pct),
            "threshold_pct": self.kpi.threshold_pct,
            "potential_causes": [cause.text for cause in self.causes],
            "cause_details": [cause.as_detail() for cause in self.causes],
            "explanation": explain.unexpected_drift(self),
        }


def _daily_drift_series(drift: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    """Each series' drift_pct by day (a day's first row if it has several), in (service,
    KPI) order: one sort of the table, not one per series."""
    if drift.empty:
        return {}
    ordered = drift.sort_values(["service", "kpi", "day"], kind="stable")
    ordered = ordered.drop_duplicates(["service", "kpi", "day"], keep="first")
    values = ordered["drift_pct"].to_numpy(dtype="float64")
    days = ordered["day"].astype(int).to_numpy()
    return {
        key: pd.Series(values[rows], index=days[rows])
        for key, rows in ordered.groupby(["service", "kpi"], sort=True).indices.items()
    }


def find_unexpected_drifts(
    drift: pd.DataFrame,
    degraded: Iterable[tuple[str, str]],
    kpis: Mapping[str, KpiDefinition],
    *,
    max_pct: float,
    trend_p_value: float = 0.05,
    min_correlation: float = 0.8,
    held: Iterable[tuple[str, str]] = (),
) -> list[UnexpectedDrift]:
    """KPIs that drifted notably without being regressions (SPEC §3 "Unexpected drifts").

    A (service, KPI) qualifies when it is not cost-kind, is not among the `degraded`
    (service, KPI) pairs, its largest |drift_pct| over days 1..N is ≥ the KPI's
    threshold_pct and < `max_pct` (the 10-30 % band), and, for a KPI with a bad side, it
    moved the bad way beyond its threshold on some day (an improvement is not work). A
    neutral KPI (throughput) has no upper bound: the band's ceiling is where a drift
    becomes a regression candidate, which a neutral KPI never is, so a 40 % load change is
    listed rather than dropped. Rows without a percentage (baseline ~0) are skipped, and so
    are the `held` pairs (an error rate whose errors / requests did not move,
    `degradations.held_by_counts`).
    Resource KPIs first, then by |change|.
    """
    if drift is None or drift.empty:
        return []
    drift = drift[drift["day"] >= 1]
    already_degraded = set(degraded) | set(held)
    daily = _daily_drift_series(drift)
    # Each service's own series: a cause is looked for among them, not among all services'.
    of_service: dict[str, dict[tuple[str, str], pd.Series]] = {}
    for key, series in daily.items():
        of_service.setdefault(key[0], {})[key] = series
    # A finding's baseline and observed values: its series' first row of its day.
    positions = drift.groupby(["service", "kpi"], sort=False).indices
    row_days = drift["day"].astype(int).to_numpy()
    baselines = drift["baseline_value"].to_numpy()
    observed = drift["observed_value"].to_numpy()
    drifts: list[UnexpectedDrift] = []
    for (service, kpi_name), series in daily.items():
        kpi = kpis.get(kpi_name)
        if kpi is None or kpi.kind == "cost" or (service, kpi_name) in already_degraded:
            continue
        peak = _peak(series)
        ceiling = math.inf if kpi.direction == "neutral" else max_pct
        if peak is None or not (kpi.threshold_pct <= abs(peak[1]) < ceiling):
            continue
        if _only_improved(series, kpi):
            continue
        day_of_max, change = peak
        finite = series.dropna()
        causes = potential_causes(
            service,
            kpi,
            of_service[service],
            kpis,
            min_correlation=min_correlation,
            trend_p_value=trend_p_value,
        )
        rows = positions[(service, kpi_name)]
        first = rows[np.flatnonzero(row_days[rows] == day_of_max)[0]]
        drifts.append(
            UnexpectedDrift(
                kpi=kpi,
                service=service,
                change_pct=change,
                baseline=finite_or_none(baselines[first]),
                observed=finite_or_none(observed[first]),
                day_of_max=day_of_max,
                days=tuple(int(day) for day in series.index),
                daily_drift_pct=tuple(finite_or_none(value) for value in series.to_numpy()),
                range_pct=(float(finite.min()), float(finite.max())),
                trend=_series_trend(series, kpi.threshold_pct, trend_p_value),
                causes=tuple(causes),
                watch_band_max_pct=max_pct,
            )
        )
    return sorted(
        drifts,
        key=lambda d: (d.kpi.kind != "resource", -abs(d.change_pct), d.service, d.kpi.name),
    )
