"""Cost: GA day $300, the week $336/day (+12 %), and where the money could be saved."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tars_pipeline.config import CostConfig, default_kpis
from tars_pipeline.judge.cost import cost_analysis, daily_cost, first_day_beyond

KPIS = {kpi.name: kpi for kpi in default_kpis()}
COST = CostConfig()
GA = pd.Timestamp("2025-11-19", tz="UTC")

# USD per day on GA day and on average over days 1..7, per (service, resource type).
GA_DAY = {
    ("api-gateway", "compute"): 120.0,
    ("api-gateway", "memory"): 60.0,
    ("api-gateway", "network"): 20.0,
    ("search", "compute"): 50.0,
    ("search", "memory"): 30.0,
    ("search", "storage"): 20.0,
}
WEEK = {
    ("api-gateway", "compute"): 144.0,  # +20 %: the busier gateway
    ("api-gateway", "memory"): 66.0,
    ("api-gateway", "network"): 22.0,
    ("search", "compute"): 50.0,
    ("search", "memory"): 33.0,
    ("search", "storage"): 21.0,
}


def daily_frame() -> pd.DataFrame:
    rows = [
        {"day": 0, "service": service, "resource_type": resource, "cost_usd": cost}
        for (service, resource), cost in GA_DAY.items()
    ]
    wobble = [1.02, 0.98, 1.03, 0.97, 1.01, 0.99, 1.0]  # days differ; the average is exact
    for day, factor in enumerate(wobble, start=1):
        rows += [
            {"day": day, "service": s, "resource_type": r, "cost_usd": c * factor}
            for (s, r), c in WEEK.items()
        ]
    return pd.DataFrame(rows)


def cpu_utilisation(api_gateway_pct: float = 52.0, search_pct: float = 24.0) -> pd.DataFrame:
    rows = [
        {"day": day, "service": service, "kpi": "cpu_utilization", "mean": pct}
        for day in range(8)
        for service, pct in (("api-gateway", api_gateway_pct), ("search", search_pct))
    ]
    return pd.DataFrame(rows)


def analyse(daily: pd.DataFrame | None = None, utilisation: pd.DataFrame | None = None) -> dict:
    return cost_analysis(
        daily if daily is not None else daily_frame(),
        utilisation if utilisation is not None else cpu_utilisation(),
        days_per_month=COST.days_per_month,
        low_utilisation_pct=COST.low_utilisation_pct,
    )


def test_daily_cost_is_the_mean_hourly_price_times_the_hours_in_the_day():
    ts = pd.date_range(GA, periods=1440, freq="60s")
    samples = pd.concat(
        [
            pd.DataFrame({"service": "search", "kpi": "cost_compute", "ts": ts, "value": 5.0}),
            pd.DataFrame(
                {"service": "search", "kpi": "cost_storage", "ts": ts[:720], "value": 1.0}
            ),
            pd.DataFrame({"service": "search", "kpi": "latency_p99", "ts": ts, "value": 150.0}),
        ],
        ignore_index=True,
    )
    daily = daily_cost(samples, KPIS, hours_in_day=24)
    assert daily.to_dict("records") == [
        {
            "service": "search",
            "resource_type": "compute",
            "cost_usd": 120.0,
            "usd_per_hour": 5.0,
            "sample_count": 1440,
        },
        {  # half a day of samples still prices the whole day
            "service": "search",
            "resource_type": "storage",
            "cost_usd": 24.0,
            "usd_per_hour": 1.0,
            "sample_count": 720,
        },
    ]
    dst_day = daily_cost(samples, KPIS, hours_in_day=23)
    assert dst_day["cost_usd"].tolist() == [115.0, 23.0]


def test_daily_cost_keeps_days_apart():
    ts = pd.date_range(GA, periods=2, freq="60s")
    samples = pd.DataFrame(
        {"service": "a", "kpi": "cost_network", "ts": ts, "value": [1.0, 2.0], "day": [0, 1]}
    )
    daily = daily_cost(samples, KPIS, hours_in_day=24)
    assert daily[["day", "cost_usd"]].to_dict("records") == [
        {"day": 0, "cost_usd": 24.0},
        {"day": 1, "cost_usd": 48.0},
    ]


def test_the_seed_story_ga_day_300_week_336_is_12_percent_more():
    cost = analyse()
    assert cost["ga_day_cost"] == pytest.approx(300.0)
    assert cost["daily_average"] == pytest.approx(336.0)
    assert cost["change_pct"] == pytest.approx(12.0)
    assert cost["projected_monthly"] == pytest.approx(336.0 * 30)
    assert cost["window_days"] == 7 and len(cost["by_day"]) == 8
    json.dumps(cost, allow_nan=False)


def test_breakdown_by_resource_type_and_by_service():
    cost = analyse()
    compute = cost["by_resource"][0]
    assert compute["resource_type"] == "compute"  # the largest line first
    assert compute["ga_day_cost"] == pytest.approx(170.0)
    assert compute["daily_average"] == pytest.approx(194.0)
    assert compute["share_pct"] == pytest.approx(194.0 / 336.0 * 100)
    assert sum(row["share_pct"] for row in cost["by_resource"]) == pytest.approx(100.0)
    services = {row["service"]: row for row in cost["by_service"]}
    assert services["api-gateway"]["change_pct"] == pytest.approx(16.0)
    assert services["search"]["change_pct"] == pytest.approx(4.0)


def test_an_idle_service_gets_a_right_sizing_hint_with_its_saving():
    hints = {(h["kind"], h["service"]): h for h in analyse()["hints"]}
    search = hints[("right_sizing", "search")]
    # 24 % CPU run at 60 %: 40 % of the compute is needed, 60 % of $50/day is saved
    assert search["estimated_monthly_saving"] == pytest.approx(50.0 * 0.6 * 30)
    assert search["title"] == "Right-size search compute (CPU 24.0 %, below 40 %)"
    assert ("right_sizing", "api-gateway") not in hints  # 52 % is busy enough


def test_cost_growth_gets_a_hint_back_to_the_ga_day_level():
    hints = {(h["kind"], h["service"], h["resource_type"]): h for h in analyse()["hints"]}
    growth = hints[("cost_growth", "api-gateway", "compute")]
    assert growth["change_pct"] == pytest.approx(20.0)
    assert growth["estimated_monthly_saving"] == pytest.approx(24.0 * 30)
    assert ("cost_growth", "api-gateway", "memory") in hints  # +10 %
    assert ("cost_growth", "search", "memory") in hints  # +10 %
    assert ("cost_growth", "search", "storage") not in hints  # +5 %


def test_hints_come_largest_saving_first():
    savings = [hint["estimated_monthly_saving"] for hint in analyse()["hints"]]
    assert savings == sorted(savings, reverse=True)


def test_without_a_ga_day_the_change_is_undefined_not_infinite():
    daily = daily_frame()
    cost = analyse(daily[daily["day"] >= 1])
    assert cost["ga_day_cost"] is None and cost["change_pct"] is None
    assert cost["daily_average"] == pytest.approx(336.0)
    json.dumps(cost, allow_nan=False)


def test_a_free_ga_day_has_no_percentage_change():
    daily = daily_frame()
    daily.loc[daily["day"] == 0, "cost_usd"] = 0.0
    assert analyse(daily)["change_pct"] is None


def test_the_right_sizing_target_and_growth_threshold_are_settings():
    cost = cost_analysis(
        daily_frame(),
        cpu_utilisation(),
        days_per_month=COST.days_per_month,
        low_utilisation_pct=COST.low_utilisation_pct,
        target_utilisation_pct=80.0,
        growth_hint_pct=15.0,
    )
    hints = {(h["kind"], h["service"], h.get("resource_type")): h for h in cost["hints"]}
    # 24 % CPU run at 80 %: 70 % of $50/day saved.
    assert hints[("right_sizing", "search", "compute")]["estimated_monthly_saving"] == (
        pytest.approx(50.0 * 0.7 * 30)
    )
    assert [key for key in hints if key[0] == "cost_growth"] == [
        ("cost_growth", "api-gateway", "compute")
    ]
    assert (CostConfig().target_utilisation_pct, CostConfig().growth_hint_pct) == (60.0, 10.0)


def _by_day(*totals: float) -> pd.Series:
    return pd.Series(totals, index=range(len(totals)), dtype="float64")


def test_a_cost_step_is_dated_on_the_day_it_starts() -> None:
    # +15 % from day 2 on: the week's average crosses 10 % later; the step is on day 2.
    step = first_day_beyond(_by_day(300, 300, 345, 345, 345), 300.0, 10.0)
    assert (step["day"], step["held"]) == (2, True)
    assert step["change_pct"] == pytest.approx(15.0)


def test_a_one_day_spike_is_dated_but_not_held() -> None:
    spike = first_day_beyond(_by_day(300, 300, 400, 300, 300), 300.0, 10.0)
    assert (spike["day"], spike["held"]) == (2, False)


def test_no_level_change_within_the_threshold_or_without_a_ga_day_cost() -> None:
    assert first_day_beyond(_by_day(300, 310, 290, 305), 300.0, 10.0) is None
    assert first_day_beyond(_by_day(0, 10, 20), 0.0, 10.0) is None
    # A subnormal GA-day cost (found by the property test) has no relative change either.
    assert first_day_beyond(_by_day(2.2e-313, 1.0, 1.0), 2.2e-313, 10.0) is None
