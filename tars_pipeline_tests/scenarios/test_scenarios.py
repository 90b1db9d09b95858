"""Generated GA weeks with known injected changes, and what the judgement must find.

Each scenario is the quiet week (one service, the default KPI catalog, a daily traffic
cycle, noise) plus one story: a step, a ramp, a spike, a weekend dip, a gap, a counter
reset, zero-heavy errors, a maintenance window... It runs through the same pure steps as
the nightly and Day-7 assets (`analyse_day`, `judge_window`, recommendations) and must give
exactly the expected degradations (kpi, severity, first day, status) and unexpected drifts
(kpi, trend) — no more. Several stories must produce no finding at all; for the ones
where a method matters (hour-of-day matching, the reference week, the pre-filter,
maintenance windows) a contrast test shows the finding the method prevents.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from tars_pipeline.config import MaintenanceWindow
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.day import reference_for_day
from tars_pipeline_tests.scenarios.generator import (
    CHECKOUTS,
    GA_DATE,
    Burst,
    Change,
    CounterReset,
    Gap,
    PeakShift,
    Ramp,
    SparseErrors,
    Spike,
    Step,
    Truncate,
    Volatile,
    WeekendDip,
    generate_week,
    release,
)
from tars_pipeline_tests.scenarios.harness import Verdict, run_week, scenario_config

FAILOVER_START = dt.datetime(2025, 6, 6, 1, 0, tzinfo=dt.UTC)  # Day 3, 03:00 in Berlin
FAILOVER_END = dt.datetime(2025, 6, 6, 3, 0, tzinfo=dt.UTC)
FAILOVER = (
    Burst("error_rate", FAILOVER_START, FAILOVER_END, 5.0),
    Burst("latency_p99", FAILOVER_START, FAILOVER_END, 600.0),
)
FAILOVER_WINDOW = MaintenanceWindow(
    start=FAILOVER_START, end=FAILOVER_END, reason="database failover"
)


@dataclass(frozen=True)
class Scenario:
    name: str
    story: str
    changes: tuple[Change, ...]
    degradations: frozenset[tuple[str, str, int, str]] = frozenset()
    drifts: frozenset[tuple[str, str]] = frozenset()
    reference_week: bool = False
    extra_kpis: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def quiet(self) -> bool:
        return not self.degradations and not self.drifts


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("quiet_week", "nothing changes", ()),
        Scenario(
            "latency_step",
            "p95 latency steps up 25 % on day 3 and stays there",
            (Step("latency_p95", 3, 25.0),),
            degradations=frozenset({("latency_p95", "high", 3, "ongoing")}),
        ),
        Scenario(
            "slo_exhausting_step",
            "p99 latency steps up 25 % on day 3: ~8 % of minutes break the 200 ms SLO",
            (Step("latency_p99", 3, 25.0),),
            degradations=frozenset({("latency_p99", "critical", 3, "ongoing")}),
        ),
        Scenario(
            "latency_ramp",
            "p50 latency creeps up 3 % a day: over 10 % from day 4, 21 % by day 7",
            (Ramp("latency_p50", 3.0),),
            degradations=frozenset({("latency_p50", "high", 4, "ongoing")}),
        ),
        Scenario(
            "resource_ramp",
            "CPU creeps up 2.5 %/day with throughput (+2 %/day): drifts, not regressions",
            (Ramp("cpu_utilization", 2.5), Ramp("throughput", 2.0)),
            drifts=frozenset({("cpu_utilization", "increasing"), ("throughput", "increasing")}),
        ),
        Scenario(
            "latency_spike",
            "a 15-minute p95 spike to 3× on day 2: an incident, not a shifted day",
            (Spike("latency_p95", 2, 14.0, 15, 3.0),),
        ),
        Scenario(
            "weekend_dip_with_reference_week",
            "traffic and checkouts are 30 % lower on weekends, before and after GA",
            (WeekendDip(("throughput", "checkouts", "cpu_utilization"), 30.0),),
            reference_week=True,
            extra_kpis=("checkouts",),
        ),
        Scenario(
            "gap",
            "day 3 has no samples from 11:00 to 19:00, the traffic peak",
            (Gap(3, 11.0, 19.0),),
        ),
        Scenario(
            "partial_day",
            "day 7 is judged at 10:00, before its peak hours",
            (Truncate(7, 10.0),),
        ),
        Scenario(
            "counter_reset",
            "the request counter restarts on day 3; one naive delta is hugely negative",
            (CounterReset(3, 9.5),),
        ),
        Scenario(
            "zero_heavy_new_errors",
            "no errors at all on GA day; errors in ~2 % of day 5's minutes",
            (SparseErrors({5: 0.02}),),
            degradations=frozenset({("error_rate", "medium", 5, "resolved")}),
        ),
        Scenario(
            "zero_heavy_steady_errors",
            "errors in ~3 % of minutes, every day alike",
            (SparseErrors({}, default_share=0.03),),
        ),
        Scenario(
            "zero_heavy_more_errors",
            "errors in ~2 % of minutes, then ~12 % from day 4 on",
            (SparseErrors({4: 0.12, 5: 0.12, 6: 0.12, 7: 0.12}, default_share=0.02),),
            degradations=frozenset({("error_rate", "medium", 4, "ongoing")}),
        ),
        Scenario(
            "availability_breach",
            "the error rate quadruples from day 6: availability falls below its 99.9 % SLO",
            (Step("error_rate", 6, 300.0),),
            degradations=frozenset(
                {("availability", "high", 6, "ongoing"), ("error_rate", "medium", 6, "ongoing")}
            ),
        ),
        Scenario(
            "maintenance_window",
            "a planned 2-hour database failover on day 3 returns 5 % errors at 600 ms",
            FAILOVER,
            config={"maintenance": (FAILOVER_WINDOW,)},
        ),
        Scenario(
            "peak_shift",
            "from day 4 the traffic peak moves from 14:00 to 20:00; the daily mean holds",
            (PeakShift(("throughput", "cpu_utilization", "latency_p99"), 4, 20.0),),
        ),
        Scenario(
            "volatile_memory",
            "memory swings between −17 % and +18 % from day to day",
            (Volatile("memory_utilization", (0.0, 12.0, -14.0, 18.0, -16.0, 15.0, -17.0, 11.0)),),
            drifts=frozenset({("memory_utilization", "volatile")}),
        ),
        Scenario(
            "cost_growth",
            "compute cost is 20 % higher from day 1: a cost finding, not a regression",
            (Step("cost_compute", 1, 20.0),),
        ),
    )
}


@cache
def verdict_of(name: str, **overrides: Any) -> Verdict:
    scenario = SCENARIOS[name]
    week = generate_week(scenario.changes, extra_kpis=scenario.extra_kpis)
    settings = {**scenario.config, **overrides}
    reference = settings.pop("reference_week", scenario.reference_week)
    extra = (CHECKOUTS,) if "checkouts" in scenario.extra_kpis else ()
    config = scenario_config(release(reference=reference), extra_kpis=extra, **settings)
    return run_week(week, config)


def assert_quiet(verdict: Verdict) -> None:
    """No finding at all: no degradation, no drift, healthy days, no P0-P2 action."""
    assert verdict.degradations == [] and verdict.unexpected_drifts == []
    assert min(verdict.health().values()) >= 90.0, verdict.health()
    assert not {"P0", "P1", "P2"} & set(verdict.priorities()), verdict.recommendations


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_gives_exactly_its_expected_findings(name: str) -> None:
    scenario = SCENARIOS[name]
    verdict = verdict_of(name)

    assert verdict.degradation_keys() == scenario.degradations, verdict.degradations
    assert verdict.drift_keys() == scenario.drifts, verdict.unexpected_drifts
    if scenario.quiet:
        assert_quiet(verdict)
    health = verdict.health()
    assert all(0.0 <= score <= 100.0 for score in health.values())
    assert health[0] == 100.0  # the GA day against itself


def test_there_are_at_least_ten_scenarios_and_several_must_stay_quiet() -> None:
    assert len(SCENARIOS) >= 10
    assert sum(scenario.quiet for scenario in SCENARIOS.values()) >= 5


# --- the stories in more detail ----------------------------------------------------------


def test_a_step_is_dated_sized_and_tested() -> None:
    (finding,) = verdict_of("latency_step").degradations
    assert finding["change_pct"] == pytest.approx(25.0, abs=1.0)
    assert finding["days_degraded"] == [3, 4, 5, 6, 7]
    assert finding["p_value"] < 1e-10 and finding["effect_magnitude"] == "large"
    assert verdict_of("latency_step").priorities()[0] == "P1"


def test_a_step_that_exhausts_the_slo_budget_is_critical_and_p0() -> None:
    verdict = verdict_of("slo_exhausting_step")
    (finding,) = verdict.degradations
    assert finding["slo_exhausted"] is True
    assert "SLO error budget exhausted → critical" in finding["severity_reasons"]
    (slo,) = [s for s in verdict.judgement["slo_compliance"] if s["slo"] == "latency_p99"]
    assert slo["exhausted"] and slo["budget_consumed_pct"] > 100.0
    # The degradation and its SLO burn are one incident: one P0 item, naming both.
    assert verdict.priorities().count("P0") == 1
    (item,) = [r for r in verdict.recommendations if r["priority"] == "P0"]
    assert "one incident with SLO latency_p99" in item["title"]
    assert item["evidence"]["incident"] == verdict.judgement["incidents"][0]["id"]


def test_a_ramp_is_first_seen_when_it_crosses_the_threshold() -> None:
    (finding,) = verdict_of("latency_ramp").degradations
    assert finding["worst_day"] == 7
    assert finding["change_pct"] == pytest.approx(21.0, abs=1.0)


def test_cpu_creeping_with_throughput_names_throughput_as_the_cause() -> None:
    drifts = {u["kpi"]: u for u in verdict_of("resource_ramp").unexpected_drifts}
    assert drifts["cpu_utilization"]["change_pct"] == pytest.approx(17.5, abs=0.5)
    assert drifts["cpu_utilization"]["potential_causes"][0].startswith("throughput up")
    assert drifts["throughput"]["potential_causes"] == []


def test_a_weekend_dip_is_a_regression_only_without_the_reference_week() -> None:
    blind = verdict_of("weekend_dip_with_reference_week", reference_week=False)
    assert ("checkouts", "high", 4, "resolved") in blind.degradation_keys()
    assert ("throughput", "volatile") in blind.drift_keys()

    seeing = verdict_of("weekend_dip_with_reference_week")
    saturday = seeing.drift_row(4, "checkouts")
    assert saturday["weekday_factor"] == pytest.approx(0.7, abs=0.01)
    assert saturday["baseline_method"] == "hour_of_day+weekday"
    assert abs(saturday["drift_pct"]) < 2.0
    assert saturday["overall_drift_pct"] == pytest.approx(-30.0, abs=1.0)
    assert seeing.drift_row(2, "checkouts")["weekday_factor"] == pytest.approx(1.0, abs=0.01)


def test_without_reference_date_the_week_before_ga_is_found_and_used() -> None:
    auto = verdict_of("weekend_dip_with_reference_week", reference_week="auto")
    assert auto.degradation_keys() == set() and auto.drift_keys() == set()
    saturday = auto.drift_row(4, "checkouts")
    assert saturday["weekday_factor"] == pytest.approx(0.7, abs=0.01)
    assert saturday["baseline_method"] == "hour_of_day+weekday"


@pytest.mark.parametrize(("name", "day", "hours"), [("gap", 3, 16), ("partial_day", 7, 10)])
def test_missing_hours_are_not_drift_when_compared_hour_by_hour(name, day, hours) -> None:
    matched = verdict_of(name).drift_row(day, "throughput")
    assert matched["hours_compared"] == hours
    assert abs(matched["drift_pct"]) < 1.0
    assert matched["overall_drift_pct"] < -10.0  # what a whole-day mean would have said

    whole_day = verdict_of(name, seasonal_baseline=False)
    assert "throughput" in {kpi for kpi, _ in whole_day.drift_keys()}


def test_a_shifted_peak_shows_hour_by_hour_but_is_no_daily_finding() -> None:
    row = verdict_of("peak_shift").drift_row(5, "throughput")
    assert abs(row["drift_pct"]) < 1.0
    assert abs(row["max_hourly_drift_pct"]) > 50.0
    assert verdict_of("peak_shift").drift_row(2, "throughput")["max_hourly_drift_pct"] < 5.0


def test_a_counter_reset_is_dropped_and_counted() -> None:
    day3 = verdict_of("counter_reset").days[3]
    assert day3.dropped[["kpi", "reason", "dropped_samples"]].values.tolist() == [
        ["throughput", "negative", 1]
    ]
    unfiltered = verdict_of("counter_reset", drop_negative_samples=False)
    assert any(u["kpi"] == "throughput" for u in unfiltered.unexpected_drifts)


def test_errors_from_an_all_zero_baseline_are_a_finding_with_counts() -> None:
    (finding,) = verdict_of("zero_heavy_new_errors").degradations
    assert finding["baseline"] == 0.0 and finding["change_pct"] is None
    assert finding["zero_heavy"] is True
    assert finding["nonzero_baseline_pct"] == 0.0
    assert 1.0 < finding["nonzero_observed_pct"] < 3.0
    assert "baseline ~0" in finding["explanation"]
    # Judged by the rate test on request counts, not only by ranks (kayenta#377).
    assert finding["test"] == "poisson_rate"
    traffic = finding["traffic"]
    assert traffic["baseline_errors"] == 0.0 and traffic["observed_errors"] > 0
    assert traffic["observed_requests"] > 1e6 and not traffic["insufficient_traffic"]
    assert "rate test on request counts" in finding["explanation"]


def test_more_frequent_sparse_errors_are_not_a_negligible_effect() -> None:
    (finding,) = verdict_of("zero_heavy_more_errors").degradations
    assert finding["zero_heavy"] is True
    assert abs(finding["effect_size"]) < 0.147  # Cliff's delta alone would say negligible
    assert finding["effect_magnitude"] == "large"
    assert finding["nonzero_observed_pct"] > 4 * finding["nonzero_baseline_pct"]


def test_an_availability_breach_is_at_least_high_and_burns_the_budget() -> None:
    verdict = verdict_of("availability_breach")
    availability = next(d for d in verdict.degradations if d["kpi"] == "availability")
    assert availability["slo_breached"] is True
    assert "SLO breached on a degraded day → at least high" in availability["severity_reasons"]
    slo = next(s for s in verdict.judgement["slo_compliance"] if s["slo"] == "availability")
    # Five good days still carry the week (burn 0.93), but days 6 and 7 burn at 2×.
    assert [day["compliant"] for day in slo["by_day"]] == [True] * 5 + [False] * 2
    assert slo["current_burn_rate"] == pytest.approx(2.0, rel=0.1)
    assert slo["days_to_exhaustion"] < 15.0
    assert [alert["long_window"] for alert in slo["alerts_fired"]] == ["3d"]
    assert verdict.priorities()[0] == "P1"


def test_a_maintenance_window_is_left_out_of_drift_slo_and_health() -> None:
    inside = verdict_of("maintenance_window")
    quiet = verdict_of("quiet_week")
    assert int(inside.days[3].excluded["excluded_samples"].sum()) == 120 * 12  # 2 h × 12 KPIs
    budget = {s["slo"]: s["budget_consumed_pct"] for s in inside.judgement["slo_compliance"]}
    quiet_budget = {s["slo"]: s["budget_consumed_pct"] for s in quiet.judgement["slo_compliance"]}
    assert budget == pytest.approx(quiet_budget, rel=0.05)

    unplanned = verdict_of("maintenance_window", maintenance=())
    kpis = {d["kpi"] for d in unplanned.degradations}
    assert {"availability", "latency_p99"} <= kpis
    assert unplanned.health()[3] < 75.0


def test_cost_growth_is_a_cost_finding_not_a_regression() -> None:
    verdict = verdict_of("cost_growth")
    cost = verdict.judgement["cost_analysis"]
    assert cost["change_pct"] == pytest.approx(12.0, abs=0.5)  # compute is 60 % of the bill
    assert verdict.priorities() and set(verdict.priorities()) == {"P3"}
    assert any("compute cost growth" in r["title"] for r in verdict.recommendations)


def test_quiet_cost_makes_no_cost_recommendation() -> None:
    assert verdict_of("quiet_week").recommendations == []


def test_a_rerun_gives_the_same_verdict() -> None:
    scenario = SCENARIOS["availability_breach"]
    again = run_week(generate_week(scenario.changes), scenario_config(release()))
    assert again.document == verdict_of("availability_breach").document


def test_a_reference_date_on_or_after_ga_is_a_user_error() -> None:
    late = release(reference=True).model_copy(update={"reference_date": GA_DATE})
    config = scenario_config(late)
    with pytest.raises(TarsUserError, match="not before GA"):
        reference_for_day(config, late, 1, lambda date: generate_week().days[0])
    assert reference_for_day(config, late, 0, lambda date: generate_week().days[0]) is None
