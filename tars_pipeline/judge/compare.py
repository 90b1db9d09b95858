"""Compare one metric's samples, baseline vs one day: Mann-Whitney U and Cliff's delta.

Kayenta's judge classifies each canary metric with a Mann-Whitney U test and an effect
size; this is that step for one (service, KPI, day). The result says which of three things
happened (`Comparison.outcome`):

- "no_data": a side had no finite sample, so there is no evidence either way;
- "no_change": every value on both sides is equal, so there is nothing to rank;
- "ranked": the rank test ran; p, U and δ say how far the day moved;
- "rate_tested": an error-like KPI (error_rate, availability; `traffic.ERROR_LIKE_KPIS`)
  whose baseline is ~0 (mean error % below the KPI's `near_zero`), given request counts
  for both sides: p is the one-sided conditional binomial test of the two error
  proportions (`traffic.rate_test`), since a relative change is undefined there and a rank
  test on per-minute percentages misses errors concentrated in a few minutes;
- "insufficient_traffic": an error-like KPI whose day had fewer than `min_requests`
  requests: not judged (`traffic_reason` says why).

U, δ and the other rank-test fields are filled in every outcome but "no_data". Whether a
comparison is a degradation is the caller's rule (`is_adverse`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from tars_pipeline.config import KpiDefinition
from tars_pipeline.judge.direction import adverse_sign
from tars_pipeline.judge.traffic import (
    DEFAULT_MIN_REQUESTS,
    TrafficCounts,
    error_pct,
    error_share,
    has_enough_traffic,
    insufficient_traffic_reason,
    rate_test,
)

Outcome = Literal["no_data", "no_change", "ranked", "rate_tested", "insufficient_traffic"]
Test = Literal["mann_whitney", "poisson_rate"]

# Cliff's delta magnitude bands (Romano et al., 2006, "Appropriate statistics for ordinal
# level data", after Cohen's d of 0.2 / 0.5 / 0.8).
EFFECT_MAGNITUDE_BANDS: tuple[tuple[float, str], ...] = (
    (0.147, "negligible"),
    (0.33, "small"),
    (0.474, "medium"),
)


def effect_magnitude(delta: float) -> str:
    """negligible |δ| < 0.147, small < 0.33, medium < 0.474, else large (Romano et al.)."""
    size = abs(delta)
    for upper, label in EFFECT_MAGNITUDE_BANDS:
        if size < upper:
            return label
    return "large"


def is_adverse_effect(effect_size: float, direction: str) -> bool:
    """Observed moved the bad way: up for lower_is_better, down for higher_is_better."""
    return adverse_sign(direction) * effect_size > 0


@dataclass(frozen=True)
class Comparison:
    """Baseline vs observed samples of one metric.

    effect_size is Cliff's delta of observed vs baseline, P(obs > base) − P(obs < base), the
    rank-biserial correlation 2U/(n₁n₂) − 1 with U the observed sample's Mann-Whitney U:
    +1 when every observed value exceeds every baseline value.

    tie_share is P(obs = base) over all pairs. A series is `zero_heavy` when at least the
    configured share of the pooled samples is exactly 0 (sparse error rates): most pairs
    are then 0 = 0 ties, which pull δ towards 0 whatever happened on the minutes with
    errors. Its magnitude is then read from δ / (1 − tie_share), the dominance among the
    pairs that differ (ties carry no information about which side dominates; N. Cliff,
    "Dominance statistics", Psychological Bulletin 114(3), 1993), so a day whose error
    minutes went from 2 % to 10 % of the day is not called a negligible change.
    `nonzero_*_pct` say how many samples carried errors on each side.

    With request counts (error-like KPIs): `test` names the test behind `p_value`
    ("poisson_rate" for a "rate_tested" outcome, else "mann_whitney"), `rate_p_value` is the
    rate test's p, and the counts and error rates of both sides are given; an
    "insufficient_traffic" outcome sets `insufficient_traffic` and `traffic_reason`.
    """

    p_value: float
    u_statistic: float
    effect_size: float
    effect_magnitude: str
    baseline_count: int
    observed_count: int
    tie_share: float = 0.0
    zero_heavy: bool = False
    nonzero_baseline_pct: float | None = None
    nonzero_observed_pct: float | None = None
    outcome: Outcome = "ranked"
    test: Test = "mann_whitney"
    rate_p_value: float | None = None
    baseline_requests: float | None = None
    baseline_errors: float | None = None
    observed_requests: float | None = None
    observed_errors: float | None = None
    baseline_error_rate_pct: float | None = None
    observed_error_rate_pct: float | None = None
    insufficient_traffic: bool = False
    traffic_reason: str | None = None

    @property
    def no_data(self) -> bool:
        """A side had no finite sample: p = 1 here means "not measured", not "no change"."""
        return self.outcome == "no_data"

    @property
    def untied_effect_size(self) -> float:
        """δ / (1 − P(tie)): Cliff's delta among the pairs that differ (0 when all tie)."""
        untied = 1.0 - self.tie_share
        return self.effect_size / untied if untied > 0 else 0.0

    def is_adverse(self, p_threshold: float, direction: str) -> bool:
        """Ranked, significant at `p_threshold`, and Cliff's delta points the bad way; or
        rate-tested, significant, and the day's error proportion the higher one (more
        errors are the bad way for error rate and availability alike). Never for
        "no_data", "no_change" or "insufficient_traffic"."""
        if self.outcome == "rate_tested":
            base = self.baseline_error_rate_pct or 0.0
            observed = self.observed_error_rate_pct
            return self.p_value < p_threshold and observed is not None and observed > base
        return (
            self.outcome == "ranked"
            and self.p_value < p_threshold
            and is_adverse_effect(self.effect_size, direction)
        )

    def traffic_record(self) -> dict:
        """The request-count keys, to append after a record's existing keys: test,
        rate_p_value, baseline_requests, baseline_errors, observed_requests,
        observed_errors, baseline_error_rate_pct, observed_error_rate_pct,
        insufficient_traffic, traffic_reason."""
        return {
            "test": self.test,
            "rate_p_value": self.rate_p_value,
            "baseline_requests": self.baseline_requests,
            "baseline_errors": self.baseline_errors,
            "observed_requests": self.observed_requests,
            "observed_errors": self.observed_errors,
            "baseline_error_rate_pct": self.baseline_error_rate_pct,
            "observed_error_rate_pct": self.observed_error_rate_pct,
            "insufficient_traffic": self.insufficient_traffic,
            "traffic_reason": self.traffic_reason,
        }


def _tie_share(base: np.ndarray, obs: np.ndarray) -> float:
    """P(obs = base) over all n_base · n_obs pairs: Σ_v n_base(v) · n_obs(v) / (n_base · n_obs)."""
    base_values, base_counts = np.unique(base, return_counts=True)
    obs_values, obs_counts = np.unique(obs, return_counts=True)
    _, base_at, obs_at = np.intersect1d(base_values, obs_values, return_indices=True)
    tied = float((base_counts[base_at].astype("float64") * obs_counts[obs_at]).sum())
    return tied / (float(base.size) * float(obs.size))


def compare_samples(
    baseline: np.ndarray,
    observed: np.ndarray,
    *,
    zero_heavy_share: float = 0.5,
    kpi: KpiDefinition | None = None,
    baseline_traffic: TrafficCounts | None = None,
    observed_traffic: TrafficCounts | None = None,
    min_requests: float = DEFAULT_MIN_REQUESTS,
) -> Comparison:
    """Two-sided Mann-Whitney U test (scipy.stats.mannwhitneyu, tie-corrected) of observed
    vs baseline, as Kayenta's judge classifies a canary metric, with Cliff's delta.

    Non-finite values are dropped first. An empty side ("no_data"), or all values equal
    ("no_change", nothing to rank), gives p = 1.0 and δ = 0: no evidence of a change. The
    rank test stays valid for zero-heavy series (its tie correction handles the zeros); only
    the reading of the effect size changes (see `Comparison`): with ≥ `zero_heavy_share`
    zeros pooled, the magnitude comes from δ among the pairs that differ.

    Request counts (`traffic.traffic_counts_from_frames` of the service's throughput and
    this KPI, one per side) matter only with an error-like `kpi` (error_rate,
    availability); without them, or for another KPI, the result is the rank test's alone:

    - `observed_traffic` below `min_requests` requests → "insufficient_traffic";
    - else, with `baseline_traffic` too and a baseline whose mean error % is below
      `kpi.near_zero` → "rate_tested" (`traffic.rate_test`).
    """
    from scipy import stats  # imported when used: ~0.5 s a process

    base = np.asarray(baseline, dtype="float64")
    obs = np.asarray(observed, dtype="float64")
    base, obs = base[np.isfinite(base)], obs[np.isfinite(obs)]
    n_base, n_obs = base.size, obs.size
    if n_base == 0 or n_obs == 0:
        return Comparison(1.0, 0.0, 0.0, "negligible", n_base, n_obs, outcome="no_data")
    nonzero_base = float(np.count_nonzero(base)) / n_base * 100.0
    nonzero_obs = float(np.count_nonzero(obs)) / n_obs * 100.0
    zero_share = 1.0 - (np.count_nonzero(base) + np.count_nonzero(obs)) / (n_base + n_obs)
    zero_heavy = bool(zero_share >= zero_heavy_share)
    if np.ptp(np.concatenate([base, obs])) == 0:
        tied = Comparison(
            1.0,
            n_base * n_obs / 2.0,
            0.0,
            "negligible",
            n_base,
            n_obs,
            1.0,
            zero_heavy,
            nonzero_base,
            nonzero_obs,
            outcome="no_change",
        )
        return _with_traffic(
            tied, base, kpi, baseline_traffic, observed_traffic, min_requests=min_requests
        )
    result = stats.mannwhitneyu(obs, base, alternative="two-sided")
    u_statistic = float(result.statistic)
    p_value = float(result.pvalue)
    if not math.isfinite(p_value):
        p_value = 1.0
    delta = 2.0 * u_statistic / (n_base * n_obs) - 1.0
    comparison = Comparison(
        p_value,
        u_statistic,
        delta,
        effect_magnitude(delta),
        n_base,
        n_obs,
        _tie_share(base, obs),
        zero_heavy,
        nonzero_base,
        nonzero_obs,
    )
    if zero_heavy:
        comparison = replace(
            comparison, effect_magnitude=effect_magnitude(comparison.untied_effect_size)
        )
    return _with_traffic(
        comparison, base, kpi, baseline_traffic, observed_traffic, min_requests=min_requests
    )


def _with_traffic(
    comparison: Comparison,
    base: np.ndarray,
    kpi: KpiDefinition | None,
    baseline_traffic: TrafficCounts | None,
    observed_traffic: TrafficCounts | None,
    *,
    min_requests: float,
) -> Comparison:
    """The rank test's comparison, re-judged on request counts where they apply."""
    share = error_share(kpi.name) if kpi is not None else None
    if share is None or (baseline_traffic is None and observed_traffic is None):
        return comparison
    counts = {}
    if baseline_traffic is not None:
        counts["baseline_requests"] = baseline_traffic.requests
        counts["baseline_errors"] = baseline_traffic.errors
        counts["baseline_error_rate_pct"] = baseline_traffic.error_rate_pct
    if observed_traffic is not None:
        counts["observed_requests"] = observed_traffic.requests
        counts["observed_errors"] = observed_traffic.errors
        counts["observed_error_rate_pct"] = observed_traffic.error_rate_pct
    comparison = replace(comparison, **counts)
    if observed_traffic is not None and not has_enough_traffic(
        observed_traffic.requests, min_requests
    ):
        reason = insufficient_traffic_reason(observed_traffic.requests, min_requests)
        return replace(
            comparison,
            outcome="insufficient_traffic",
            insufficient_traffic=True,
            traffic_reason=reason,
        )
    baseline_near_zero = abs(float(error_pct(base, share).mean())) < kpi.near_zero
    if baseline_traffic is None or observed_traffic is None or not baseline_near_zero:
        return comparison
    test = rate_test(baseline_traffic, observed_traffic)
    return replace(
        comparison,
        outcome="rate_tested",
        test="poisson_rate",
        p_value=test.p_value,
        rate_p_value=test.p_value,
        baseline_error_rate_pct=test.baseline_rate_pct,
        observed_error_rate_pct=test.observed_rate_pct,
    )
