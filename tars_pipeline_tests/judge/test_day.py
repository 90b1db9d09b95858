"""The day's judgement as the nightly asset and the live sensor both call it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from tars_pipeline.config import Release, SnapshotSourceConfig, TarsConfig
from tars_pipeline.judge.anomaly import detect_anomalies
from tars_pipeline.judge.day import day_anomalies

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
    raw = detect_anomalies(samples, **settings)
    assert (raw["direction"] == "dip").any()  # what the uncleaned series would report

    assert day_anomalies(samples, CONFIG, judged_from=START.to_pydatetime()).empty


def test_only_events_peaking_in_the_judged_window_are_returned() -> None:
    samples = _throughput_with_a_counter_reset()
    samples.loc[100:104, "value"] = 900.0
    every = day_anomalies(samples, CONFIG, judged_from=START.to_pydatetime())
    later = day_anomalies(
        samples, CONFIG, judged_from=(START + pd.Timedelta(hours=3)).to_pydatetime()
    )
    assert len(every) == 1 and later.empty
