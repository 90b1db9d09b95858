"""The detector on the shapes real exporters produce: held (hourly) gauges, quantised
gauges, scrape gaps with rate() edges, near-constant series; and the alarm sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.judge.anomaly import (
    detect_anomalies,
    gap_edges,
    is_held,
    resolution,
    seasonal_factors,
)

SEVERITY_Z = {"medium": 4.0, "high": 6.0, "critical": 10.0}


def _frame(values: np.ndarray, ts: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    if ts is None:
        ts = pd.date_range("2026-03-02", periods=len(values), freq="60s", tz="UTC")
    return pd.DataFrame({"service": "shop", "kpi": "cost_compute", "ts": ts, "value": values})


def _detect(samples: pd.DataFrame, **overrides: object) -> pd.DataFrame:
    settings = {
        "span": 60,
        "warmup": 60,
        "z_threshold": 3.0,
        "severity_z": SEVERITY_Z,
        **overrides,
    }
    return detect_anomalies(samples, **settings)


def _hourly_cost(days: int, seed: int = 3) -> np.ndarray:
    """An OpenCost-style gauge: a new value each hour (a daily cycle and noise), held."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24 * days)
    hourly = 6.0 * (1 + 0.04 * np.sin(2 * np.pi * hours / 24)) * rng.normal(1, 0.01, len(hours))
    return np.repeat(np.round(hourly, 4), 60)


def test_an_hourly_gauge_is_scored_on_its_updates_and_stays_silent() -> None:
    values = _hourly_cost(days=3)
    assert is_held(values, 0.5)

    events = _detect(_frame(values))
    per_sample = _detect(_frame(values), held_share=None, min_change=1e-9)

    assert events.empty
    # What the detector did before: every ordinary hourly step scored far out.
    assert len(per_sample) > 10
    assert per_sample["peak_z"].abs().max() > 50


def test_a_level_shift_of_an_hourly_gauge_is_one_event_at_its_first_update() -> None:
    values = _hourly_cost(days=3)
    shift_at = 60 * 40  # hour 40
    values[shift_at:] *= 1.35

    events = _detect(_frame(values))

    assert len(events) == 1
    event = events.iloc[0]
    ts = _frame(values)["ts"]
    assert event["start"] == ts[shift_at]
    assert event["alarm_ts"] == ts[shift_at]  # one update that far out is extreme
    assert event["direction"] == "spike"


def test_a_replica_count_moving_by_one_is_not_an_anomaly_but_a_doubling_is() -> None:
    rng = np.random.default_rng(5)
    replicas = np.repeat(rng.choice([3.0, 4.0, 5.0], size=48), 30)  # changes every 30 min
    assert resolution(replicas) == 1.0

    assert _detect(_frame(replicas)).empty
    replicas[900:960] = 10.0
    events = _detect(_frame(replicas))
    assert len(events) == 1
    assert events.iloc[0]["peak_value"] == 10.0


def test_a_flat_series_that_moves_gets_a_z_in_proportion_to_the_move() -> None:
    values = np.r_[np.full(120, 99.95), np.full(3, 99.45), np.full(60, 99.95)]
    events = _detect(_frame(values), min_change=0.001)  # availability: 0.1 %

    assert len(events) == 1
    # 0.5 points below a flat 99.95: z = 0.5 / (0.001 / 3 * 99.95) = 15, not 1e6.
    assert events.iloc[0]["peak_z"] == pytest.approx(-15.0, rel=0.01)


def _throughput_with_a_gap(edge_minutes: int = 5) -> pd.DataFrame:
    """rate()[5m] around a 2-hour scrape gap: the 5 minutes before the data stops and after
    it resumes are computed from fewer samples and fall towards 0."""
    rng = np.random.default_rng(11)
    ts = pd.date_range("2026-03-02", periods=600, freq="60s", tz="UTC")
    values = rng.normal(800.0, 8.0, len(ts))
    gap = slice(300, 420)
    ramp = np.linspace(0.2, 0.9, edge_minutes)
    values[gap.start - edge_minutes : gap.start] *= ramp[::-1]
    values[gap.stop : gap.stop + edge_minutes] *= ramp
    keep = np.ones(len(ts), dtype=bool)
    keep[gap] = False
    return pd.DataFrame(
        {"service": "shop", "kpi": "throughput", "ts": ts[keep], "value": values[keep]}
    )


def test_a_scrape_gap_and_its_rate_edges_are_not_a_traffic_dip() -> None:
    samples = _throughput_with_a_gap()
    seconds = samples["ts"].astype("int64").to_numpy() / 1e6  # [us] -> s

    unjudged, gaps = gap_edges(seconds, gap_factor=2.5, edge_seconds=300)
    assert gaps == 1
    assert unjudged.sum() == 10  # 5 samples each side

    assert _detect(samples, gap_edge_seconds=300).empty
    edges_judged = _detect(samples, gap_edge_seconds=0)
    assert (edges_judged["direction"] == "dip").any()


def test_a_real_dip_next_to_nothing_missing_is_still_found() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(800.0, 8.0, 400)
    values[250:262] = 400.0

    events = _detect(_frame(values), gap_edge_seconds=300)

    assert len(events) == 1
    assert events.iloc[0]["direction"] == "dip"


def test_the_alarm_is_the_sample_a_live_detector_would_raise_it_at() -> None:
    rng = np.random.default_rng(8)
    values = rng.normal(100.0, 1.0, 300)
    values[200:210] = 104.0 + np.arange(10)  # creeps out: not extreme at once

    event = _detect(_frame(values), min_change=1e-9).iloc[0]
    ts = _frame(values)["ts"]

    assert event["start"] <= event["alarm_ts"] <= event["end"]
    # The same event is found when the series stops at its alarm sample (no look-ahead).
    alarm_row = int(np.flatnonzero(ts == event["alarm_ts"])[0])
    truncated = _detect(_frame(values[: alarm_row + 1]), min_change=1e-9)
    assert truncated.iloc[-1]["alarm_ts"] == event["alarm_ts"]


def test_resolution_reads_the_precision_values_are_reported_at() -> None:
    assert resolution(np.array([3.0, 4.0, 6.0])) == 1.0
    assert resolution(np.array([0.0, 100.0, 200.0])) == 1.0
    assert resolution(np.array([6.01, 6.12, 6.3])) == pytest.approx(0.01)
    assert resolution(np.random.default_rng(1).normal(0, 1, 50)) == 0.0


def test_a_lattice_of_replicas_times_a_price_is_the_series_resolution() -> None:
    cost = np.array([3, 4, 5, 6, 4, 3]) * 0.0456
    assert resolution(cost) == pytest.approx(0.0456)


def _daily_cycle(days: int, seed: int) -> pd.DataFrame:
    """Throughput with a strong daily cycle (×3 between night and day) and 1 % noise."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-03-02", periods=1440 * days, freq="60s", tz="UTC")
    hours = ts.hour + ts.minute / 60
    level = 500 * (2 - np.cos(2 * np.pi * hours / 24)) * rng.normal(1, 0.01, len(ts))
    return pd.DataFrame({"service": "shop", "kpi": "throughput", "ts": ts, "value": level})


def test_a_daily_cycle_the_ga_day_had_is_scored_against_its_time_of_day_profile() -> None:
    ga_day = _daily_cycle(1, seed=1)
    day = _daily_cycle(1, seed=2)
    day["ts"] = day["ts"] + pd.Timedelta(days=1)
    day.loc[600:609, "value"] *= 1.5  # a real 10-minute surge at 10:00

    season = seasonal_factors(ga_day, day, "UTC")
    assert season.min() == pytest.approx(1 / 2, rel=0.05)  # night: 500 vs a 1000 median
    assert season.max() == pytest.approx(3 / 2, rel=0.05)

    events = _detect(day.assign(season=season))
    assert len(events) == 1 and events.iloc[0]["start"] == day["ts"][600]
    # The expected value is given back in the series' units, not as a ratio.
    assert events.iloc[0]["expected_value"] == pytest.approx(day["value"][599], rel=0.05)
