"""Request and error counts from throughput and error-rate samples; the rate test; the guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tars_pipeline.config import Thresholds
from tars_pipeline.judge.traffic import (
    DEFAULT_MIN_REQUESTS,
    TrafficCounts,
    error_pct,
    error_share,
    has_enough_traffic,
    insufficient_traffic_reason,
    rate_test,
    request_count,
    traffic_counts,
    traffic_counts_from_frames,
)

STEP = 60


def test_counts_by_hand_pair_finite_samples_only():
    throughput = np.array([10.0, 20.0, np.nan, 5.0])  # req/s
    error_rate = np.array([1.0, 0.5, 2.0, np.nan])  # %

    counts = traffic_counts(throughput, error_rate, STEP, "bad")

    # Rows 0 and 1 only: 10·60 + 20·60 = 1800 requests; 600·1 % + 1200·0.5 % = 6 + 6 errors.
    assert counts == TrafficCounts(requests=1800.0, errors=12.0, samples=2)
    assert counts.error_rate_pct == pytest.approx(12 / 1800 * 100)
    # Every finite throughput sample is traffic: (10 + 20 + 5) · 60.
    assert request_count(throughput, STEP) == pytest.approx(2100.0)


def test_availability_counts_its_complement_as_errors():
    throughput = np.array([10.0, 20.0])
    by_error_rate = traffic_counts(throughput, np.array([1.0, 0.5]), STEP, "bad")
    by_availability = traffic_counts(throughput, np.array([99.0, 99.5]), STEP, "good")

    assert by_availability.requests == by_error_rate.requests == 1800.0
    assert by_availability.errors == pytest.approx(by_error_rate.errors)
    assert error_share("availability") == "good" and error_share("error_rate") == "bad"
    assert error_share("latency_p99") is None
    assert error_pct(np.array([101.0, np.nan]), "good")[0] == 0.0  # clipped, not negative


def test_negative_throughput_is_no_traffic():
    assert request_count(np.array([-5.0, 1.0]), STEP) == 60.0
    assert traffic_counts(np.array([-5.0, 1.0]), np.array([50.0, 50.0]), STEP, "bad").errors == 30.0


def test_frames_are_paired_on_timestamps():
    ts = pd.date_range("2025-11-19", periods=4, freq="60s", tz="UTC")
    throughput = pd.DataFrame({"ts": ts, "value": [10.0, 20.0, 30.0, 40.0]})
    error_rate = pd.DataFrame({"ts": ts[[0, 1, 3]], "value": [1.0, 0.0, 0.5]})

    counts = traffic_counts_from_frames(throughput, error_rate, STEP, "bad")

    # ts[2] has no error-rate sample: 600 + 1200 + 2400 requests, 6 + 0 + 12 errors.
    assert counts == TrafficCounts(4200.0, 18.0, 3)
    # No throughput measured: unknown, not 0 requests.
    assert traffic_counts_from_frames(throughput.iloc[:0], error_rate, STEP, "bad") is None
    assert traffic_counts_from_frames(None, error_rate, STEP, "bad") is None
    later = throughput.assign(ts=throughput["ts"] + pd.Timedelta(hours=1))
    assert traffic_counts_from_frames(later, error_rate, STEP, "bad") is None


def test_rate_test_by_hand_is_the_binomial_tail():
    # 2 errors in 1000 baseline requests, 8 in 1000 on the day: given 10 errors, the day's
    # share under equal rates is Binomial(10, 1/2); P(X ≥ 8) = (45 + 10 + 1) / 1024.
    test = rate_test(TrafficCounts(1000.0, 2.0, 10), TrafficCounts(1000.0, 8.0, 10))

    assert test.p_value == pytest.approx(56 / 1024)
    assert (test.baseline_errors, test.observed_errors) == (2, 8)
    assert test.baseline_rate_pct == pytest.approx(0.2)
    assert test.observed_rate_pct == pytest.approx(0.8)
    assert test.is_adverse(0.06) and not test.is_adverse(0.05)


def test_rate_test_weighs_each_side_by_its_requests():
    # Same 5 errors each, but the day served 4x the requests: its rate is lower.
    test = rate_test(TrafficCounts(1000.0, 5.0, 10), TrafficCounts(4000.0, 5.0, 10))

    expected = stats.binomtest(5, 10, 0.8, alternative="greater").pvalue
    assert test.p_value == pytest.approx(expected)
    assert not test.higher and not test.is_adverse(0.99)


def test_errors_where_the_baseline_had_none_at_realistic_traffic():
    # 50 req/s all day (4.32 M requests); 30 errors on the day, none on the GA day.
    day = TrafficCounts(4_320_000.0, 30.0, 1440)
    test = rate_test(TrafficCounts(4_320_000.0, 0.0, 1440), day)

    assert test.p_value == pytest.approx(0.5**30)
    assert test.is_adverse(0.01)


def test_no_errors_anywhere_or_no_requests_is_no_evidence():
    assert rate_test(TrafficCounts(1000.0, 0.0, 1), TrafficCounts(1000.0, 0.0, 1)).p_value == 1.0
    assert rate_test(TrafficCounts(0.0, 0.0, 0), TrafficCounts(1000.0, 5.0, 1)).p_value == 1.0


def test_equal_rates_are_not_flagged():
    # 0.1 % on both sides at 50 req/s: 4320 errors each.
    test = rate_test(
        TrafficCounts(4_320_000.0, 4320.0, 1440), TrafficCounts(4_320_000.0, 4320.0, 1440)
    )

    assert test.p_value > 0.4 and not test.is_adverse(0.01)


def test_the_low_traffic_guard():
    # 0.05 req/s for a day of 1-minute samples: 4320 requests, below 10 000.
    requests = request_count(np.full(1440, 0.05), STEP)

    assert requests == pytest.approx(4320.0)
    assert not has_enough_traffic(requests)
    assert has_enough_traffic(requests, min_requests=1000)
    assert has_enough_traffic(DEFAULT_MIN_REQUESTS)
    assert insufficient_traffic_reason(requests) == (
        "insufficient traffic: 4,320 requests on the day, fewer than min_requests 10,000; "
        "its error rate is not judged"
    )


def test_the_configured_default_is_the_judges():
    assert Thresholds().min_requests == DEFAULT_MIN_REQUESTS
