"""Null weeks: the realistic generator's noise with nothing injected, as KPI samples.

For the false-discovery check of issue 12: 12 KPIs × N services × 7 days in which nothing
changed, so every degradation reported is a false discovery. The series come from the
generator's noise model (Poisson request counts per route and pod, log-normal latencies
read through histogram buckets, a 5-minute rate() window, a diurnal cycle, lighter
weekends, day-to-day traffic jitter, GC sawtooth heaps, an HPA, hourly cost gauges) as
the catalog's PromQL would compute them (`generator.kpi_series`), without a Prometheus in
between: the judgement is the same code the assets run (`scenarios.harness.judge_days`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tars_pipeline.config import Release
from tars_pipeline_tests.realistic import generator as gen
from tars_pipeline_tests.realistic.weeks import MON, THU, TUE, WED, checkout, gateway, search

TIMEZONES = ("America/New_York", "Europe/Berlin", "Asia/Tokyo", "UTC", "America/Sao_Paulo")
WEEKDAYS = (MON, TUE, WED, THU)


@dataclass(frozen=True)
class NullWeek:
    release: Release
    days: dict[int, pd.DataFrame]  # day 0..7: service, kpi, ts, value
    reference: dict[dt.date, pd.DataFrame]


def null_spec(seed: int, services: int = 3) -> gen.WeekSpec:
    """Week `seed`: `services` services (checkout/search/gateway shapes in turn, each with
    its own traffic level), a timezone and GA weekday that vary with the seed."""
    rng = np.random.default_rng(seed)
    makers = (checkout, search, gateway)
    key = f"n{seed}"
    chosen = []
    for number in range(services):
        service = makers[number % len(makers)](key)
        peak = float(service.peak_rps * rng.uniform(0.5, 1.5))
        chosen.append(
            gen.Service(**{**service.__dict__, "name": f"{key}-s{number}", "peak_rps": peak})
        )
    timezone = TIMEZONES[seed % len(TIMEZONES)]
    weekday = WEEKDAYS[seed % len(WEEKDAYS)]
    ga = dt.date(2025, 9, 1) + dt.timedelta(days=(weekday - dt.date(2025, 9, 1).weekday()) % 7)
    return gen.WeekSpec(
        key=key,
        title=f"null week {seed}",
        timezone=timezone,
        ga_weekday=weekday,
        seed=10_000 + seed,
        services=tuple(chosen),
        ga_date=ga,
    )


def null_week(seed: int, services: int = 3) -> NullWeek:
    spec = null_spec(seed, services)
    g = gen.grid(spec)
    frames = []
    for service in spec.services:
        data = gen.service_data(spec, g, service, noise=True, inject=False)
        for kpi, values in gen.kpi_series(data).items():
            frames.append(
                pd.DataFrame(
                    {
                        "service": service.name,
                        "kpi": kpi,
                        "ts": pd.to_datetime(g.ts, unit="s", utc=True),
                        "value": values,
                        "day": g.day,
                    }
                )
            )
    samples = pd.concat(frames, ignore_index=True)
    samples = samples[np.isfinite(samples["value"].to_numpy())]
    assert spec.ga_date is not None
    release = Release(
        name=spec.release_name,
        ga_date=spec.ga_date,
        timezone=spec.timezone,
        window_days=gen.WINDOW_DAYS,
        reference_date=spec.ga_date - dt.timedelta(days=gen.REFERENCE_DAYS),
    )
    columns = ["service", "kpi", "ts", "value"]
    days = {
        day: samples[samples["day"] == day][columns].reset_index(drop=True)
        for day in range(0, gen.WINDOW_DAYS + 1)
    }
    reference = {
        spec.ga_date + dt.timedelta(days=offset): samples[samples["day"] == offset][
            columns
        ].reset_index(drop=True)
        for offset in range(-gen.REFERENCE_DAYS, 0)
    }
    return NullWeek(release, days, reference)
