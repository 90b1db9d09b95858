"""Statistical honesty: what the window's rank tests can and cannot claim.

The judge runs one Mann-Whitney U test per (service, KPI, day) on ~1,440 per-minute samples
a side (`compare.compare_samples`). Three things keep those tests honest:

- `fdr_adjust`: a window has hundreds of KPI × service × day cells, so some p < 0.01 turn
  up by chance alone. Benjamini-Hochberg (or Benjamini-Yekutieli) adjusted p-values bound
  the expected share of false discoveries among the degradations reported.
- `effective_sample_size`: per-minute samples are autocorrelated (a 5-minute `rate()`
  window makes neighbouring minutes share 4/5 of their requests), so 1,440 samples carry
  the information of a few hundred. Every interval and detectable effect below uses it.
- `min_detectable_effect` and `hodges_lehmann`: "no degradation" only means something next
  to the smallest change the traffic could have shown, and a degradation's size needs an
  interval, not only a p-value. Kayenta's Mann-Whitney classifier reports the same shift
  estimate and distribution-free interval (R's `wilcox.test(conf.int = TRUE)`).

Pure functions over arrays; no store, no Dagster. docs/methods/statistical-honesty.md has
the formulas and the figures measured on simulations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, cast

import numpy as np

from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.formatting import finite_or_none, format_with_unit, magnitude_pct

FdrMethod = Literal["bh", "by", "none"]
FDR_METHODS: tuple[str, ...] = ("bh", "by", "none")
UNTESTED_P_VALUE = 1.0
"""The p-value of a cell that was considered but not tested (its drift did not cross the
threshold): it stays in the family, so pre-filtering cannot shrink m and loosen the bar."""

LevelStatistic = Literal["mean", "p50", "p95", "p99", "max", "min"]
_PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
MdeOutcome = Literal["measured", "no_data", "tied", "too_few_samples"]
ShiftOutcome = Literal["measured", "no_data"]
IntervalMethod = Literal["exact", "normal"]

TIED_SHARE = 0.5
"""A baseline whose most common value is at least this share of its samples (a zero-heavy
error rate, a replica count) is "tied": a shift of the whole distribution is not how it
changes, and the rank test's ties, not a spread, decide what it can see."""
_MAX_SELECTION_STEPS = 200
_EXACT_NULL_PAIRS = 2_500  # n₁·n₂ up to which the U null distribution is enumerated
_MATERIALISE_PAIRS = 1 << 18  # pairwise differences held in memory at once (2 MiB)


# --- false-discovery control ---------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FdrResult:
    """Adjusted p-values of one family of tests, in the order given.

    `adjusted` is NaN where the input p was NaN (not a test: no data); `rejected` is
    adjusted ≤ q there and False elsewhere; `m` counts the finite p-values, the family
    size the adjustment used.
    """

    adjusted: np.ndarray
    rejected: np.ndarray
    m: int
    q: float
    method: FdrMethod

    @property
    def discoveries(self) -> int:
        return int(np.count_nonzero(self.rejected))

    def adjusted_p(self, index: int) -> float | None:
        """Cell `index`'s adjusted p-value; None for a cell that was not a test."""
        return finite_or_none(self.adjusted.flat[index])

    def as_record(self) -> dict:
        """method, q, m (tests in the family), discoveries (adjusted p ≤ q)."""
        return {"method": self.method, "q": self.q, "m": self.m, "discoveries": self.discoveries}


def fdr_adjust(
    p_values: Sequence[float] | np.ndarray, *, q: float, method: str = "bh"
) -> FdrResult:
    """False-discovery-rate adjusted p-values of every test of the window.

    `method`: "bh" Benjamini & Hochberg (1995), valid for independent or positively
    dependent tests (one KPI's days, one service's KPIs move together: PRDS); "by"
    Benjamini & Yekutieli (2001), valid under any dependence at the price of a factor
    Σ 1/i ≈ ln m + 0.58 on every p; "none" leaves p as it is. Adjusted by
    `scipy.stats.false_discovery_control`; a cell is rejected when its adjusted p ≤ q.

    The family is every (service, KPI, day) cell considered, not only those tested: a cell
    the drift threshold filtered out enters as p = `UNTESTED_P_VALUE` (1.0), so m is the
    same whatever the pre-filter let through. Dropping them would select the family on the
    data: the cells tested are those that already moved, and BH over them alone lets
    through more false discoveries than q (docs/methods/statistical-honesty.md measures
    it). A NaN p is not a test at all (no samples on a side): it is left out of m and
    stays NaN and not rejected.
    """
    from scipy import stats  # imported when used: ~0.5 s a process

    if method not in FDR_METHODS:
        raise TarsUserError(
            f"unknown false-discovery method {method!r}",
            where="thresholds.fdr_method",
            remedy="use bh (Benjamini-Hochberg), by (Benjamini-Yekutieli) or none",
        )
    if _probability(q) is None:
        raise TarsUserError(
            f"false-discovery rate q must be a number in (0, 1), got {q!r}",
            where="thresholds.fdr_q",
            remedy="set it to the share of false discoveries you accept, e.g. 0.05",
        )
    try:
        p = np.asarray(p_values, dtype="float64")
    except (TypeError, ValueError) as error:
        raise TarsUserError(
            f"p-values must be numbers: {error}",
            where="fdr_adjust p_values",
            remedy="pass each comparison's p-value, 1.0 for a pre-filtered cell",
        ) from None
    tested = ~np.isnan(p)
    finite = p[tested]
    if finite.size and not (
        np.all(np.isfinite(finite)) and finite.min() >= 0 and finite.max() <= 1
    ):
        raise TarsUserError(
            "p-values must lie in [0, 1] (NaN for a cell that was not a test)",
            where="fdr_adjust p_values",
            remedy="pass each comparison's p-value, 1.0 for a pre-filtered cell",
        )
    adjusted = np.full(p.shape, np.nan)
    if finite.size:
        if method == "none":
            adjusted[tested] = finite
        else:
            adjusted[tested] = stats.false_discovery_control(finite, method=method)
    rejected = np.zeros(p.shape, dtype=bool)
    rejected[tested] = adjusted[tested] <= q
    return FdrResult(adjusted, rejected, int(finite.size), float(q), cast(FdrMethod, method))


# --- effective sample size -----------------------------------------------------------


def effective_sample_size(
    values: Sequence[float] | np.ndarray,
    *,
    strata: Sequence[object] | np.ndarray | None = None,
    ranks: bool = False,
) -> float:
    """How many independent samples a time-ordered series is worth: n / τ, with
    τ = 1 + 2 Σ_k ρ_k the integrated autocorrelation time.

    τ is Geyer's initial monotone sequence estimator (Geyer 1992, "Practical Markov chain
    Monte Carlo", Statistical Science 7(4), §3.3; the ESS of Stan and ArviZ): the sample
    autocorrelations are summed in pairs Γ_m = ρ_2m + ρ_2m+1 (ρ_0 = 1) up to the first
    pair ≤ 0, each pair capped at the one before. For an AR(1) series this is the textbook
    n·(1 − ρ₁)/(1 + ρ₁); unlike that formula it is also right for a moving-average series,
    which is what a 5-minute `rate()` sampled every minute is (ρ₁ = 0.8 reads as τ = 9 by
    the AR(1) formula; the true τ is 5).

    `strata` (one label per value, e.g. the local hour): the autocorrelation is taken of
    the values minus their stratum's mean. The judge's rank test compares the same hours
    on both sides, so the daily cycle is not noise to it; left in, it reads as hours-long
    dependence and leaves a day of samples worth ~4. `ranks`: the autocorrelation of the
    ranks, which is what a rank test's variance depends on, and which one spike cannot
    dominate.

    Non-finite values are dropped (a scrape gap closes up). The result lies in [1, n]:
    negative autocorrelation does not count as more information than n samples. Fewer
    than 4 samples, or no variation (after the strata's means), give n.
    """
    series = np.asarray(values, dtype="float64")
    labels = _strata(strata, series.size)
    keep = np.isfinite(series)
    series = series[keep]
    labels = labels[keep] if labels is not None else None
    return _effective_sample_size(series, labels, ranks=ranks)


def _strata(strata: Sequence[object] | np.ndarray | None, size: int) -> np.ndarray | None:
    if strata is None:
        return None
    labels = np.asarray(strata)
    if labels.shape != (size,):
        raise TarsUserError(
            f"strata must give one label per value ({size}), got shape {labels.shape}",
            where="effective_sample_size strata",
            remedy="pass the local hour of each sample, in the same order as the values",
        )
    return labels


def _effective_sample_size(series: np.ndarray, labels: np.ndarray | None, *, ranks: bool) -> float:
    from scipy import stats  # imported when used: ~0.5 s a process

    n = series.size
    if n < 4:
        return float(n)
    if ranks:
        series = stats.rankdata(series)
    if labels is not None:
        _, group = np.unique(labels, return_inverse=True)
        means = np.bincount(group, weights=series) / np.bincount(group)
        residual = series - means[group]
    else:
        residual = series - series.mean()
    # Rounding leaves ~1e-16 of the level where the strata's means explain every value.
    if not np.abs(residual).max() > 1e-12 * max(float(np.abs(series).max()), 1e-300):
        return float(n)
    tau = _integrated_autocorrelation_time(residual)
    return float(min(max(n / tau, 1.0), n))


def _integrated_autocorrelation_time(residual: np.ndarray) -> float:
    """Geyer's initial monotone sequence τ of a centred series with some variance."""
    n = residual.size
    residual = residual / np.abs(residual).max()  # keeps the FFT's squares far from overflow
    size = 1 << int(2 * n - 1).bit_length()
    spectrum = np.fft.rfft(residual, size)
    autocovariance = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    rho = autocovariance / autocovariance[0]
    pairs = rho[: 2 * (n // 2)].reshape(-1, 2).sum(axis=1)
    non_positive = np.flatnonzero(pairs <= 0)
    pairs = pairs[: non_positive[0]] if non_positive.size else pairs
    if pairs.size == 0:
        return 1.0
    pairs = np.minimum.accumulate(pairs)
    return max(float(-1.0 + 2.0 * pairs.sum()), 1e-12)


# --- pairwise differences ------------------------------------------------------------


def _pairwise_differences_at(
    base_sorted: np.ndarray, obs_sorted: np.ndarray, ranks: Sequence[int]
) -> list[float]:
    """The `ranks`-th smallest (1-based) of obs_j − base_i over all n₁·n₂ pairs.

    Up to `_MATERIALISE_PAIRS` pairs they are all computed and partitioned (exact). Beyond,
    a selection that never holds more than that many: the pairs are kept as one index
    window [low_j, high_j) of the sorted baseline per observed value (obs_j − base_i falls
    as i grows); a random pair of the window is the pivot, two `searchsorted` passes count
    the pairs below and at most it, and the window keeps the side the rank is on. Each
    step costs O(n log n) and removes a random share of the window, so ~10-20 steps reach
    a window small enough to partition. The counts compare base_i with obs_j − pivot, which
    can differ from obs_j − base_i in the last bit: the result is exact to rounding.
    """
    n_base, n_obs = base_sorted.size, obs_sorted.size
    if n_base * n_obs <= _MATERIALISE_PAIRS:
        differences = (obs_sorted[None, :] - base_sorted[:, None]).ravel()
        kth = sorted({rank - 1 for rank in ranks})
        ordered = np.partition(differences, kth)
        return [float(ordered[rank - 1]) for rank in ranks]
    rng = np.random.default_rng(0)
    return [_select_rank(base_sorted, obs_sorted, rank, rng) for rank in ranks]


def _select_rank(base: np.ndarray, obs: np.ndarray, rank: int, rng: np.random.Generator) -> float:
    n_base, n_obs = base.size, obs.size
    total_pairs = n_base * n_obs
    low = np.zeros(n_obs, dtype=np.int64)  # pairs with i < low_j lie above the window
    high = np.full(n_obs, n_base, dtype=np.int64)  # pairs with i ≥ high_j lie below it
    pivot = float(obs[0] - base[-1])
    for _ in range(_MAX_SELECTION_STEPS):
        widths = high - low
        window = int(widths.sum())
        below = total_pairs - int(high.sum())
        if window <= _MATERIALISE_PAIRS:
            return _select_in_window(base, obs, low, widths, rank - below)
        ends = np.cumsum(widths)
        pick = int(rng.integers(window))
        column = int(np.searchsorted(ends, pick, side="right"))
        row = int(low[column] + pick - (ends[column] - widths[column]))
        pivot = float(obs[column] - base[row])
        thresholds = obs - pivot
        at_most = np.searchsorted(base, thresholds, side="left")  # i ≥ this: d ≤ pivot
        under = np.searchsorted(base, thresholds, side="right")  # i ≥ this: d < pivot
        count_at_most = total_pairs - int(at_most.sum())
        count_under = total_pairs - int(under.sum())
        if count_under < rank <= count_at_most:
            return pivot
        if count_at_most < rank:
            high = np.minimum(high, at_most)
        else:
            low = np.maximum(low, under)
    return pivot


def _select_in_window(
    base: np.ndarray, obs: np.ndarray, low: np.ndarray, widths: np.ndarray, rank: int
) -> float:
    window = int(widths.sum())
    columns = np.repeat(np.arange(obs.size), widths)
    starts = np.cumsum(widths) - widths
    rows = np.repeat(low, widths) + (np.arange(window) - np.repeat(starts, widths))
    differences = obs[columns] - base[rows]
    kth = min(max(rank - 1, 0), window - 1)
    return float(np.partition(differences, kth)[kth])


# --- minimum detectable effect -------------------------------------------------------


@dataclass(frozen=True)
class Mde:
    """The smallest shift of a KPI the window's two-sided rank test at `alpha` would have
    detected with probability `power`, in the KPI's unit (`absolute`) and in % of the
    baseline's `statistic` (`pct`; None when that level is ~0).

    `outcome`: "measured"; "no_data" (no finite baseline sample, or no observed sample);
    "tied" (≥ `TIED_SHARE` of the baseline is one value: a shift model does not apply);
    "too_few_samples" (even a shift past every baseline value would not reach `power`).
    Only "measured" carries `absolute` and `pct`.
    """

    absolute: float | None
    pct: float | None
    n_eff_baseline: float
    n_eff_observed: float
    alpha: float
    power: float
    statistic: str = "mean"
    level: float | None = None
    n_baseline: int = 0
    n_observed: int = 0
    outcome: MdeOutcome = "measured"

    def as_record(self) -> dict:
        """outcome, statistic, level, absolute, pct, alpha, power, n_baseline, n_observed,
        n_eff_baseline, n_eff_observed: finite numbers or null."""
        return {
            "outcome": self.outcome,
            "statistic": self.statistic,
            "level": finite_or_none(self.level),
            "absolute": finite_or_none(self.absolute),
            "pct": finite_or_none(self.pct),
            "alpha": self.alpha,
            "power": self.power,
            "n_baseline": self.n_baseline,
            "n_observed": self.n_observed,
            "n_eff_baseline": finite_or_none(self.n_eff_baseline),
            "n_eff_observed": finite_or_none(self.n_eff_observed),
        }


def min_detectable_effect(
    baseline: Sequence[float] | np.ndarray,
    n_observed: int,
    *,
    alpha: float,
    power: float,
    statistic: str = "mean",
    autocorrelation: bool = True,
    strata: Sequence[object] | np.ndarray | None = None,
    near_zero: float = 1e-9,
) -> Mde:
    """The minimum detectable shift Δ of a two-sided Mann-Whitney test at `alpha` with
    `power`, for the baseline's distribution and both sides' effective sample sizes.

    Noether (1987, "Sample size determination for some common nonparametric tests", JASA
    82:645) gives the rank test's power at a shift Δ through θ(Δ) = P(X' − X ≤ Δ) − ½,
    X, X' two independent baseline draws: the test reaches `power` when

        θ(Δ) = (z₁₋α/₂ + z_power) · √((1/n₁ + 1/n₂) / 12).

    Δ is read straight from the baseline's pairwise differences (the quantile ½ + θ of
    X_j − X_i, found without materialising them): no σ and no efficiency factor to
    assume. For normal data this is (z₁₋α/₂ + z_power)·σ·√(1/n₁ + 1/n₂)/√(3/π), the t-test's
    MDE over the rank test's asymptotic relative efficiency 3/π; for heavy tails it is what
    the ranks see, not what the standard deviation says.

    n₁ is the baseline's effective sample size (`effective_sample_size` of its ranks, with
    `strata`) when `autocorrelation`, else its count; the observed day is assumed as
    dependent as the baseline: n₂ = n_observed · n₁ / n_baseline. Ties (quantised values)
    make the real test a little more sensitive than this, never less.
    """
    from scipy import stats  # imported when used: ~0.5 s a process

    _check_probability(alpha, "alpha", where="thresholds.p_value")
    _check_probability(power, "power", where="thresholds.power")
    _check_statistic(statistic)
    base = np.asarray(baseline, dtype="float64")
    labels = _strata(strata, base.size)
    keep = np.isfinite(base)
    base = base[keep]
    labels = labels[keep] if labels is not None else None
    n_base, n_obs = int(base.size), max(int(n_observed), 0)
    if n_base == 0 or n_obs == 0:
        return Mde(
            None,
            None,
            float(n_base),
            float(n_obs),
            alpha,
            power,
            statistic,
            None,
            n_base,
            n_obs,
            "no_data",
        )
    level = _level(base, statistic)
    eff_base = _effective_sample_size(base, labels, ranks=True) if autocorrelation else n_base
    eff_obs = n_obs * eff_base / n_base
    measured = Mde(None, None, eff_base, eff_obs, alpha, power, statistic, level, n_base, n_obs)
    if _modal_share(base) >= TIED_SHARE:
        return replace(measured, outcome="tied")
    z_sum = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    theta = z_sum * math.sqrt((1 / eff_base + 1 / eff_obs) / 12)
    # Over all n² ordered pairs, the n self-pairs are 0 and the others symmetric about 0.
    pairs = n_base * n_base
    rank = math.ceil(n_base + (pairs - n_base) * (0.5 + theta) - 1e-9)
    if theta >= 0.5 or rank > pairs:
        return replace(measured, outcome="too_few_samples")
    ordered = np.sort(base)
    absolute = _pairwise_differences_at(ordered, ordered, [rank])[0]
    return replace(measured, absolute=absolute, pct=_pct(absolute, level, near_zero))


def mde_sentence(mde: Mde, subject: str, unit: str = "") -> str:
    """The MDE for a reader: "a latency p99 change under 4.1 % could not have been reliably
    seen with this traffic"; in the unit when the level is ~0 ("under 0.02 %" of an error
    rate read as an absolute)."""
    if mde.outcome == "no_data":
        return f"no {subject} samples to say which change could have been seen"
    if mde.outcome == "tied":
        return f"most {subject} samples share one value: a shift of it is not how it changes"
    if mde.outcome == "too_few_samples":
        return f"too few independent {subject} samples for any shift to be reliably seen"
    size = magnitude_pct(mde.pct) if mde.pct is not None else format_with_unit(mde.absolute, unit)
    return f"a {subject} change under {size} could not have been reliably seen with this traffic"


# --- Hodges-Lehmann shift ------------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    """How far the observed day moved from the baseline: the Hodges-Lehmann estimate (the
    median of all pairwise differences observed − baseline) and its distribution-free
    interval at `confidence`, in the KPI's unit and in % of the baseline's `statistic`.

    `low`/`high` are None when the samples are too few for any interval at this confidence
    (and for "no_data"); `pct*` are None when the baseline level is ~0. `k` is the rank of
    the interval's ends: the k-th smallest and the k-th largest difference. `method`:
    "exact" (the enumerated U null distribution) or "normal" (its normal approximation, at
    the effective sample sizes).
    """

    estimate: float | None
    low: float | None
    high: float | None
    confidence: float
    pct: float | None
    pct_low: float | None
    pct_high: float | None
    statistic: str = "mean"
    level: float | None = None
    n_baseline: int = 0
    n_observed: int = 0
    n_eff_baseline: float = 0.0
    n_eff_observed: float = 0.0
    k: int = 0
    method: IntervalMethod = "normal"
    outcome: ShiftOutcome = "measured"

    @property
    def excludes_zero(self) -> bool:
        """The interval lies wholly on one side of 0: a shift at this confidence."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def as_record(self) -> dict:
        """outcome, estimate, low, high, confidence, pct, pct_low, pct_high, statistic,
        level, n_baseline, n_observed, n_eff_baseline, n_eff_observed, k, method."""
        return {
            "outcome": self.outcome,
            "estimate": finite_or_none(self.estimate),
            "low": finite_or_none(self.low),
            "high": finite_or_none(self.high),
            "confidence": self.confidence,
            "pct": finite_or_none(self.pct),
            "pct_low": finite_or_none(self.pct_low),
            "pct_high": finite_or_none(self.pct_high),
            "statistic": self.statistic,
            "level": finite_or_none(self.level),
            "n_baseline": self.n_baseline,
            "n_observed": self.n_observed,
            "n_eff_baseline": finite_or_none(self.n_eff_baseline),
            "n_eff_observed": finite_or_none(self.n_eff_observed),
            "k": self.k,
            "method": self.method,
        }


def hodges_lehmann(
    baseline: Sequence[float] | np.ndarray,
    observed: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    autocorrelation: bool = True,
    baseline_strata: Sequence[object] | np.ndarray | None = None,
    observed_strata: Sequence[object] | np.ndarray | None = None,
    statistic: str = "mean",
    near_zero: float = 1e-9,
) -> Shift:
    """The Hodges-Lehmann shift of observed vs baseline with Moses' interval.

    Over the N = n₁·n₂ differences d = obs_j − base_i (Hodges & Lehmann 1963; Lehmann,
    "Nonparametrics", 1975, §2.6; Hollander & Wolfe, "Nonparametric Statistical Methods",
    §4.3): estimate = median d; interval = [d₍ₖ₎, d₍N+1−k₎], with k the largest integer such
    that P(U ≤ k − 1) ≤ (1 − confidence)/2 under the Mann-Whitney null. U is enumerated for
    n₁·n₂ ≤ 2,500 with independent samples; otherwise

        k = ⌊N/2 + ½ − z · N · √((n₁ + n₂ + 1) / (12 n₁ n₂))⌋,   z = z₍₁₊confidence₎/₂,

    the normal approximation (with continuity correction). With `autocorrelation`, n₁ and
    n₂ there are the effective sample sizes of each side's ranks (`effective_sample_size`,
    with the strata): the differences' quantiles are still estimated from every pair, but
    the interval is as wide as that many independent samples would leave it. The
    differences are selected, never all held (`_pairwise_differences_at`).

    Non-finite values are dropped; an empty side is "no_data". Ties are allowed (the
    interval is then a little conservative).
    """
    from scipy import stats  # imported when used: ~0.5 s a process

    _check_probability(confidence, "confidence", where="hodges_lehmann confidence")
    _check_statistic(statistic)
    base, base_labels = _finite_with_strata(baseline, baseline_strata)
    obs, obs_labels = _finite_with_strata(observed, observed_strata)
    n_base, n_obs = int(base.size), int(obs.size)
    if n_base == 0 or n_obs == 0:
        return Shift(
            None,
            None,
            None,
            confidence,
            None,
            None,
            None,
            statistic,
            None,
            n_base,
            n_obs,
            float(n_base),
            float(n_obs),
            0,
            "normal",
            "no_data",
        )
    level = _level(base, statistic)
    if autocorrelation:
        eff_base = _effective_sample_size(base, base_labels, ranks=True)
        eff_obs = _effective_sample_size(obs, obs_labels, ranks=True)
    else:
        eff_base, eff_obs = float(n_base), float(n_obs)
    pairs = n_base * n_obs
    independent = eff_base == n_base and eff_obs == n_obs
    method: IntervalMethod = "exact" if independent and pairs <= _EXACT_NULL_PAIRS else "normal"
    if method == "exact":
        k = _exact_interval_rank(n_base, n_obs, confidence)
    else:
        z = stats.norm.ppf((1 + confidence) / 2)
        spread = math.sqrt((eff_base + eff_obs + 1) / (12 * eff_base * eff_obs))
        k = math.floor(pairs / 2 + 0.5 - z * pairs * spread)
    median_ranks = [(pairs + 1) // 2, pairs // 2 + 1]
    bounded = k >= 1
    ranks = [*median_ranks, *([k, pairs + 1 - k] if bounded else [])]
    base_sorted, obs_sorted = np.sort(base), np.sort(obs)
    values = _pairwise_differences_at(base_sorted, obs_sorted, ranks)
    estimate = (values[0] + values[1]) / 2 if pairs % 2 == 0 else values[0]
    low, high = (values[2], values[3]) if bounded else (None, None)
    return Shift(
        estimate,
        low,
        high,
        confidence,
        _pct(estimate, level, near_zero),
        _pct(low, level, near_zero),
        _pct(high, level, near_zero),
        statistic,
        level,
        n_base,
        n_obs,
        eff_base,
        eff_obs,
        max(k, 0),
        method,
    )


def mann_whitney_null_cdf(n1: int, n2: int) -> np.ndarray:
    """P(U ≤ u) for u = 0 … n₁·n₂ under the null of the Mann-Whitney test, continuous data.

    The counts of arrangements follow c(m, n, u) = c(m − 1, n, u − n) + c(m, n − 1, u)
    (Mann & Whitney 1947, eq. 2); O(n₁·n₂·(n₁·n₂)) work, for small samples only.
    """
    previous = [np.ones(1) for _ in range(n2 + 1)]  # m = 0: U = 0 whatever n
    for m in range(1, n1 + 1):
        current = [np.ones(1)]
        for n in range(1, n2 + 1):
            counts = np.zeros(m * n + 1)
            counts[: current[n - 1].size] += current[n - 1]
            counts[n : n + previous[n].size] += previous[n]
            current.append(counts)
        previous = current
    counts = previous[n2]
    return np.cumsum(counts) / counts.sum()


def _exact_interval_rank(n1: int, n2: int, confidence: float) -> int:
    """The largest k with P(U ≤ k − 1) ≤ (1 − confidence)/2 (0 when there is none)."""
    cdf = mann_whitney_null_cdf(n1, n2)
    return int(np.count_nonzero(cdf <= (1 - confidence) / 2 * (1 + 1e-12)))


# --- shared helpers ------------------------------------------------------------------


def _finite_with_strata(
    values: Sequence[float] | np.ndarray, strata: Sequence[object] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    array = np.asarray(values, dtype="float64")
    labels = _strata(strata, array.size)
    keep = np.isfinite(array)
    return array[keep], (labels[keep] if labels is not None else None)


def _probability(value: object) -> float | None:
    """`value` as a float strictly between 0 and 1, else None (bools are not numbers here)."""
    if isinstance(value, bool | str):
        return None
    number = finite_or_none(value)
    return number if number is not None and 0 < number < 1 else None


def _check_probability(value: float, name: str, *, where: str) -> None:
    if _probability(value) is None:
        raise TarsUserError(
            f"{name} must be a number strictly between 0 and 1, got {value!r}",
            where=where,
            remedy=f"set {name} to e.g. 0.05 (alpha), 0.8 (power) or 0.95 (confidence)",
        )


def _check_statistic(statistic: str) -> None:
    if statistic != "mean" and statistic not in _PERCENTILES and statistic not in ("min", "max"):
        raise TarsUserError(
            f"unknown statistic {statistic!r}",
            where="kpis[].statistic",
            remedy="use one of mean, p50, p95, p99, min, max",
        )


def _level(values: np.ndarray, statistic: str) -> float:
    """The baseline's `statistic`, as `stats` computes it (linear percentiles)."""
    if statistic == "mean":
        return float(values.mean())
    if statistic == "min":
        return float(values.min())
    if statistic == "max":
        return float(values.max())
    return float(np.percentile(values, _PERCENTILES[statistic]))


def _pct(value: float | None, level: float | None, near_zero: float) -> float | None:
    if value is None or level is None or not abs(level) >= max(near_zero, 1e-300):
        return None
    return finite_or_none(value / abs(level) * 100.0)


def _modal_share(values: np.ndarray) -> float:
    _, counts = np.unique(values, return_counts=True)
    return float(counts.max()) / values.size
