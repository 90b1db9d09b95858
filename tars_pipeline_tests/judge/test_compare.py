"""Step "compare": one metric, baseline vs one day (Mann-Whitney U + Cliff's delta)."""

from __future__ import annotations

import numpy as np
import pytest

from tars_pipeline.config import default_kpis
from tars_pipeline.judge.compare import compare_samples, effect_magnitude, is_adverse_effect
from tars_pipeline.judge.traffic import TrafficCounts, traffic_counts


def test_a_clear_shift_is_significant_with_a_large_effect():
    rng = np.random.default_rng(1)
    comparison = compare_samples(rng.normal(150, 6, 1440), rng.normal(180, 6, 1440))
    assert comparison.p_value < 1e-100
    assert comparison.effect_size > 0.99 and comparison.effect_magnitude == "large"


def test_cliffs_delta_is_the_share_of_pairs_above_minus_below():
    comparison = compare_samples(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0]))
    # 9 pairs: 6 observed-higher, 2 ties, 1 lower → (6 − 1) / 9
    assert comparison.effect_size == pytest.approx(5 / 9)
    assert comparison.effect_magnitude == "large"


@pytest.mark.parametrize(
    ("baseline", "observed"),
    [
        (np.array([]), np.array([1.0, 2.0])),
        (np.array([1.0]), np.array([])),
        (np.zeros(100), np.zeros(100)),
        (np.array([np.nan, np.nan]), np.array([1.0])),
    ],
)
def test_nothing_to_rank_means_no_evidence(baseline, observed):
    comparison = compare_samples(baseline, observed)
    assert comparison.p_value == 1.0 and comparison.effect_size == 0.0
    assert comparison.effect_magnitude == "negligible"


def test_zero_heavy_effect_size_reads_the_untied_pairs():
    rng = np.random.default_rng(17)
    baseline = np.where(rng.random(1440) < 0.02, 0.5, 0.0)  # errors in 2 % of minutes
    observed = np.where(rng.random(1440) < 0.10, 0.5, 0.0)  # ... then in 10 %

    comparison = compare_samples(baseline, observed)
    plain = compare_samples(baseline, observed, zero_heavy_share=1.0)

    assert comparison.p_value < 1e-10
    assert comparison.zero_heavy and not plain.zero_heavy
    assert plain.effect_magnitude == "negligible"  # δ ≈ 0.08: ties swamp it
    assert comparison.effect_size == plain.effect_size
    assert comparison.untied_effect_size == pytest.approx(
        comparison.effect_size / (1 - comparison.tie_share)
    )
    assert comparison.effect_magnitude == "large"


def test_tie_share_counts_equal_pairs():
    comparison = compare_samples(np.array([0.0, 0.0, 1.0]), np.array([0.0, 2.0]))
    assert comparison.tie_share == pytest.approx(2 / 6)  # (0,0) twice of 6 pairs


def test_an_empty_side_is_no_data_not_no_change():
    empty = compare_samples(np.array([]), np.array([1.0, 2.0]))
    assert empty.outcome == "no_data" and empty.no_data
    assert empty.baseline_count == 0 and empty.observed_count == 2
    tied = compare_samples(np.zeros(10), np.zeros(10))
    assert tied.outcome == "no_change" and not tied.no_data
    ranked = compare_samples(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0]))
    assert ranked.outcome == "ranked"


def test_no_data_is_never_adverse_whatever_the_threshold():
    empty = compare_samples(np.array([]), np.array([5.0]))
    assert not empty.is_adverse(1.01, "lower_is_better")


def test_an_adverse_effect_is_up_for_lower_is_better_and_down_for_higher_is_better():
    assert is_adverse_effect(0.4, "lower_is_better")
    assert not is_adverse_effect(-0.4, "lower_is_better")
    assert is_adverse_effect(-0.4, "higher_is_better")
    assert not is_adverse_effect(0.4, "neutral") and not is_adverse_effect(-0.4, "neutral")


@pytest.mark.parametrize(
    ("delta", "magnitude"),
    [(0.1, "negligible"), (-0.2, "small"), (0.4, "medium"), (-0.5, "large")],
)
def test_effect_magnitude_bands(delta, magnitude):
    assert effect_magnitude(delta) == magnitude


# --- Request counts: the rate test for a ~0 baseline, and the low-traffic guard ---------

KPIS = {kpi.name: kpi for kpi in default_kpis()}
MINUTES = 1440


def _errors_in_five_minutes(pct: float = 0.2) -> np.ndarray:
    observed = np.zeros(MINUTES)
    observed[[100, 400, 700, 1000, 1300]] = pct
    return observed


def _traffic(rps: float, error_rate: np.ndarray) -> TrafficCounts:
    return traffic_counts(np.full(MINUTES, rps), error_rate, 60, "bad")


def test_errors_appearing_on_a_zero_baseline_are_rate_tested_and_flagged():
    baseline, observed = np.zeros(MINUTES), _errors_in_five_minutes()
    # 50 req/s: 3000 requests a minute, 0.2 % of them in 5 minutes is 30 errors, none before.
    comparison = compare_samples(
        baseline,
        observed,
        kpi=KPIS["error_rate"],
        baseline_traffic=_traffic(50.0, baseline),
        observed_traffic=_traffic(50.0, observed),
    )

    assert comparison.outcome == "rate_tested" and comparison.test == "poisson_rate"
    assert comparison.p_value == comparison.rate_p_value == pytest.approx(0.5**30)
    assert comparison.is_adverse(0.01, "lower_is_better")
    assert comparison.observed_requests == pytest.approx(4_320_000.0)
    assert comparison.observed_errors == pytest.approx(30.0)
    assert comparison.baseline_errors == 0.0
    assert comparison.observed_error_rate_pct == pytest.approx(30 / 4_320_000 * 100)
    # The rank test alone on per-minute percentages misses it (5 error minutes of 1440).
    rank_only = compare_samples(baseline, observed)
    assert rank_only.p_value > 0.01 and not rank_only.is_adverse(0.01, "lower_is_better")
    assert comparison.u_statistic == rank_only.u_statistic  # the rank fields stay filled


def test_availability_is_rate_tested_on_its_complement():
    baseline = np.full(MINUTES, 100.0)
    observed = 100.0 - _errors_in_five_minutes()
    comparison = compare_samples(
        baseline,
        observed,
        kpi=KPIS["availability"],
        baseline_traffic=traffic_counts(np.full(MINUTES, 50.0), baseline, 60, "good"),
        observed_traffic=traffic_counts(np.full(MINUTES, 50.0), observed, 60, "good"),
    )

    assert comparison.outcome == "rate_tested"
    assert comparison.observed_errors == pytest.approx(30.0)
    assert comparison.is_adverse(0.01, "higher_is_better")


def test_the_same_errors_at_0_05_req_s_are_insufficient_traffic():
    baseline, observed = np.zeros(MINUTES), _errors_in_five_minutes()
    comparison = compare_samples(
        baseline,
        observed,
        kpi=KPIS["error_rate"],
        baseline_traffic=_traffic(0.05, baseline),
        observed_traffic=_traffic(0.05, observed),
    )

    assert comparison.outcome == "insufficient_traffic" and comparison.insufficient_traffic
    assert comparison.observed_requests == pytest.approx(4320.0)  # 0.05 · 60 · 1440
    assert not comparison.is_adverse(0.99, "lower_is_better")
    assert comparison.traffic_reason.startswith("insufficient traffic: 4,320 requests")
    # With a lower bar the same day is judged (and is no evidence at 0.03 errors).
    judged = compare_samples(
        baseline,
        observed,
        kpi=KPIS["error_rate"],
        baseline_traffic=_traffic(0.05, baseline),
        observed_traffic=_traffic(0.05, observed),
        min_requests=1000,
    )
    assert judged.outcome == "rate_tested" and not judged.is_adverse(0.01, "lower_is_better")


def test_low_traffic_also_stops_the_rank_test_on_a_nonzero_baseline():
    rng = np.random.default_rng(3)
    baseline, observed = rng.normal(1.0, 0.1, MINUTES), rng.normal(5.0, 0.1, MINUTES)
    comparison = compare_samples(
        baseline, observed, kpi=KPIS["error_rate"], observed_traffic=_traffic(0.05, observed)
    )

    assert comparison.outcome == "insufficient_traffic"
    assert not comparison.is_adverse(0.01, "lower_is_better")
    assert compare_samples(baseline, observed).is_adverse(0.01, "lower_is_better")


def test_a_baseline_at_0_1_pct_and_a_day_at_0_1_pct_is_not_flagged():
    baseline, observed = np.full(MINUTES, 0.1), np.full(MINUTES, 0.1)
    comparison = compare_samples(
        baseline,
        observed,
        kpi=KPIS["error_rate"],
        baseline_traffic=_traffic(50.0, baseline),
        observed_traffic=_traffic(50.0, observed),
    )

    assert comparison.outcome == "no_change"  # not ~0: the rank test's outcome stands
    assert not comparison.is_adverse(0.01, "lower_is_better")
    assert comparison.baseline_errors == pytest.approx(comparison.observed_errors)
    assert comparison.baseline_errors == pytest.approx(4320.0)


def test_without_counts_or_for_other_kpis_nothing_changes():
    baseline, observed = np.zeros(MINUTES), _errors_in_five_minutes()
    plain = compare_samples(baseline, observed)

    assert compare_samples(baseline, observed, kpi=KPIS["error_rate"]) == plain
    latency = compare_samples(
        baseline,
        observed,
        kpi=KPIS["latency_p99"],
        baseline_traffic=_traffic(0.05, baseline),
        observed_traffic=_traffic(0.05, observed),
    )
    assert latency == plain
    assert plain.traffic_record() == {
        "test": "mann_whitney",
        "rate_p_value": None,
        "baseline_requests": None,
        "baseline_errors": None,
        "observed_requests": None,
        "observed_errors": None,
        "baseline_error_rate_pct": None,
        "observed_error_rate_pct": None,
        "insufficient_traffic": False,
        "traffic_reason": None,
    }
