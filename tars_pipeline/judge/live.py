"""Continuous mode's bookkeeping: which live events are new, and what the release's
anomaly record is once the nightly run and the live sensor have both written.

Two writers find anomaly events: the nightly `anomaly_events` asset (one release-day at a
time, the record) and the continuous sensor (or `tars-anomaly-detector --follow`), which
judges the last hour every few minutes. Both run the same detector on the same cleaned
samples, so they find the same events, but the live one sees an event while it is still
growing: a later tick (or the nightly run) sees it longer, or starting a sample later with
another warm-up. One event is therefore one run of anomalous samples of one series,
whatever its exact bounds: two events are the same when they are of the same
service × KPI and overlap in time (`same_event`).

- `merge_live`: the stored live events plus a tick's findings → the stored table (a known
  event is replaced by the longer sighting of it) and the events that are new.
- `reconcile`: nightly events of the days the nightly run has processed, plus the live
  events of the other days that no nightly event already covers, each with its `source`.

Pure functions over DataFrames with the detector's columns (`anomaly.EVENT_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from tars_pipeline.judge.anomaly import EVENT_COLUMNS

SOURCE_NIGHTLY = "nightly"
SOURCE_LIVE = "live"
LIVE_COLUMNS: tuple[str, ...] = (*EVENT_COLUMNS, "detected_at")
"""What the store keeps of a live event: the detector's columns and when it was first seen."""


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def overlapping(
    events: pd.DataFrame, service: str, kpi: str, start: object, end: object
) -> np.ndarray:
    """Mask of the rows of `events` that are the event (service, kpi, [start, end])."""
    if events.empty:
        return np.zeros(0, dtype=bool)
    return (
        (events["service"].astype(str) == str(service)).to_numpy()
        & (events["kpi"].astype(str) == str(kpi)).to_numpy()
        & (_utc(events["start"]) <= pd.Timestamp(end)).to_numpy()
        & (_utc(events["end"]) >= pd.Timestamp(start)).to_numpy()
    )


def same_event(first: pd.Series, second: pd.Series) -> bool:
    """Same service × KPI, and their [start, end] overlap."""
    return bool(
        str(first["service"]) == str(second["service"])
        and str(first["kpi"]) == str(second["kpi"])
        and pd.Timestamp(first["start"]) <= pd.Timestamp(second["end"])
        and pd.Timestamp(second["start"]) <= pd.Timestamp(first["end"])
    )


def _rows(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict(orient="records") if len(frame) else []


def _frame(rows: Iterable[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    rows = list(rows)
    frame = pd.DataFrame(rows, columns=list(columns))
    for name in ("start", "end", "peak_ts", "alarm_ts", "detected_at"):
        if name in frame:
            frame[name] = _utc(frame[name])
    return frame


def merge_live(
    stored: pd.DataFrame,
    found: pd.DataFrame,
    *,
    detected_at: pd.Timestamp,
    known: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the live table after this tick, the events of `found` that are new).

    An event of `found` already in `stored` (`same_event`) replaces the stored row when it
    ends later (a later, longer sighting: its peak may have moved) and keeps the stored
    `start` when that was earlier and its `detected_at`; it is not new. An event that one
    of `known` (the nightly events) covers is not new either, and not stored. Every other
    event is appended with `detected_at`. `stored` rows are never dropped: the table only
    grows, so a write never loses what an earlier tick recorded.
    """
    rows = _rows(stored[list(LIVE_COLUMNS)] if len(stored) else stored)
    nightly = known if known is not None else pd.DataFrame(columns=list(EVENT_COLUMNS))
    new: list[dict] = []
    for event in _rows(found):
        service, kpi, start, end = event["service"], event["kpi"], event["start"], event["end"]
        if overlapping(nightly, service, kpi, start, end).any():
            continue
        match = next(
            (
                index
                for index, row in enumerate(rows)
                if same_event(pd.Series(row), pd.Series(event))
            ),
            None,
        )
        if match is None:
            record = {name: event.get(name) for name in EVENT_COLUMNS}
            record["detected_at"] = detected_at
            rows.append(record)
            new.append(record)
            continue
        previous = rows[match]
        if pd.Timestamp(end) > pd.Timestamp(previous["end"]):
            record = {name: event.get(name) for name in EVENT_COLUMNS}
            record["start"] = min(pd.Timestamp(start), pd.Timestamp(previous["start"]))
            record["detected_at"] = previous["detected_at"]
            rows[match] = record
    return _frame(rows, LIVE_COLUMNS), _frame(new, LIVE_COLUMNS)


def reconcile(
    nightly: pd.DataFrame, nightly_days: Iterable[int], live: pd.DataFrame
) -> pd.DataFrame:
    """The release's anomaly record: every nightly event (`source` "nightly"), and each
    live event (`source` "live") of a day the nightly run has not processed that no nightly
    event covers. Both frames carry `day`; the result has `day`, the event columns (live
    events without `detected_at`) and `source`, ordered by day and start."""
    processed = {int(day) for day in nightly_days}
    record = nightly.assign(source=SOURCE_NIGHTLY)
    if live.empty:
        return record
    pending = live[~live["day"].astype(int).isin(processed)]
    keep = [
        not overlapping(nightly, row["service"], row["kpi"], row["start"], row["end"]).any()
        for row in _rows(pending)
    ]
    pending = pending[np.asarray(keep, dtype=bool)] if len(pending) else pending
    if pending.empty:
        return record
    pending = pending.drop(columns=["detected_at"], errors="ignore").assign(source=SOURCE_LIVE)
    return pd.concat([record, pending] if len(record) else [pending], ignore_index=True)
