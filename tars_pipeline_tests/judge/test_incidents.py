"""Incidents: one service's co-occurring findings are one incident, one work item."""

from __future__ import annotations

import pandas as pd

from tars_pipeline.judge.health import anomaly_penalty
from tars_pipeline.judge.incidents import build_incidents, cluster_events, worst
from tars_pipeline.judge.recommendations import build_recommendations

T0 = pd.Timestamp("2026-03-05T14:00:00Z")


def _event(service: str, kpi: str, minute: int, length: int = 5, **extra: object) -> dict:
    start = T0 + pd.Timedelta(minutes=minute)
    return {
        "service": service,
        "kpi": kpi,
        "day": 2,
        "start": start,
        "end": start + pd.Timedelta(minutes=length),
        "alarm_ts": start + pd.Timedelta(minutes=extra.pop("alarm_after", 2)),
        "peak_ts": start,
        "peak_z": extra.pop("peak_z", 7.0),
        "severity": extra.pop("severity", "high"),
        **extra,
    }


def _degradation(service: str, kpi: str, severity: str, day: int = 2, drift: float = 20.0):
    return {
        "service": service,
        "kpi": kpi,
        "kpi_title": kpi.replace("_", " ").capitalize(),
        "unit": "ms",
        "severity": severity,
        "day_first": day,
        "worst_day": day,
        "baseline": 150.0,
        "observed": 180.0,
        "change_pct": drift,
        "adverse_drift_pct": drift,
        "status": "ongoing",
        "kind": "user_facing",
    }


def test_events_close_in_time_on_one_service_are_one_cluster() -> None:
    events = pd.DataFrame(
        [
            _event("api", "latency_p50", 0),
            _event("api", "latency_p99", 3),
            _event("api", "latency_p95", 18),  # within 15 min of the last end (8)
            _event("api", "cpu_utilization", 120),  # much later
            _event("db", "latency_p99", 1),  # another service
        ]
    )
    clusters = cluster_events(events)
    assert [sorted(c["kpi"]) for c in clusters] == [
        ["latency_p50", "latency_p95", "latency_p99"],
        ["cpu_utilization"],
        ["latency_p99"],
    ]


def test_a_latency_step_on_three_quantiles_is_one_incident_led_by_the_first_alarm() -> None:
    degradations = [
        _degradation("api", "latency_p99", "high", drift=25.0),
        _degradation("api", "latency_p95", "high", drift=22.0),
        _degradation("api", "latency_p50", "medium", drift=12.0),
    ]
    events = pd.DataFrame(
        [
            _event("api", "latency_p99", 2),
            _event("api", "latency_p95", 0, alarm_after=1),  # alarmed first
            _event("api", "latency_p50", 1),
        ]
    )
    (incident,) = build_incidents(degradations, events)
    assert incident["kind"] == "regression" and incident["severity"] == "high"
    assert incident["leading_kpi"] == "latency_p95"
    assert set(incident["kpis"]) == {"latency_p50", "latency_p95", "latency_p99"}
    assert incident["start"] == T0
    assert len(incident["members"]) == 6

    recommendations = build_recommendations(degradations, [], [], None, incidents=[incident])
    (item,) = [r for r in recommendations if r["category"] == "degradation"]
    assert item["priority"] == "P1"
    assert item["evidence"]["kpi"] == "latency_p95"
    assert "one incident with" in item["title"]
    assert item["evidence"]["incident"] == incident["id"]
    # Without incidents: one item per KPI, as before.
    assert len(build_recommendations(degradations, [], [], None)) == 3


def test_an_error_step_with_its_slo_burn_is_one_p0_item() -> None:
    degradations = [
        _degradation("shop", "error_rate", "high", day=4),
        _degradation("shop", "availability", "medium", day=4),
    ]
    slo = {
        "service": "shop",
        "slo": "availability",
        "kpi": "availability",
        "exhausted": True,
        "budget_consumed_pct": 240.0,
        "burn_rate": 2.4,
        "period_days": 30,
    }
    (incident,) = build_incidents(degradations, pd.DataFrame(), [slo])
    assert incident["severity"] == "critical"
    recommendations = build_recommendations(degradations, [], [slo], None, incidents=[incident])
    urgent = [r for r in recommendations if r["priority"] in ("P0", "P1")]
    assert len(urgent) == 1 and urgent[0]["priority"] == "P0"


def test_different_services_and_days_stay_apart_and_leftover_clusters_are_transients() -> None:
    degradations = [
        _degradation("api", "latency_p99", "high", day=2),
        _degradation("api", "error_rate", "medium", day=5),
        _degradation("db", "latency_p99", "low", day=2),
    ]
    events = pd.DataFrame([_event("web", "throughput", 0, severity="medium")])
    incidents = build_incidents(degradations, events)
    assert [(i["service"], i["first_day"], i["kind"]) for i in incidents] == [
        ("api", 2, "regression"),  # high
        ("web", 2, "transient"),  # medium, earlier
        ("api", 5, "regression"),  # medium
        ("db", 2, "regression"),  # low
    ]


def test_health_penalises_an_incident_once_however_many_kpis_show_it() -> None:
    per = {"low": 0.5, "medium": 1.0, "high": 3.0, "critical": 5.0}
    three = pd.DataFrame(
        [_event("api", k, i) for i, k in enumerate(["latency_p50", "latency_p95", "latency_p99"])]
    )
    assert anomaly_penalty(three, per, cap=20.0) == 3.0
    two_incidents = pd.concat(
        [three, pd.DataFrame([_event("api", "cpu_utilization", 300, severity="critical")])]
    )
    assert anomaly_penalty(two_incidents, per, cap=20.0) == 8.0
    assert worst(["low", "critical", None]) == "critical"
