"""The wall clock by quarter-hour offsets equals pandas' row-by-row conversion exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.judge import clock

ZONES = [
    "UTC",
    "America/New_York",  # DST on 2026-03-08 and 2026-11-01
    "Europe/London",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",  # -03:30 with DST
    "Pacific/Kiritimati",  # +14:00
]


def _ns(stamps: pd.Series) -> np.ndarray:
    return stamps.to_numpy(dtype="datetime64[ns]").view("int64")


def _instants(seed: int, start: str, days: float, n: int = 20_000) -> pd.Series:
    rng = np.random.default_rng(seed)
    first = pd.Timestamp(start, tz="UTC").value
    offsets = rng.integers(0, int(days * clock.NS_PER_DAY), size=n) // 1000 * 1000  # whole µs
    return pd.Series(pd.to_datetime(first + offsets, utc=True))


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("start", ["2026-03-05", "2026-10-28", "2026-04-01", "2025-12-30"])
def test_every_field_is_pandas_own(zone: str, start: str) -> None:
    ts = _instants(hash((zone, start)) % 2**32, start, days=9)
    expected = ts.dt.tz_convert(zone)
    local = clock.local_nanoseconds(ts, zone)
    assert np.array_equal(local, _ns(expected.dt.tz_localize(None)))
    assert np.array_equal(clock.hour_of_day(local), expected.dt.hour.to_numpy())
    assert np.array_equal(clock.minute_of_hour(local), expected.dt.minute.to_numpy())
    assert np.array_equal(clock.second_of_minute(local), expected.dt.second.to_numpy())
    assert list(clock.local_dates(local)) == list(expected.dt.date)


def test_naive_means_utc_and_units_and_containers_do_not_matter() -> None:
    ts = _instants(7, "2026-03-07", days=3, n=5_000)
    naive = ts.dt.tz_localize(None)
    expected = clock.local_nanoseconds(ts, "America/New_York")
    for variant in (naive, naive.astype("datetime64[us]"), pd.DatetimeIndex(ts),
                    naive.to_numpy(), ts.dt.tz_convert("Asia/Tokyo")):  # fmt: skip
        assert np.array_equal(clock.local_nanoseconds(variant, "America/New_York"), expected)


def test_the_dst_night_minute_by_minute() -> None:
    # Every minute of New York's spring-forward and fall-back nights.
    for night in ("2026-03-08 04:00", "2026-11-01 03:00"):
        ts = pd.Series(pd.date_range(night, periods=6 * 60, freq="min", tz="UTC"))
        expected = ts.dt.tz_convert("America/New_York").dt.tz_localize(None)
        local = clock.local_nanoseconds(ts, "America/New_York")
        assert np.array_equal(local, _ns(expected))


def test_a_quarter_whose_offset_changes_inside_it_is_converted_row_by_row() -> None:
    # Before 1970 some zones moved at odd minutes (Amsterdam's +00:19:32 until 1937): the
    # quarter-hour table cannot hold those, the check sends their rows to pandas.
    ts = _instants(3, "1937-06-28", days=6, n=5_000)
    expected = ts.dt.tz_convert("Europe/Amsterdam").dt.tz_localize(None)
    local = clock.local_nanoseconds(ts, "Europe/Amsterdam")
    assert np.array_equal(local, _ns(expected))


def test_empty_and_long_spans() -> None:
    assert clock.local_nanoseconds(pd.Series([], dtype="datetime64[ns, UTC]"), "UTC").size == 0
    assert clock.local_dates(np.empty(0, dtype="int64")).size == 0
    ts = _instants(5, "2000-01-01", days=365 * 20, n=2_000)  # past the table's limit
    expected = ts.dt.tz_convert("Europe/London").dt.tz_localize(None)
    assert np.array_equal(clock.local_nanoseconds(ts, "Europe/London"), _ns(expected))
