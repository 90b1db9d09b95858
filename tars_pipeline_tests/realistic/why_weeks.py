"""Weeks whose changes are localised to one label value, for "why and when" (issue 12).

Each injection moves one route (`uri`) or one pod (`instance`) of a service, from a local
minute that is not on a round hour, so the onset, the top contributor and the deploy that
preceded it can all be scored against what was injected. Every injection has a deploy
annotation a few minutes before it and a decoy config change after it (`annotations_of`):
the first must be named on the finding, the second must not.

The weeks share the realistic generator (exporter-shaped metrics, diurnal traffic, Poisson
counts, restarts, gaps) and are served by their own Prometheus (`load_why_suite`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tars_pipeline_tests.realistic.generator import (
    Gap,
    Injection,
    Restart,
    WeekSpec,
    moment,
    place_weeks,
)
from tars_pipeline_tests.realistic.weeks import FRI, MON, THU, checkout, gateway, search

DEPLOY_MINUTES_BEFORE = (3, 7, 12, 14, 5, 9, 11, 4, 13, 6, 8, 10)
"""How long before each injection (in order) its deploy annotation is placed: ≤ 15 min."""
DECOY_MINUTES_AFTER = 20
"""A config change this long after the onset: after the change, so never its cause."""

WHY_WEEKS: tuple[WeekSpec, ...] = (
    WeekSpec(
        key="x1",
        title="one route, one pod: errors and latency",
        timezone="America/Chicago",
        ga_weekday=THU,
        seed=701,
        services=(checkout("x1"), search("x1"), gateway("x1")),
        injections=(
            Injection(
                "5xx +4 pt on /api/orders", "error_step", "x1-checkout", 2, "14:32", 0.04,
                uri="/api/orders",
            ),
            Injection(
                "latency x1.8 on /api/search", "latency_step", "x1-search", 3, "09:47", 1.8,
                uri="/api/search",
            ),
            Injection(
                "latency x2 on pod 1", "latency_step", "x1-gateway", 4, "16:05", 2.0, instance=1
            ),
            Injection(
                "latency x1.7 on /api/orders/{id}", "latency_step", "x1-checkout", 5, "10:23",
                1.7, uri="/api/orders/{id}",
            ),
        ),
        restarts=(Restart("x1-search", 0, 2, "03:11"),),
        gaps=(Gap("x1-gateway", 6, "02:00", 60),),
    ),
    WeekSpec(
        key="x2",
        title="pods and routes, across a weekend",
        timezone="Asia/Kolkata",
        ga_weekday=FRI,
        seed=702,
        weekend_factor=0.6,
        services=(checkout("x2"), search("x2", instances=3), gateway("x2", instances=3)),
        injections=(
            Injection(
                "latency x1.6 on /api/orders/{id}", "latency_step", "x2-checkout", 1, "11:18",
                1.6, uri="/api/orders/{id}",
            ),
            Injection(
                "latency x1.8 on pod 0", "latency_step", "x2-search", 5, "20:41", 1.8,
                instance=0,
            ),
            Injection(
                "latency x2.2 on pod 2", "latency_step", "x2-gateway", 2, "13:52", 2.2,
                instance=2,
            ),
            Injection(
                "5xx +5 pt on /api/search", "error_step", "x2-search", 3, "08:36", 0.05,
                uri="/api/search",
            ),
        ),
        restarts=(Restart("x2-gateway", 1, 4, "05:40"),),
    ),
    WeekSpec(
        key="x3",
        title="errors on a pod and a route, latency on a route",
        timezone="Europe/London",
        ga_weekday=MON,
        seed=703,
        daily_noise=0.04,
        services=(checkout("x3", peak=30.0), search("x3"), gateway("x3")),
        injections=(
            Injection(
                "5xx +3 pt on pod 1", "error_step", "x3-gateway", 2, "19:14", 0.03, instance=1
            ),
            Injection(
                "latency x1.9 on /api/orders", "latency_step", "x3-checkout", 3, "15:09", 1.9,
                uri="/api/orders",
            ),
            Injection(
                "5xx +5 pt on /api/orders/{id}", "error_step", "x3-checkout", 6, "12:44", 0.05,
                uri="/api/orders/{id}",
            ),
            Injection(
                "latency x1.8 on pod 0", "latency_step", "x3-search", 4, "22:27", 1.8, instance=0
            ),
        ),
        gaps=(Gap("x3-search", 5, "07:00", 90),),
    ),
)  # fmt: skip


def placed_why_weeks(now: dt.datetime | None = None) -> tuple[WeekSpec, ...]:
    return place_weeks(WHY_WEEKS, now or dt.datetime.now(dt.UTC))


def label_of(injection: Injection) -> tuple[str, str]:
    """The (label, value) the injection is localised to, as Prometheus carries it."""
    if injection.uri is not None:
        return "uri", injection.uri
    assert injection.instance is not None, f"{injection.label} is not localised"
    return "instance", f"{injection.service}-{injection.instance}:8080"


def annotations_of(week: WeekSpec) -> list[dict[str, Any]]:
    """The week's annotation file entries: a deploy before each injection, a decoy after."""
    entries = []
    injections = sorted(week.injections, key=lambda inj: moment(week, inj.day, inj.at))
    for number, inj in enumerate(injections):
        start = moment(week, inj.day, inj.at)
        before = DEPLOY_MINUTES_BEFORE[number % len(DEPLOY_MINUTES_BEFORE)]
        for offset, kind, title in (
            (-before * 60, "deploy", f"{inj.service}@deploy-{week.key}-{number}"),
            (DECOY_MINUTES_AFTER * 60, "config", f"{inj.service} decoy-{week.key}-{number}"),
        ):
            at = dt.datetime.fromtimestamp(start + offset, dt.UTC)
            entries.append(
                {
                    "time": at.isoformat().replace("+00:00", "Z"),
                    "kind": kind,
                    "title": title,
                    "service": inj.service,
                }
            )
    return entries
