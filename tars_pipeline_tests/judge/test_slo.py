"""SLO maths: error budget, burn rate, budget consumed, and the SRE Workbook's alerts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.config import SloDefinition, default_kpis, default_slos
from tars_pipeline.judge.slo import (
    MULTIWINDOW_ALERTS,
    bad_fraction,
    burn_rate_threshold,
    error_budget,
    multiwindow_alerts,
    slo_day_status,
    slo_window_summary,
)
from tars_pipeline.judge.traffic import request_count

KPIS = {kpi.name: kpi for kpi in default_kpis()}
SLOS = {slo.name: slo for slo in default_slos()}
AVAILABILITY, ERROR_RATE, LATENCY_P99 = (
    SLOS["availability"],
    SLOS["error_rate"],
    SLOS["latency_p99"],
)
GA = pd.Timestamp("2025-11-19", tz="UTC")


def minutes(count: int, start: pd.Timestamp = GA) -> pd.Series:
    return pd.Series(pd.date_range(start, periods=count, freq="60s"))


def day_rows(bad_fractions: list[float], slo: SloDefinition, samples: int = 1440) -> pd.DataFrame:
    budget = error_budget(slo)
    return pd.DataFrame(
        {
            "day": range(1, len(bad_fractions) + 1),
            "bad_fraction": bad_fractions,
            "burn_rate": [fraction / budget for fraction in bad_fractions],
            "compliant": [fraction / budget <= 1 for fraction in bad_fractions],
            "sample_count": samples,
        }
    )


# --- the SRE Workbook, chapter 5, table 5-8 --------------------------------------------


def test_workbook_table_5_8_burn_rates_for_a_30_day_budget():
    rows = [
        (
            alert.severity,
            alert.long_window,
            alert.short_window,
            alert.budget_consumed_fraction,
            round(alert.burn_rate_threshold(30), 6),
        )
        for alert in MULTIWINDOW_ALERTS
    ]
    assert rows == [
        ("page", pd.Timedelta("1h"), pd.Timedelta("5min"), 0.02, 14.4),
        ("page", pd.Timedelta("6h"), pd.Timedelta("30min"), 0.05, 6.0),
        ("ticket", pd.Timedelta("3D"), pd.Timedelta("6h"), 0.10, 1.0),
    ]


def test_burn_rate_thresholds_scale_with_the_slo_period():
    assert burn_rate_threshold(0.02, 28, pd.Timedelta("1h")) == pytest.approx(13.44)
    assert burn_rate_threshold(0.10, 7, pd.Timedelta("3D")) == pytest.approx(7 / 30)


# --- error budget, bad fraction, burn rate ----------------------------------------------


def test_error_budget_is_one_minus_target():
    assert error_budget(AVAILABILITY) == pytest.approx(0.001)
    assert error_budget(ERROR_RATE) == pytest.approx(0.01)


def test_ratio_sli_reads_good_or_bad_percentages_by_kpi_direction():
    assert bad_fraction(np.full(60, 99.95), AVAILABILITY, KPIS["availability"]) == pytest.approx(
        0.0005
    )
    assert bad_fraction(np.full(60, 0.08), ERROR_RATE, KPIS["error_rate"]) == pytest.approx(0.0008)


def test_threshold_sli_counts_samples_on_the_wrong_side_of_the_objective():
    latencies = np.array([150.0, 200.0, 210.0, 250.0])  # 200 ms meets a "≤ 200 ms" objective
    assert bad_fraction(latencies, LATENCY_P99, KPIS["latency_p99"]) == 0.5


def test_no_samples_is_no_bad_events_but_the_day_says_no_data():
    assert bad_fraction(np.array([]), AVAILABILITY, KPIS["availability"]) == 0.0
    status = slo_day_status(np.array([]), AVAILABILITY, KPIS["availability"], float("nan"))
    assert status.no_data and status.utilisation is None and not status.breached


def test_an_slo_on_a_neutral_kpi_is_rejected():
    slo = SloDefinition(name="load", kpi="throughput", target_pct=99.0)
    with pytest.raises(ValueError, match="neutral"):
        bad_fraction(np.ones(3), slo, KPIS["throughput"])


def test_p99_at_180_ms_uses_90_percent_of_a_200_ms_objective():
    latencies = np.full(1440, 180.0)
    status = slo_day_status(latencies, LATENCY_P99, KPIS["latency_p99"], 180.0)
    assert status.utilisation == pytest.approx(0.9)
    assert status.compliant and not status.breached and status.burn_rate == 0.0


def test_error_rate_at_0_08_percent_burns_8_percent_of_a_99_percent_slo():
    status = slo_day_status(np.full(1440, 0.08), ERROR_RATE, KPIS["error_rate"], 0.08)
    assert status.burn_rate == pytest.approx(0.08)
    assert status.utilisation == pytest.approx(0.08)
    assert status.compliant and not status.breached


def test_availability_below_target_is_a_breach():
    status = slo_day_status(np.full(1440, 99.8), AVAILABILITY, KPIS["availability"], 99.8)
    assert status.burn_rate == pytest.approx(2.0)
    assert not status.compliant and status.breached


# --- the window ---------------------------------------------------------------------------


def test_a_week_at_99_95_percent_availability_spends_a_sevenths_share_at_half_burn():
    summary = slo_window_summary(day_rows([0.0005] * 7, AVAILABILITY), AVAILABILITY, window_days=7)
    assert summary["target"] == 99.9
    assert summary["sli_pct"] == pytest.approx(99.95)
    assert summary["met"] is True
    assert summary["error_budget_pct"] == pytest.approx(0.1)
    assert summary["burn_rate"] == pytest.approx(0.5)
    assert summary["budget_consumed_pct"] == pytest.approx(0.5 * 7 / 30 * 100)  # 11.67 %
    assert summary["days_to_exhaustion"] == pytest.approx((1 - 0.5 * 7 / 30) * 30 / 0.5)  # 53 d
    assert [day["day"] for day in summary["by_day"]] == list(range(1, 8))
    assert summary["by_day"][0]["bad_fraction_pct"] == pytest.approx(0.05)
    assert summary["compliant_days"] == 7
    assert summary["alerts_fired"] == []
    json.dumps(summary, allow_nan=False)


def test_budget_consumed_weights_days_by_their_samples():
    by_day = day_rows([0.002, 0.0], AVAILABILITY)
    by_day.loc[0, "sample_count"] = 720  # a half day of data at burn 2
    summary = slo_window_summary(by_day, AVAILABILITY, window_days=2)
    assert summary["burn_rate"] == pytest.approx(2.0 * 720 / 2160)


def test_an_exhausted_budget_has_zero_days_left_and_no_burn_has_none():
    burning = slo_window_summary(day_rows([0.01] * 7, AVAILABILITY), AVAILABILITY, window_days=7)
    assert burning["budget_consumed_pct"] == pytest.approx(10 * 7 / 30 * 100)
    assert burning["exhausted"] is True and burning["days_to_exhaustion"] == 0.0
    clean = slo_window_summary(day_rows([0.0] * 7, AVAILABILITY), AVAILABILITY, window_days=7)
    assert clean["days_to_exhaustion"] is None and clean["budget_consumed_pct"] == 0.0


def test_days_to_exhaustion_uses_the_last_days_burn():
    summary = slo_window_summary(
        day_rows([0.0, 0.0, 0.002], AVAILABILITY), AVAILABILITY, window_days=3
    )
    consumed = summary["budget_consumed_pct"] / 100
    assert summary["current_burn_rate"] == pytest.approx(2.0)
    assert summary["days_to_exhaustion"] == pytest.approx((1 - consumed) * 30 / 2.0)


def test_a_window_without_samples_is_not_met_and_has_no_sli():
    summary = slo_window_summary(
        day_rows([0.0], AVAILABILITY, samples=0), AVAILABILITY, window_days=7
    )
    assert summary["sli_pct"] is None and summary["met"] is False
    json.dumps(summary, allow_nan=False)


# --- multi-window, multi-burn-rate alerts -------------------------------------------------


def test_a_20_minute_outage_pages_on_both_page_alerts_but_not_the_ticket():
    bad = np.zeros(1440)
    bad[600:620] = 1.0  # 10:00-10:19 every request fails
    ts = minutes(1440)
    fired = {alert["long_window"]: alert for alert in multiwindow_alerts(ts, bad, AVAILABILITY, 60)}
    assert set(fired) == {"1h", "6h"}  # three days of data are needed for the 3d ticket

    fast = fired["1h"]
    assert fast["severity"] == "page" and fast["short_window"] == "5m"
    assert fast["burn_rate_threshold"] == pytest.approx(14.4)
    assert fast["first_fired"] == ts[600].isoformat()  # 1/60 bad → burn 16.7 at once
    assert fast["points_firing"] == 24  # until the 5 m window is clean again
    assert fast["duration_seconds"] == 24 * 60 and fast["episodes"] == 1

    slow = fired["6h"]
    assert slow["first_fired"] == ts[602].isoformat()  # 3/360 bad → burn 8.3 > 6
    assert slow["points_firing"] == 47  # until the 30 m window is clean again
    json.dumps(fired, allow_nan=False)


def test_a_slow_steady_burn_only_opens_a_ticket_after_three_days():
    ts = minutes(4 * 1440)
    bad = np.full(len(ts), 0.002)  # burn rate 2 against a 99.9 % SLO
    fired = multiwindow_alerts(ts, bad, AVAILABILITY, 60)
    assert [(alert["severity"], alert["long_window"]) for alert in fired] == [("ticket", "3d")]
    assert fired[0]["first_fired"] == ts[3 * 1440 - 1].isoformat()


def test_window_summary_reports_the_alerts_of_its_samples():
    values = np.full(1440, 100.0)
    values[600:620] = 0.0
    samples = pd.DataFrame(
        {"service": "api-gateway", "kpi": "availability", "ts": minutes(1440), "value": values}
    )
    by_day = day_rows([float((1 - values / 100).mean())], AVAILABILITY)
    summary = slo_window_summary(
        by_day, AVAILABILITY, window_days=1, samples=samples, kpi=KPIS["availability"]
    )
    assert [alert["long_window"] for alert in summary["alerts_fired"]] == ["1h", "6h"]
    assert summary["kpi_mean"] == pytest.approx(100.0 * 1420 / 1440)


def test_a_burn_too_small_to_divide_by_never_exhausts_the_budget():
    from tars_pipeline.judge.slo import days_to_exhaustion

    assert days_to_exhaustion(10.0, 1e-320, 30) is None
    assert days_to_exhaustion(10.0, 0.5, 30) == pytest.approx(54.0)


# --- low traffic: "insufficient traffic", not a breach --------------------------------------


def test_an_availability_breach_on_too_few_requests_is_insufficient_traffic():
    values = np.full(1440, 99.8)  # burn rate 2 on a 99.9 % SLO
    # 0.05 req/s all day: 0.05 · 60 · 1440 = 4320 requests, below the default 10 000.
    requests = request_count(np.full(1440, 0.05), 60)
    status = slo_day_status(values, AVAILABILITY, KPIS["availability"], 99.8, requests=requests)

    assert status.insufficient_traffic and not status.breached and status.compliant
    assert status.utilisation is None
    assert status.burn_rate == pytest.approx(2.0)  # measured, not judged
    assert status.requests == pytest.approx(4320.0)
    assert status.reason.startswith("insufficient traffic: 4,320 requests on the day")


def test_enough_requests_or_none_given_judge_the_day_as_before():
    values = np.full(1440, 99.8)
    before = slo_day_status(values, AVAILABILITY, KPIS["availability"], 99.8)
    busy = slo_day_status(values, AVAILABILITY, KPIS["availability"], 99.8, requests=4.32e6)
    lowered = slo_day_status(
        values, AVAILABILITY, KPIS["availability"], 99.8, requests=4320.0, min_requests=1000
    )

    assert before.breached and not before.insufficient_traffic and before.requests is None
    for status in (busy, lowered):
        assert status.breached and not status.insufficient_traffic and status.reason is None
        assert (status.burn_rate, status.utilisation) == (before.burn_rate, before.utilisation)


def test_a_threshold_slo_is_not_guarded_by_requests():
    values = np.full(1440, 250.0)
    status = slo_day_status(values, LATENCY_P99, KPIS["latency_p99"], 250.0, requests=10.0)
    assert status.breached and not status.insufficient_traffic


def test_the_window_leaves_insufficient_traffic_days_out():
    by_day = day_rows([0.0005, 0.02, 0.0005], AVAILABILITY)  # day 2 burns 20x ...
    by_day["insufficient_traffic"] = [False, True, False]  # ... on a handful of requests

    summary = slo_window_summary(by_day, AVAILABILITY, window_days=3)
    without = slo_window_summary(
        by_day.drop(columns="insufficient_traffic"), AVAILABILITY, window_days=3
    )

    assert summary["burn_rate"] == pytest.approx(0.5) and summary["met"]
    assert summary["days_observed"] == 2 and summary["days_insufficient_traffic"] == 1
    assert [day["insufficient_traffic"] for day in summary["by_day"]] == [False, True, False]
    assert not without["met"] and "days_insufficient_traffic" not in without
    assert "insufficient_traffic" not in without["by_day"][0]
