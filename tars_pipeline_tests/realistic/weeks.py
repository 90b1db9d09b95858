"""The realistic weeks: services, injected changes and controls (docs/scenario-suite.md).

Each week's services carry the week's key as a prefix (`w3-checkout`), so no week's series
can reach another week's reference days. GA dates are not fixed: `placed_weeks(now)` puts
each week in the recent past (generator.place_weeks). The ground truth of every injection
is computed from the generated model (generator.ground_truth), never written here.
"""

from __future__ import annotations

import datetime as dt

from tars_pipeline_tests.realistic.generator import (
    Gap,
    Injection,
    Restart,
    Route,
    Service,
    WeekSpec,
    place_weeks,
)

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def checkout(key: str, peak: float = 40.0, instances: int = 2) -> Service:
    return Service(
        name=f"{key}-checkout",
        peak_rps=peak,
        instances=instances,
        routes=(
            Route("/api/orders", "POST", 0.35, 0.085, 0.55),
            Route("/api/orders/{id}", "GET", 0.65, 0.028, 0.50, client_errors=0.01),
        ),
    )


def search(key: str, peak: float = 90.0, instances: int = 2) -> Service:
    return Service(
        name=f"{key}-search",
        peak_rps=peak,
        instances=instances,
        routes=(
            Route("/api/search", "GET", 0.8, 0.045, 0.65),
            Route("/api/suggest", "GET", 0.2, 0.012, 0.40),
        ),
        rps_per_replica=30.0,
        cpu_per_rps=0.008,
        alloc_per_request=1.0e4,
    )


def gateway(key: str, peak: float = 140.0, instances: int = 2) -> Service:
    return Service(
        name=f"{key}-gateway",
        peak_rps=peak,
        instances=instances,
        routes=(
            Route("/api/**", "GET", 0.7, 0.018, 0.45),
            Route("/api/**", "POST", 0.3, 0.030, 0.50),
        ),
        rps_per_replica=40.0,
        cpu_per_rps=0.005,
        alloc_per_request=0.5e4,
        server_error_share=0.0004,
    )


def backoffice(key: str) -> Service:
    """Well under 1 req/s: a single error swings its error rate (a control)."""
    return Service(
        name=f"{key}-backoffice",
        peak_rps=0.4,
        instances=2,
        routes=(
            # p99 well inside the 0.25-1 s buckets: the latency SLO holds, as a control should
            Route("/admin/reports", "GET", 0.6, 0.090, 0.50),
            Route("/admin/users/{id}", "PUT", 0.4, 0.060, 0.50),
        ),
        server_error_share=0.002,
        alloc_per_request=3.0e6,
    )


WEEKS: tuple[WeekSpec, ...] = (
    WeekSpec(
        key="w4",
        title="resources across the US fall-back DST change",
        timezone="America/Los_Angeles",
        ga_weekday=WED,
        seed=404,
        needs_dst=True,
        services=(gateway("w4", instances=3), checkout("w4"), search("w4")),
        injections=(
            Injection("cpu step +45 %", "cpu_step", "w4-gateway", 2, "15:00", 0.45),
            Injection("heap leak", "memory_leak", "w4-checkout", 1, "08:00", 0.06, sudden=False),
        ),
        restarts=(Restart("w4-gateway", 1, 3, "04:12"),),
        gaps=(Gap("w4-search", 5, "13:00", 180),),
    ),
    WeekSpec(
        key="w1",
        title="all quiet (controls only)",
        timezone="America/New_York",
        ga_weekday=TUE,
        seed=101,
        services=(checkout("w1"), search("w1"), gateway("w1")),
        restarts=(Restart("w1-checkout", 0, 2, "11:37"), Restart("w1-search", 1, 6, "03:05")),
        gaps=(Gap("w1-search", 3, "09:30", 120),),
    ),
    WeekSpec(
        key="w3",
        title="latency: step, transient, improvement",
        timezone="Asia/Tokyo",
        ga_weekday=SAT,
        seed=303,
        weekend_factor=0.6,
        services=(checkout("w3"), search("w3"), gateway("w3")),
        injections=(
            Injection("latency x1.4", "latency_step", "w3-checkout", 3, "10:05", 1.4),
            Injection(
                "latency x1.5 for 8 h", "latency_step", "w3-search", 2, "09:00", 1.5, minutes=480
            ),
            Injection("latency x0.7 (improvement)", "latency_step", "w3-gateway", 4, "13:00", 0.7),
        ),
        gaps=(Gap("w3-gateway", 6, "03:00", 90),),
    ),
    WeekSpec(
        key="w5",
        title="cost step, CPU ramp, latency incident",
        timezone="UTC",
        ga_weekday=MON,
        seed=505,
        daily_noise=0.05,
        services=(checkout("w5", peak=25.0), search("w5", peak=60.0), gateway("w5", peak=90.0)),
        injections=(
            Injection("compute price +50 %", "cost_step", "w5-checkout", 3, "00:00", 0.5),
            Injection(
                "cpu ramp +60 % over the week",
                "cpu_ramp",
                "w5-search",
                1,
                "00:00",
                0.6,
                minutes=7 * 1440,
                sudden=False,
            ),
            Injection(
                "latency x4 for 15 min",
                "latency_step",
                "w5-gateway",
                6,
                "20:30",
                4.0,
                minutes=15,
                incident=True,
            ),
        ),
        restarts=(Restart("w5-gateway", 1, 4, "22:48"),),
    ),
    WeekSpec(
        key="w6",
        title="low traffic beside an error step, a latency step and a transient",
        timezone="America/Sao_Paulo",
        ga_weekday=FRI,
        seed=606,
        weekend_factor=0.4,
        services=(checkout("w6"), search("w6"), gateway("w6", peak=70.0), backoffice("w6")),
        injections=(
            Injection("5xx +1.2 pt", "error_step", "w6-checkout", 4, "10:00", 0.012),
            Injection("latency x1.25", "latency_step", "w6-search", 5, "16:00", 1.25),
            Injection(
                "5xx +5 pt for 4 h", "error_step", "w6-gateway", 3, "09:00", 0.05, minutes=240
            ),
        ),
        restarts=(Restart("w6-backoffice", 0, 2, "14:20"),),
        gaps=(Gap("w6-backoffice", 6, "10:00", 60),),
    ),
    WeekSpec(
        key="w2",
        title="error step and an error incident across the EU spring-forward DST change",
        timezone="Europe/Berlin",
        ga_weekday=THU,
        seed=202,
        needs_dst=True,
        services=(checkout("w2"), search("w2"), gateway("w2")),
        injections=(
            Injection("5xx +2 pt", "error_step", "w2-checkout", 2, "14:10", 0.02),
            Injection(
                "5xx 25 % for 20 min",
                "error_step",
                "w2-search",
                5,
                "11:20",
                0.25,
                minutes=20,
                incident=True,
            ),
        ),
        restarts=(Restart("w2-gateway", 0, 4, "02:30"),),
    ),
)


def placed_weeks(now: dt.datetime | None = None) -> tuple[WeekSpec, ...]:
    return place_weeks(WEEKS, now or dt.datetime.now(dt.UTC))
