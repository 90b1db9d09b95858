"""Recommendations for v1.0.2 from the seed's release week: one P1, the drifts, a P3 cost item."""

from __future__ import annotations

import json

import pytest

from tars_pipeline.judge.recommendations import build_action_items, build_recommendations
from tars_pipeline_tests.judge.release_week import (
    release_week_degradations,
    release_week_unexpected_drifts,
)
from tars_pipeline_tests.judge.test_cost import analyse

AVAILABILITY_MET = {
    "service": "api-gateway",
    "slo": "availability",
    "kpi": "availability",
    "target": 99.9,
    "sli_pct": 99.95,
    "met": True,
    "period_days": 30,
    "budget_consumed_pct": 11.7,
    "burn_rate": 0.5,
    "days_to_exhaustion": 53.0,
    "exhausted": False,
    "alerts_fired": [],
}


@pytest.fixture(scope="module")
def story() -> list[dict]:
    return build_recommendations(
        release_week_degradations(),
        release_week_unexpected_drifts(),
        [AVAILABILITY_MET],
        analyse(),
    )


def test_the_story_yields_one_p1_the_drifts_as_p2_and_cost_as_p3(story):
    priorities = [recommendation["priority"] for recommendation in story]
    assert priorities.count("P0") == 0
    assert priorities.count("P1") == 1
    assert priorities.count("P2") == 4  # the medium error-rate regression and three drifts
    assert priorities == sorted(priorities)
    assert len(story) == 10  # the top ten, cost hints filling the backlog
    json.dumps(story, allow_nan=False)


def test_the_p1_names_the_regression_with_its_numbers(story):
    p1 = story[0]
    assert p1["priority"] == "P1" and p1["category"] == "degradation"
    assert p1["title"] == (
        "Fix latency p99 regression on api-gateway (150 → 180 ms, +20 %, first seen day 2)"
    )
    assert p1["evidence"]["kpi"] == "latency_p99" and p1["evidence"]["day"] == 2
    assert p1["evidence"]["p_value"] < 0.01


def test_the_resolved_error_rate_regression_asks_for_a_root_cause(story):
    errors = next(r for r in story if r["evidence"].get("kpi") == "error_rate")
    assert errors["priority"] == "P2"
    assert errors["title"].startswith(
        "Root-cause the resolved error rate regression on api-gateway"
    )
    assert "0.05 → 0.08 %, +60 %, first seen day 4" in errors["title"]


def test_drifts_are_p2_with_their_trend_and_cause(story):
    drifts = [r for r in story if r["category"] == "unexpected_drift"]
    titles = [r["title"] for r in drifts]
    assert (
        "Investigate CPU utilisation drift on api-gateway (45.2 → 52.3 %, +15.7 %, increasing)"
        in titles
    )
    assert "Investigate volatile memory utilisation on search (±18 %, -17 % to +18 %)" in titles
    cpu = next(r for r in drifts if r["evidence"]["kpi"] == "cpu_utilization")
    assert "throughput up 12.0 %" in cpu["action"]


def test_cost_is_a_p3_item_with_the_projected_monthly_bill(story):
    cost = [r for r in story if r["category"] == "cost"]
    assert all(r["priority"] == "P3" for r in cost)
    assert cost[0]["title"] == "Optimise cost (projected $10,080/month, +12 % vs GA day)"
    assert any(r["title"].startswith("Right-size search compute") for r in cost)


def test_an_exhausted_budget_or_a_critical_regression_is_p0():
    exhausted = {**AVAILABILITY_MET, "met": False, "budget_consumed_pct": 140.0, "exhausted": True}
    critical = {
        "kpi": "latency_p95",
        "kpi_title": "Latency p95",
        "service": "search",
        "unit": "ms",
        "severity": "critical",
        "day_first": 1,
        "worst_day": 1,
        "baseline": 100.0,
        "observed": 200.0,
        "change_pct": 100.0,
        "adverse_drift_pct": 100.0,
        "status": "ongoing",
    }
    recommendations = build_recommendations([critical], [], [exhausted], None)
    assert [(r["priority"], r["category"]) for r in recommendations] == [
        ("P0", "slo"),  # both critical; the larger impact (140 % of a budget) first
        ("P0", "degradation"),
    ]
    assert "140 % of the 30-day budget consumed" in recommendations[0]["title"]


def test_a_budget_burning_faster_than_allowed_is_p1_and_a_fired_page_is_p2():
    burning = {**AVAILABILITY_MET, "met": False, "burn_rate": 2.5, "days_to_exhaustion": 4.0}
    paged = {
        **AVAILABILITY_MET,
        "alerts_fired": [
            {
                "severity": "page",
                "burn_rate_threshold": 14.4,
                "long_window": "1h",
                "short_window": "5m",
            }
        ],
    }
    (burn,) = build_recommendations([], [], [burning], None)
    assert burn["priority"] == "P1" and "burn rate 2.5×, exhausted in 4 days" in burn["title"]
    (page,) = build_recommendations([], [], [paged], None)
    assert page["priority"] == "P2" and "14.4× page over 1h/5m would have fired" in page["title"]


def test_low_severity_findings_go_to_the_backlog():
    low = {
        "kpi": "error_rate",
        "service": "search",
        "unit": "%",
        "severity": "low",
        "day_first": 3,
        "baseline": 0.0,
        "observed": 0.0069,
        "change_pct": None,
        "status": "resolved",
    }
    (recommendation,) = build_recommendations([low], [], [], None)
    assert recommendation["priority"] == "P3"
    assert "from a ~0 baseline" in recommendation["title"]


def test_the_limit_keeps_the_most_urgent():
    top = build_recommendations(
        release_week_degradations(), release_week_unexpected_drifts(), [], analyse(), limit=2
    )
    assert [r["priority"] for r in top] == ["P1", "P2"]
    assert top[1]["category"] == "degradation"  # a medium regression before a drift


def test_action_items_are_unchecked_boxes_grouped_by_priority_with_a_due_date(story):
    items = build_action_items(story)
    assert [item["priority"] for item in items] == [r["priority"] for r in story]
    assert all(item["done"] is False for item in items)
    due = {item["priority"]: item["due"] for item in items}
    assert due == {"P1": "24-48h", "P2": "within sprint", "P3": "backlog"}
    assert items[0]["description"] == story[0]["title"]
    assert build_action_items([{"priority": "P0", "title": "x"}])[0]["due"] == "immediate"


def test_cost_that_moved_by_noise_makes_no_cost_item():
    flat = {
        "ga_day_cost": 300.0,
        "daily_average": 301.0,
        "change_pct": 0.33,
        "projected_monthly": 9030.0,
        "by_resource": [],
        "hints": [],
    }
    assert build_recommendations([], [], [], flat) == []
    grown = {**flat, "daily_average": 336.0, "change_pct": 12.0, "projected_monthly": 10080.0}
    (item,) = build_recommendations([], [], [], grown)
    assert item["priority"] == "P3" and item["category"] == "cost"
    assert build_recommendations([], [], [], grown, cost_growth_pct=15.0) == []
