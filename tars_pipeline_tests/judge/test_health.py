"""The day's health score: one number an SRE can trust because it can be taken apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tars_pipeline.config import HealthConfig, default_kpis
from tars_pipeline.judge.drift import compute_drift
from tars_pipeline.judge.health import (
    CONTRIBUTION_COLUMNS,
    band_for,
    kpi_score,
    score_day,
)

KPIS = {kpi.name: kpi for kpi in default_kpis()}
CONFIG = HealthConfig()
NO_ANOMALIES = pd.DataFrame({"severity": pd.Series(dtype=object)})


def _drift(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    """(service, kpi, baseline mean, observed mean) rows through the real drift step."""
    base = pd.DataFrame([(s, k, b) for s, k, b, _ in rows], columns=["service", "kpi", "mean"])
    day = pd.DataFrame([(s, k, o) for s, k, _, o in rows], columns=["service", "kpi", "mean"])
    return compute_drift(day, base, KPIS)


def _anomalies(*severities: str) -> pd.DataFrame:
    return pd.DataFrame({"severity": list(severities)})


def test_p99_150_to_180_ms_scores_75():
    assert kpi_score(20.0, 10.0, 5.0) == pytest.approx(75.0)


def test_kpi_score_is_100_within_threshold_0_at_five_times_and_linear_between():
    adverse = np.array([0.0, 5.0, 10.0, 30.0, 50.0, 80.0, np.inf])

    scores = kpi_score(adverse, 10.0, 5.0)

    np.testing.assert_allclose(scores, [100.0, 100.0, 100.0, 50.0, 0.0, 0.0, 0.0])


def test_kpi_score_refuses_an_undefined_drift():
    with pytest.raises(ValueError, match="undefined"):
        kpi_score(float("nan"), 10.0, 5.0)


def test_a_quiet_day_is_healthy():
    drift = _drift(
        [("checkout", "latency_p99", 150.0, 151.0), ("checkout", "cpu_utilization", 45.0, 46.0)]
    )

    health = score_day(drift, set(), NO_ANOMALIES, KPIS, CONFIG)

    assert health.score == 100.0
    assert health.band == "healthy"
    assert health.anomaly_penalty == 0.0


def test_contributions_explain_the_weighted_mean():
    # p99 (weight 2) scores 75; availability (weight 3) and cpu (weight 1) hold at 100.
    drift = _drift(
        [
            ("checkout", "latency_p99", 150.0, 180.0),
            ("checkout", "availability", 99.95, 99.95),
            ("checkout", "cpu_utilization", 45.0, 45.0),
        ]
    )

    health = score_day(drift, set(), NO_ANOMALIES, KPIS, CONFIG)

    contributions = health.contributions.set_index("kpi")
    assert list(health.contributions.columns) == list(CONTRIBUTION_COLUMNS)
    assert contributions.loc["latency_p99", "kpi_score"] == pytest.approx(75.0)
    assert contributions.loc["latency_p99", "weight"] == 2.0
    assert contributions.loc["latency_p99", "weighted_points"] == pytest.approx(2 * 75 / 6)
    assert contributions["weighted_points"].sum() == pytest.approx(health.weighted_kpi_score)
    assert health.weighted_kpi_score == pytest.approx((3 * 100 + 2 * 75 + 1 * 100) / 6)
    assert health.score == 91.7
    assert health.band == "healthy"


def test_an_slo_breach_caps_that_kpi_at_40():
    drift = _drift(
        [("checkout", "error_rate", 0.05, 0.05), ("checkout", "latency_p99", 150.0, 150.0)]
    )

    health = score_day(drift, {("checkout", "error_rate")}, NO_ANOMALIES, KPIS, CONFIG)

    contributions = health.contributions.set_index("kpi")
    assert contributions.loc["error_rate", "kpi_score"] == 40.0
    assert contributions.loc["error_rate", "slo_breached"]
    assert not contributions.loc["latency_p99", "slo_breached"]
    assert health.score == pytest.approx((2 * 40 + 2 * 100) / 4)
    assert health.band == "degraded"


def test_errors_appearing_from_a_zero_baseline_score_the_undefined_drift_score():
    drift = _drift([("checkout", "error_rate", 0.0, 0.3), ("checkout", "throughput", 0.0, 50.0)])

    health = score_day(drift, set(), NO_ANOMALIES, KPIS, CONFIG)

    scores = health.contributions.set_index("kpi")["kpi_score"]
    assert scores["error_rate"] == CONFIG.undefined_drift_score
    assert scores["throughput"] == 100.0  # neutral: moving is not bad
    assert np.isnan(health.contributions.set_index("kpi").loc["error_rate", "adverse_drift_pct"])


def test_anomalies_cost_points_by_severity():
    health = score_day(
        _drift([]), set(), _anomalies("low", "medium", "high", "critical"), KPIS, CONFIG
    )

    assert health.anomaly_penalty == pytest.approx(0.5 + 1.0 + 3.0 + 5.0)
    assert health.score == pytest.approx(90.5)
    assert health.weighted_kpi_score == 100.0
    assert health.contributions.empty


def test_the_anomaly_penalty_is_capped_at_20():
    health = score_day(_drift([]), set(), _anomalies(*["critical"] * 50), KPIS, CONFIG)

    assert health.anomaly_penalty == 20.0
    assert health.score == 80.0
    assert health.band == "watch"


def test_the_score_never_goes_below_zero():
    drift = _drift([("checkout", "latency_p99", 150.0, 1500.0)])

    health = score_day(drift, set(), _anomalies("critical"), KPIS, CONFIG)

    assert health.score == 0.0
    assert health.band == "critical"


@pytest.mark.parametrize(
    "score, band",
    [
        (100.0, "healthy"),
        (90.0, "healthy"),
        (89.9, "watch"),
        (75.0, "watch"),
        (74.9, "degraded"),
        (50.0, "degraded"),
        (49.9, "critical"),
        (0.0, "critical"),
    ],
)
def test_bands(score, band):
    assert band_for(score, CONFIG.bands) == band


def test_custom_bands_and_weights_come_from_config():
    config = HealthConfig(bands={"green": 80.0, "red": 0.0}, anomaly_penalty_cap=1.0)

    health = score_day(_drift([]), set(), _anomalies("critical"), KPIS, config)

    assert (health.score, health.band) == (99.0, "green")


@settings(max_examples=50)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["checkout", "search", "a|b"]),
            st.sampled_from(sorted(KPIS)),
            st.floats(-1e9, 1e9, allow_nan=False),
            st.floats(-1e9, 1e9, allow_nan=False),
        ),
        max_size=12,
        unique_by=lambda row: row[:2],
    ),
    severities=st.lists(st.sampled_from(["low", "medium", "high", "critical", "odd"]), max_size=30),
    breached=st.booleans(),
)
def test_scores_are_always_finite_and_within_0_to_100(rows, severities, breached):
    drift = _drift(rows)
    breaches = {(s, k) for s, k, _, _ in rows} if breached else set()

    health = score_day(drift, breaches, _anomalies(*severities), KPIS, CONFIG)

    assert 0.0 <= health.score <= 100.0
    assert health.band in CONFIG.bands
    assert 0.0 <= health.anomaly_penalty <= CONFIG.anomaly_penalty_cap
    scores = health.contributions["kpi_score"].to_numpy()
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 100)).all()
    assert health.contributions["weighted_points"].sum() == pytest.approx(
        health.weighted_kpi_score if len(drift) else 0.0
    )


def test_each_contribution_says_why_and_what_it_could_have_given():
    drift = _drift(
        [
            ("checkout", "latency_p99", 150.0, 180.0),
            ("checkout", "availability", 99.95, 99.95),
            ("checkout", "throughput", 100.0, 150.0),
            ("checkout", "error_rate", 0.0, 0.3),
        ]
    )

    health = score_day(drift, {("checkout", "availability")}, NO_ANOMALIES, KPIS, CONFIG)

    rows = health.contributions.set_index("kpi")
    p99 = rows.loc["latency_p99"]
    assert p99["max_points"] == pytest.approx(100 * 2 / 8)
    assert p99["points_lost"] == pytest.approx(p99["max_points"] - p99["weighted_points"])
    assert p99["threshold_pct"] == 10.0
    assert p99["reason"] == (
        "adverse drift 20.0 % vs threshold 10 % (0 at 50 %) → 75.0 (score 75.0)"
    )
    assert rows.loc["availability", "reason"].endswith("SLO breached → at most 40 (score 40.0)")
    assert rows.loc["throughput", "reason"].startswith("neutral KPI")
    assert rows.loc["error_rate", "reason"].startswith("baseline ~0 and it moved the bad way")
    assert health.contributions["max_points"].sum() == pytest.approx(100.0)


def test_an_error_rate_on_insufficient_traffic_is_not_judged_unless_its_slo_broke():
    drift = _drift([("backoffice", "error_rate", 0.20, 0.29), ("api", "error_rate", 0.20, 0.29)])

    health = score_day(drift, set(), NO_ANOMALIES, KPIS, CONFIG, {"backoffice": 7868.0})

    rows = health.contributions.set_index("service")
    assert rows.loc["backoffice", "kpi_score"] == 100.0
    assert "insufficient traffic: 7,868 requests" in rows.loc["backoffice", "reason"]
    assert rows.loc["api", "kpi_score"] < 100.0  # the same move on enough traffic counts
    breached = score_day(
        drift, {("backoffice", "error_rate")}, NO_ANOMALIES, KPIS, CONFIG, {"backoffice": 7868.0}
    )
    assert breached.contributions.set_index("service").loc["backoffice", "kpi_score"] <= 40.0


def _timed(service: str, severity: str, start: str, minutes: float) -> dict:
    begin = pd.Timestamp(start, tz="UTC")
    return {
        "service": service,
        "kpi": "latency_p99",
        "severity": severity,
        "start": begin,
        "end": begin + pd.Timedelta(minutes=minutes),
    }


def test_a_short_incident_costs_its_share_of_the_full_weight_minutes():
    """Impact is severity times time: a 2-minute "high" blip (3 samples at 60 s) costs
    3/15 of a high incident; one of 30 minutes costs it in full."""
    events = pd.DataFrame(
        [
            _timed("checkout", "high", "2026-03-08T10:00", 2),
            _timed("search", "high", "2026-03-08T12:00", 30),
        ]
    )
    health = score_day(_drift([]), set(), events, KPIS, HealthConfig(), step_seconds=60)
    assert health.anomaly_penalty == pytest.approx(3.0 * 3 / 15 + 3.0)
    off = score_day(
        _drift([]), set(), events, KPIS, HealthConfig(incident_full_minutes=0), step_seconds=60
    )
    assert off.anomaly_penalty == pytest.approx(6.0)


def test_an_incident_lasts_from_its_first_start_to_its_last_end():
    """p50, p95 and p99 seen one after another on a service: one incident, its span the
    union of the three, so splitting an incident into events does not make it cheaper."""
    events = pd.DataFrame(
        [
            _timed("checkout", "high", "2026-03-08T10:00", 4),
            _timed("checkout", "medium", "2026-03-08T10:06", 4),
            _timed("checkout", "high", "2026-03-08T10:12", 2),
        ]
    )
    health = score_day(_drift([]), set(), events, KPIS, HealthConfig(), step_seconds=60)
    assert health.anomaly_penalty == pytest.approx(3.0 * 15 / 15)
