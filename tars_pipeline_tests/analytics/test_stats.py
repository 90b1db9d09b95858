"""Baseline statistics: what Day 0 looks like, per service and KPI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.analytics.stats import (
    HOURLY_PROFILE_COLUMNS,
    STAT_COLUMNS,
    hourly_profile,
    summarise,
)
from tars_pipeline.sources.base import empty_samples


def _samples(
    service: str, kpi: str, values: list[float], start: str = "2025-03-01"
) -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(values), freq="60s", tz="UTC")
    return pd.DataFrame({"service": service, "kpi": kpi, "ts": ts, "value": values})


def test_summary_has_one_row_per_service_and_kpi_with_every_statistic():
    samples = pd.concat(
        [
            _samples("checkout", "latency_p99", [140.0, 150.0, 160.0]),
            _samples("checkout", "error_rate", [0.05, 0.05]),
            _samples("search", "latency_p99", [90.0]),
        ]
    )

    summary = summarise(samples)

    assert list(summary.columns) == ["service", "kpi", *STAT_COLUMNS]
    assert summary[["service", "kpi"]].values.tolist() == [
        ["checkout", "error_rate"],
        ["checkout", "latency_p99"],
        ["search", "latency_p99"],
    ]
    latency = summary.iloc[1]
    assert latency["mean"] == pytest.approx(150.0)
    assert latency["p50"] == pytest.approx(150.0)
    assert latency["min"] == 140.0
    assert latency["max"] == 160.0
    assert latency["stddev"] == pytest.approx(10.0)  # sample stddev, ddof=1
    assert latency["sample_count"] == 3


def test_percentiles_interpolate_linearly_like_numpy():
    values = list(np.arange(1.0, 101.0))
    row = summarise(_samples("api", "latency_p50", values)).iloc[0]

    assert row["p95"] == pytest.approx(np.percentile(values, 95))
    assert row["p99"] == pytest.approx(np.percentile(values, 99))


def test_a_single_sample_has_zero_stddev_not_nan():
    row = summarise(_samples("api", "throughput", [42.0])).iloc[0]

    assert row["stddev"] == 0.0
    assert row["sample_count"] == 1


def test_non_finite_values_are_ignored():
    row = summarise(_samples("api", "throughput", [1.0, np.nan, 3.0, np.inf])).iloc[0]

    assert row["mean"] == 2.0
    assert row["sample_count"] == 2


def test_empty_input_gives_empty_frames_with_the_columns():
    assert list(summarise(empty_samples()).columns) == ["service", "kpi", *STAT_COLUMNS]
    assert summarise(empty_samples()).empty
    profile = hourly_profile(empty_samples(), "UTC")
    assert list(profile.columns) == list(HOURLY_PROFILE_COLUMNS)
    assert profile.empty


def test_hourly_profile_uses_the_release_timezone():
    # 22:00 and 22:30 UTC on 1 March are 23:00 and 23:30 in Berlin (CET, UTC+1).
    samples = pd.DataFrame(
        {
            "service": "api",
            "kpi": "throughput",
            "ts": pd.to_datetime(["2025-03-01T22:00Z", "2025-03-01T22:30Z", "2025-03-01T23:00Z"]),
            "value": [100.0, 200.0, 50.0],
        }
    )

    profile = hourly_profile(samples, "Europe/Berlin")

    assert profile["hour"].tolist() == [0, 23]
    late = profile[profile["hour"] == 23].iloc[0]
    assert late["mean"] == 150.0
    assert late["stddev"] == pytest.approx(np.std([100.0, 200.0], ddof=1))
    assert late["sample_count"] == 2
