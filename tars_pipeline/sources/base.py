"""The one input contract every metric source produces: KPI samples.

A sample is (service, kpi, ts, value) for one release-day; the release and day are added by
the asset that stores them. `ts` is a timezone-aware UTC timestamp at the source's step,
`value` a float (never NaN/Inf: sources drop those and report them as gaps). A new metric
source (CloudWatch, Datadog, ...) is one class with `fetch_day`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from tars_pipeline.config import KpiDefinition, Release

SAMPLE_COLUMNS: tuple[str, ...] = ("service", "kpi", "ts", "value")


def empty_samples() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service": pd.Series(dtype=object),
            "kpi": pd.Series(dtype=object),
            "ts": pd.Series(dtype="datetime64[us, UTC]"),
            "value": pd.Series(dtype="float64"),
        }
    )


@dataclass(frozen=True)
class Coverage:
    """How much of the expected day a (service, KPI) series covers."""

    service: str
    kpi: str
    expected_points: int
    points: int

    @property
    def completeness_pct(self) -> float:
        return 100.0 * self.points / self.expected_points if self.expected_points else 0.0


@dataclass(frozen=True)
class DayFetch:
    """What a source returns for one release-day: the samples and how complete they are."""

    samples: pd.DataFrame
    coverage: list[Coverage] = field(default_factory=list)

    @property
    def missing(self) -> list[Coverage]:
        return [c for c in self.coverage if c.points == 0]

    @property
    def incomplete(self) -> list[Coverage]:
        return [c for c in self.coverage if 0 < c.points < c.expected_points]


class MetricSource(Protocol):
    """Anything that can produce one release-day of KPI samples."""

    def fetch_day(
        self,
        release: Release,
        start: dt.datetime,
        end: dt.datetime,
        kpis: Sequence[KpiDefinition],
        step_seconds: int,
    ) -> DayFetch:
        """Samples with `start <= ts < end` for every service of the release and each KPI."""
        ...


def expected_points(start: dt.datetime, end: dt.datetime, step_seconds: int) -> int:
    return int((end - start).total_seconds() // step_seconds)


def coverage_of(
    samples: pd.DataFrame,
    services: Sequence[str],
    kpis: Sequence[KpiDefinition],
    expected: int,
) -> list[Coverage]:
    counts = {}
    if len(samples):
        counts = samples.groupby(["service", "kpi"], observed=True).size().to_dict()
    return [
        Coverage(service, kpi.name, expected, int(counts.get((service, kpi.name), 0)))
        for service in services
        for kpi in kpis
    ]
