"""Anomaly events: samples far from what the recent past predicted, merged into events.

SPEC §3 "Anomaly events". Each (service, KPI) series is followed by an exponentially
weighted moving average (EWMA) of its mean and variance, alpha = 2 / (span + 1). A sample's
z-score is measured against the EWMA state *before* that sample, so a sample never
predicts itself and a later sample never changes an earlier verdict (no look-ahead):

    diff  = x − mean
    incr  = alpha · diff
    mean ← mean + incr
    var  ← (1 − alpha) · (var + diff · incr)

the incremental exponentially weighted variance of West (1979), as written in T. Finch,
"Incremental calculation of weighted mean and variance" (2009), §9. z = diff / sqrt(var).
A sample is anomalous when |z| ≥ z_threshold (default 3.0); consecutive anomalous samples of
the same sign merge into one event (spike or dip), whose severity comes from its peak |z|.

The optional `robust` method swaps the EWMA for the median and the scaled median absolute
deviation (1.4826 · MAD, consistent with σ for Gaussian data; Rousseeuw & Croux 1993) of the
`span` samples before each sample: slower, but a burst of outliers does not inflate the
scale that judges the next burst.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter

EVENT_COLUMNS: tuple[str, ...] = (
    "service",
    "kpi",
    "start",
    "end",
    "peak_ts",
    "peak_z",
    "peak_value",
    "expected_value",
    "direction",
    "severity",
    "points",
)
SEVERITY_ORDER: tuple[str, ...] = ("low", "medium", "high", "critical")
Method = Literal["ewma", "robust"]

# The spread is never taken below this fraction of the magnitude in play, max(|expected|,
# |x|): a perfectly flat series followed by a jump gives a large, finite z (at most
# 2 / floor) instead of a division by zero, while float noise on a flat line stays ≈ 0.
RELATIVE_STDDEV_FLOOR = 1e-6
# Values beyond this are rescaled by a power of two (exact in binary floating point) so
# squared deviations cannot overflow to Infinity.
_RESCALE_ABOVE = 1e150
# 1.4826 · MAD estimates σ for normally distributed data (1 / Φ⁻¹(3/4)).
_MAD_TO_SIGMA = 1.482602218505602


class EwmaResult(NamedTuple):
    """Per sample: the prediction before it, the spread of that prediction, and z."""

    expected: np.ndarray
    stddev: np.ndarray
    z: np.ndarray


def _as_finite_array(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype="float64")
    if array.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("values must be finite (sources drop NaN/Inf as gaps)")
    return array


def _power_of_two_scale(values: np.ndarray) -> float:
    largest = float(np.max(np.abs(values))) if len(values) else 0.0
    if largest <= _RESCALE_ABOVE:
        return 1.0
    return float(np.ldexp(1.0, np.frexp(largest)[1]))


def _zscores(
    values: np.ndarray, expected: np.ndarray, stddev: np.ndarray, quiet: int
) -> np.ndarray:
    """(x − expected) / max(stddev, floor); 0 for the first `quiet` samples and for 0 / 0."""
    diff = values - expected
    floor = RELATIVE_STDDEV_FLOOR * np.maximum(np.abs(expected), np.abs(values))
    spread = np.maximum(stddev, floor)
    z = np.zeros_like(values)
    np.divide(diff, spread, out=z, where=spread > 0)
    z[: max(quiet, 0)] = 0.0
    return z


def ewma_zscores(values: np.ndarray, span: int, warmup: int) -> EwmaResult:
    """EWMA expectation, spread and z-score of each sample against the state before it.

    alpha = 2 / (span + 1); the state starts at mean = values[0], var = 0 and follows the
    West/Finch recurrence in the module docstring (run as two first-order IIR filters, which
    is the same recurrence in closed form and runs in C). Sample 0 has no state before it
    and the first `warmup` samples are the warm-up: their z is 0. All outputs are finite.
    """
    if span < 1:
        raise ValueError(f"span must be at least 1, got {span}")
    values = _as_finite_array(values)
    count = len(values)
    if count == 0:
        empty = np.zeros(0)
        return EwmaResult(empty, empty.copy(), empty.copy())
    alpha = 2.0 / (span + 1.0)
    scale = _power_of_two_scale(values)
    scaled = values / scale

    # mean_t = alpha·x_t + (1 − alpha)·mean_{t−1}, with mean_{−1} = x_0 so mean_0 = x_0.
    mean_after, _ = lfilter(
        [alpha], [1.0, alpha - 1.0], scaled, zi=np.array([(1.0 - alpha) * scaled[0]])
    )
    expected = np.empty(count)
    expected[0] = scaled[0]
    expected[1:] = mean_after[:-1]
    diff = scaled - expected
    # var_t = (1 − alpha)·var_{t−1} + (1 − alpha)·alpha·diff_t², with var_{−1} = 0.
    var_after = lfilter([(1.0 - alpha) * alpha], [1.0, alpha - 1.0], diff * diff)
    variance = np.empty(count)
    variance[0] = 0.0
    variance[1:] = np.maximum(var_after[:-1], 0.0)
    stddev = np.sqrt(variance)

    z = _zscores(scaled, expected, stddev, quiet=max(warmup, 1))
    return EwmaResult(expected * scale, stddev * scale, z)


def robust_zscores(values: np.ndarray, window: int, warmup: int) -> EwmaResult:
    """Median and 1.4826·MAD of the `window` samples before each sample, and z against them.

    A sample needs a full window before it is judged: z is 0 for the first
    max(warmup, window) samples (their expectation uses the samples available so far).
    """
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    values = _as_finite_array(values)
    count = len(values)
    expected = values.copy()
    stddev = np.zeros(count)
    for index in range(1, min(window, count)):
        history = values[:index]
        expected[index] = np.median(history)
        stddev[index] = _MAD_TO_SIGMA * np.median(np.abs(history - expected[index]))
    if count > window:
        history = sliding_window_view(values[:-1], window)
        medians = np.median(history, axis=1)
        expected[window:] = medians
        stddev[window:] = _MAD_TO_SIGMA * np.median(np.abs(history - medians[:, None]), axis=1)
    z = _zscores(values, expected, stddev, quiet=max(warmup, window))
    return EwmaResult(expected, stddev, z)


def severity_for(abs_z: np.ndarray, severity_z: Mapping[str, float]) -> np.ndarray:
    """ "low" below severity_z["medium"], then "medium", "high", "critical" as |z| reaches each.

    A level missing from `severity_z` is never reached.
    """
    abs_z = np.asarray(abs_z, dtype="float64")
    severity = np.full(abs_z.shape, SEVERITY_ORDER[0], dtype=object)
    for level in SEVERITY_ORDER[1:]:
        if level in severity_z:
            severity[abs_z >= severity_z[level]] = level
    return severity


def _empty_events() -> pd.DataFrame:
    dtypes = {
        "start": "datetime64[us, UTC]",
        "end": "datetime64[us, UTC]",
        "peak_ts": "datetime64[us, UTC]",
        "peak_z": "float64",
        "peak_value": "float64",
        "expected_value": "float64",
        "points": "int64",
    }
    return pd.DataFrame({name: pd.Series(dtype=dtypes.get(name, object)) for name in EVENT_COLUMNS})


def detect_anomalies(
    samples: pd.DataFrame,
    *,
    span: int,
    warmup: int,
    z_threshold: float,
    severity_z: Mapping[str, float],
    method: Method = "ewma",
) -> pd.DataFrame:
    """Anomaly events of every (service, kpi) series in `samples`, oldest first.

    Each series is sorted by ts and scored by `ewma_zscores` (or `robust_zscores`, with
    `span` as the window). Samples with |z| ≥ z_threshold are anomalous; a run of anomalous
    samples adjacent in the series with the same sign is one event. An event reports its
    first and last ts, the sample with the largest |z| (peak_ts, peak_z signed, peak_value,
    expected_value = the prediction at the peak), direction ("spike" for z > 0, else "dip"),
    severity (`severity_for` on |peak_z|) and the number of points.
    """
    if method not in ("ewma", "robust"):
        raise ValueError(f"method must be 'ewma' or 'robust', got {method!r}")
    values = samples["value"].to_numpy(dtype="float64")
    samples = samples.loc[np.isfinite(values)] if len(samples) else samples
    if samples.empty:
        return _empty_events()
    ordered = samples.sort_values(["service", "kpi", "ts"], kind="stable").reset_index(drop=True)
    series_id = ordered.groupby(["service", "kpi"], sort=False, dropna=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, series_id[1:] != series_id[:-1]])
    ends = np.r_[starts[1:], len(ordered)]

    values = ordered["value"].to_numpy(dtype="float64")
    z = np.zeros(len(ordered))
    expected = np.zeros(len(ordered))
    for first, stop in zip(starts, ends, strict=True):
        segment = values[first:stop]
        if method == "ewma":
            result = ewma_zscores(segment, span=span, warmup=warmup)
        else:
            result = robust_zscores(segment, window=span, warmup=warmup)
        z[first:stop] = result.z
        expected[first:stop] = result.expected

    anomalous = np.abs(z) >= z_threshold
    if not anomalous.any():
        return _empty_events()
    sign = np.sign(z)
    continues_previous = np.r_[
        False,
        anomalous[:-1] & (series_id[1:] == series_id[:-1]) & (sign[1:] == sign[:-1]),
    ]
    event_id = np.cumsum(anomalous & ~continues_previous)

    points = ordered.loc[anomalous, ["service", "kpi", "ts", "value"]].assign(
        z=z[anomalous],
        expected=expected[anomalous],
        abs_z=np.abs(z[anomalous]),
        event=event_id[anomalous],
    )
    by_event = points.groupby("event", sort=True)
    peaks = points.loc[by_event["abs_z"].idxmax()].set_index("event")
    events = pd.DataFrame(
        {
            "service": peaks["service"],
            "kpi": peaks["kpi"],
            "start": by_event["ts"].min(),
            "end": by_event["ts"].max(),
            "peak_ts": peaks["ts"],
            "peak_z": peaks["z"],
            "peak_value": peaks["value"],
            "expected_value": peaks["expected"],
            "direction": np.where(peaks["z"] > 0, "spike", "dip"),
            "severity": severity_for(peaks["abs_z"].to_numpy(), severity_z),
            "points": by_event.size().astype("int64"),
        }
    )
    events = events.sort_values(["start", "service", "kpi"], kind="stable")
    return events.reset_index(drop=True)[list(EVENT_COLUMNS)]
