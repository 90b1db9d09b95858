"""`anomaly._minute_ranges` (the vectorised band of `seasonal_band`) against the plain
per-series window it replaced: the lowest and highest value within ± minutes around the
clock, NaN where the window is empty or holds a NaN or an infinite bound."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tars_pipeline.judge.anomaly import _minute_ranges


def _one_series(minute: np.ndarray, values: np.ndarray, minutes: int) -> tuple[np.ndarray, ...]:
    with np.errstate(invalid="ignore"):  # NaN in a window: NumPy says so, and gives NaN
        return _plain_window(minute, values, minutes)


def _plain_window(minute: np.ndarray, values: np.ndarray, minutes: int) -> tuple[np.ndarray, ...]:
    lo = np.full(1440, np.inf)
    hi = np.full(1440, -np.inf)
    np.minimum.at(lo, minute, values)
    np.maximum.at(hi, minute, values)
    width = 2 * minutes + 1
    ring_lo = np.r_[lo[-minutes:], lo, lo[:minutes]] if minutes else lo
    ring_hi = np.r_[hi[-minutes:], hi, hi[:minutes]] if minutes else hi
    lo = sliding_window_view(ring_lo, width).min(axis=1)[:1440]
    hi = sliding_window_view(ring_hi, width).max(axis=1)[:1440]
    return np.where(np.isfinite(lo), lo, np.nan), np.where(np.isfinite(hi), hi, np.nan)


@pytest.mark.parametrize("minutes", [0, 1, 60, 719, 720])
def test_ranges_match_the_window_of_each_series(minutes: int) -> None:
    rng = np.random.default_rng(minutes)
    series = 5
    minute = rng.integers(0, 1440, size=series * 900)
    values = rng.normal(100.0, 10.0, size=minute.size)
    odd = rng.choice(4 * 900, 12, replace=False)  # in series 0-3
    values[odd[:6]], values[odd[6:9]], values[odd[9:]] = np.nan, np.inf, -np.inf
    code = np.repeat(np.arange(series), 900)
    minute[code == 4] = rng.integers(600, 620, size=900)  # seen for 20 minutes, all finite
    ((lo, hi),) = _minute_ranges(code * 1440 + minute, values, series, [minutes])
    # Several widths from one pass give each width's own ranges.
    for (a, b), (c, d) in zip(
        _minute_ranges(code * 1440 + minute, values, series, [minutes, 720, minutes]),
        [(lo, hi), _minute_ranges(code * 1440 + minute, values, series, [720])[0], (lo, hi)],
        strict=True,
    ):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    for k in range(series):
        own = code == k
        want_lo, want_hi = _one_series(minute[own], values[own], minutes)
        np.testing.assert_array_equal(lo[k], want_lo)
        np.testing.assert_array_equal(hi[k], want_hi)
    # Series 4 leaves windows empty unless one spans the day but its 20 minutes seen.
    assert np.isnan(lo[4]).any() == (2 * minutes + 1 <= 1440 - 20)
