"""The wall clock of UTC instants in a time zone, for millions of samples at a time.

pandas converts a tz-aware column to local time row by row through the zone's transition
table, and every field read (`.dt.hour`, `.dt.minute`, `.dt.date`) converts again: on a
day of 500 series that is most of a judgement's time. Here a zone's UTC offset is looked up
once per quarter hour the samples span, and each sample takes its quarter's offset:
every zone of the tz database changes its offset on a quarter hour of UTC, so the result
is pandas' exactly. A quarter in which the offset does change (none in the tz database
today; the check keeps it exact if one ever does) is converted by pandas, row by row.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND
QUARTER_NS = 900 * NS_PER_SECOND
MAX_QUARTERS = 200_000
"""Beyond about five years of quarter hours the table would outgrow the samples: then
pandas converts."""


def utc_nanoseconds(ts: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """Nanoseconds since the epoch of each instant (int64); a naive timestamp is UTC."""
    stamps = pd.to_datetime(ts, utc=True)
    values = stamps.to_numpy(dtype="datetime64[ns]") if hasattr(stamps, "to_numpy") else stamps
    return np.asarray(values, dtype="datetime64[ns]").view("int64")


def local_nanoseconds(ts: pd.Series | pd.Index | np.ndarray, timezone: str) -> np.ndarray:
    """Each instant on the wall clock of `timezone`, as nanoseconds since the local epoch
    (the int64 of the naive local timestamp pandas' `tz_convert(tz).tz_localize(None)`
    gives)."""
    utc = utc_nanoseconds(ts)
    if utc.size == 0:
        return utc.copy()
    lowest, highest = int(utc.min()), int(utc.max())
    if lowest == np.iinfo("int64").min:  # NaT: pandas' rules, row by row
        return _converted(utc, timezone)
    first, last = lowest // QUARTER_NS, highest // QUARTER_NS
    if last - first >= MAX_QUARTERS:
        return _converted(utc, timezone)
    starts = np.arange(first, last + 2, dtype="int64") * QUARTER_NS
    at_start = _converted(starts, timezone) - starts
    offset = at_start[:-1]
    # A quarter whose last nanosecond has another offset than its first: convert its rows.
    ends = starts[1:] - 1
    moved = (_converted(ends, timezone) - ends) != offset
    if moved.any():
        positions = utc // QUARTER_NS - first
        local = utc + offset[positions]
        rows = np.flatnonzero(moved[positions])
        local[rows] = _converted(utc[rows], timezone)
        return local
    # Each row takes its quarter's offset: the first quarter's, plus every change from the
    # quarter where it takes effect on. A week holds one change at most, so this is two or
    # three passes over the rows, with no per-row division or lookup.
    local = utc + offset[0]
    for index in np.flatnonzero(np.diff(offset)) + 1:
        local[utc >= starts[index]] += offset[index] - offset[index - 1]
    return local


def _converted(utc: np.ndarray, timezone: str) -> np.ndarray:
    index = pd.DatetimeIndex(utc.view("datetime64[ns]"), tz="UTC")
    return index.tz_convert(timezone).tz_localize(None).asi8


def seconds_of_day(local: np.ndarray) -> np.ndarray:
    """Whole seconds since local midnight (int64) of `local_nanoseconds`."""
    return (local // NS_PER_SECOND) % 86_400


def hour_of_day(local: np.ndarray) -> np.ndarray:
    """Local hour 0-23 (int64), as `.dt.hour`."""
    return seconds_of_day(local) // 3600


def minute_of_hour(local: np.ndarray) -> np.ndarray:
    """Local minute 0-59 (int64), as `.dt.minute`."""
    return (seconds_of_day(local) // 60) % 60


def second_of_minute(local: np.ndarray) -> np.ndarray:
    """Local second 0-59 (int64), as `.dt.second`."""
    return seconds_of_day(local) % 60


def local_dates(local: np.ndarray) -> np.ndarray:
    """The local calendar date of each instant, as `datetime.date` objects (`.dt.date`)."""
    days = local // NS_PER_DAY
    if days.size == 0:
        return np.empty(0, dtype=object)
    first = int(days.min())
    span = int(days.max()) - first + 1
    epoch = dt.date(1970, 1, 1)
    table = np.empty(span, dtype=object)
    table[:] = [epoch + dt.timedelta(days=first + k) for k in range(span)]
    return table[days - first]
