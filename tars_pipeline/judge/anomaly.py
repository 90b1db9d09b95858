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
A sample is anomalous when |z| ≥ z_threshold (default 3.0). Anomalous samples become events
in three steps (`find_events`):

1. **Runs.** Consecutive anomalous samples of the same sign are one run (spike or dip).
2. **Confirmation.** A run is kept when it is *persistent*, at least `min_points` (3)
   samples long, or *extreme*, one of its samples reaching `single_sample_z` (5.0). A lone
   sample a little over the threshold is what an estimated σ produces by chance many times
   a day over dozens of 1-minute series; the same two-rule shape as the Western Electric
   control-chart rules (one point far out, or a run of points beyond a nearer limit).
3. **Merging.** Kept runs of the same series and sign with at most `merge_gap` (36) quiet
   samples between them are one event, so a flapping incident is one event, not dozens.

**Real series** (`score_series`), by method, never by KPI name:

- *Scrape gaps.* A spacing over `gap_factor` (2.5) × the series' median spacing is a gap.
  Missing samples are not data: no event is made of them, and the samples within
  `gap_edge_seconds` (the rate() window) either side are not judged, since a rate over a
  window that reaches into the gap is computed from fewer samples and dips.
- *Held gauges.* A series that repeats its previous value in at least half of its samples
  (an hourly cost gauge, a replica count, a gauge sampled faster than it is scraped) is
  scored on its updates only: between updates the EWMA variance would otherwise collapse
  and the next ordinary update score a z in the thousands. A level shift is then one
  update far out, one event.
- *Spread floors in the series' own units.* The spread is never below half the series'
  `resolution` (1 for an integer gauge: a one-step change is never an anomaly on its own)
  nor `min_change` / z_threshold × the magnitude in play, so a move smaller than
  `min_change` (10 % of the level; the pipeline uses each KPI's threshold_pct) cannot
  reach the threshold, and a flat series that moves gets a z in proportion to the move.

An event's severity comes from its peak |z|. With min_points=1, single_sample_z=None and
merge_gap=0 the events are exactly the runs of step 1. The defaults were measured on real
labelled series (NAB, realAWSCloudwatch): see docs/anomaly-detection.md.

The optional `robust` method swaps the EWMA for the median and the scaled median absolute
deviation (1.4826 · MAD, consistent with σ for Gaussian data; Rousseeuw & Croux 1993) of the
`span` samples before each sample: slower, but a burst of outliers does not inflate the
scale that judges the next burst. When more than half of a window is one value (a quantised
or mostly-zero series) the MAD is 0; the scale then falls back to √(π/2) · the mean absolute
deviation from the median, also consistent with σ (Iglewicz & Hoaglin 1993), instead of
judging every small change as infinitely surprising. On bursty operations metrics, where the
bursts are the normal state, the median-based scale ignores exactly them: on NAB it scores
far below the EWMA, which is why it is not the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from tars_pipeline.judge import clock
from tars_pipeline.judge.stats import sorted_within_groups

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
    "alarm_ts",
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
# √(π/2) · mean absolute deviation estimates σ for normally distributed data.
_MEAN_AD_TO_SIGMA = 1.2533141373155003

# Event rules (see the module docstring); measured on NAB in docs/anomaly-detection.md.
DEFAULT_MIN_POINTS = 3
DEFAULT_SINGLE_SAMPLE_Z = 5.0
DEFAULT_MERGE_GAP = 36
# Real series (see the module docstring): a gap is a spacing over this × the median spacing;
# a series repeating its previous value this often is held (scored on its updates).
DEFAULT_GAP_FACTOR = 2.5
DEFAULT_HELD_SHARE = 0.5
# A KPI's default drift threshold (10 %): a smaller move is not an anomaly either.
DEFAULT_MIN_CHANGE = 0.10
RESOLUTION_MAX_DECIMALS = 6
LATTICE_MIN_LEVELS, LATTICE_MAX_LEVELS = 4, 64
SEASON_COLUMN = "season"
BAND_COLUMNS = ("band_low", "band_high")
TRIALS_COLUMN = "trials"
# The band: what the baseline showed within this many minutes of a sample's time of day.
DEFAULT_BAND_MINUTES = 60
WHOLE_DAY_MINUTES = 720  # ± 12 h: every time of day
# A seasonal factor is the hour's median over the day's median, clipped to this range.
SEASON_CLIP = (0.05, 20.0)


DayProfile = dict[tuple[object, object], np.ndarray]
"""Per series: its 24 hour levels over its level."""


def day_profile(
    profile_day: pd.DataFrame, timezone: str, level: pd.Series | None = None
) -> DayProfile:
    """Per series of `profile_day`: its hour medians over `level` (per (service, kpi);
    default the day's own median), hours it lacks interpolated.

    A series whose hour medians vary less than its samples within an hour do
    (interquartile ranges: a GC sawtooth, a p99 that only jitters) has no daily shape: its
    24 levels are all the day's median over `level`. Series with a ~0 level or fewer than
    20 hours are left out."""
    if profile_day is None or profile_day.empty:
        return {}
    hour = clock.hour_of_day(clock.local_nanoseconds(profile_day["ts"], timezone))
    if np.isfinite(profile_day["value"].to_numpy(dtype="float64")).all():
        return _day_profile_sorted(profile_day, hour, level)
    return _day_profile_grouped(profile_day, hour, level)


def _sorted_rows_stats(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per row of `matrix` (NaN for missing): how many values, and their median, 25th and
    75th percentiles as pandas' groupby computes them (the median of an even count is the
    mean of the middle two, (a + b) / 2; a quantile interpolates linearly)."""
    ordered = np.sort(matrix, axis=1)  # NaN last
    counts = np.sum(~np.isnan(matrix), axis=1)
    rows = np.arange(len(matrix))
    safe = np.maximum(counts, 1)

    def quantile(q: float) -> np.ndarray:
        position = q * (safe - 1)
        low = np.floor(position).astype("int64")
        high = np.ceil(position).astype("int64")
        lower, upper = ordered[rows, low], ordered[rows, high]
        return lower + (position - low) * (upper - lower)

    lower_middle = ordered[rows, (safe - 1) // 2]
    upper_middle = ordered[rows, safe // 2]
    median = np.where(safe % 2 == 1, lower_middle, (lower_middle + upper_middle) / 2)
    return {"count": counts, "median": median, "q25": quantile(0.25), "q75": quantile(0.75)}


def _group_sorted_stats(ids: np.ndarray, values: np.ndarray, groups: int) -> dict[str, np.ndarray]:
    """`_sorted_rows_stats` of each group of `values` (ids 0..groups-1), from one sort."""
    ordered = sorted_within_groups(ids, values)
    counts = np.bincount(ids, minlength=groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    safe = np.maximum(counts, 1)
    last = len(ordered) - 1

    def at(offset: np.ndarray) -> np.ndarray:
        return ordered[np.minimum(starts + offset, last)]

    def quantile(q: float) -> np.ndarray:
        position = q * (safe - 1)
        low = np.floor(position).astype("int64")
        high = np.ceil(position).astype("int64")
        lower, upper = at(low), at(high)
        return lower + (position - low) * (upper - lower)

    lower_middle, upper_middle = at((safe - 1) // 2), at(safe // 2)
    median = np.where(safe % 2 == 1, lower_middle, (lower_middle + upper_middle) / 2)
    return {"count": counts, "median": median, "q25": quantile(0.25), "q75": quantile(0.75)}


def _series_codes(frame: pd.DataFrame) -> tuple[np.ndarray, pd.MultiIndex]:
    """(a code per row, the (service, kpi) of each code), codes in order of first
    appearance: `pd.factorize` of the two columns as pairs, from integer codes."""
    parts = []
    for name in ("service", "kpi"):
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            parts.append((column.cat.codes.to_numpy().astype("int64"), column.cat.categories))
        else:
            labels, uniques = pd.factorize(column, sort=False, use_na_sentinel=False)
            parts.append((labels.astype("int64"), pd.Index(uniques)))
    (service, services), (kpi, kpis) = parts
    if (service < 0).any() or (kpi < 0).any():  # a missing label: pairs as they are
        codes, keys = pd.factorize(
            pd.MultiIndex.from_arrays([frame["service"], frame["kpi"]]), sort=False
        )
        return codes.astype("int64"), keys
    pair, first = pd.factorize(service * (len(kpis) + 1) + kpi, sort=False)
    keys = pd.MultiIndex.from_arrays(
        [services[first // (len(kpis) + 1)], kpis[first % (len(kpis) + 1)]]
    )
    return pair.astype("int64"), keys


def _day_profile_sorted(
    profile_day: pd.DataFrame, hour: np.ndarray, level: pd.Series | None
) -> DayProfile:
    """`day_profile` from sorts of the values (the same numbers as pandas' groupby median
    and quantiles, tested against `_day_profile_grouped`), for finite values."""
    codes, keys = _series_codes(profile_day)
    values = profile_day["value"].to_numpy(dtype="float64")
    cells = _group_sorted_stats(codes * 24 + hour, values, len(keys) * 24)
    present = (cells["count"] > 0).reshape(len(keys), 24)
    hourly = np.where(present, cells["median"].reshape(len(keys), 24), np.nan)
    spread_by_hour = np.where(present, (cells["q75"] - cells["q25"]).reshape(-1, 24), np.nan)
    spread = _sorted_rows_stats(spread_by_hour)["median"]
    shape = _sorted_rows_stats(hourly)
    if level is None:
        own = _group_sorted_stats(codes, values, len(keys))["median"]
        level = pd.Series(own, index=keys)
    hours = np.arange(24)
    profiles: DayProfile = {}
    for index, key in enumerate(keys):
        norm = level.get(key)
        if norm is None or not norm > 0 or shape["count"][index] < 20:
            continue
        if not shape["q75"][index] - shape["q25"][index] > spread[index]:
            flat = float(shape["median"][index])  # no shape, but a level (a weekend's)
            profiles[key] = np.clip(np.full(24, flat / norm), *SEASON_CLIP)
            continue
        profile = hourly[index].copy()
        missing = ~present[index]
        if missing.any():  # as pandas' linear interpolate, ends held
            profile[missing] = np.interp(hours[missing], hours[~missing], profile[~missing])
        profiles[key] = np.clip(profile / norm, *SEASON_CLIP)
    return profiles


def _day_profile_grouped(
    profile_day: pd.DataFrame, hour: np.ndarray, level: pd.Series | None
) -> DayProfile:
    """`day_profile` by pandas' groupby (values with NaN among them)."""
    frame = profile_day[["service", "kpi", "value"]].assign(hour=hour)
    grouped = frame.groupby(["service", "kpi", "hour"], sort=False)["value"]
    hourly = grouped.median()
    quartiles = grouped.quantile([0.25, 0.75]).unstack()
    spread = (quartiles[0.75] - quartiles[0.25]).groupby(level=[0, 1]).median()
    if level is None:
        level = frame.groupby(["service", "kpi"], sort=False)["value"].median()
    per_series = hourly.groupby(level=[0, 1], sort=False)
    # Each series' hour medians: how many, their interquartile range and median (grouped
    # once, not one quantile call per series).
    hours_of = per_series.size()
    shape_of = per_series.quantile(0.75) - per_series.quantile(0.25)
    median_of = per_series.median()
    profiles: DayProfile = {}
    for key, by_hour in per_series:
        norm = level.get(key)
        if norm is None or not norm > 0 or hours_of[key] < 20:
            continue
        by_hour = by_hour.droplevel([0, 1])
        if not shape_of[key] > spread.get(key, 0.0):
            flat = float(median_of[key])  # no shape, but a level (a weekend's)
            profiles[key] = np.clip(np.full(24, flat / norm), *SEASON_CLIP)
            continue
        profile = by_hour.reindex(range(24)).interpolate(limit_direction="both").to_numpy()
        profiles[key] = np.clip(profile / norm, *SEASON_CLIP)
    return profiles


def profile_factors(
    profile_day: pd.DataFrame | DayProfile,
    samples: pd.DataFrame,
    timezone: str,
    level: pd.Series | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(factor, known) per row of `samples`: its series' `day_profile` at the row's local
    time of day, linear between hour centres around the clock, or the hour's own level for
    a held series (which steps on the hour). `known` is
    False, and the factor 1, where the series has no profile. `profile_day` may be a
    `day_profile` already computed (then `level` is not used)."""
    factors = np.ones(len(samples))
    known = np.zeros(len(samples), dtype=bool)
    if isinstance(profile_day, pd.DataFrame):
        profile_day = day_profile(profile_day, timezone, level)
    if not profile_day or samples.empty:
        return factors, known
    when = clock.local_nanoseconds(samples["ts"], timezone)
    hours = clock.hour_of_day(when)
    position = hours + clock.minute_of_hour(when) / 60.0 - 0.5  # hour centres
    values = samples["value"].to_numpy(dtype="float64")
    keys = samples.groupby(["service", "kpi"], sort=False).indices
    for key, rows in keys.items():
        if key not in profile_day:
            continue
        known[rows] = True
        profile = profile_day[key]
        if is_held(values[rows], DEFAULT_HELD_SHARE):  # steps on the hour
            factors[rows] = profile[hours[rows]]
            continue
        ring = np.r_[profile, profile[0]]
        factors[rows] = np.interp(np.mod(position[rows], 24.0), np.arange(25), ring)
    return factors, known


def seasonal_factors(baseline: pd.DataFrame, samples: pd.DataFrame, timezone: str) -> np.ndarray:
    """For each row of `samples`: its series' GA-day level at that local time of day over
    the GA day's median (`profile_factors` of `baseline`); 1 where the series has no
    baseline, a ~0 median or too few hours of it."""
    return profile_factors(baseline, samples, timezone)[0]


def seasonal_band(
    baseline: pd.DataFrame,
    samples: pd.DataFrame,
    timezone: str,
    season: np.ndarray,
    baseline_season: np.ndarray,
    *,
    minutes: int = DEFAULT_BAND_MINUTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `samples`: the lowest and highest value its series had on the baseline
    day within `minutes` of the row's local time of day, both scaled like the row (the
    baseline deseasonalised by its own profile, then times the row's `season`). NaN where
    the series has no baseline near that time: the row is then not banded."""
    return seasonal_bands(baseline, samples, timezone, season, baseline_season, (minutes,))[0]


def seasonal_bands(
    baseline: pd.DataFrame,
    samples: pd.DataFrame,
    timezone: str,
    season: np.ndarray,
    baseline_season: np.ndarray,
    widths: Sequence[int],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`seasonal_band` for each of `widths` (minutes), from one pass over the baseline."""
    bands = [(np.full(len(samples), np.nan), np.full(len(samples), np.nan)) for _ in widths]
    if baseline is None or baseline.empty or samples.empty:
        return bands
    base_minute = clock.seconds_of_day(clock.local_nanoseconds(baseline["ts"], timezone)) // 60
    base_scored = baseline["value"].to_numpy(dtype="float64") / baseline_season
    minute = clock.seconds_of_day(clock.local_nanoseconds(samples["ts"], timezone)) // 60
    base_groups = baseline.groupby(["service", "kpi"], sort=False).indices
    groups = samples.groupby(["service", "kpi"], sort=False).indices
    banded = [key for key in groups if key in base_groups and len(base_groups[key]) >= 3]
    for first in range(0, len(banded), BAND_SERIES_PER_BLOCK):
        block = banded[first : first + BAND_SERIES_PER_BLOCK]
        brows = np.concatenate([base_groups[key] for key in block])
        rows = np.concatenate([groups[key] for key in block])
        bcode = np.repeat(np.arange(len(block)), [len(base_groups[key]) for key in block])
        code = np.repeat(np.arange(len(block)), [len(groups[key]) for key in block])
        ranges = _minute_ranges(bcode * 1440 + base_minute[brows], base_scored[brows],
                                len(block), widths)  # fmt: skip
        at, scale = (code, minute[rows]), season[rows]
        for (low, high), (lo, hi) in zip(bands, ranges, strict=True):
            low[rows] = lo[at] * scale
            high[rows] = hi[at] * scale
    return bands


BAND_SERIES_PER_BLOCK = 1024
"""`seasonal_bands` bands this many series at a time: arrays of series × 1,440 minutes
(12 MB each), whatever the number of series."""


def _minute_ranges(
    cells: np.ndarray, values: np.ndarray, series: int, widths: Sequence[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each of `widths` (minutes): per series (rows) and minute of the day (columns),
    the lowest and the highest of `values` at their `cells` (series × 1,440 + minute)
    within ± that many minutes around the clock (midnight wraps); NaN where there is none,
    and where a NaN or an infinite bound falls in the range (as NumPy's min and max of the
    window would give)."""
    missing = np.isnan(values)
    lo = np.full(series * 1440, np.inf)
    hi = np.full(series * 1440, -np.inf)
    np.minimum.at(lo, cells, np.where(missing, np.inf, values))
    np.maximum.at(hi, cells, np.where(missing, -np.inf, values))
    nan_cells = np.bincount(cells[missing], minlength=series * 1440) > 0
    lo, hi, nan_cells = (a.reshape(series, 1440) for a in (lo, hi, nan_cells))
    out = []
    for minutes in widths:
        width = 2 * minutes + 1
        if width >= 1440:  # every minute of the day is in every window
            lows = np.repeat(lo.min(axis=1, keepdims=True), 1440, axis=1)
            highs = np.repeat(hi.max(axis=1, keepdims=True), 1440, axis=1)
            nans = np.repeat(nan_cells.any(axis=1, keepdims=True), 1440, axis=1)
        elif width > 1:
            lows = _around_the_clock(np.minimum, lo, minutes)
            highs = _around_the_clock(np.maximum, hi, minutes)
            nans = _around_the_clock(np.maximum, nan_cells.astype("float64"), minutes) > 0
        else:
            lows, highs, nans = lo, hi, nan_cells
        out.append(
            (
                np.where(np.isfinite(lows) & ~nans, lows, np.nan),
                np.where(np.isfinite(highs) & ~nans, highs, np.nan),
            )
        )
    return out


def _around_the_clock(ufunc: np.ufunc, rows: np.ndarray, minutes: int) -> np.ndarray:
    """`ufunc` (np.minimum or np.maximum) of each row's values within ± `minutes` of each
    column, the row read as a circle (minute 0 follows minute 1,439). Two running passes
    per block of 2·minutes + 1 columns (van Herk, Gil and Werman), whatever the width:
    out[:, i] joins the tail of i's block with the head of the block where the window ends."""
    width = 2 * minutes + 1
    ring = np.concatenate([rows[:, -minutes:], rows, rows[:, :minutes]], axis=1)
    count, length = rows.shape
    blocks = -(-ring.shape[1] // width)
    padded = np.full((count, blocks * width), np.inf if ufunc is np.minimum else -np.inf)
    padded[:, : ring.shape[1]] = ring
    shaped = padded.reshape(count, blocks, width)
    heads = ufunc.accumulate(shaped, axis=2).reshape(count, -1)
    tails = ufunc.accumulate(shaped[:, :, ::-1], axis=2)[:, :, ::-1].reshape(count, -1)
    return ufunc(tails[:, :length], heads[:, width - 1 : width - 1 + length])


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
    values: np.ndarray,
    expected: np.ndarray,
    stddev: np.ndarray,
    quiet: int,
    *,
    relative_floor: float = RELATIVE_STDDEV_FLOOR,
    min_stddev: float | np.ndarray = 0.0,
) -> np.ndarray:
    """(x − expected) / max(stddev, floors); 0 for the first `quiet` samples and for 0 / 0.

    The floors: `relative_floor` × max(|expected|, |x|), and `min_stddev` in the series' own
    units (half its resolution, see `resolution`)."""
    diff = values - expected
    floor = np.maximum(
        relative_floor * np.maximum(np.abs(expected), np.abs(values)),
        np.maximum(min_stddev, 0.0),
    )
    spread = np.maximum(stddev, floor)
    z = np.zeros_like(values)
    np.divide(diff, spread, out=z, where=spread > 0)
    z[: max(quiet, 0)] = 0.0
    return z


IIR_LOOP_BELOW = 100_000
"""Jobs of fewer samples than this run the EWMA recursions as a Python loop, bigger ones
through SciPy's `lfilter`. Both do the same floating-point operations in the same order,
so they give the same bits (tested); the loop spares a small job (the CSV mode, one NAB
file) the 0.8 s import of scipy.signal, and costs ~0.3 µs a sample."""


def first_order_filter(
    gain: float, decay: float, values: np.ndarray, state: float, *, vectorised: bool | None = None
) -> np.ndarray:
    """y_t = gain·x_t + decay·y_{t−1}, with decay·y_{−1} = `state`: SciPy's
    `lfilter([gain], [1, −decay], x, zi=[state])`, whose direct form II transposed computes
    y_t = z + gain·x_t and then z = −(−decay)·y_t, exactly as the loop does. `vectorised`
    picks the engine (None: by the length of `values`, see IIR_LOOP_BELOW)."""
    if vectorised is None:
        vectorised = len(values) >= IIR_LOOP_BELOW
    if vectorised:
        from scipy.signal import lfilter

        out, _ = lfilter([gain], [1.0, -decay], values, zi=np.array([state]))
        return out
    out = np.empty(len(values))
    carry = state
    for index, value in enumerate(values.tolist()):
        current = carry + gain * value
        out[index] = current
        carry = decay * current
    return out


BATCH_MIN_SERIES = 8
"""Series of like length run their recursions side by side, one NumPy step per sample
index across all of them, when there are at least this many: the same operations on each
element as the loop (the same bits), at a cost per index rather than per sample."""


def first_order_filter_many(
    gain: float,
    decay: float,
    arrays: Sequence[np.ndarray],
    states: Sequence[float],
    *,
    vectorised: bool | None = None,
) -> list[np.ndarray]:
    """`first_order_filter` of each array with its state, the same bits as one by one.

    Arrays are taken in groups of like length (the longest at most twice the shortest, so
    the padding costs at most as much as the samples); a group of BATCH_MIN_SERIES or more
    runs side by side (row t of a length × series matrix at a time), a smaller one array by
    array (`first_order_filter`, whose engine `vectorised` picks)."""
    out: list[np.ndarray] = [np.empty(0)] * len(arrays)
    order = sorted(range(len(arrays)), key=lambda index: len(arrays[index]))
    start = 0
    while start < len(order):
        shortest = max(len(arrays[order[start]]), 1)
        stop = start
        while stop < len(order) and len(arrays[order[stop]]) <= 2 * shortest:
            stop += 1
        group = order[start:stop]
        start = stop
        if len(group) < BATCH_MIN_SERIES:
            for index in group:
                out[index] = first_order_filter(
                    gain, decay, arrays[index], states[index], vectorised=vectorised
                )
            continue
        lengths = np.array([len(arrays[index]) for index in group])
        matrix = np.zeros((int(lengths.max()), len(group)))
        for column, index in enumerate(group):
            matrix[: lengths[column], column] = arrays[index]
        carry = np.array([states[index] for index in group], dtype="float64")
        for row in matrix:  # in place: y_t = z + gain·x_t, then z = decay·y_t
            np.multiply(row, gain, out=row)
            np.add(carry, row, out=row)
            np.multiply(row, decay, out=carry)
        for column, index in enumerate(group):
            out[index] = matrix[: lengths[column], column].copy()
    return out


class EwmaJob(NamedTuple):
    """One series for `ewma_zscores_many` (the arguments of `ewma_zscores`)."""

    values: np.ndarray
    warmup: int
    relative_floor: float = RELATIVE_STDDEV_FLOOR
    min_stddev: float = 0.0
    trials: np.ndarray | None = None
    unit: np.ndarray | None = None


def ewma_zscores(
    values: np.ndarray,
    span: int,
    warmup: int,
    *,
    relative_floor: float = RELATIVE_STDDEV_FLOOR,
    min_stddev: float = 0.0,
    trials: np.ndarray | None = None,
    unit: np.ndarray | None = None,
    vectorised: bool | None = None,
) -> EwmaResult:
    """EWMA expectation, spread and z-score of each sample against the state before it.

    alpha = 2 / (span + 1); the state starts at mean = values[0], var = 0 and follows the
    West/Finch recurrence in the module docstring (run as two first-order IIR filters, which
    is the same recurrence in closed form). Sample 0 has no state before it and the first
    `warmup` samples are the warm-up: their z is 0. All outputs are finite.
    """
    job = EwmaJob(values, warmup, relative_floor, min_stddev, trials, unit)
    return ewma_zscores_many([job], span, vectorised=vectorised)[0]


def ewma_zscores_many(
    jobs: Sequence[EwmaJob], span: int, *, vectorised: bool | None = None
) -> list[EwmaResult]:
    """`ewma_zscores` of each job, their recursions run together (`first_order_filter_many`):
    the same numbers as one by one, to the bit."""
    if span < 1:
        raise ValueError(f"span must be at least 1, got {span}")
    alpha = 2.0 / (span + 1.0)
    decay = -(alpha - 1.0)  # the bits lfilter uses for 1 − alpha
    values = [_as_finite_array(job.values) for job in jobs]
    scales = [_power_of_two_scale(array) for array in values]
    scaled = [array / scale for array, scale in zip(values, scales, strict=True)]
    # mean_t = alpha·x_t + (1 − alpha)·mean_{t−1}, with mean_{−1} = x_0 so mean_0 = x_0.
    means = first_order_filter_many(
        alpha,
        decay,
        scaled,
        [(1.0 - alpha) * array[0] if len(array) else 0.0 for array in scaled],
        vectorised=vectorised,
    )
    expected, squares = [], []
    for array, mean_after in zip(scaled, means, strict=True):
        before = np.empty(len(array))
        if len(array):
            before[0] = array[0]
            before[1:] = mean_after[:-1]
        diff = array - before
        expected.append(before)
        squares.append(diff * diff)
    # var_t = (1 − alpha)·var_{t−1} + (1 − alpha)·alpha·diff_t², with var_{−1} = 0.
    variances = first_order_filter_many(
        (1.0 - alpha) * alpha, decay, squares, [0.0] * len(jobs), vectorised=vectorised
    )
    results = []
    for job, array, scale, before, var_after in zip(
        jobs, scaled, scales, expected, variances, strict=True
    ):
        count = len(array)
        if count == 0:
            empty = np.zeros(0)
            results.append(EwmaResult(empty, empty.copy(), empty.copy()))
            continue
        variance = np.empty(count)
        variance[0] = 0.0
        variance[1:] = np.maximum(var_after[:-1], 0.0)
        stddev = np.sqrt(variance)
        floor: float | np.ndarray = job.min_stddev / scale
        if job.trials is not None:
            spread = binomial_spread(before * scale, job.trials, job.unit)
            floor = np.maximum(floor, spread / scale)
        z = _zscores(
            array,
            before,
            stddev,
            quiet=max(job.warmup, 1),
            relative_floor=job.relative_floor,
            min_stddev=floor,
        )
        results.append(EwmaResult(before * scale, stddev * scale, z))
    return results


def binomial_spread(
    expected: np.ndarray, trials: np.ndarray, unit: np.ndarray | None = None
) -> np.ndarray:
    """The sampling spread of a percentage of `trials` requests (an error rate, an
    availability) around `expected` %: 100·√(q(1−q)/n), with q at least one request in n
    (a single failure where none is expected is about one spread, not infinitely many).
    `unit` (per sample) converts a deseasonalised value back to % and the spread with it.
    No floor (0) where the trials are unknown."""
    unit = np.ones(len(expected)) if unit is None else unit
    n = np.asarray(trials, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.clip(expected * unit / 100.0, 0.0, 1.0)
        q = np.clip(np.maximum(np.minimum(q, 1.0 - q), 1.0 / n), 0.0, 0.5)
        spread = 100.0 * np.sqrt(q * (1.0 - q) / n) / unit
    return np.where(np.isfinite(spread) & (n > 0), spread, 0.0)


def _robust_sigma(abs_deviations: np.ndarray) -> np.ndarray:
    """1.4826 · MAD per row, or √(π/2) · mean absolute deviation where the MAD is 0."""
    mad = _MAD_TO_SIGMA * np.median(abs_deviations, axis=1)
    mean_ad = _MEAN_AD_TO_SIGMA * abs_deviations.mean(axis=1)
    return np.where(mad > 0, mad, mean_ad)


def robust_zscores(
    values: np.ndarray,
    window: int,
    warmup: int,
    *,
    relative_floor: float = RELATIVE_STDDEV_FLOOR,
    min_stddev: float = 0.0,
) -> EwmaResult:
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
        stddev[index] = _robust_sigma(np.abs(history - expected[index])[None, :])[0]
    if count > window:
        history = sliding_window_view(values[:-1], window)
        medians = np.median(history, axis=1)
        expected[window:] = medians
        stddev[window:] = _robust_sigma(np.abs(history - medians[:, None]))
    z = _zscores(
        values,
        expected,
        stddev,
        quiet=max(warmup, window),
        relative_floor=relative_floor,
        min_stddev=min_stddev,
    )
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


def _severity(
    peak_z: np.ndarray,
    kpis: np.ndarray,
    severity_z: Mapping[str, float],
    adverse: Mapping[str, float] | None,
) -> np.ndarray:
    """`severity_for` |peak z|; "low" for a move the good way of a KPI with a bad side
    (`adverse`: KPI → +1 if up is bad, −1 if down is bad): memory after a collection or
    latency after a fix hurts no one, however far it moved."""
    severity = severity_for(np.abs(peak_z), severity_z)
    if adverse:
        side = np.array([adverse.get(str(kpi), 0.0) for kpi in kpis], dtype="float64")
        severity = np.where(side * peak_z < 0, "low", severity)
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
        "alarm_ts": "datetime64[us, UTC]",
    }
    return pd.DataFrame({name: pd.Series(dtype=dtypes.get(name, object)) for name in EVENT_COLUMNS})


class EventRows(NamedTuple):
    """Events as row positions into the z array they were found in, oldest first.

    `alarm` is the row at which the event met the confirmation rule: the moment a detector
    reading the series live would raise it (the first row for an extreme sample, else the
    `min_points`-th sample of the run). `points` counts the anomalous samples it merged.
    """

    first: np.ndarray
    last: np.ndarray
    alarm: np.ndarray
    peak: np.ndarray
    points: np.ndarray


def _first_row_per_group(rows: np.ndarray, groups: np.ndarray, group_count: int) -> np.ndarray:
    """The first of `rows` in each group (rows sorted, groups non-decreasing); -1 if none."""
    first = np.full(group_count, -1, dtype="int64")
    present, index = np.unique(groups, return_index=True)
    first[present] = rows[index]
    return first


def find_events(
    z: np.ndarray,
    series_id: np.ndarray | None = None,
    *,
    z_threshold: float,
    min_points: int = DEFAULT_MIN_POINTS,
    single_sample_z: float | None = DEFAULT_SINGLE_SAMPLE_Z,
    merge_gap: int = DEFAULT_MERGE_GAP,
    positions: np.ndarray | None = None,
    hold: np.ndarray | None = None,
) -> EventRows:
    """Anomaly events of z-scores laid out series after series (rules in the module docstring).

    A run of anomalous samples (|z| ≥ z_threshold, same sign, same series) is kept when it
    has at least `min_points` samples or a sample with |z| ≥ `single_sample_z` (None: no
    such exception); kept runs of the same series and sign separated by at most `merge_gap`
    rows are one event. `positions` (non-decreasing per series) places each row on the
    sample axis when the rows are a subset of the samples (gap edges left out, a held
    series scored on its updates): the merge gap is then counted in samples, not rows.
    Vectorised: linear in the number of rows.
    """
    if min_points < 1:
        raise ValueError(f"min_points must be at least 1, got {min_points}")
    if merge_gap < 0:
        raise ValueError(f"merge_gap must be at least 0, got {merge_gap}")
    z = np.asarray(z, dtype="float64")
    series = np.zeros(len(z), dtype="int64") if series_id is None else np.asarray(series_id)
    if series.shape != z.shape:
        raise ValueError(f"series_id has shape {series.shape}, z has {z.shape}")
    place = np.arange(len(z)) if positions is None else np.asarray(positions, dtype="int64")
    if place.shape != z.shape:
        raise ValueError(f"positions has shape {place.shape}, z has {z.shape}")
    empty = np.zeros(0, dtype="int64")
    abs_z = np.abs(z)
    anomalous = abs_z >= z_threshold
    rows = np.flatnonzero(anomalous)
    if not len(rows):
        return EventRows(empty, empty, empty, empty, empty)

    # 1. Runs: consecutive anomalous rows of one series and one sign.
    sign = np.sign(z)
    continues_run = np.r_[
        False, anomalous[:-1] & (series[1:] == series[:-1]) & (sign[1:] == sign[:-1])
    ]
    run_of_row = np.cumsum(anomalous & ~continues_run)[rows] - 1
    run_count = int(run_of_row[-1]) + 1
    run_first = _first_row_per_group(rows, run_of_row, run_count)
    run_length = np.bincount(run_of_row, minlength=run_count)
    run_last = run_first + run_length - 1
    run_peak_abs = np.maximum.reduceat(abs_z[rows], np.r_[0, np.cumsum(run_length)[:-1]])
    at_peak = abs_z[rows] == run_peak_abs[run_of_row]
    run_peak = _first_row_per_group(rows[at_peak], run_of_row[at_peak], run_count)

    # 2. Confirmation: persistent or extreme; the alarm is the row where it became so.
    never = np.iinfo("int64").max
    # A row counts for the samples it stands for (`hold`: a held value until its update).
    weight = np.ones(len(z)) if hold is None else np.asarray(hold, dtype="float64")
    held_so_far = np.cumsum(weight[rows])
    run_offset = held_so_far[np.r_[0, np.cumsum(run_length)[:-1]]] - weight[run_first]
    reached = held_so_far - run_offset[run_of_row] >= min_points
    first_reached = _first_row_per_group(rows[reached], run_of_row[reached], run_count)
    persistent_at = np.where(first_reached >= 0, first_reached, never)
    extreme_at = np.full(run_count, never)
    if single_sample_z is not None:
        extreme = abs_z[rows] >= single_sample_z
        first_extreme = _first_row_per_group(rows[extreme], run_of_row[extreme], run_count)
        extreme_at = np.where(first_extreme >= 0, first_extreme, never)
    run_alarm = np.minimum(persistent_at, extreme_at)
    kept = np.flatnonzero(run_alarm != never)
    if not len(kept):
        return EventRows(empty, empty, empty, empty, empty)

    # 3. Merging: kept runs close enough in the same series and direction.
    first, last = run_first[kept], run_last[kept]
    kept_series, kept_sign = series[first], sign[first]
    joins_previous = np.r_[
        False,
        (kept_series[1:] == kept_series[:-1])
        & (kept_sign[1:] == kept_sign[:-1])
        & (place[first[1:]] - place[last[:-1]] - 1 <= merge_gap),
    ]
    event_of_run = np.cumsum(~joins_previous) - 1
    event_starts = np.flatnonzero(~joins_previous)
    event_ends = np.r_[event_starts[1:], len(kept)] - 1
    peak_abs = np.maximum.reduceat(run_peak_abs[kept], event_starts)
    is_event_peak = run_peak_abs[kept] == peak_abs[event_of_run]
    peak_run = _first_row_per_group(
        np.flatnonzero(is_event_peak), event_of_run[is_event_peak], len(event_starts)
    )
    return EventRows(
        first=first[event_starts],
        last=last[event_ends],
        alarm=run_alarm[kept][event_starts],
        peak=run_peak[kept][peak_run],
        points=np.add.reduceat(run_length[kept], event_starts).astype("int64"),
    )


def resolution(values: np.ndarray) -> float:
    """The step the series moves in: the smallest gap q between its distinct values when
    every value is a whole multiple of q and there are at least four of them (replicas, pods,
    replicas × a price per replica-hour); else the precision it is reported at, the largest
    of 1, 0.1, …, 1e-6 that every value is a multiple of; 0 for continuous data."""
    if not len(values):
        return 0.0
    # A prefix with more distinct values than a lattice has rules the whole series out
    # (and spares sorting it): the same answer, sooner.
    head = values[: 4 * LATTICE_MAX_LEVELS]
    many = len(head) < len(values) and len(np.unique(head)) > LATTICE_MAX_LEVELS
    distinct = head[:0] if many else np.unique(values)
    if not many and LATTICE_MIN_LEVELS <= len(distinct) <= LATTICE_MAX_LEVELS:
        step = float(np.min(np.diff(distinct)))
        if step > 0:
            with np.errstate(over="ignore", invalid="ignore"):
                multiples = distinct / step
                whole = np.all(np.abs(multiples - np.round(multiples)) <= 1e-3)
            if whole:
                return step

    def multiples(part: np.ndarray, decimals: int) -> bool:
        scaled = part * 10.0**decimals
        return bool(
            np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled)))
        )

    for decimals in range(RESOLUTION_MAX_DECIMALS + 1):
        # Every value must be a multiple: a prefix that is not settles it without the rest.
        if multiples(values[:64], decimals) and multiples(values, decimals):
            return 10.0**-decimals
    return 0.0


def gap_edges(
    seconds: np.ndarray, *, gap_factor: float, edge_seconds: float
) -> tuple[np.ndarray, int]:
    """(mask of samples left unjudged beside scrape gaps, number of gaps).

    A gap is a spacing over `gap_factor` × the series' median spacing. A rate() over a window
    that reaches into a gap is computed from fewer samples, so the `edge_seconds` before the
    gap starts and after it ends (the rate window) are not judged: that is the artefact the
    issue calls a traffic dip spanning the gap. The gap itself is reported by data quality.
    """
    unjudged = np.zeros(len(seconds), dtype=bool)
    if len(seconds) < 3:
        return unjudged, 0
    spacing = np.diff(seconds)
    step = float(np.median(spacing))
    if step <= 0:
        return unjudged, 0
    at = np.flatnonzero(spacing > gap_factor * step)
    if not len(at) or edge_seconds <= 0:
        return unjudged, len(at)
    for last_before, first_after in zip(seconds[at], seconds[at + 1], strict=True):
        unjudged |= (seconds > last_before - edge_seconds) & (seconds <= last_before)
        unjudged |= (seconds >= first_after) & (seconds < first_after + edge_seconds)
    return unjudged, len(at)


def is_held(values: np.ndarray, held_share: float) -> bool:
    """A series that repeats its previous value in at least `held_share` of its samples: a
    gauge updated less often than it is sampled (hourly cost, replica counts), or one read
    at a finer step than it is scraped."""
    if len(values) < 3:
        return False
    return float(np.mean(values[1:] == values[:-1])) >= held_share


class ScoredSeries(NamedTuple):
    """The rows of one series that were scored (positions into it) and their scores."""

    rows: np.ndarray
    expected: np.ndarray
    z: np.ndarray
    hold: np.ndarray  # samples each scored row stands for (a held value until its next update)


def score_series(
    seconds: np.ndarray,
    values: np.ndarray,
    *,
    span: int,
    warmup: int,
    method: Method = "ewma",
    gap_factor: float = DEFAULT_GAP_FACTOR,
    gap_edge_seconds: float = 0.0,
    held_share: float | None = DEFAULT_HELD_SHARE,
    relative_floor: float = RELATIVE_STDDEV_FLOOR,
    season: np.ndarray | None = None,
    trials: np.ndarray | None = None,
    vectorised: bool | None = None,
) -> ScoredSeries:
    """One series scored the way it was produced (module docstring, "Real series"):

    1. samples beside a scrape gap are left out (`gap_edges`);
    2. a held series is scored on its updates only: its repeats are not observations (the
       warm-up still counts samples, so a value known to hold is known early);
    3. the spread never goes below half the series' resolution, nor `relative_floor` × the
       magnitude: a one-step change of a quantised gauge is never an anomaly on its own, and
       a series that was flat gets a z in proportion to how far it moved, not 1 / 1e-6;
    4. with `season` (the expected level at each sample over the day's mean level, from the
       GA-day profile), the series is scored as value / season: a daily cycle the baseline
       already had is not news. `expected` is given back in the series' units.
    """
    prepared = _prepare_series(
        seconds,
        values,
        warmup=warmup,
        gap_factor=gap_factor,
        gap_edge_seconds=gap_edge_seconds,
        held_share=held_share,
        relative_floor=relative_floor,
        season=season,
        trials=trials,
    )
    if method == "ewma":
        result = ewma_zscores_many([prepared.job], span, vectorised=vectorised)[0]
    else:
        job = prepared.job
        result = robust_zscores(
            job.values,
            window=span,
            warmup=job.warmup,
            relative_floor=job.relative_floor,
            min_stddev=job.min_stddev,
        )
    return _finish_series(prepared, result, warmup, len(values))


class _Prepared(NamedTuple):
    rows: np.ndarray  # the samples scored (gap edges out, a held series' updates)
    held: bool
    factor: np.ndarray
    job: EwmaJob


def _prepare_series(
    seconds: np.ndarray,
    values: np.ndarray,
    *,
    warmup: int,
    gap_factor: float,
    gap_edge_seconds: float,
    held_share: float | None,
    relative_floor: float,
    season: np.ndarray | None,
    trials: np.ndarray | None,
) -> _Prepared:
    """Steps 1-4 of `score_series`: which samples are scored, and on what."""
    rows = np.arange(len(values))
    unjudged, _ = gap_edges(seconds, gap_factor=gap_factor, edge_seconds=gap_edge_seconds)
    rows = rows[~unjudged]
    kept = values[rows]
    held = held_share is not None and is_held(kept, held_share)
    if held:
        updates = np.r_[True, kept[1:] != kept[:-1]]
        rows, kept = rows[updates], kept[updates]
    factor = np.ones(len(kept)) if season is None else season[rows]
    job = EwmaJob(
        values=kept / factor,
        warmup=0 if held else warmup,
        relative_floor=relative_floor,
        min_stddev=0.5 * resolution(kept) / float(np.median(factor)),
        trials=None if trials is None else trials[rows],
        unit=factor,
    )
    return _Prepared(rows, held, factor, job)


def _finish_series(
    prepared: _Prepared, result: EwmaResult, warmup: int, length: int
) -> ScoredSeries:
    rows, z = prepared.rows, result.z
    hold = np.ones(len(rows))
    if prepared.held:  # the warm-up is time: a held value is known to hold
        z = np.where(rows < warmup, 0.0, z)
        held_for = np.diff(np.r_[rows, length]).astype("float64")
        interval = float(np.median(held_for[:-1])) if len(held_for) > 1 else 1.0
        hold = held_for / max(interval, 1.0)  # in update intervals: one per expected update
    return ScoredSeries(rows, result.expected * prepared.factor, z, hold)


def _series_time_order(service: np.ndarray, kpi: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """The permutation a stable sort by (service, kpi, time) makes: `np.lexsort` of the
    three, found faster. Rows already in that order (what the store hands over) need no
    sort; else, when the three fit one int64 key, the key is sorted (introsort), and kept
    when no two rows tie (then every sort gives the same order), else sorted stably."""
    service = service.astype("int64")
    kpi = kpi.astype("int64")
    if len(ticks) < 2:
        return np.arange(len(ticks))
    if service.min() < 0 or kpi.min() < 0:  # a missing label: lexsort's own order
        return np.lexsort((ticks, kpi, service))
    kpi_count = int(kpi.max()) + 1
    series = service * kpi_count + kpi

    def in_order(stop: int | None) -> bool:
        step = np.diff(series[:stop])
        return bool((step >= 0).all() and (np.diff(ticks[:stop])[step == 0] >= 0).all())

    if in_order(1024) and in_order(None):  # a shuffled frame shows it in its first rows
        return np.arange(len(ticks))
    low = int(ticks.min())
    span = int(ticks.max()) - low + 1
    if (int(series.max()) + 1) * span >= 2**62:  # would overflow: the three keys
        return np.lexsort((ticks, kpi, service))
    key = series * span + (ticks - low)
    order = np.argsort(key, kind="quicksort")
    if (np.diff(key[order]) > 0).all():
        return order
    return np.argsort(key, kind="stable")


def _sort_codes(labels: pd.Series) -> np.ndarray:
    """Integers that sort as sort_values sorts `labels`: a category's codes, else the
    codes of the sorted distinct values."""
    if isinstance(labels.dtype, pd.CategoricalDtype):
        return labels.cat.codes.to_numpy()
    codes, _ = pd.factorize(labels, sort=True, use_na_sentinel=False)
    return codes


def detect_anomalies(
    samples: pd.DataFrame,
    *,
    span: int,
    warmup: int,
    z_threshold: float,
    severity_z: Mapping[str, float],
    method: Method = "ewma",
    min_points: int = DEFAULT_MIN_POINTS,
    single_sample_z: float | None = DEFAULT_SINGLE_SAMPLE_Z,
    merge_gap: int = DEFAULT_MERGE_GAP,
    gap_factor: float = DEFAULT_GAP_FACTOR,
    gap_edge_seconds: float = 0.0,
    held_share: float | None = DEFAULT_HELD_SHARE,
    min_change: float | Mapping[str, float] = DEFAULT_MIN_CHANGE,
    adverse: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Anomaly events of every (service, kpi) series in `samples`, oldest first.

    Each series is sorted by ts and scored by `score_series` (EWMA, or the robust window
    with `span` as its length; gap edges left out, held series on their updates);
    `find_events` turns the z-scores into events with the `min_points`, `single_sample_z`
    and `merge_gap` rules (the gap counted in samples). `min_change` is the smallest move,
    as a fraction of the expected level, that can reach `z_threshold` (the spread floor is
    min_change / z_threshold × the level): one for every series, or one per KPI name
    (others get DEFAULT_MIN_CHANGE). An optional `season` column (the expected level at
    each sample over the day's mean, `seasonal_factors`) makes each series scored as
    value / season. Optional `band_low`/`band_high` columns: a sample within them is not
    anomalous (what the baseline showed then, `seasonal_band`). An optional `trials`
    column (the requests behind a percentage) floors its spread at the binomial spread.
    `adverse` (KPI → +1 if up is bad, −1 if down is bad) makes a move the good way "low".

    An event reports the ts of its first and last anomalous sample, the sample with the
    largest |z| (peak_ts, peak_z signed, peak_value, expected_value = the prediction at the
    peak), direction ("spike" for z > 0, else "dip"), severity (`severity_for` on
    |peak_z|), the number of anomalous samples (points), and `alarm_ts`: the sample at which
    a live detector raises it.

    Series are independent of each other, so a large frame is scored in chunks of whole
    services of about CHUNK_ROWS samples (`_service_chunks`): the detector's working arrays
    are held for one chunk at a time, not for a whole day of thousands of series, and the
    events are the same to the bit.
    """
    options = {
        "span": span,
        "warmup": warmup,
        "z_threshold": z_threshold,
        "severity_z": severity_z,
        "method": method,
        "min_points": min_points,
        "single_sample_z": single_sample_z,
        "merge_gap": merge_gap,
        "gap_factor": gap_factor,
        "gap_edge_seconds": gap_edge_seconds,
        "held_share": held_share,
        "min_change": min_change,
        "adverse": adverse,
        # The engine of the whole job, whatever a chunk's length (the same bits either way).
        "vectorised": len(samples) >= IIR_LOOP_BELOW,
    }
    chunks = _service_chunks(samples, CHUNK_ROWS)
    if chunks is None:
        return _detect_chunk(samples, **options)
    found = [_detect_chunk(samples.iloc[rows], **options) for rows in chunks]
    found = [events for events in found if len(events)]
    if not found:
        return _empty_events()
    # The chunks follow the services' order, as the series do in one frame: the same
    # stable sort of the same rows.
    events = pd.concat(found, ignore_index=True)
    events = events.sort_values(["start", "service", "kpi"], kind="stable")
    return events.reset_index(drop=True)


# Samples scored at once by `detect_anomalies` (a day of 700 series at a 60 s step).
CHUNK_ROWS = 1_000_000


def _service_chunks(samples: pd.DataFrame, limit: int) -> list[np.ndarray] | None:
    """Row positions of `samples` in runs of whole services, in the services' sort order,
    each of about `limit` rows (a service larger than `limit` is a chunk of its own); None
    when one chunk holds them all, or a service is missing."""
    if len(samples) <= limit:
        return None
    codes = _sort_codes(samples["service"]).astype("int64")
    if codes.min() < 0:
        return None
    sizes = np.bincount(codes)
    bounds, taken = [0], 0
    for code, size in enumerate(sizes):
        if taken and taken + size > limit:
            bounds.append(code)
            taken = 0
        taken += int(size)
    if len(bounds) == 1:
        return None
    bounds.append(len(sizes))
    chunk_of = np.searchsorted(np.asarray(bounds[1:-1]), codes, side="right")
    order = np.argsort(chunk_of, kind="stable")
    cuts = np.cumsum(np.bincount(chunk_of, minlength=len(bounds) - 1))[:-1]
    return np.split(order, cuts)


def _detect_chunk(
    samples: pd.DataFrame,
    *,
    span: int,
    warmup: int,
    z_threshold: float,
    severity_z: Mapping[str, float],
    method: Method = "ewma",
    min_points: int = DEFAULT_MIN_POINTS,
    single_sample_z: float | None = DEFAULT_SINGLE_SAMPLE_Z,
    merge_gap: int = DEFAULT_MERGE_GAP,
    gap_factor: float = DEFAULT_GAP_FACTOR,
    gap_edge_seconds: float = 0.0,
    held_share: float | None = DEFAULT_HELD_SHARE,
    min_change: float | Mapping[str, float] = DEFAULT_MIN_CHANGE,
    adverse: Mapping[str, float] | None = None,
    vectorised: bool,
) -> pd.DataFrame:
    """`detect_anomalies` of one frame at once, with the engine chosen for the job."""
    if method not in ("ewma", "robust"):
        raise ValueError(f"method must be 'ewma' or 'robust', got {method!r}")
    all_values = samples["value"].to_numpy(dtype="float64")
    finite_rows = np.flatnonzero(np.isfinite(all_values))
    if not len(finite_rows):
        return _empty_events()
    # The finite rows by series and time, as a stable sort by (service, kpi, ts) orders
    # them, sorted over integers (`_series_time_order`): a category's codes follow its
    # order (as sort_values does), strings are factorised sorted, times are their ticks.
    # Only the columns used are taken in that order, not the whole frame.
    ts_utc = pd.to_datetime(samples["ts"], utc=True)
    every_row = len(finite_rows) == len(all_values)  # the usual case: no gather needed

    def finite(array: np.ndarray) -> np.ndarray:
        return array if every_row else array[finite_rows]

    service_codes = finite(_sort_codes(samples["service"]))
    kpi_codes = finite(_sort_codes(samples["kpi"]))
    ticks = finite(ts_utc.array.asi8)
    local = _series_time_order(service_codes, kpi_codes, ticks)
    order = local if every_row else finite_rows[local]
    kpi_count = int(kpi_codes.max()) + 1
    series_key = service_codes[local].astype("int64") * kpi_count + kpi_codes[local]
    new_series = np.r_[True, series_key[1:] != series_key[:-1]]
    series_id = np.cumsum(new_series) - 1
    starts = np.flatnonzero(new_series)
    ends = np.r_[starts[1:], len(order)]

    def column(name: str) -> np.ndarray:
        return samples[name].to_numpy(dtype="float64")[order]

    values = all_values[order]
    season = None
    if SEASON_COLUMN in samples.columns:
        season = column(SEASON_COLUMN)
        season = np.where(np.isfinite(season) & (season > 0), season, 1.0)
    trials = column(TRIALS_COLUMN) if TRIALS_COLUMN in samples.columns else None
    band = None
    if all(name in samples.columns for name in BAND_COLUMNS):
        band = tuple(column(name) for name in BAND_COLUMNS)
    per_second = float(np.timedelta64(1, "s") / np.timedelta64(1, ts_utc.dt.unit))
    seconds = ticks[local] / per_second
    kpi_column = samples["kpi"]
    kpis = kpi_column.iloc[order[starts]].to_numpy()

    def floor_of(kpi: object) -> float:
        change = min_change
        if isinstance(change, Mapping):
            change = change.get(str(kpi), DEFAULT_MIN_CHANGE)
        return max(float(change) / z_threshold, RELATIVE_STDDEV_FLOOR)

    rows, z, expected, hold = [], [], [], []
    prepared = [
        _prepare_series(
            seconds[first:stop],
            values[first:stop],
            warmup=warmup,
            gap_factor=gap_factor,
            gap_edge_seconds=gap_edge_seconds,
            held_share=held_share,
            relative_floor=floor_of(kpi),
            season=None if season is None else season[first:stop],
            trials=None if trials is None else trials[first:stop],
        )
        for first, stop, kpi in zip(starts, ends, kpis, strict=True)
    ]
    if method == "ewma":  # every series' recursions together
        results = ewma_zscores_many([p.job for p in prepared], span, vectorised=vectorised)
    else:
        results = [
            robust_zscores(
                p.job.values,
                window=span,
                warmup=p.job.warmup,
                relative_floor=p.job.relative_floor,
                min_stddev=p.job.min_stddev,
            )
            for p in prepared
        ]
    for first, stop, one, result in zip(starts, ends, prepared, results, strict=True):
        scored = _finish_series(one, result, warmup, int(stop - first))
        rows.append(scored.rows + first)
        z.append(scored.z)
        expected.append(scored.expected)
        hold.append(scored.hold)
    scored_rows = np.concatenate(rows)
    scored_z = np.concatenate(z)
    if band is not None:  # within what the baseline showed at that time of day
        value = values[scored_rows]
        slack = 1e-9 * np.abs(value)  # the band went through a division and back
        seen = (value >= band[0][scored_rows] - slack) & (value <= band[1][scored_rows] + slack)
        scored_z = np.where(seen, 0.0, scored_z)
    found = find_events(
        scored_z,
        series_id[scored_rows],
        z_threshold=z_threshold,
        min_points=min_points,
        single_sample_z=single_sample_z,
        merge_gap=merge_gap,
        positions=scored_rows,
        hold=np.concatenate(hold),
    )
    if not len(found.first):
        return _empty_events()
    peak = scored_rows[found.peak]
    ts = samples["ts"]
    peak_z = scored_z[found.peak]

    def at(positions: np.ndarray) -> pd.Series:
        return ts.iloc[order[scored_rows[positions]]].reset_index(drop=True)

    peak_kpis = kpi_column.iloc[order[peak]].to_numpy()
    events = pd.DataFrame(
        {
            "service": samples["service"].iloc[order[peak]].to_numpy(),
            "kpi": peak_kpis,
            "start": at(found.first),
            "end": at(found.last),
            "peak_ts": at(found.peak),
            "peak_z": peak_z,
            "peak_value": values[peak],
            "expected_value": np.concatenate(expected)[found.peak],
            "direction": np.where(peak_z > 0, "spike", "dip"),
            "severity": _severity(peak_z, peak_kpis, severity_z, adverse),
            "points": found.points,
            "alarm_ts": at(found.alarm),
        }
    )
    events = events.sort_values(["start", "service", "kpi"], kind="stable")
    return events.reset_index(drop=True)[list(EVENT_COLUMNS)]
