"""Baseline statistics: what Day 0 looks like, per service and KPI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.judge.stats import (
    DROPPED_COLUMNS,
    HOURLY_PROFILE_COLUMNS,
    STAT_COLUMNS,
    hourly_profile,
    local_hour,
    prefilter,
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


def test_percentiles_match_pandas_for_groups_of_any_size_in_any_order():
    rng = np.random.default_rng(3)
    samples = pd.concat(
        [_samples(f"s{n}", "latency_p99", list(rng.normal(100, 20, n))) for n in (1, 2, 3, 50)]
    ).sample(frac=1.0, random_state=4)

    summary = summarise(samples).set_index("service")

    for service, group in samples.groupby("service"):
        for column, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            assert summary.loc[service, column] == pytest.approx(group["value"].quantile(q))


def test_prefilter_drops_counter_reset_artefacts_and_counts_them():
    samples = _samples("api", "throughput", [800.0, -1.2e7, 810.0, np.nan])

    kept = prefilter(samples)

    assert kept.samples["value"].tolist() == [800.0, 810.0]
    assert kept.dropped.to_dict("records") == [
        {"service": "api", "kpi": "throughput", "reason": "negative", "dropped_samples": 1},
        {"service": "api", "kpi": "throughput", "reason": "non_finite", "dropped_samples": 1},
    ]
    assert list(kept.dropped.columns) == list(DROPPED_COLUMNS)


def test_prefilter_keeps_negative_values_when_told_and_clean_input_as_is():
    samples = _samples("api", "balance", [-5.0, 3.0])
    assert prefilter(samples, drop_negative=False).samples["value"].tolist() == [-5.0, 3.0]
    clean = _samples("api", "throughput", [1.0, 0.0])
    result = prefilter(clean)
    assert result.samples is clean and result.dropped.empty


def test_local_hour_reads_the_wall_clock_and_treats_naive_times_as_utc():
    ts = pd.Series(pd.to_datetime(["2025-03-30T00:30", "2025-03-30T01:30"]))  # DST night
    assert local_hour(ts, "Europe/Berlin").tolist() == [1, 3]


@pytest.mark.parametrize("seed", range(12))
def test_the_canonical_order_skips_the_sort_only_when_the_rows_are_in_order(seed: int) -> None:
    from tars_pipeline.judge.stats import _canonical_order

    rng = np.random.default_rng(seed)
    n = 400
    frame = pd.DataFrame(
        {
            "service": rng.choice(["b", "a", "c"], n),
            "kpi": rng.choice(["x", "y"], n),
            "ts": pd.to_datetime(rng.integers(0, 20, n) * 60_000_000_000, utc=True),
            "value": rng.choice([1.0, 2.0, np.nan] if seed % 3 == 0 else [1.0, 2.0, 3.0], n),
        }
    )
    if seed % 2:
        frame = frame.astype({"service": "category", "kpi": "category"})
    keys = ["service", "kpi", "ts", "value"]
    expected = frame.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
    for candidate in (frame, expected):
        result = _canonical_order(candidate)
        pd.testing.assert_frame_equal(result.reset_index(drop=True), expected)
    assert _canonical_order(expected) is expected  # in order already: no copy


def test_a_window_of_days_in_order_is_put_in_series_order_as_the_full_sort_does() -> None:
    from tars_pipeline.judge.stats import _canonical_order

    rng = np.random.default_rng(5)
    days = []
    for day in range(4):
        ts = pd.date_range("2026-03-03", periods=30, freq="min", tz="UTC") + pd.Timedelta(days=day)
        block = pd.DataFrame(
            [(s, k, t, float(rng.integers(0, 3))) for s in "ab" for k in "xy" for t in ts],
            columns=["service", "kpi", "ts", "value"],
        )
        days.append(block)
    window = pd.concat(days, ignore_index=True).astype({"service": "category", "kpi": "category"})
    window.loc[5, "ts"] = window.loc[4, "ts"]  # a duplicate timestamp: ties on ts
    keys = ["service", "kpi", "ts", "value"]
    expected = window.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
    pd.testing.assert_frame_equal(_canonical_order(window), expected)


@pytest.mark.parametrize("together", [True, False])
def test_sorting_within_groups_is_the_lexsort(together: bool) -> None:
    from tars_pipeline.judge.stats import sorted_within_groups

    rng = np.random.default_rng(4)
    ids = np.sort(rng.integers(0, 50, 20_000)) if together else rng.integers(0, 50, 20_000)
    values = rng.choice([0.0, -0.0, 1.5, 2.0, -3.0], 20_000) * rng.integers(1, 4, 20_000)
    expected = values[np.lexsort((values, ids))]
    assert sorted_within_groups(ids, values).tobytes() == expected.tobytes()
