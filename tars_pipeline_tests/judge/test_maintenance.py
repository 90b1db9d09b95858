"""Maintenance windows: planned work neither drifts, nor burns budget, nor is an anomaly."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from tars_pipeline.config import MaintenanceWindow
from tars_pipeline.judge.maintenance import (
    events_outside_maintenance,
    exclude_maintenance,
    excluded_counts,
    in_maintenance,
    windows_between,
)

UTC = dt.UTC
WINDOW = MaintenanceWindow(
    start=dt.datetime(2025, 6, 5, 2, 0, tzinfo=UTC),
    end=dt.datetime(2025, 6, 5, 2, 30, tzinfo=UTC),
    services=("checkout",),
    reason="database failover",
)
EVERYWHERE = MaintenanceWindow(
    start=dt.datetime(2025, 6, 6, 0, 0, tzinfo=UTC),
    end=dt.datetime(2025, 6, 6, 0, 10, tzinfo=UTC),
)


def samples(service: str, start: str, minutes: int) -> pd.DataFrame:
    ts = pd.date_range(start, periods=minutes, freq="60s", tz="UTC")
    return pd.DataFrame({"service": service, "kpi": "error_rate", "ts": ts, "value": 1.0})


def test_a_window_masks_only_its_services_and_is_half_open():
    frame = pd.concat(
        [samples("checkout", "2025-06-05T01:50", 60), samples("search", "2025-06-05T01:50", 60)],
        ignore_index=True,
    )

    mask = in_maintenance(frame, [WINDOW])

    assert mask.sum() == 30  # checkout 02:00..02:29; 02:30 is outside
    masked = frame[mask]
    assert set(masked["service"]) == {"checkout"}
    assert masked["ts"].min() == pd.Timestamp("2025-06-05T02:00Z")
    assert masked["ts"].max() == pd.Timestamp("2025-06-05T02:29Z")
    kept = exclude_maintenance(frame, [WINDOW])
    assert len(kept) == 90
    assert excluded_counts(frame, [WINDOW]).to_dict("records") == [
        {"service": "checkout", "kpi": "error_rate", "excluded_samples": 30}
    ]


def test_a_window_without_services_applies_to_all_and_no_window_changes_nothing():
    frame = pd.concat(
        [samples("a", "2025-06-06T00:00", 20), samples("b", "2025-06-06T00:00", 20)],
        ignore_index=True,
    )
    assert in_maintenance(frame, [EVERYWHERE]).sum() == 20
    assert exclude_maintenance(frame, []) is frame
    assert excluded_counts(frame, []).empty


def test_naive_timestamps_are_read_as_utc():
    frame = samples("checkout", "2025-06-05T02:00", 5)
    frame["ts"] = frame["ts"].dt.tz_localize(None)
    assert in_maintenance(frame, [WINDOW]).all()


def test_anomaly_events_overlapping_a_window_are_not_counted():
    events = pd.DataFrame(
        {
            "service": ["checkout", "checkout", "search", "checkout"],
            "kpi": "error_rate",
            "start": pd.to_datetime(
                ["2025-06-05T01:55Z", "2025-06-05T02:30Z", "2025-06-05T02:10Z", "2025-06-05T01:00Z"]
            ),
            "end": pd.to_datetime(
                ["2025-06-05T02:05Z", "2025-06-05T02:40Z", "2025-06-05T02:15Z", "2025-06-05T01:59Z"]
            ),
            "severity": "high",
        }
    )

    kept = events_outside_maintenance(events, [WINDOW])

    # Overlapping the window: dropped. Starting at its (exclusive) end, another service,
    # or ending before it: kept.
    assert kept["start"].dt.strftime("%H:%M").tolist() == ["02:30", "02:10", "01:00"]
    assert events_outside_maintenance(events.iloc[:0], [WINDOW]).empty


def test_windows_between_lists_what_a_day_overlaps():
    day = (pd.Timestamp("2025-06-05T00:00Z"), pd.Timestamp("2025-06-06T00:00Z"))
    assert windows_between([WINDOW, EVERYWHERE], *day) == [WINDOW]
