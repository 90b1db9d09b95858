"""Degradations: the KPIs that got significantly worse over the window (SPEC §3 "Regression").

The judge's steps for each (service, KPI), Kayenta-style:

1. pre-filter (`severity.crosses_threshold`): only the days whose adverse drift crossed the
   degradation threshold are candidates;
2. compare (`compare.compare_samples`): GA-day samples vs the day's, hour-matched;
3. classify: a candidate day degraded when the comparison is ranked, significant and in
   the bad direction (`Comparison.is_adverse`); severity by `severity.severity_of`;
4. explain (`explain.degradation`, `explain.severity_reasons`).

`find_degradations` returns one `Degradation` per (service, KPI) that degraded on at least
one day; `Degradation.as_record()` is the JSON record of `regression_summary.json`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tars_pipeline.config import KpiDefinition
from tars_pipeline.judge import explain
from tars_pipeline.judge.compare import Comparison, compare_samples
from tars_pipeline.judge.direction import adverse_sign, has_bad_side
from tars_pipeline.judge.finding import KpiFinding
from tars_pipeline.judge.formatting import finite_or_none
from tars_pipeline.judge.honesty import Shift, effective_sample_size, fdr_adjust, hodges_lehmann
from tars_pipeline.judge.seasonality import hour_matched_values
from tars_pipeline.judge.severity import (
    SEVERITY_RANK,
    Severity,
    SloImpact,
    crosses_threshold,
    severity_of,
    slo_impacts,
)
from tars_pipeline.judge.stats import local_hour
from tars_pipeline.judge.traffic import (
    DEFAULT_MIN_REQUESTS,
    ERROR_LIKE_KPIS,
    TrafficCounts,
    error_share,
    traffic_counts_from_frames,
)

_EMPTY = np.empty(0, dtype="float64")
_KEYS = ["service", "kpi"]
LEVEL_STATISTICS = ("mean", "p50", "p95", "p99", "max", "min")


@dataclass(frozen=True)
class Degradation(KpiFinding):
    """One (service, KPI) that degraded, with the numbers of its worst day.

    The worst day is the degraded day with the largest adverse drift; `comparison` and
    `worst_slo` are that day's. `resolved`: the last analysed day is not degraded and back
    below threshold. `p_threshold` is the significance level the days were tested at.
    """

    statistic: str
    severity: Severity
    days_degraded: tuple[int, ...]
    worst_day: int
    baseline: float | None
    observed: float | None
    change_pct: float | None
    abs_change: float | None
    adverse_drift_pct: float | None
    threshold_pct: float
    comparison: Comparison
    baseline_method: str | None
    weekday_factor: float | None
    resolved: bool
    worst_slo: SloImpact | None
    slo_breached: bool
    slo_exhausted: bool
    p_threshold: float
    honesty: Honesty | None = None

    @property
    def threshold_multiple(self) -> float | None:
        """Adverse drift ÷ threshold; None when the baseline is ~0 (no percentage)."""
        adverse = self.adverse_drift_pct
        return adverse / self.threshold_pct if adverse is not None else None

    @property
    def status(self) -> str:
        return "resolved" if self.resolved else "ongoing"

    def as_record(self) -> dict:
        """The JSON record: kpi, kpi_title, service, kind, unit, direction, statistic,
        severity, severity_reasons, day_first, worst_day, baseline / observed / change_pct /
        abs_change / adverse_drift_pct (worst day), threshold_pct, threshold_multiple,
        p_value, u_statistic, effect_size, effect_magnitude, days_degraded, zero_heavy,
        nonzero_baseline_pct / nonzero_observed_pct, baseline_method, weekday_factor,
        status, slo, slo_utilisation (worst day), slo_breached, slo_exhausted, explanation,
        test (the test behind p_value), traffic (request and error counts; null without).
        """
        comparison, slo = self.comparison, self.worst_slo
        return {
            **self.identity(),
            "statistic": self.statistic,
            "severity": self.severity.level,
            "severity_reasons": explain.severity_reasons(self.severity),
            "day_first": self.days_degraded[0],
            "worst_day": self.worst_day,
            "baseline": self.baseline,
            "observed": self.observed,
            "change_pct": self.change_pct,
            "abs_change": self.abs_change,
            "adverse_drift_pct": self.adverse_drift_pct,
            "threshold_pct": self.threshold_pct,
            "threshold_multiple": self.threshold_multiple,
            "p_value": comparison.p_value,
            "u_statistic": comparison.u_statistic,
            "effect_size": comparison.effect_size,
            "effect_magnitude": comparison.effect_magnitude,
            "days_degraded": list(self.days_degraded),
            "zero_heavy": comparison.zero_heavy,
            "nonzero_baseline_pct": comparison.nonzero_baseline_pct,
            "nonzero_observed_pct": comparison.nonzero_observed_pct,
            "baseline_method": self.baseline_method,
            "weekday_factor": self.weekday_factor,
            "status": self.status,
            "slo": slo.slo if slo is not None else None,
            "slo_utilisation": slo.utilisation if slo is not None else None,
            "slo_breached": self.slo_breached,
            "slo_exhausted": self.slo_exhausted,
            "explanation": explain.degradation(self),
            "test": comparison.test,
            "traffic": (
                comparison.traffic_record() if comparison.observed_requests is not None else None
            ),
            **(self.honesty.as_record() if self.honesty is not None else {}),
        }


@dataclass(frozen=True)
class Honesty:
    """How sure the worst day's verdict is (docs/methods/statistical-honesty.md): its
    p-value with the samples' autocorrelation allowed for, that p adjusted for the false
    discoveries of the window's whole family of tests, and the Hodges-Lehmann shift with
    its interval."""

    p_value_autocorrelated: float
    q_value: float | None
    fdr_method: str
    fdr_q: float
    tests: int
    shift: Shift | None

    def as_record(self) -> dict:
        """p_value_autocorrelated, q_value, fdr ({method, q, tests}), effect (the
        Hodges-Lehmann shift record, or null)."""
        return {
            "p_value_autocorrelated": self.p_value_autocorrelated,
            "q_value": finite_or_none(self.q_value),
            "fdr": {"method": self.fdr_method, "q": self.fdr_q, "tests": self.tests},
            "effect": self.shift.as_record() if self.shift is not None else None,
        }


@dataclass(frozen=True)
class FdrSettings:
    """The window's false-discovery control: thresholds.fdr_method / fdr_q."""

    method: str = "bh"
    q: float = 0.05


@dataclass(frozen=True)
class _DegradedDay:
    day: int
    drift: Mapping
    comparison: Comparison
    p_autocorrelated: float = 1.0
    q_value: float | None = None
    sides: tuple[np.ndarray, np.ndarray] = (_EMPTY, _EMPTY)
    hours: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class _Cell:
    """One (service, KPI, day) of the family of tests; `comparison` None when the drift
    threshold filtered it out (it enters the family as p = 1)."""

    service: str
    kpi: KpiDefinition
    day: int
    row: Mapping
    comparison: Comparison | None = None
    adverse: bool = False
    p_autocorrelated: float = 1.0
    sides: tuple[np.ndarray, np.ndarray] = (_EMPTY, _EMPTY)
    hours: tuple[np.ndarray, np.ndarray] | None = None


def autocorrelated_p(
    comparison: Comparison,
    base: np.ndarray,
    observed: np.ndarray,
    hours: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """The rank test's p with the samples' autocorrelation allowed for.

    Per-minute samples are not independent (a 5-minute rate() shares 4/5 of its requests
    with the next minute), so the Mann-Whitney variance under independence is too small
    by about the integrated autocorrelation time τ = n / n_eff of each side. The two-sided
    z of the test is divided by √τ̄, τ̄ = (n₂·τ₁ + n₁·τ₂)/(n₁ + n₂) (the variance of U is a
    sum of each side's rank variance, weighted by the other side's size). A rate test's
    counts are already the independent unit: its p is kept."""
    if comparison.outcome != "ranked" or comparison.test != "mann_whitney":
        return comparison.p_value
    base_hours, observed_hours = hours if hours is not None else (None, None)
    n1, n2 = int(np.isfinite(base).sum()), int(np.isfinite(observed).sum())
    if n1 < 4 or n2 < 4:
        return comparison.p_value
    # The daily cycle is not noise to an hour-matched test: autocorrelation without it.
    tau1 = n1 / effective_sample_size(base, ranks=True, strata=base_hours)
    tau2 = n2 / effective_sample_size(observed, ranks=True, strata=observed_hours)
    tau = max((n2 * tau1 + n1 * tau2) / (n1 + n2), 1.0)
    from scipy import special  # imported when used: cheap process start-up

    z = float(special.ndtri(1.0 - min(max(comparison.p_value, 1e-300), 1.0) / 2.0))
    return float(min(1.0, 2.0 * special.ndtr(-abs(z) / math.sqrt(tau))))


def _normalised(keys: list[str], key: tuple) -> tuple:
    return tuple(int(part) if k == "day" else part for k, part in zip(keys, key, strict=True))


class _Groups:
    """The rows of `frame` for each value of `keys`, taken out on demand: the rows are
    grouped once, but only the cells a rank test or a count asks for are copied (a week of
    500 series holds millions of rows, a window a few dozen candidate cells)."""

    def __init__(
        self,
        frame: pd.DataFrame | None,
        keys: list[str],
        columns: list[str],
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """`extra`: more columns, one value per row of `frame` (not added to it: a copy)."""
        self._frame = frame if frame is not None and len(frame) else None
        self._columns = [*keys, *(name for name in columns if name not in (extra or {}))]
        self._extra = dict(extra or {})
        self._order = [*keys, *columns]
        self._positions: dict[tuple, np.ndarray] = {}
        self._taken: dict[tuple, pd.DataFrame] = {}
        self._arrays = (
            {name: self._frame[name].array for name in self._columns}
            if self._frame is not None
            else {}
        )
        if self._frame is not None:
            groups = self._frame.groupby(keys, sort=False).indices
            self._positions = {_normalised(keys, key): rows for key, rows in groups.items()}

    def get(self, key: tuple, default: pd.DataFrame | None = None) -> pd.DataFrame | None:
        """The rows of `key` (the same frame each time it is asked for: a service's
        throughput is asked for by each of its error-like KPIs and days)."""
        if key in self._taken:
            return self._taken[key]
        rows = self._positions.get(key)
        if rows is None or self._frame is None:
            return default
        # Column by column from the arrays (what iloc would do, without its block copies).
        taken = {name: array.take(rows) for name, array in self._arrays.items()}
        taken.update({name: values[rows] for name, values in self._extra.items()})
        part = pd.DataFrame(
            {name: taken[name] for name in self._order}, index=self._frame.index[rows]
        )
        self._taken[key] = part
        return part


def _grouped_frames(samples: pd.DataFrame, keys: list[str], timezone: str) -> _Groups:
    """The rows by `keys` with their local hour and value."""
    if samples is None or not len(samples):
        return _Groups(None, keys, ["hour", "value"])
    hours = local_hour(samples["ts"], timezone) if "hour" not in samples.columns else None
    return _Groups(samples, keys, ["hour", "value"], {"hour": hours} if hours is not None else None)


def _grouped_values(samples: pd.DataFrame, keys: list[str]) -> dict[tuple, np.ndarray]:
    if samples is None or samples.empty:
        return {}
    values = samples["value"].to_numpy(dtype="float64")
    groups = samples.groupby(keys, sort=False).indices
    return {_normalised(keys, key): values[positions] for key, positions in groups.items()}


def _matched_values(
    baseline: pd.DataFrame | None, day: pd.DataFrame | None, weekday_factor: float
) -> tuple[np.ndarray, np.ndarray]:
    if baseline is None or day is None:
        empty_base = baseline["value"].to_numpy("float64") if baseline is not None else _EMPTY
        empty_day = day["value"].to_numpy("float64") if day is not None else _EMPTY
        return empty_base, empty_day
    return hour_matched_values(baseline, day, weekday_factor)


class TrafficSides:
    """Request and error counts of an error-like KPI's service, baseline and day."""

    def __init__(
        self, baseline: pd.DataFrame, day: pd.DataFrame, step_seconds: float | None
    ) -> None:
        self.step_seconds = step_seconds
        usable = step_seconds is not None and all(
            frame is not None and "ts" in frame.columns for frame in (baseline, day)
        )
        self.baseline = _frames_by(baseline if usable else None, _KEYS)
        self._baseline_counts: dict[tuple[str, str], TrafficCounts | None] = {}
        self.day = _frames_by(day if usable else None, [*_KEYS, "day"])

    def sides(
        self, service: str, kpi: str, day: int
    ) -> tuple[TrafficCounts | None, TrafficCounts | None]:
        share = error_share(kpi)
        if share is None or self.step_seconds is None:
            return None, None
        if (service, kpi) not in self._baseline_counts:  # the same for every day
            self._baseline_counts[(service, kpi)] = traffic_counts_from_frames(
                self.baseline.get((service, "throughput")),
                self.baseline.get((service, kpi)),
                self.step_seconds,
                share,
            )
        baseline = self._baseline_counts[(service, kpi)]
        observed = traffic_counts_from_frames(
            self.day.get((service, "throughput", day)),
            self.day.get((service, kpi, day)),
            self.step_seconds,
            share,
        )
        return baseline, observed


def _frames_by(samples: pd.DataFrame, keys: list[str]) -> _Groups:
    """Throughput and the error-like KPIs' rows (what request counts are made of)."""
    if samples is not None and len(samples):
        counted = samples["kpi"].isin(["throughput", *ERROR_LIKE_KPIS]).to_numpy()
        samples = samples[counted]
    return _Groups(samples, keys, ["ts", "value"])


class _Samples:
    """The two sides of each candidate KPI-day's rank test: whole days, or (with a timezone)
    the same local hours the drift step compared."""

    def __init__(self, baseline: pd.DataFrame, day: pd.DataFrame, timezone: str | None) -> None:
        self.hour_matched = (
            timezone is not None
            and baseline is not None
            and day is not None
            and "ts" in baseline.columns
            and "ts" in day.columns
        )
        if self.hour_matched:
            self.baseline_frames = _grouped_frames(baseline, _KEYS, timezone)
            self.day_frames = _grouped_frames(day, [*_KEYS, "day"], timezone)
        else:
            self.baseline_values = _grouped_values(baseline, _KEYS)
            self.day_values = _grouped_values(day, [*_KEYS, "day"])

    def hours(self, service: str, kpi: str, day: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The local hour of each sample `sides` returns (same filter, same order), for
        the autocorrelation of the samples without their daily cycle; None without."""
        if not self.hour_matched:
            return None
        base = self.baseline_frames.get((service, kpi))
        day_frame = self.day_frames.get((service, kpi, day))
        if base is None or day_frame is None:
            return None
        common = set(base["hour"].tolist()) & set(day_frame["hour"].tolist())
        if common:
            base = base[base["hour"].isin(common)]
            day_frame = day_frame[day_frame["hour"].isin(common)]
        return base["hour"].to_numpy(), day_frame["hour"].to_numpy()

    def sides(self, service: str, kpi: str, day: int, row: Mapping) -> tuple[np.ndarray, ...]:
        if self.hour_matched:
            return _matched_values(
                self.baseline_frames.get((service, kpi)),
                self.day_frames.get((service, kpi, day)),
                finite_or_none(row.get("weekday_factor")) or 1.0,
            )
        return (
            self.baseline_values.get((service, kpi), _EMPTY),
            self.day_values.get((service, kpi, day), _EMPTY),
        )


def _weighted_adverse_pct(kpi: KpiDefinition, base: float, observed: float) -> float | None:
    """The adverse move, in % of the baseline, of a percentage-of-requests KPI computed as
    errors / requests of the whole day (`base`, `observed`: error rates in %); None where
    undefined (not such a KPI, or no errors in the baseline)."""
    share = error_share(kpi.name)
    if share is None:
        return None
    if share == "good":
        base, observed = 100.0 - base, 100.0 - observed
    if not abs(base) > 0:
        return None
    return adverse_sign(kpi.direction) * (observed - base) / abs(base) * 100.0


def _weighted_move_counts(kpi: KpiDefinition, comparison: Comparison, threshold: float) -> bool:
    """For a percentage of requests with counts on both sides, whether the request-weighted
    figure (errors / requests of the whole day) also moved the bad way by the threshold.

    A day's mean of per-minute percentages weighs a quiet minute (the night, a weekend) like
    a busy one, and quiet minutes are where one failed request is a large percentage: the
    mean can move 12 % while the day's error rate moved 3 %. A rate tested over a ~0
    baseline is already judged on the counts."""
    base, observed = comparison.baseline_error_rate_pct, comparison.observed_error_rate_pct
    if base is None or observed is None or comparison.test == "poisson_rate":
        return True
    move = _weighted_adverse_pct(kpi, base, observed)
    return move is None or move >= threshold


def held_by_counts(
    drift: pd.DataFrame,
    baseline_samples: pd.DataFrame,
    day_samples: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    step_seconds: float,
    counts: TrafficSides | None = None,
) -> set[tuple[str, str]]:
    """(service, kpi) pairs of percentage-of-requests KPIs whose request-weighted rate
    moved the bad way by less than the KPI's `threshold_pct` on every day of `drift`
    (≥ 1) with counts: their day means drifted on quiet minutes, not on requests
    (`_weighted_move_counts`). Not an unexpected drift to investigate either."""
    if drift is None or drift.empty:
        return set()
    if counts is None:
        counts = TrafficSides(baseline_samples, day_samples, step_seconds)
    held = set()
    for (service, kpi_name), rows in drift[drift["day"] >= 1].groupby(["service", "kpi"]):
        kpi = kpis.get(kpi_name)
        if kpi is None or error_share(kpi_name) is None:
            continue
        moves = []
        for day in rows["day"].astype(int):
            baseline, observed = counts.sides(service, kpi_name, day)
            if baseline is None or observed is None or not observed.requests:
                continue
            moves.append(
                _weighted_adverse_pct(kpi, baseline.error_rate_pct, observed.error_rate_pct)
            )
        if moves and all(move is not None and move < kpi.threshold_pct for move in moves):
            held.add((service, kpi_name))
    return held


def find_degradations(
    drift: pd.DataFrame,
    baseline_samples: pd.DataFrame,
    day_samples: pd.DataFrame,
    slo_status: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    *,
    p_value: float,
    degradation_threshold_pct: Callable[[KpiDefinition], float],
    well_inside_utilisation: float,
    last_day: int,
    timezone: str | None = None,
    zero_heavy_share: float = 0.5,
    step_seconds: float | None = None,
    min_requests: float = DEFAULT_MIN_REQUESTS,
    fdr: FdrSettings | None = None,
) -> list[Degradation]:
    """One `Degradation` per (service, KPI) that degraded on at least one day of 1..N.

    With `fdr` (thresholds.fdr_method / fdr_q), a KPI-day must also survive the window's
    false-discovery control: every (service, KPI, day) cell of a KPI with a bad side is a
    test of the family (a cell below the drift threshold enters with p = 1); each tested
    cell's p is first widened for the samples' autocorrelation (`autocorrelated_p`), then
    adjusted by Benjamini-Hochberg (or -Yekutieli); the day counts only with an adjusted p
    ≤ q. Each degradation carries its q-value and the worst day's Hodges-Lehmann shift.

    A KPI-day is a degradation when the KPI is not cost-kind and has a bad direction, its
    adverse drift is ≥ `degradation_threshold_pct(kpi)` (or, with a ~0 baseline, the drift
    step flagged a move the bad way), AND the two-sided Mann-Whitney U test of the GA-day
    samples vs that day's samples gives p < `p_value`, AND Cliff's delta points the bad way.
    A shifted mean without a shifted distribution (one spike) is therefore not a regression;
    a KPI-day without samples on either side is a "no_data" comparison and not judged one.
    Sorted by severity, then adverse drift (largest first).

    `slo_status`: day, service, kpi, slo, utilisation, breached, exhausted (window budget
    ≥ 100 %); may be empty.

    With `timezone` (and a `ts` column in both sample frames) the rank test compares the
    same local hours the drift step compared (`seasonality.hour_matched_values`): baseline
    samples of the hours the day has, × the drift row's `weekday_factor` when present, so
    a partial day is not "significantly lower" for missing its peak. Series with at least
    `zero_heavy_share` zeros pooled read their effect size among untied pairs
    (`compare_samples`).

    With `step_seconds`, an error-like KPI (error_rate, availability) carries the service's
    request and error counts per side (`traffic`): a day under `min_requests` requests is
    "insufficient traffic", not a degradation, and errors appearing over a ~0 baseline are
    judged by the rate test, not only by ranks.
    """
    tested = tested_series(
        drift,
        baseline_samples,
        day_samples,
        kpis,
        p_value=p_value,
        degradation_threshold_pct=degradation_threshold_pct,
        timezone=timezone,
        zero_heavy_share=zero_heavy_share,
        step_seconds=step_seconds,
        min_requests=min_requests,
        fdr=fdr,
    )
    return decide_degradations(
        tested,
        slo_status,
        p_value=p_value,
        well_inside_utilisation=well_inside_utilisation,
        last_day=last_day,
        fdr=fdr,
    )


@dataclass
class SeriesCells:
    """One (service, KPI)'s tested days (`tested_series`): what the window-wide decision
    (`decide_degradations`) needs of it once its samples are gone."""

    service: str
    kpi: KpiDefinition
    threshold: float
    by_day: dict[int, Mapping]
    cells: list[_Cell]


def tested_series(
    drift: pd.DataFrame,
    baseline_samples: pd.DataFrame,
    day_samples: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    *,
    p_value: float,
    degradation_threshold_pct: Callable[[KpiDefinition], float],
    timezone: str | None = None,
    zero_heavy_share: float = 0.5,
    step_seconds: float | None = None,
    min_requests: float = DEFAULT_MIN_REQUESTS,
    fdr: FdrSettings | None = None,
    counts: TrafficSides | None = None,
) -> list[SeriesCells]:
    """The rank test of every candidate KPI-day of `drift` on these samples, in (service,
    KPI) order: the part of `find_degradations` that reads samples. The services of
    `drift` may be any subset of the window's (the window judge streams a few at a time);
    the lists of subsets in service order, concatenated, are the whole window's list."""
    if drift is None or drift.empty:
        return []
    drift = drift[drift["day"] >= 1]
    samples = _Samples(baseline_samples, day_samples, timezone)
    if counts is None:
        counts = TrafficSides(baseline_samples, day_samples, step_seconds)
    method = (fdr or FdrSettings(method="none")).method
    tested: list[SeriesCells] = []
    for (service, kpi_name), rows in drift.groupby(["service", "kpi"], sort=True):
        kpi = kpis.get(kpi_name)
        if kpi is None or kpi.kind == "cost" or not has_bad_side(kpi.direction):
            continue
        threshold = degradation_threshold_pct(kpi)
        by_day = {int(row["day"]): row for row in rows.to_dict("records")}
        own: list[_Cell] = []
        for day in sorted(by_day):
            row = by_day[day]
            cell = _Cell(str(service), kpi, day, row)
            own.append(cell)
            if not crosses_threshold(row, threshold):
                continue
            base_values, observed_values = samples.sides(service, kpi_name, day, row)
            baseline_traffic, observed_traffic = counts.sides(service, kpi_name, day)
            comparison = compare_samples(
                base_values,
                observed_values,
                zero_heavy_share=zero_heavy_share,
                kpi=kpi,
                baseline_traffic=baseline_traffic,
                observed_traffic=observed_traffic,
                min_requests=min_requests,
            )
            cell.comparison = comparison
            sides = (np.asarray(base_values, "float64"), np.asarray(observed_values, "float64"))
            cell.adverse = comparison.is_adverse(p_value, kpi.direction) and _weighted_move_counts(
                kpi, comparison, threshold
            )
            hours = samples.hours(service, kpi_name, day)
            # Every tested cell enters the family with its p (a no-data one with 1): a
            # family of only the adverse ones would be selected on the data.
            if comparison.outcome != "no_data":
                cell.p_autocorrelated = (
                    autocorrelated_p(comparison, *sides, hours)
                    if method != "none"
                    else comparison.p_value
                )
            if cell.adverse:  # only a degraded day's samples are looked at again
                cell.sides, cell.hours = sides, hours
        tested.append(SeriesCells(str(service), kpi, threshold, by_day, own))
    return tested


def decide_degradations(
    tested: Sequence[SeriesCells],
    slo_status: pd.DataFrame,
    *,
    p_value: float,
    well_inside_utilisation: float,
    last_day: int,
    fdr: FdrSettings | None = None,
) -> list[Degradation]:
    """The window's degradations from every tested series (`tested_series`, the whole window
    in service order): the false-discovery control over the family of all their cells,
    then one `Degradation` per series with a surviving adverse day, sorted as
    `find_degradations` says."""
    impacts = slo_impacts(slo_status)
    exhausted_keys = {(key[0], key[1]) for key, impact in impacts.items() if impact.exhausted}
    settings = fdr or FdrSettings(method="none", q=1.0 - 1e-12)
    cells = [cell for series in tested for cell in series.cells]
    family = fdr_adjust(
        [cell.p_autocorrelated for cell in cells], q=settings.q, method=settings.method
    )
    q_of = {id(cell): float(q) for cell, q in zip(cells, family.adjusted, strict=True)}

    degradations: list[Degradation] = []
    for series in tested:
        service, kpi, own = series.service, series.kpi, series.cells
        kpi_name = kpi.name
        degraded = [
            _DegradedDay(
                cell.day,
                cell.row,
                cell.comparison,
                cell.p_autocorrelated,
                q_of[id(cell)],
                cell.sides,
                cell.hours,
            )
            for cell in own
            if cell.adverse
            and cell.comparison is not None
            and (settings.method == "none" or q_of[id(cell)] <= settings.q)
        ]
        if not degraded:
            continue
        degradations.append(
            _degradation(
                service=service,
                kpi=kpi,
                degraded=degraded,
                last_row=series.by_day.get(last_day),
                last_day=last_day,
                threshold=series.threshold,
                impacts=impacts,
                exhausted=(service, kpi_name) in exhausted_keys,
                p_value=p_value,
                well_inside_utilisation=well_inside_utilisation,
                fdr=settings if fdr is not None else None,
                tests=family.m,
            )
        )
    return sorted(
        degradations,
        key=lambda d: (
            SEVERITY_RANK[d.severity.level],
            d.adverse_drift_pct is None,
            -(d.adverse_drift_pct or 0.0),
            d.service,
            d.kpi.name,
        ),
    )


def _worst(days: Sequence[_DegradedDay]) -> _DegradedDay:
    def badness(entry: _DegradedDay) -> tuple[float, float]:
        adverse = finite_or_none(entry.drift.get("adverse_drift_pct"))
        change = finite_or_none(entry.drift.get("adverse_change"))
        return (adverse if adverse is not None else -1.0, change or 0.0)

    return max(days, key=badness)


def _degradation(
    *,
    service: str,
    kpi: KpiDefinition,
    degraded: Sequence[_DegradedDay],
    last_row: Mapping | None,
    last_day: int,
    threshold: float,
    impacts: Mapping[tuple[str, str, int], SloImpact],
    exhausted: bool,
    p_value: float,
    well_inside_utilisation: float,
    fdr: FdrSettings | None = None,
    tests: int = 0,
) -> Degradation:
    worst = _worst(degraded)
    drift = worst.drift
    adverse = finite_or_none(drift.get("adverse_drift_pct")) if drift["relative"] else None
    day_impacts = [impacts.get((service, kpi.name, entry.day)) for entry in degraded]
    severity = severity_of(
        threshold_multiple=adverse / threshold if adverse is not None else None,
        effect_magnitude=worst.comparison.effect_magnitude,
        impacts=day_impacts,
        well_inside_utilisation=well_inside_utilisation,
        budget_exhausted=exhausted,  # a window fact: it counts even on days without a row
    )
    degraded_days = tuple(entry.day for entry in degraded)
    resolved = (
        last_row is not None
        and last_day not in degraded_days
        and not crosses_threshold(last_row, threshold)
    )
    return Degradation(
        kpi=kpi,
        service=service,
        statistic=drift.get("statistic", kpi.statistic),
        severity=severity,
        days_degraded=degraded_days,
        worst_day=worst.day,
        baseline=finite_or_none(drift["baseline_value"]),
        observed=finite_or_none(drift["observed_value"]),
        change_pct=finite_or_none(drift.get("drift_pct")),
        abs_change=finite_or_none(drift.get("abs_change")),
        adverse_drift_pct=adverse,
        threshold_pct=threshold,
        comparison=worst.comparison,
        baseline_method=drift.get("baseline_method"),
        weekday_factor=finite_or_none(drift.get("weekday_factor")),
        resolved=resolved,
        worst_slo=impacts.get((service, kpi.name, worst.day)),
        slo_breached=any(i is not None and i.breached for i in day_impacts),
        slo_exhausted=exhausted,
        p_threshold=p_value,
        honesty=(
            Honesty(
                p_value_autocorrelated=worst.p_autocorrelated,
                q_value=worst.q_value,
                fdr_method=fdr.method,
                fdr_q=fdr.q,
                tests=tests,
                shift=_shift(worst, kpi, drift),
            )
            if fdr is not None
            else None
        ),
    )


def _shift(worst: _DegradedDay, kpi: KpiDefinition, drift: Mapping) -> Shift | None:
    base, observed = worst.sides
    if base.size == 0 or observed.size == 0:
        return None
    statistic = str(drift.get("statistic") or kpi.statistic)
    base_hours, observed_hours = worst.hours if worst.hours is not None else (None, None)
    return hodges_lehmann(
        base,
        observed,
        baseline_strata=base_hours,
        observed_strata=observed_hours,
        statistic=statistic if statistic in LEVEL_STATISTICS else "mean",
        near_zero=kpi.near_zero,
    )
