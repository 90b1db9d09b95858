"""Step "classify" for unexpected drifts: the watch band, the trend and its causes."""

from __future__ import annotations

import json

import pytest

from tars_pipeline.judge.drifts import classify_trend
from tars_pipeline_tests.judge.release_week import (
    KPIS,
    by_kpi,
    drift_frame,
    release_week_drift,
    release_week_unexpected_drifts,
    unexpected_drift_records,
)


def test_the_seed_story_has_three_unexpected_drifts_resource_kpis_first():
    drifts = release_week_unexpected_drifts()
    assert [(d["service"], d["kpi"]) for d in drifts] == [
        ("search", "memory_utilization"),
        ("api-gateway", "cpu_utilization"),
        ("api-gateway", "throughput"),
    ]
    json.dumps(drifts, allow_nan=False)


def test_cpu_creeps_up_with_throughput_as_its_potential_cause():
    cpu = by_kpi(release_week_unexpected_drifts())[("api-gateway", "cpu_utilization")]
    assert cpu["baseline"] == 45.2 and cpu["observed"] == 52.3
    assert cpu["change_pct"] == pytest.approx(15.7, abs=0.05)
    assert cpu["day_of_max"] == 7 and cpu["trend"] == "increasing"
    assert cpu["trend_p_value"] < 0.05 and cpu["slope_pct_per_day"] > 0
    assert len(cpu["daily_drift_pct"]) == 7
    assert cpu["potential_causes"] == ["throughput up 12.0 %, increasing (r = 1.00)"]
    assert "Theil-Sen" in cpu["explanation"]


def test_search_memory_is_volatile_by_about_18_percent():
    memory = by_kpi(release_week_unexpected_drifts())[("search", "memory_utilization")]
    assert memory["trend"] == "volatile"
    assert memory["change_pct"] == pytest.approx(18.0)
    assert memory["range_pct"] == [pytest.approx(-17.0), pytest.approx(18.0)]
    assert "fluctuated between" in memory["explanation"]


def test_throughput_rises_12_percent_without_resource_kpis_as_its_cause():
    throughput = by_kpi(release_week_unexpected_drifts())[("api-gateway", "throughput")]
    assert throughput["change_pct"] == pytest.approx(12.0)
    assert throughput["trend"] == "increasing"
    assert throughput["potential_causes"] == []  # CPU follows load, it does not cause it


def test_degradations_and_moves_outside_the_band_are_not_unexpected_drifts():
    keys = set(by_kpi(release_week_unexpected_drifts()))
    assert ("search", "cpu_utilization") not in keys  # +40 %: over the 30 % band
    assert ("api-gateway", "memory_utilization") not in keys  # +2 %: under the threshold
    assert ("api-gateway", "cost_compute") not in keys  # cost is analysed on its own
    degraded = [("api-gateway", "cpu_utilization")]
    drifts = unexpected_drift_records(release_week_drift(), degraded)
    assert ("api-gateway", "cpu_utilization") not in by_kpi(drifts)


def test_a_neutral_kpi_beyond_the_band_is_still_listed_but_an_adverse_one_is_not():
    rows = []
    for day in range(1, 8):
        rows += [
            ("api-gateway", "throughput", day, 1000.0, 1400.0),  # +40 %: load, never a regression
            ("api-gateway", "cpu_utilization", day, 40.0, 56.0),  # +40 %: a regression candidate
        ]
    drifts = unexpected_drift_records(drift_frame(rows, KPIS))
    assert [(d["kpi"], d["change_pct"]) for d in drifts] == [("throughput", pytest.approx(40.0))]
    assert "neutral KPI" in drifts[0]["explanation"]


def test_an_improvement_is_not_an_unexpected_drift_but_a_move_the_bad_way_is() -> None:
    rows = []
    for day in range(1, 8):
        rows += [
            ("api-gateway", "latency_p50", day, 40.0, 30.0),  # -25 %: faster, not work
            ("api-gateway", "error_rate", day, 0.05, 0.044),  # -12 %: fewer errors
            ("api-gateway", "latency_p95", day, 90.0, 104.0 if day == 3 else 80.0),  # +16 %
        ]
    drifts = unexpected_drift_records(drift_frame(rows, KPIS))
    assert [d["kpi"] for d in drifts] == ["latency_p95"]


@pytest.mark.parametrize(
    ("series", "trend"),
    [
        ([3.1, 6.0, 9.1, 10.6, 13.3, 14.8, 15.7], "increasing"),
        ([-3.0, -5.0, -8.0, -9.0, -12.0, -13.0, -15.0], "decreasing"),
        ([18.0, -12.0, 15.0, -17.0, 16.0, -10.0, 18.0], "volatile"),
        ([12.0, 12.3, 11.8, 12.1, 11.9, 12.2, 12.0], "stable"),
    ],
)
def test_trend_words(series, trend):
    assert classify_trend(range(1, 8), series, threshold_pct=10.0).trend == trend


@pytest.mark.parametrize(
    ("series", "outcome"),
    [([], "no_data"), ([12.0], "too_few_days"), ([3.0, 15.0], "too_few_days")],
)
def test_a_trend_without_three_days_says_it_was_not_tested(series, outcome):
    trend = classify_trend(range(1, len(series) + 1), series, threshold_pct=10.0)
    assert trend.outcome == outcome and trend.p_value is None


def test_two_days_decide_by_the_first_to_last_move():
    trend = classify_trend([1, 2], [3.0, 15.0], threshold_pct=10.0)
    assert trend.trend == "increasing" and trend.slope_pct_per_day == 12.0
