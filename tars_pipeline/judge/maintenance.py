"""Maintenance windows: planned work whose samples say nothing about the release.

`tars.yaml` lists `maintenance_windows` (start, end, optional services). A sample inside a
window — `start <= ts < end`, for a service the window names or for every service when it
names none — is left out of drift, SLO budgets and anomaly events: a planned failover that
returns errors for ten minutes must neither eat the error budget nor read as a regression.
Cost is not masked: the money was spent all the same.

Half-open windows, as `Release.day_bounds`: a window ending at 02:00 keeps the 02:00 sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tars_pipeline.config import MaintenanceWindow

EXCLUDED_COLUMNS: tuple[str, ...] = ("service", "kpi", "excluded_samples")


def _utc(values: pd.Series) -> pd.Series:
    ts = pd.to_datetime(values)
    if getattr(ts.dt, "tz", None) is None:
        return ts.dt.tz_localize("UTC")
    return ts.dt.tz_convert("UTC")


def _applies(window: MaintenanceWindow, services: pd.Series) -> np.ndarray:
    if not window.services:
        return np.ones(len(services), dtype=bool)
    return services.isin(list(window.services)).to_numpy(dtype=bool)


def in_maintenance(samples: pd.DataFrame, windows: Sequence[MaintenanceWindow]) -> np.ndarray:
    """Boolean mask: the sample lies inside a window that applies to its service."""
    mask = np.zeros(len(samples), dtype=bool)
    if not windows or samples.empty:
        return mask
    ts = _utc(samples["ts"])
    for window in windows:
        start = pd.Timestamp(window.start).tz_convert("UTC")
        end = pd.Timestamp(window.end).tz_convert("UTC")
        inside = ((ts >= start) & (ts < end)).to_numpy(dtype=bool)
        mask |= inside & _applies(window, samples["service"])
    return mask


def exclude_maintenance(
    samples: pd.DataFrame, windows: Sequence[MaintenanceWindow]
) -> pd.DataFrame:
    """The samples outside every maintenance window (the input itself when none applies)."""
    mask = in_maintenance(samples, windows)
    return samples if not mask.any() else samples.loc[~mask].reset_index(drop=True)


def excluded_counts(samples: pd.DataFrame, windows: Sequence[MaintenanceWindow]) -> pd.DataFrame:
    """How many samples each (service, kpi) lost to maintenance windows (rows with > 0)."""
    mask = in_maintenance(samples, windows)
    if not mask.any():
        return pd.DataFrame(
            {
                "service": pd.Series(dtype=object),
                "kpi": pd.Series(dtype=object),
                "excluded_samples": pd.Series(dtype="int64"),
            }
        )
    counts = samples.loc[mask].groupby(["service", "kpi"], sort=True).size()
    return counts.rename("excluded_samples").reset_index()[list(EXCLUDED_COLUMNS)]


def events_outside_maintenance(
    events: pd.DataFrame, windows: Sequence[MaintenanceWindow]
) -> pd.DataFrame:
    """Anomaly events that do not overlap a window of their service.

    An event [start, end] overlaps [window.start, window.end) when start < window.end and
    end ≥ window.start: a spike that runs into planned work is part of that work.
    """
    if not windows or events is None or events.empty:
        return events
    start, end = _utc(events["start"]), _utc(events["end"])
    overlaps = np.zeros(len(events), dtype=bool)
    for window in windows:
        window_start = pd.Timestamp(window.start).tz_convert("UTC")
        window_end = pd.Timestamp(window.end).tz_convert("UTC")
        hit = ((start < window_end) & (end >= window_start)).to_numpy(dtype=bool)
        overlaps |= hit & _applies(window, events["service"])
    return events if not overlaps.any() else events.loc[~overlaps].reset_index(drop=True)


def windows_between(
    windows: Sequence[MaintenanceWindow], start: pd.Timestamp, end: pd.Timestamp
) -> list[MaintenanceWindow]:
    """The windows that overlap [start, end): what a day's report should mention."""
    lower, upper = pd.Timestamp(start), pd.Timestamp(end)
    return [w for w in windows if pd.Timestamp(w.start) < upper and pd.Timestamp(w.end) > lower]
