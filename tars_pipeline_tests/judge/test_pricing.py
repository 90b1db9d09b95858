"""Cost from usage × a price table: the units, the day's cost, and how it meets cost metrics.

A search service runs 2 cores, holds 8 GiB of memory and 100 GiB of storage and sends
0.5 GiB an hour. At $0.04 per core-hour, $0.005 per GiB-hour, $0.10 per GiB-month and
$0.09 per GiB, a 24-hour day costs $1.92 + $0.96 + $0.33 + $1.08.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.config import CostConfig, PriceTable, default_kpis, usage_kpis
from tars_pipeline.judge.cost import cost_analysis, daily_cost
from tars_pipeline.judge.pricing import hourly_cost, price_period_hours, priced_usage

KPIS = {kpi.name: kpi for kpi in (*default_kpis(), *usage_kpis())}
GA = pd.Timestamp("2026-03-03T05:00:00", tz="UTC")
STEP_SECONDS = 60
DAY = pd.date_range(GA, periods=1440, freq=f"{STEP_SECONDS}s")
PRICES = {"compute": 0.04, "memory": 0.005, "storage": 0.10, "network": 0.09}
USAGE = {"usage_compute": 2.0, "usage_memory": 8.0, "usage_storage": 100.0, "usage_network": 0.5}
EXPECTED_DAY_USD = {
    "compute": 2.0 * 24 * 0.04,  # core-hours × price per core-hour
    "memory": 8.0 * 24 * 0.005,  # GiB-hours × price per GiB-hour
    "storage": 100.0 * 24 / (30 * 24) * 0.10,  # GiB-months × price per GiB-month
    "network": 0.5 * 24 * 0.09,  # GiB sent × price per GiB
}


def priced(basis: str = "auto", days_per_month: float = 30.0, **prices: object) -> CostConfig:
    return CostConfig(
        basis=basis, days_per_month=days_per_month, prices=PriceTable(**(prices or PRICES))
    )


def series(service: str, kpi: str, values: float | np.ndarray, ts=DAY) -> pd.DataFrame:
    return pd.DataFrame(
        {"service": service, "kpi": kpi, "ts": ts, "value": np.broadcast_to(values, len(ts))}
    )


def usage_day(service: str = "search", ts=DAY) -> pd.DataFrame:
    return pd.concat(
        [series(service, kpi, value, ts) for kpi, value in USAGE.items()], ignore_index=True
    )


def by_resource(daily: pd.DataFrame, service: str = "search") -> dict[str, float]:
    rows = daily[daily["service"] == service]
    return dict(zip(rows["resource_type"], rows["cost_usd"], strict=True))


def assert_close(ours: Any, theirs: Any, rel: float, where: str = "") -> float:
    """Same structure, equal text and flags, numbers within `rel`: the worst relative
    difference found (numbers below 1e-9 compare absolutely)."""
    pairs: list[tuple[Any, Any, str]] = []
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), where
        pairs = [(ours[key], theirs[key], f"{where}.{key}") for key in theirs]
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), where
        pairs = [(a, b, f"{where}[{i}]") for i, (a, b) in enumerate(zip(ours, theirs, strict=True))]
    elif isinstance(theirs, float):
        assert isinstance(ours, float | int) and not isinstance(ours, bool), where
        gap = abs(ours - theirs)
        worst = 0.0 if gap <= 1e-9 else gap / abs(theirs)
        assert worst <= rel, f"{where}: {ours} vs {theirs}"
        return worst
    else:
        assert ours == theirs, where
    return max((assert_close(a, b, rel, at) for a, b, at in pairs), default=0.0)


def test_a_price_covers_an_hour_except_storage_which_covers_a_month() -> None:
    assert price_period_hours("compute", days_per_month=30) == 1.0
    assert price_period_hours("memory", days_per_month=30) == 1.0
    assert price_period_hours("network", days_per_month=30) == 1.0
    assert price_period_hours("storage", days_per_month=30) == 720.0
    assert hourly_cost(2.0, 0.04, "compute", days_per_month=30) == pytest.approx(0.08)
    assert hourly_cost(100.0, 0.10, "storage", days_per_month=30) == pytest.approx(10 / 720)
    assert hourly_cost(100.0, 0.10, "storage", days_per_month=31) == pytest.approx(10 / 744)


def test_a_day_of_usage_costs_core_hours_gib_hours_gib_months_and_gib_sent() -> None:
    daily = daily_cost(usage_day(), KPIS, hours_in_day=24, cost=priced())
    assert by_resource(daily) == pytest.approx(EXPECTED_DAY_USD, rel=1e-12)
    dollars = {"compute": 1.92, "memory": 0.96, "storage": 1 / 3, "network": 1.08}
    assert dollars == pytest.approx(EXPECTED_DAY_USD)
    assert set(daily["sample_count"]) == {1440}
    assert list(daily.columns) == [
        "service", "resource_type", "cost_usd", "usd_per_hour", "sample_count",
    ]  # fmt: skip


def test_the_day_is_the_sum_of_usage_times_price_per_sample_interval() -> None:
    # A daily cycle of 1..3 cores: each minute costs cores × $/core-hour × 60 s / 3600 s.
    cores = 2.0 + np.sin(np.linspace(0, 2 * np.pi, len(DAY), endpoint=False))
    daily = daily_cost(series("search", "usage_compute", cores), KPIS, hours_in_day=24,
                       cost=priced())  # fmt: skip
    per_interval = float((cores * PRICES["compute"] * STEP_SECONDS / 3600).sum())
    assert by_resource(daily)["compute"] == pytest.approx(per_interval, rel=1e-12)


def test_a_daylight_saving_day_counts_its_hours_and_gaps_cost_the_same() -> None:
    short = daily_cost(usage_day(), KPIS, hours_in_day=23, cost=priced())
    assert by_resource(short)["compute"] == pytest.approx(2.0 * 23 * 0.04)
    gappy = daily_cost(usage_day(ts=DAY[::3]), KPIS, hours_in_day=24, cost=priced())
    assert by_resource(gappy) == pytest.approx(EXPECTED_DAY_USD)  # the mean, not the sum


def test_storage_follows_the_length_of_a_month() -> None:
    longer = daily_cost(usage_day(), KPIS, hours_in_day=24, cost=priced(days_per_month=31))
    assert by_resource(longer)["storage"] == pytest.approx(100.0 / 31 * 0.10)
    assert by_resource(longer)["compute"] == pytest.approx(EXPECTED_DAY_USD["compute"])


def test_a_service_override_replaces_the_table_price_for_that_service_only() -> None:
    cost = priced(**PRICES, services={"search": {"compute": 0.08}, "batch": {"storage": 0.02}})
    samples = pd.concat([usage_day("search"), usage_day("checkout")], ignore_index=True)
    daily = daily_cost(samples, KPIS, hours_in_day=24, cost=cost)
    assert by_resource(daily, "search")["compute"] == pytest.approx(2.0 * 24 * 0.08)
    assert by_resource(daily, "search")["storage"] == pytest.approx(EXPECTED_DAY_USD["storage"])
    assert by_resource(daily, "checkout") == pytest.approx(EXPECTED_DAY_USD)


def test_usage_without_a_price_for_its_service_costs_nothing() -> None:
    cost = CostConfig(prices=PriceTable(services={"search": {"compute": 0.04}}))
    samples = pd.concat([usage_day("search"), usage_day("checkout")], ignore_index=True)
    daily = daily_cost(samples, KPIS, hours_in_day=24, cost=cost)
    assert by_resource(daily, "search") == pytest.approx({"compute": 1.92})
    assert by_resource(daily, "checkout") == {}
    rates = priced_usage(samples, KPIS, cost.prices, days_per_month=30)
    assert set(rates["service"]) == {"search"} and set(rates["kpi"]) == {"usage_compute"}


def test_without_a_price_table_usage_is_never_read_as_dollars() -> None:
    samples = pd.concat([usage_day(), series("search", "cost_compute", 5.0)], ignore_index=True)
    for cost in (None, CostConfig()):
        daily = daily_cost(samples, KPIS, hours_in_day=24, cost=cost)
        assert by_resource(daily) == pytest.approx({"compute": 120.0})


def test_auto_cost_metrics_win_and_usage_fills_in_per_service_and_resource_type() -> None:
    samples = pd.concat(
        [usage_day("search"), usage_day("checkout"), series("search", "cost_compute", 5.0)],
        ignore_index=True,
    )
    daily = daily_cost(samples, KPIS, hours_in_day=24, cost=priced())
    assert by_resource(daily, "search") == pytest.approx({**EXPECTED_DAY_USD, "compute": 120.0})
    assert by_resource(daily, "checkout") == pytest.approx(EXPECTED_DAY_USD)
    keys = list(zip(daily["service"], daily["resource_type"], strict=True))
    assert keys == sorted(keys) and len(keys) == len(set(keys))


def test_auto_decides_per_day_when_the_cost_metric_stops() -> None:
    day_1 = pd.concat([usage_day(), series("search", "cost_compute", 5.0)]).assign(day=1)
    day_2 = usage_day(ts=DAY + pd.Timedelta(days=1)).assign(day=2)
    daily = daily_cost(pd.concat([day_1, day_2]), KPIS, hours_in_day=24, cost=priced())
    compute = daily[daily["resource_type"] == "compute"].set_index("day")["cost_usd"]
    assert compute.to_dict() == pytest.approx({1: 120.0, 2: 1.92})


def test_basis_prices_ignores_the_cost_metrics() -> None:
    samples = pd.concat([usage_day(), series("search", "cost_compute", 5.0)], ignore_index=True)
    daily = daily_cost(samples, KPIS, hours_in_day=24, cost=priced(basis="prices"))
    assert by_resource(daily) == pytest.approx(EXPECTED_DAY_USD)


def week_of_usage_and_cost() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Eight days of search: 2 cores on GA day, 2.4 after (+20 %); the same week as the
    usage KPIs and as OpenCost-style cost metrics (usage × price, in USD/h)."""
    usage, metrics = [], []
    for day in range(8):
        ts = DAY + pd.Timedelta(days=day)
        levels = {**USAGE, "usage_compute": 2.0 if day == 0 else 2.4}
        for kpi, level in levels.items():
            kind = kpi.removeprefix("usage_")
            usd_per_hour = hourly_cost(level, PRICES[kind], kind, days_per_month=30)
            usage.append(series("search", kpi, level, ts).assign(day=day))
            metrics.append(series("search", f"cost_{kind}", usd_per_hour, ts).assign(day=day))
    return pd.concat(usage, ignore_index=True), pd.concat(metrics, ignore_index=True)


def test_priced_usage_gives_the_cost_analysis_of_the_cost_metrics() -> None:
    usage, metrics = week_of_usage_and_cost()
    cpu = pd.DataFrame(
        [{"day": d, "service": "search", "kpi": "cpu_utilization", "mean": 25.0} for d in range(8)]
    )

    def analysis(samples: pd.DataFrame, cost: CostConfig | None) -> dict:
        daily = daily_cost(samples, KPIS, hours_in_day=24, cost=cost)
        return cost_analysis(daily, cpu, days_per_month=30.0, low_utilisation_pct=40.0)

    from_usage = analysis(usage, priced(basis="prices"))
    from_metrics = analysis(metrics, None)
    assert from_usage["ga_day_cost"] == pytest.approx(sum(EXPECTED_DAY_USD.values()))
    assert from_usage["change_pct"] == pytest.approx(
        1.92 * 0.2 / sum(EXPECTED_DAY_USD.values()) * 100
    )
    for key in ("ga_day_cost", "daily_average", "change_pct", "projected_monthly"):
        assert from_usage[key] == pytest.approx(from_metrics[key], rel=1e-12), key
    assert_close(from_usage, from_metrics, rel=1e-12)
    assert [hint["kind"] for hint in from_usage["hints"]] == ["right_sizing", "cost_growth"]
