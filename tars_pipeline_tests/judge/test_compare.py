"""Step "compare": one metric, baseline vs one day (Mann-Whitney U + Cliff's delta)."""

from __future__ import annotations

import numpy as np
import pytest

from tars_pipeline.judge.compare import compare_samples, effect_magnitude, is_adverse_effect


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
