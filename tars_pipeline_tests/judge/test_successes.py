"""Step "classify" for successes: SLOs met, cost stable, KPIs that held their level."""

from __future__ import annotations

import pandas as pd
import pytest

from tars_pipeline.judge.slo import slo_window_summary
from tars_pipeline.judge.successes import find_successes
from tars_pipeline_tests.judge.release_week import (
    CONFIG,
    KPIS,
    drift_from_samples,
    release_week_samples,
)


def test_availability_99_95_against_99_9_is_a_success_of_100_05_percent():
    slo = CONFIG.slos_for("availability")[0]
    by_day = pd.DataFrame(
        {
            "day": range(1, 8),
            "bad_fraction": 0.0005,
            "burn_rate": 0.5,
            "compliant": True,
            "sample_count": 1440,
        }
    )
    summary = {"service": "api-gateway", **slo_window_summary(by_day, slo, window_days=7)}
    (success,) = find_successes([summary], None, kpis=KPIS)
    assert success.value == pytest.approx(99.95) and success.target == 99.9
    assert success.achievement_pct == pytest.approx(100.05, abs=0.001)
    assert success.description == ("api-gateway: Maintained 99.950 % availability (target 99.9 %)")


def test_an_error_rate_slo_success_says_the_rate_and_the_good_events():
    summary = {
        "service": "api-gateway",
        "kpi": "error_rate",
        "sli": "ratio",
        "target": 99.0,
        "sli_pct": 99.95,
        "met": True,
        "kpi_mean": 0.05,
    }
    (success,) = find_successes([summary], None, kpis=KPIS)
    assert success.description == (
        "api-gateway: Kept error rate at 0.05 % on average: maintained 99.950 % good events "
        "(target 99 %)"
    )


def test_a_missed_slo_is_not_a_success():
    summary = {"service": "a", "kpi": "availability", "target": 99.9, "sli_pct": 99.8, "met": False}
    assert find_successes([summary], None, kpis=KPIS) == []


def test_cost_within_the_drift_threshold_of_ga_day_is_a_success():
    cost = {"ga_day_cost": 300.0, "daily_average": 306.0, "change_pct": 2.0}
    (success,) = find_successes([], cost)
    assert success.kpi == "cost" and success.value == 306.0 and success.target == 300.0
    assert success.description.startswith("Cost stability: $306/day average, 2.0 % above")
    # Lower is better: a rise reads below 100 %, never as over-achievement.
    assert success.achievement_pct == pytest.approx(300.0 / 306.0 * 100.0)


def test_a_cost_rise_beyond_the_drift_threshold_is_not_a_success():
    # The seed's week: +12 % is a cost drift for the cost section, not "116 % achievement".
    assert (
        find_successes([], {"ga_day_cost": 300.0, "daily_average": 336.0, "change_pct": 12.0}) == []
    )


def test_a_met_slo_on_a_degraded_kpi_is_not_also_a_success():
    summary = {"service": "api-gateway", "kpi": "latency_p99", "slo": "latency_p99",
               "target": 99.0, "sli_pct": 99.45, "met": True}  # fmt: skip
    assert len(find_successes([summary], None, kpis=KPIS)) == 1
    assert (
        find_successes([summary], None, kpis=KPIS, degraded=[("api-gateway", "latency_p99")]) == []
    )


def test_user_facing_kpis_that_held_their_ga_day_level_are_successes():
    samples = release_week_samples()
    successes = find_successes([], None, kpis=KPIS, drift=drift_from_samples(samples))
    assert [(s.service, s.kpi) for s in successes] == [("api-gateway", "latency_p50")]
    assert successes[0].achievement_pct == pytest.approx(100.0)


def test_a_success_without_an_achievement_number_is_left_out():
    cost = {"ga_day_cost": 0.0, "daily_average": 0.0, "change_pct": 0.0}
    assert find_successes([], cost) == []


def test_only_an_slo_success_names_its_slo():
    summary = {"service": "a", "kpi": "availability", "slo": "availability", "target": 99.9,
               "sli_pct": 99.95, "met": True}  # fmt: skip
    cost = {"ga_day_cost": 300.0, "daily_average": 306.0, "change_pct": 2.0}
    slo_success, cost_success = find_successes([summary], cost, kpis=KPIS)
    assert list(slo_success.as_record()) == [
        "category", "kpi", "service", "slo", "value", "target", "achievement_pct", "description"
    ]  # fmt: skip
    assert "slo" not in cost_success.as_record()
