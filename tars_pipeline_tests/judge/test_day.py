"""The day's judgement as the nightly asset and the live sensor both call it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from tars_pipeline.config import (
    PrometheusSourceConfig,
    Release,
    SnapshotSourceConfig,
    TarsConfig,
)
from tars_pipeline.judge.anomaly import detect_anomalies
from tars_pipeline.judge.day import day_anomalies
from tars_pipeline.judge.seasonality import ReferenceDays

START = pd.Timestamp("2026-03-03T05:00:00Z")
CONFIG = TarsConfig(
    source=SnapshotSourceConfig(path="unused"),
    releases=[Release(name="v1", ga_date=dt.date(2026, 3, 3))],
)


def _throughput_with_a_counter_reset() -> pd.DataFrame:
    values = np.random.default_rng(3).normal(300.0, 3.0, 240)
    values[200] = -250_000.0  # a naive delta across a counter reset
    ts = pd.date_range(START, periods=values.size, freq="60s")
    return pd.DataFrame({"service": "checkout", "kpi": "throughput", "ts": ts, "value": values})


def test_a_counter_reset_is_cleaned_before_detection_not_reported_as_a_dip() -> None:
    samples = _throughput_with_a_counter_reset()
    settings = CONFIG.thresholds.detector_settings()
    # What the uncleaned series would report to a detector that takes one extreme sample
    # as an event (the CSV mode's rule; the pipeline's default needs three).
    raw = detect_anomalies(samples, **{**settings, "single_sample_z": 5.0})
    assert (raw["direction"] == "dip").any()

    assert day_anomalies(samples, CONFIG, judged_from=START.to_pydatetime()).empty


def test_only_events_peaking_in_the_judged_window_are_returned() -> None:
    samples = _throughput_with_a_counter_reset()
    samples.loc[100:104, "value"] = 900.0
    every = day_anomalies(samples, CONFIG, judged_from=START.to_pydatetime())
    later = day_anomalies(
        samples, CONFIG, judged_from=(START + pd.Timedelta(hours=3)).to_pydatetime()
    )
    assert len(every) == 1 and later.empty


def _flat(start: str, days: float, level: float, seed: int) -> pd.DataFrame:
    ts = pd.date_range(start, periods=int(1440 * days), freq="60s", tz="UTC")
    values = np.random.default_rng(seed).normal(level, level * 0.01, len(ts))
    return pd.DataFrame({"service": "shop", "kpi": "throughput", "ts": ts, "value": values})


def test_a_weekend_level_the_reference_week_had_is_not_a_dip_at_midnight() -> None:
    """Friday evening at 1000 req/s, Saturday at 600: the reference week had the same. As
    rate() over 5 minutes reads it, the step takes the first 5 minutes of Saturday."""
    ga_day = _flat("2026-03-03", 1, 1000.0, seed=1)  # GA: Tuesday (UTC)
    saturday_samples = _flat("2026-03-07", 1, 600.0, seed=3)
    saturday_samples.loc[:4, "value"] = 1000.0 - 400.0 * (np.arange(5) + 1) / 5
    history = pd.concat([_flat("2026-03-06T22:00", 2 / 24, 1000.0, seed=2), saturday_samples])
    saturday = dt.date(2026, 3, 7)
    reference = ReferenceDays(
        day_weekday=_flat("2026-02-28", 1, 620.0, seed=4),  # the reference Saturday
        ga_weekday=_flat("2026-02-24", 1, 1010.0, seed=5),  # the reference Tuesday
    )
    judged_from = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
    config = CONFIG.model_copy(  # throughput as rate()[5m]
        update={"source": PrometheusSourceConfig(url="http://127.0.0.1:9", rate_window="5m")}
    )

    blind = day_anomalies(history, config, judged_from=judged_from, baseline=ga_day)
    assert (blind["direction"] == "dip").any()  # without the reference: a dip at midnight

    seeing = day_anomalies(
        history,
        config,
        judged_from=judged_from,
        baseline=ga_day,
        references={saturday: reference},
    )
    assert seeing.empty
