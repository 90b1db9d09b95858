"""NAB scoring: how early and how cleanly a detector finds labelled windows.

The Numenta Anomaly Benchmark (Lavin & Ahmad, "Evaluating real-time anomaly detection
algorithms — the Numenta Anomaly Benchmark", ICMLA 2015; Ahmad et al., Neurocomputing 2017)
scores a detector's alarms on series whose anomalies were labelled as windows. This module
re-implements its scorer (`nab/sweeper.py` in github.com/numenta/NAB) as pure functions over
arrays, for one fixed detection threshold:

- **Probation.** The first min(⌊0.15 · rows⌋, 750) rows are the detector's learning period
  and are not scored at all.
- **Windows.** Inside a window of `width` rows ending at row `right`, a detection at row i
  is worth σ(y) / σ(−1) · tp_weight with y = −(right − i + 1) / width (−1 at the window's
  first row, ≈ 0 at its last) and the scaled sigmoid σ(y) = 2 / (1 + e^{5y}) − 1. Only the
  best, i.e. the earliest, detection of a window counts; a window with none costs
  fn_weight.
- **False positives.** A detection outside every window costs fp_weight · σ(y) (σ < 0 there)
  with y = (i − right_prev) / (width_prev − 1), measured from the end of the last window
  before it (so a late detection just after a window is nearly free), σ = −1 when y ≥ 3 or
  when no window precedes the detection.
- **Normalisation.** Raw scores are summed over the corpus and mapped to 0-100 between the
  "null" detector (never detects: −fn_weight per window) and the "perfect" detector (a
  detection on every window row, so the earliest scored row of each window counts):
  100 · (raw − null) / (perfect − null).

Detections are booleans per row: for an event detector, True at each event's first row.

**Profiles.** NAB scores every detector with three cost matrices (`config/profiles.json`):
"standard" (fp 0.11), "reward_low_FP_rate" (a false positive costs twice as much, 0.22) and
"reward_low_FN_rate" (a missed window costs 2 instead of 1); the true-positive weight is 1
in all three. Each profile's null and perfect bounds are computed with its own weights, so a
score is only comparable with scores under the same profile. `PROFILES` maps NAB's names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import pandas as pd

PROBATION_FRACTION = 0.15
# NAB caps probation at 15 % of 5000 rows.
PROBATION_MAX_ROWS = 750


@dataclass(frozen=True)
class CostProfile:
    """NAB's cost matrix: the weight of an early true positive, a false positive, a miss."""

    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0


# NAB's config/profiles.json (tnWeight, 1.0 in all three, is unused by its scorer).
STANDARD_PROFILE = CostProfile()
REWARD_LOW_FP_PROFILE = CostProfile(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0)
REWARD_LOW_FN_PROFILE = CostProfile(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0)
PROFILES: Mapping[str, CostProfile] = MappingProxyType(
    {
        "standard": STANDARD_PROFILE,
        "reward_low_FP_rate": REWARD_LOW_FP_PROFILE,
        "reward_low_FN_rate": REWARD_LOW_FN_PROFILE,
    }
)


class FileScore(NamedTuple):
    """One series' NAB score at one threshold, with what it is made of.

    `raw` is the detector's score; `null` and `perfect` are what the never-detecting and the
    always-first detectors score on the same file and windows (the normalisation bounds).
    """

    raw: float
    null: float
    perfect: float
    windows: int
    detected_windows: int
    false_positives: int


def scaled_sigmoid(relative_position: np.ndarray | float) -> np.ndarray:
    """NAB's 2 / (1 + e^{5y}) − 1: ≈ 0.987 at y = −1, 0 at y = 0, −1 from y = 3 on."""
    position = np.asarray(relative_position, dtype="float64")
    # 2·sigmoid(−5y) − 1 == −tanh(5y / 2), without overflow in exp for large |y|.
    return np.where(position >= 3.0, -1.0, -np.tanh(2.5 * position))


def probation_rows(row_count: int, fraction: float = PROBATION_FRACTION) -> int:
    """Rows at the start of a file that are not scored: min(⌊fraction · rows⌋, 750)."""
    return int(min(math.floor(fraction * row_count), fraction * 5000))


def _utc(moment: object) -> pd.Timestamp:
    """A window edge as a UTC timestamp; NAB's naive timestamps are read as UTC."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def window_bounds(
    timestamps: Sequence[pd.Timestamp] | pd.Series | np.ndarray,
    windows: Iterable[tuple[object, object]],
) -> list[tuple[int, int]]:
    """Row index (first, last) of each window, both inclusive, in order of start.

    Naive timestamps (rows or window edges) are read as UTC. NAB's windows begin and end on
    timestamps of the file; as in NAB, the first row with the window's start and the first
    row with its end are taken (a file may repeat a timestamp around a daylight-saving
    change). A window edge that falls between rows snaps inwards; a window without any row
    is dropped.
    """
    stamps = pd.DatetimeIndex(pd.to_datetime(pd.Series(timestamps), utc=True))
    bounds: list[tuple[int, int]] = []
    for start, end in windows:
        start_ts, end_ts = _utc(start), _utc(end)
        inside = np.flatnonzero((stamps >= start_ts) & (stamps <= end_ts))
        if not len(inside):
            continue
        exact_start = np.flatnonzero(stamps == start_ts)
        exact_end = np.flatnonzero(stamps == end_ts)
        first = int(exact_start[0]) if len(exact_start) else int(inside[0])
        last = int(exact_end[0]) if len(exact_end) else int(inside[-1])
        if last >= first:
            bounds.append((first, last))
    return sorted(bounds)


def row_weights(
    row_count: int, bounds: Sequence[tuple[int, int]], profile: CostProfile = STANDARD_PROFILE
) -> tuple[np.ndarray, np.ndarray]:
    """What a detection on each row would be worth, and the window each row belongs to.

    Returns (weight, window) with window = −1 outside every window: the weights of
    NAB's `Sweeper.calcSweepScore` (true-positive weight inside, negative false-positive
    cost outside).
    """
    max_tp = float(scaled_sigmoid(-1.0))
    rows = np.arange(row_count)
    weight = np.full(row_count, -profile.fp_weight)  # before the first window: σ = −1
    window = np.full(row_count, -1, dtype="int64")
    for index, (first, last) in enumerate(bounds):
        width = last - first + 1
        inside = rows[first : last + 1]
        position = -(last - inside + 1) / width
        weight[first : last + 1] = scaled_sigmoid(position) * profile.tp_weight / max_tp
        window[first : last + 1] = index
        following_start = bounds[index + 1][0] if index + 1 < len(bounds) else row_count
        after = rows[last + 1 : following_start]
        past = (after - last) / max(width - 1, 1)
        weight[last + 1 : following_start] = scaled_sigmoid(past) * profile.fp_weight
    return weight, window


def score_file(
    timestamps: Sequence[pd.Timestamp] | pd.Series | np.ndarray,
    detections: np.ndarray,
    windows: Iterable[tuple[object, object]],
    profile: CostProfile = STANDARD_PROFILE,
    probation_fraction: float = PROBATION_FRACTION,
) -> FileScore:
    """NAB score of one series: `detections[i]` is True when the detector alarms at row i."""
    detections = np.asarray(detections, dtype=bool)
    row_count = len(detections)
    if len(timestamps) != row_count:
        raise ValueError(f"{len(timestamps)} timestamps for {row_count} detections")
    bounds = window_bounds(timestamps, windows)
    weight, window = row_weights(row_count, bounds, profile)
    scored = np.arange(row_count) >= probation_rows(row_count, probation_fraction)
    # A window counts only through its rows after probation; one wholly in probation is
    # neither a miss nor a hit (as in NAB, whose probationary rows carry no window name).
    live_windows = sorted({int(w) for w in window[scored & (window >= 0)]})

    raw = 0.0
    perfect = 0.0
    detected = 0
    for index in live_windows:
        rows = scored & (window == index)
        perfect += float(weight[rows].max())
        hits = rows & detections
        if hits.any():
            raw += max(float(weight[hits].max()), -profile.fn_weight)
            detected += 1
        else:
            raw -= profile.fn_weight
    false_alarms = scored & detections & (window < 0)
    raw += float(weight[false_alarms].sum())
    null = -profile.fn_weight * len(live_windows)
    return FileScore(
        raw=raw,
        null=null,
        perfect=perfect,
        windows=len(live_windows),
        detected_windows=detected,
        false_positives=int(false_alarms.sum()),
    )


def normalised_score(scores: Iterable[FileScore]) -> float:
    """100 · (Σ raw − Σ null) / (Σ perfect − Σ null): 0 never detects, 100 detects first.

    NAB normalises the corpus total, not each file. Without any window the range is
    empty and the score is 0 (a detector cannot do better than never alarming there).
    """
    scores = list(scores)
    raw = sum(score.raw for score in scores)
    null = sum(score.null for score in scores)
    perfect = sum(score.perfect for score in scores)
    if perfect - null <= 0:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)
