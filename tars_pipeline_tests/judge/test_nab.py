"""NAB scoring on tiny hand-made series: what NAB's three profiles reward and punish."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.judge.nab import (
    PROFILES,
    REWARD_LOW_FN_PROFILE,
    REWARD_LOW_FP_PROFILE,
    STANDARD_PROFILE,
    CostProfile,
    normalised_score,
    probation_rows,
    row_weights,
    scaled_sigmoid,
    score_file,
    window_bounds,
)

ROWS = 200
TS = pd.date_range("2014-02-14 00:00", periods=ROWS, freq="5min")
# Two windows: rows 60-99 and 140-159 (probation is the first 30 rows).
WINDOWS = [(TS[60], TS[99]), (TS[140], TS[159])]


def _detect_at(*rows: int) -> np.ndarray:
    detections = np.zeros(ROWS, dtype=bool)
    detections[list(rows)] = True
    return detections


def _score(*rows: int) -> float:
    return normalised_score([score_file(TS, _detect_at(*rows), WINDOWS)])


def test_the_scaled_sigmoid_matches_nabs_documented_values():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0
    assert scaled_sigmoid(1e6) == -1.0


def test_probation_is_15_pct_of_rows_capped_at_750():
    assert probation_rows(ROWS) == 30
    assert probation_rows(4032) == 604
    assert probation_rows(10_000) == 750


def test_a_detector_firing_at_each_window_start_scores_100():
    assert _score(60, 140) == pytest.approx(100.0)
    # Only the earliest detection of a window counts: more alarms inside change nothing.
    assert _score(60, 61, 80, 99, 140, 150) == pytest.approx(100.0)


def test_a_detector_that_never_fires_scores_0():
    assert _score() == pytest.approx(0.0)


def test_a_late_detection_scores_less_than_an_early_one():
    early, middle, late = _score(60, 140), _score(80, 140), _score(99, 140)

    assert early > middle > late > 0.0
    # Halfway into a window is still worth about 86 % of a detection at its start; the
    # corpus runs from -2 (both missed) to +2 (both at their start).
    halfway = scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0)
    assert halfway == pytest.approx(0.8598, abs=1e-4)
    assert middle == pytest.approx(100.0 * (halfway + 1.0 + 2.0) / 4.0)


def test_a_false_positive_costs_0_11_before_the_first_window():
    score = score_file(TS, _detect_at(40, 60, 140), WINDOWS)

    assert score.raw == pytest.approx(2.0 - STANDARD_PROFILE.fp_weight)
    assert score.false_positives == 1
    assert _score(40, 60, 140) == pytest.approx(100.0 * (4.0 - 0.11) / 4.0)


def test_a_false_positive_just_after_a_window_costs_less_than_one_far_from_it():
    just_after = score_file(TS, _detect_at(60, 100, 140), WINDOWS).raw
    far_after = score_file(TS, _detect_at(60, 139, 140), WINDOWS).raw
    past_the_last_window = score_file(TS, _detect_at(60, 140, 199), WINDOWS).raw

    assert 2.0 - 0.11 < far_after < just_after < 2.0
    # 40 rows past a 20-row window: y = 40 / 19, nearly the full cost.
    assert past_the_last_window == pytest.approx(2.0 - 0.11, abs=1e-4)


def test_a_missed_window_costs_one():
    score = score_file(TS, _detect_at(60), WINDOWS)

    assert score.raw == pytest.approx(1.0 - 1.0)
    assert score.detected_windows == 1
    assert _score(60) == pytest.approx(50.0)


def test_probation_rows_are_not_scored():
    in_probation = score_file(TS, _detect_at(5, 60, 140), WINDOWS)

    assert in_probation.false_positives == 0
    assert _score(5, 60, 140) == pytest.approx(100.0)


def test_a_window_that_starts_in_probation_counts_from_its_first_scored_row():
    windows = [(TS[20], TS[59])]
    score = score_file(TS, _detect_at(30), windows)

    assert score.windows == 1
    assert score.raw == pytest.approx(score.perfect)  # the first scored row is the best
    assert score.perfect < 1.0


def test_scores_are_summed_over_files_before_normalising():
    perfect = score_file(TS, _detect_at(60, 140), WINDOWS)
    silent = score_file(TS, _detect_at(), WINDOWS)
    no_windows = score_file(TS, _detect_at(50), [])

    assert normalised_score([perfect, silent]) == pytest.approx(50.0)
    assert normalised_score([perfect, no_windows]) == pytest.approx(100.0 * (4 - 0.11) / 4)
    assert normalised_score([no_windows]) == 0.0


def test_window_edges_take_the_first_of_repeated_timestamps():
    stamps = pd.Series(pd.to_datetime(["2014-03-09 01:55", "2014-03-09 03:00"] * 1).tolist())
    repeated = pd.concat([stamps, pd.Series([pd.Timestamp("2014-03-09 03:00")] * 3)])
    repeated = pd.concat([repeated, pd.Series([pd.Timestamp("2014-03-09 03:05")])])

    bounds = window_bounds(repeated, [("2014-03-09 03:00", "2014-03-09 03:05")])

    assert bounds == [(1, 5)]


def test_row_weights_are_full_credit_at_a_window_start_and_cost_outside():
    weight, window = row_weights(ROWS, window_bounds(TS, WINDOWS))

    assert weight[60] == pytest.approx(1.0)
    assert 0.0 < weight[99] < 0.2
    assert weight[0] == pytest.approx(-0.11)
    assert window[60] == window[99] == 0 and window[140] == 1 and window[100] == -1
    assert np.all(np.diff(weight[60:100]) < 0)  # earlier is always better


def test_the_three_profiles_are_nabs_cost_matrices_under_nabs_names():
    # NAB config/profiles.json: tp 1 in all; fp 0.11 / 0.22 / 0.11; fn 1 / 1 / 2.
    assert dict(PROFILES) == {
        "standard": CostProfile(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
        "reward_low_FP_rate": CostProfile(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
        "reward_low_FN_rate": CostProfile(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
    }
    assert PROFILES["standard"] is STANDARD_PROFILE
    assert PROFILES["reward_low_FP_rate"] is REWARD_LOW_FP_PROFILE
    assert PROFILES["reward_low_FN_rate"] is REWARD_LOW_FN_PROFILE


# One false positive before the first window (row 40), the first window found at its
# start (row 60, worth 1), the second missed. raw = 1 − fp − fn, null = −2·fn, perfect = 2:
#   standard:           raw = 1 − 0.11 − 1 = −0.11, 100 · (−0.11 + 2) / (2 + 2) = 47.25
#   reward_low_FP_rate: raw = 1 − 0.22 − 1 = −0.22, 100 · (−0.22 + 2) / (2 + 2) = 44.5
#   reward_low_FN_rate: raw = 1 − 0.11 − 2 = −1.11, 100 · (−1.11 + 4) / (2 + 4) = 48.1667
@pytest.mark.parametrize(
    ("name", "raw", "null", "expected"),
    [
        ("standard", -0.11, -2.0, 47.25),
        ("reward_low_FP_rate", -0.22, -2.0, 44.5),
        ("reward_low_FN_rate", -1.11, -4.0, 100.0 * 2.89 / 6.0),
    ],
)
def test_each_profile_weighs_a_false_alarm_and_a_miss_by_hand(name, raw, null, expected):
    score = score_file(TS, _detect_at(40, 60), WINDOWS, profile=PROFILES[name])

    assert score.raw == pytest.approx(raw)
    assert score.null == pytest.approx(null)
    assert score.perfect == pytest.approx(2.0)
    assert (score.windows, score.detected_windows, score.false_positives) == (2, 1, 1)
    assert normalised_score([score]) == pytest.approx(expected)


def test_reward_low_fp_rate_doubles_the_cost_of_a_false_alarm():
    # Two false alarms before the first window, both windows found at their start.
    rows = (35, 40, 60, 140)
    standard = score_file(TS, _detect_at(*rows), WINDOWS, profile=STANDARD_PROFILE)
    low_fp = score_file(TS, _detect_at(*rows), WINDOWS, profile=REWARD_LOW_FP_PROFILE)

    assert normalised_score([standard]) == pytest.approx(100.0 * (4.0 - 0.22) / 4.0)
    assert normalised_score([low_fp]) == pytest.approx(100.0 * (4.0 - 0.44) / 4.0)


def test_reward_low_fn_rate_makes_a_miss_cost_two():
    # The first window found at its start, the second missed, no false alarm:
    # standard (1 − 1 + 2) / 4 = 50 %; low FN (1 − 2 + 4) / 6 = 50 %, but a late find in the
    # second window (row 159, worth σ(−1/20) / σ(−1)) gains more under low FN.
    late = scaled_sigmoid(-1.0 / 20.0) / scaled_sigmoid(-1.0)
    standard = score_file(TS, _detect_at(60, 159), WINDOWS, profile=STANDARD_PROFILE)
    low_fn = score_file(TS, _detect_at(60, 159), WINDOWS, profile=REWARD_LOW_FN_PROFILE)

    assert normalised_score([score_file(TS, _detect_at(60), WINDOWS)]) == pytest.approx(50.0)
    assert normalised_score([standard]) == pytest.approx(100.0 * (1.0 + late + 2.0) / 4.0)
    assert normalised_score([low_fn]) == pytest.approx(100.0 * (1.0 + late + 4.0) / 6.0)
    assert normalised_score([low_fn]) > normalised_score([standard])
