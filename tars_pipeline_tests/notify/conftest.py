"""Fixtures for the notification tests: a loopback server and a retrospective with a P0.

The retrospective is built by the real recommendation code from findings on a service
whose name tries to ping the channel and smuggle a link, as a hostile or careless label
value could.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tars_pipeline.judge.recommendations import build_action_items, build_recommendations
from tars_pipeline.notify.http import HttpClient
from tars_pipeline_tests.notify.server import FakeServer

EVIL_SERVICE = "<!channel> & <https://evil|x>"
SLACK_PATH = "/slack/services/T0000/B0000/XXXXsecretXXXX"
WEBHOOK_PATH = "/hooks/tars/secret-webhook-token"
TOKEN = "ghp_test_token_0123456789"
REPOSITORY = "acme/shop"
ISSUES = f"/api/repos/{REPOSITORY}/issues"


def degradation(service: str, kpi: str, severity: str, **numbers: Any) -> dict[str, Any]:
    return {
        "kpi": kpi,
        "kpi_title": kpi.replace("_", " ").capitalize(),
        "service": service,
        "kind": "user_facing",
        "unit": numbers.pop("unit", "%"),
        "severity": severity,
        "p_value": 1e-9,
        "effect_size": 0.9,
        **numbers,
    }


def retrospective_model(
    service: str = EVIL_SERVICE, *, p0: bool = True, release: str = "v1.0.1"
) -> dict[str, Any]:
    """The keys notifications read, in the shape `build_retrospective` writes them."""
    degradations = [
        degradation(
            "api-gateway", "latency_p99", "high", unit="ms", day_first=2, worst_day=2,
            baseline=150.0, observed=180.0, change_pct=20.0, adverse_drift_pct=20.0,
            status="resolved", slo="latency_p99",
        ),
    ]  # fmt: skip
    if p0:
        degradations.append(
            degradation(
                service, "error_rate", "critical", day_first=3, worst_day=3, baseline=0.05,
                observed=0.5, change_pct=900.0, adverse_drift_pct=900.0, status="ongoing",
                slo="error_rate", slo_exhausted=True,
            )
        )  # fmt: skip
    drifts = [
        {
            "kpi": "cpu_utilization", "kpi_title": "CPU utilisation", "service": service,
            "unit": "%", "baseline": 45.2, "observed": 52.3, "change_pct": 15.7,
            "trend": "increasing", "potential_causes": [], "day_of_max": 7,
        }
    ]  # fmt: skip
    cost = {
        "ga_day_cost": 300.0, "daily_average": 336.0, "change_pct": 12.0,
        "projected_monthly": 10080.0, "by_resource": [], "hints": [],
    }  # fmt: skip
    recommendations = build_recommendations(degradations, drifts, [], cost)
    action_items = build_action_items(recommendations)
    return {
        "schema_version": "1.0",
        "generator": "tars-observability test",
        "generated_at": "2026-03-11T05:15:00+00:00",
        "release": {
            "name": release,
            "ga_date": "2026-03-03",
            "timezone": "America/New_York",
            "window_days": 7,
            "previous_release": None,
        },
        "summary": {
            "average_health": 88.4,
            "lowest_health": {"day": 3, "score": 61.5},
            "successes": 7,
            "degradations": len(degradations),
            "degradations_by_severity": {"critical": int(p0), "high": 1, "medium": 0, "low": 0},
            "unexpected_drifts": 1,
            "anomalies": 4,
            "recommendations": len(recommendations),
        },
        "degradations": degradations,
        "recommendations": recommendations,
        "action_items": action_items,
    }


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    # Loopback must never go through a proxy someone exported in the shell.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    fake = FakeServer(github_token=TOKEN).start()
    yield fake
    fake.stop()


class Sleeps(list):
    """Records the back-off waits instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def http(sleeps: Sleeps) -> HttpClient:
    return HttpClient(timeout_seconds=2.0, retries=3, backoff_seconds=0.5, sleep=sleeps)


@pytest.fixture
def env(server: FakeServer) -> dict[str, str]:
    return {
        "TARS_SLACK_WEBHOOK_URL": server.url + SLACK_PATH,
        "TARS_WEBHOOK_URL": server.url + WEBHOOK_PATH,
        "GITHUB_TOKEN": TOKEN,
    }
