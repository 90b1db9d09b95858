"""What the charts plot, computed into the retrospective model (fast: no Dagster run)."""

from __future__ import annotations

import pandas as pd
import pytest

from tars_pipeline.config import default_kpis
from tars_pipeline.reporting.retrospective import (
    ReleaseWeek,
    band_edges,
    compare_releases,
    kpi_daily_series,
    with_burn_down,
    with_daily_cost_by_resource,
)

KPIS = {kpi.name: kpi for kpi in default_kpis()}


def _drift_rows(service: str, kpi: str, baseline: float, values: list[float]) -> list[dict]:
    rows = []
    for day, value in enumerate(values):
        drift_pct = (value - baseline) / abs(baseline) * 100 if baseline else None
        rows.append(
            {
                "release": "v1",
                "day": day,
                "service": service,
                "kpi": kpi,
                "statistic": "mean",
                "baseline_value": baseline,
                "observed_value": value,
                "drift_pct": drift_pct,
                "relative": baseline != 0,
                "threshold_pct": 10.0,
                "flagged": abs(drift_pct) >= 10 if drift_pct is not None else value != 0,
            }
        )
    return rows


def test_a_series_band_is_the_baseline_plus_minus_its_threshold() -> None:
    drift = pd.DataFrame(_drift_rows("api", "latency_p99", 150.0, [150, 151, 180, 152]))
    [series] = kpi_daily_series(drift, KPIS, pd.DataFrame())
    assert series["band"] == {"lower": 135.0, "upper": 165.0}
    assert [d["flagged"] for d in series["days"]] == [False, False, True, False]
    assert series["status"] == "flagged"
    assert series["unit"] == "ms" and series["kpi_title"] == KPIS["latency_p99"].title
    assert series["max_abs_drift_pct"] == pytest.approx(20.0)


def test_a_zero_baseline_has_no_band_and_says_so() -> None:
    drift = pd.DataFrame(_drift_rows("api", "error_rate", 0.0, [0.0, 0.0, 0.3]))
    [series] = kpi_daily_series(drift, KPIS, pd.DataFrame())
    assert series["band"] is None and series["relative"] is False
    assert series["days"][2]["drift_pct"] is None


def test_series_are_ordered_worst_status_first_with_anomaly_counts() -> None:
    drift = pd.DataFrame(
        _drift_rows("api", "throughput", 100.0, [100, 101, 100])
        + _drift_rows("api", "latency_p99", 150.0, [150, 180, 150])
        + _drift_rows("db", "cpu_utilization", 40.0, [40, 41, 40])
        + _drift_rows("db", "memory_utilization", 50.0, [50, 51, 50])
    )
    anomalies = pd.DataFrame(
        [{"service": "db", "kpi": "memory_utilization", "day": 2}] * 2,
    )
    series = kpi_daily_series(
        drift,
        KPIS,
        anomalies,
        degradations=[{"service": "api", "kpi": "latency_p99"}],
        unexpected_drifts=[{"service": "db", "kpi": "cpu_utilization"}],
    )
    assert [(s["kpi"], s["status"]) for s in series] == [
        ("latency_p99", "degraded"),
        ("cpu_utilization", "drifted"),
        ("memory_utilization", "anomalous"),
        ("throughput", "ok"),
    ]
    assert series[2]["days"][2]["anomalies"] == 2


def test_the_burn_down_ends_at_the_windows_budget_consumed() -> None:
    slo = {
        "error_budget_pct": 0.1,
        "period_days": 30,
        "window_days": 2,
        "budget_consumed_pct": 10.0,
        "by_day": [
            {"day": 1, "bad_fraction_pct": 0.05, "sample_count": 1440},
            {"day": 2, "bad_fraction_pct": 0.25, "sample_count": 1440},
        ],
    }
    burn = with_burn_down(slo)["burn_down"]
    # Day 1 burns at 0.5x for 1 of 30 days, day 2 at 2.5x: 1.67 % then 10 % in total.
    assert [round(p["budget_consumed_pct"], 2) for p in burn] == [1.67, 10.0]
    assert burn[-1]["budget_remaining_pct"] == pytest.approx(90.0)
    assert [round(p["sustainable_remaining_pct"], 2) for p in burn] == [96.67, 93.33]


def test_a_day_without_samples_does_not_burn_budget() -> None:
    slo = {
        "error_budget_pct": 1.0,
        "period_days": 30,
        "window_days": 2,
        "by_day": [
            {"day": 1, "bad_fraction_pct": None, "sample_count": 0},
            {"day": 2, "bad_fraction_pct": 1.0, "sample_count": 10},
        ],
    }
    assert [p["day"] for p in with_burn_down(slo)["burn_down"]] == [2]


def test_health_bands_become_score_ranges_best_first() -> None:
    assert band_edges({"critical": 0, "healthy": 90, "degraded": 50, "watch": 75}) == [
        {"band": "healthy", "min_score": 90.0, "max_score": 100.0},
        {"band": "watch", "min_score": 75.0, "max_score": 90.0},
        {"band": "degraded", "min_score": 50.0, "max_score": 75.0},
        {"band": "critical", "min_score": 0.0, "max_score": 50.0},
    ]


def test_each_days_cost_is_split_by_resource_type() -> None:
    cost = {"by_day": [{"day": 0, "cost_usd": 30.0}, {"day": 1, "cost_usd": 33.0}]}
    daily = pd.DataFrame(
        [
            {"day": 0, "service": "a", "resource_type": "compute", "cost_usd": 20.0},
            {"day": 0, "service": "b", "resource_type": "compute", "cost_usd": 5.0},
            {"day": 0, "service": "a", "resource_type": "storage", "cost_usd": 5.0},
            {"day": 1, "service": "a", "resource_type": "compute", "cost_usd": 33.0},
        ]
    )
    days = with_daily_cost_by_resource(cost, daily)["by_day"]
    assert days[0]["by_resource"] == {"compute": 25.0, "storage": 5.0}
    assert days[1]["by_resource"] == {"compute": 33.0}


def _week(name: str, scores: list[float], p99: float, cost_usd: float) -> ReleaseWeek:
    days = range(len(scores))
    return ReleaseWeek(
        name,
        pd.DataFrame({"day": list(days), "score": scores, "band": "healthy"}),
        pd.DataFrame(
            [{"day": d, "service": "api", "kpi": "latency_p99", "mean": p99} for d in days]
            + [{"day": d, "service": "api", "kpi": "throughput", "mean": 100.0} for d in days]
        ),
        pd.DataFrame(
            [
                {"day": d, "service": "api", "resource_type": "compute", "cost_usd": cost_usd}
                for d in days
            ]
        ),
    )


def test_the_comparison_flags_kpis_worse_than_the_previous_release() -> None:
    comparison = compare_releases(
        _week("v2", [100, 90, 80], p99=180.0, cost_usd=110.0),
        _week("v1", [100, 95, 95], p99=150.0, cost_usd=100.0),
        KPIS,
        previous_name="v1",
    )
    assert comparison["available"] is True
    assert comparison["average_health"] == {"current": 85.0, "previous": 95.0}
    rows = {row["kpi"]: row for row in comparison["kpis"]}
    assert rows["latency_p99"]["change_pct"] == pytest.approx(20.0)
    assert rows["latency_p99"]["adverse"] is True
    assert rows["throughput"]["adverse"] is False
    assert comparison["kpis"][0]["kpi"] == "latency_p99"  # adverse first
    assert comparison["cost_daily_average"]["change_pct"] == pytest.approx(10.0)


def test_a_previous_release_without_stored_data_is_reported_unavailable() -> None:
    current = _week("v2", [100, 90], p99=150.0, cost_usd=1.0)
    assert compare_releases(current, None, KPIS, previous_name="v1") == {
        "previous_release": "v1",
        "available": False,
    }
