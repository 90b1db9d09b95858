"""Change points: when a KPI's level moved, how sure we are of the minute, and from what to what.

A degradation, an unexpected drift or a cost step says *that* a day moved; the retrospective
must also say *when* it began: "latency p99 on checkout rose from 150 to 180 ms at 14:32 ±
3 min on day 2". `find_change_point` dates it from the samples alone (no store, no Dagster).
docs/methods/change-points.md has the measured accuracy.

**Model.** The deviation of each sample from its seasonal expectation,
`x_t = log(value_t / expected_t)` for a positive series (a multiplicative change is then a
shift of the mean) and `x_t = value_t − expected_t` otherwise, is piecewise constant plus
autocorrelated noise. Isolated spikes are first clipped to the rolling median (11 samples)
± 3 robust deviations, so a latency spike weighs like an ordinary sample.

**Cost.** A split of x[a:b] at k is scored by the standardised CUSUM, the Gaussian
likelihood-ratio statistic for one mean shift (Csörgő & Horváth 1997, §1.4):

    z_k = |mean(x[a:k]) − mean(x[k:b])| · √(n₁·n₂ / n) / σ_lr

σ_lr is the long-run standard deviation of the noise (a sum of n samples spreads by
√n·σ_lr when the noise is autocorrelated), estimated from sums of blocks of samples two
blocks apart with a robust scale, so a step or a slow drift does not inflate it
(`_long_run_sigma`). z is the split's strength in noise units.

**Search and penalty.** Seeded binary segmentation (Kovács et al. 2020): the series and
layers of half-overlapping intervals, each half as long as the layer above. Of the intervals
whose best split reaches `critical_z(n)`, the narrowest gives a change point and every
interval holding it is set aside (narrowest-over-threshold, Baranowski et al. 2019), so a
short excursion inside a long series is found as well as a step. Each change point is
then re-located between its neighbours and re-tested there; the weakest is dropped while
one fails. `critical_z(n)` is the 99 % quantile of the Darling–Erdős law for the maximum of
z over all splits of n samples of noise (Csörgő & Horváth 1997, Thm. A.4.2), plus
`CRITICAL_Z_MARGIN` for the error of an estimated σ_lr. In a sparse series (mostly 0) each
side of a split must hold 10 non-zero samples on average: a mean of a few rare events is
not Gaussian, and a chance burst would pass for a change.

**Confidence interval.** Bai (1994, 1997): for a shift δ in noise of long-run variance σ²,
(k̂ − k₀)·δ²/σ² is asymptotically distributed as the argmax of W(s) − |s|/2 (W a two-sided
Brownian motion). The onset's interval is k̂ ± ⌈c·σ²/δ²⌉ samples (at least one), c the
`confidence` quantile of |argmax| (11.03 at 95 %), cut at the neighbouring change points.

**Lasting.** Each side of a change is measured against the midpoint between the levels
before and after it: the change is lasting when the series had stayed on the before side
for at least `min_duration` (60 min) before the onset, or since the series began, and then
stayed on the after side for `min_duration`, or until the series ends. A 15-minute
incident is two changes, neither of them lasting: its start reverts, and its end only
returns to the level that held before.

**The change that matters** (`find_change_point`): among the lasting changes in the
adverse direction, inside `within`, the earliest at least half as large as the largest, so
a 3 % wobble of the day's level at midnight gives way to the +20 % step of that afternoon.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd

from tars_pipeline.errors import TarsUserError

Direction = Literal["up", "down"]
Scale = Literal["auto", "log", "linear"]

DEFAULT_MIN_SEGMENT = 5
DEFAULT_MIN_DURATION = pd.Timedelta(minutes=60)
DEFAULT_CONFIDENCE = 0.95
DEFAULT_NEAR_ZERO = 1e-9
DEFAULT_MIN_SHARE_OF_LARGEST = 0.5
# The Darling–Erdős level of the penalty.
FALSE_ALARM_RATE = 0.01
# σ_lr comes from a few hundred block sums (≈ 5-10 % error) and real noise is not Gaussian:
# at the bare Darling–Erdős value 1.2 % of null days, 2.1 % of null weeks and 3 % of
# heavy-tailed days had a change; with the margin 0.2 %, 0.4 % and 1 %
# (docs/methods/change-points.md).
CRITICAL_Z_MARGIN = 0.5
SPIKE_WINDOW = 11  # samples of the rolling median a spike is clipped to
SPIKE_CLIP = 3.0  # robust deviations from it
# A series whose deviations from the rolling median are exactly 0 this often is held (a
# gauge updated hourly) or sparse (an error rate that is mostly 0): its spikes are signal.
HELD_ZERO_SHARE = 0.25
# Non-zero samples a side of a split in a sparse series must hold on average.
SPARSE_EVENTS = 10
MAX_CHANGES = 64
_MAD_TO_SIGMA = 1.4826
# E[min(Z², 9)] = 1 − 6·φ(3) + 16·Φ(−3) for a standard normal Z: the second moment of a
# deviation clipped at 3σ, which makes the clipped scale in `_robust_scale` unbiased.
_PHI_MINUS_3 = 0.0013498980316300933  # Φ(−3) = scipy.special.ndtr(-3.0), as a literal
_CLIPPED_SECOND_MOMENT = float(
    1.0 - 6.0 * math.exp(-4.5) / math.sqrt(2.0 * math.pi) + 16.0 * _PHI_MINUS_3
)
_UNBOUNDED = 1 << 30


@dataclass(frozen=True)
class ChangePoint:
    """One level change of a KPI series, with the numbers that produced it."""

    onset: pd.Timestamp  # UTC; the first sample at the new level
    onset_low: pd.Timestamp  # the onset's confidence interval (level `confidence`)
    onset_high: pd.Timestamp
    confidence: float
    before: float  # robust level before / after, in the KPI's units, at the onset's time
    after: float
    change_pct: float | None  # None when |before| < near_zero
    direction: Direction
    score: float  # standardised CUSUM z of the split between its neighbours (noise units)
    method: str  # "cusum_sbs_log" or "cusum_sbs_linear": the scale it was segmented on
    held_since: pd.Timestamp  # first sample of the unbroken run on the before side
    held_until: pd.Timestamp  # first sample back on the before side, else the last sample
    reverted: bool  # the series came back to the before side before it ended
    lasting: bool  # both sides held min_duration (or reach the series' ends)

    def as_record(self) -> dict:
        """onset, onset_low, onset_high (ISO-8601, UTC), onset_minus_minutes /
        onset_plus_minutes (the interval's half-widths), confidence, before, after,
        change_pct (null when before is ~0), direction, score, method, held_since,
        held_until, held_minutes (onset to held_until), reverted, lasting."""
        return {
            "onset": self.onset.isoformat(),
            "onset_low": self.onset_low.isoformat(),
            "onset_high": self.onset_high.isoformat(),
            "onset_minus_minutes": _minutes(self.onset - self.onset_low),
            "onset_plus_minutes": _minutes(self.onset_high - self.onset),
            "confidence": float(self.confidence),
            "before": float(self.before),
            "after": float(self.after),
            "change_pct": None if self.change_pct is None else float(self.change_pct),
            "direction": self.direction,
            "score": float(self.score),
            "method": self.method,
            "held_since": self.held_since.isoformat(),
            "held_until": self.held_until.isoformat(),
            "held_minutes": _minutes(self.held_until - self.onset),
            "reverted": bool(self.reverted),
            "lasting": bool(self.lasting),
        }


def find_change_point(
    ts: np.ndarray,
    values: np.ndarray,
    *,
    expected: np.ndarray | None = None,
    direction: Direction | None = None,
    within: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    min_change_pct: float | None = None,
    min_share_of_largest: float = DEFAULT_MIN_SHARE_OF_LARGEST,
    min_segment: int = DEFAULT_MIN_SEGMENT,
    min_duration: pd.Timedelta = DEFAULT_MIN_DURATION,
    confidence: float = DEFAULT_CONFIDENCE,
    scale: Scale = "auto",
    rate_window: pd.Timedelta | None = None,
    near_zero: float = DEFAULT_NEAR_ZERO,
) -> ChangePoint | None:
    """The change that matters for a regression: the earliest significant, lasting change
    in `direction` (if given) whose onset lies in `within` (if given, both ends included),
    whose |change_pct| reaches `min_change_pct` (if given; a change from ~0 always does),
    and whose size is at least `min_share_of_largest` of the largest such change. None when
    there is none, or the series is too short to judge.

    `ts`: datetime64 (UTC) or tz-aware timestamps; `values` and `expected` (the seasonal
    expectation of each sample, e.g. GA day's same-hour level) floats of the same length.
    Non-finite samples are dropped and the rest sorted by time. Every significant change,
    lasting or not, and the other arguments: `find_change_points`.

    On a busy series a 3 % wobble of the day's level at midnight is significant; the share
    of the largest (½: the size is |log(after / before)| on the log scale, |after − before|
    on the linear one) passes over it to the +20 % step that came later that day, and
    `min_change_pct` (e.g. half the KPI's drift threshold) over one that came alone.
    """
    if direction is not None and direction not in ("up", "down"):
        raise TarsUserError(
            f"direction must be 'up', 'down' or None, not {direction!r}",
            where="direction",
            remedy="pass the KPI's adverse direction: 'up' for lower_is_better",
        )
    if min_change_pct is not None and not (_is_number(min_change_pct) and min_change_pct >= 0):
        raise TarsUserError(
            f"min_change_pct must be a percentage of 0 or more, not {min_change_pct!r}",
            where="min_change_pct",
            remedy="pass e.g. half the KPI's threshold_pct, or None for no floor",
        )
    if not (_is_number(min_share_of_largest) and 0.0 <= min_share_of_largest <= 1.0):
        raise TarsUserError(
            f"min_share_of_largest must lie in [0, 1], not {min_share_of_largest!r}",
            where="min_share_of_largest",
            remedy="pass 0.5 (the default), or 0 for the earliest change whatever its size",
        )
    low, high = _window(within)
    changes = find_change_points(
        ts,
        values,
        expected=expected,
        min_segment=min_segment,
        min_duration=min_duration,
        confidence=confidence,
        scale=scale,
        rate_window=rate_window,
        near_zero=near_zero,
    )
    eligible = [
        change
        for change in changes
        if change.lasting
        and low <= change.onset <= high
        and (direction is None or change.direction == direction)
        and (
            min_change_pct is None
            or change.change_pct is None
            or abs(change.change_pct) >= min_change_pct
        )
    ]
    if not eligible:
        return None
    largest = max(_size(change) for change in eligible)
    return next(c for c in eligible if _size(c) >= min_share_of_largest * largest)


def find_change_points(
    ts: np.ndarray,
    values: np.ndarray,
    *,
    expected: np.ndarray | None = None,
    min_segment: int = DEFAULT_MIN_SEGMENT,
    min_duration: pd.Timedelta = DEFAULT_MIN_DURATION,
    confidence: float = DEFAULT_CONFIDENCE,
    scale: Scale = "auto",
    rate_window: pd.Timedelta | None = None,
    near_zero: float = DEFAULT_NEAR_ZERO,
) -> list[ChangePoint]:
    """Every significant level change of the series, in time order, lasting or not. Empty
    for fewer than 2·min_segment samples (or updates of a held gauge), or a constant series.

    `min_segment`: the fewest samples a level may hold (≥ 2). `min_duration`: how long each
    side must hold for the change to be lasting. `scale`: "log" segments
    log(value / expected) (every value and expectation positive), "linear"
    value − expected, "auto" log when all are positive. `rate_window`: the window the
    source averages over (`rate(x[5m])` spreads a step over 5 minutes); the interval then
    reaches at least that far before the onset. `near_zero`: |before| below it has no
    change_pct.
    """
    _check_settings(min_segment, min_duration, confidence, scale, rate_window)
    times, raw, seasonal = _prepare(ts, values, expected)
    use_log = _use_log(raw, seasonal, scale)
    held_run = _held_run(raw)
    if len(raw) < 2 * min_segment or len(raw) / held_run < 2 * min_segment:
        return []
    deviation = _clip_spikes(_deviation(raw, seasonal, use_log))
    centre = float(np.median(deviation))
    centred = deviation - centre
    sigma = _long_run_sigma(centred, held_run, min_segment)
    if not sigma > 0.0:
        return []
    cumulative = np.concatenate(([0.0], np.cumsum(centred)))
    shortest = _sparse_min_segment(raw, min_segment)
    if len(centred) < 2 * shortest:  # sparse samples: too few for two levels of that length
        return []
    splits = _segment(cumulative, sigma, shortest)
    bounds = np.array([0, *splits, len(centred)])
    levels = np.diff(cumulative[bounds]) / np.diff(bounds)
    half_width_factor = argmax_quantile(confidence)
    duration = pd.Timedelta(min_duration)
    changes: list[ChangePoint] = []
    for number, split in enumerate(splits, start=1):
        left, right = int(bounds[number - 1]), int(bounds[number + 1])
        _, score = _best_split(cumulative, left, right, shortest, sigma, at=split)
        shift = float(levels[number] - levels[number - 1])
        half_width = _half_width(half_width_factor, sigma, shift)
        onset = _timestamp(times[split])
        onset_low = _timestamp(times[max(split - half_width, left + 1)])
        if rate_window is not None:
            onset_low = min(onset_low, onset - pd.Timedelta(rate_window))
        since, back = _held_segments(levels, number, shift)
        held_since = _timestamp(times[bounds[since]])
        held_until = _timestamp(times[bounds[back]] if back is not None else times[-1])
        established = since == 0 or onset - held_since >= duration
        before, after = _levels_in_units(
            float(levels[number - 1]) + centre,
            float(levels[number]) + centre,
            seasonal,
            split,
            min_segment,
            use_log,
        )
        changes.append(
            ChangePoint(
                onset=onset,
                onset_low=onset_low,
                onset_high=_timestamp(times[min(split + half_width, right - 1)]),
                confidence=float(confidence),
                before=before,
                after=after,
                change_pct=_change_pct(before, after, near_zero),
                direction="up" if shift > 0 else "down",
                score=score,
                method=f"cusum_sbs_{'log' if use_log else 'linear'}",
                held_since=held_since,
                held_until=held_until,
                reverted=back is not None,
                lasting=established and (back is None or held_until - onset >= duration),
            )
        )
    return changes


# --------------------------------------------------------------------------- statistics


@cache
def argmax_quantile(confidence: float) -> float:
    """c with P(|V| ≤ c) = confidence, V = argmax_s W(s) − |s|/2 (W a two-sided standard
    Brownian motion): Bai's (1997) change-date interval k̂ ± c·σ²/δ². The CDF of V is
    Yao's (1987) closed form, G(x) = 1 + √(x/2π)·e^(−x/8) − ½(x + 5)·Φ(−√x/2)
    + (3/2)·e^x·Φ(−3√x/2) for x > 0, and V is symmetric, so P(|V| ≤ x) = 2G(x) − 1."""

    from scipy import optimize, special  # imported when used: cheap process start-up

    def coverage(x: float) -> float:
        root = math.sqrt(x)
        cdf = (
            1.0
            + math.sqrt(x / (2.0 * math.pi)) * math.exp(-x / 8.0)
            - 0.5 * (x + 5.0) * special.ndtr(-root / 2.0)
            + 1.5 * math.exp(x + special.log_ndtr(-1.5 * root))
        )
        return 2.0 * cdf - 1.0 - confidence

    return float(optimize.brentq(coverage, 1e-9, 2000.0, xtol=1e-10))


def critical_z(length: int) -> float:
    """The strength a split of a series of `length` samples must reach: the
    1 − FALSE_ALARM_RATE quantile of max_k z_k over noise, from the Darling–Erdős law
    a·max z − b → Gumbel, a = √(2 log log n), b = 2 log log n + ½ log log log n − ½ log π
    (Csörgő & Horváth 1997, Thm. A.4.2), plus CRITICAL_Z_MARGIN. ≈ 5.2 for 300 to 11,500
    samples."""
    n = max(float(length), 20.0)  # log log log n needs n > e^e
    loglog = math.log(math.log(n))
    a = math.sqrt(2.0 * loglog)
    b = 2.0 * loglog + 0.5 * math.log(loglog) - 0.5 * math.log(math.pi)
    gumbel = -math.log(-math.log(1.0 - FALSE_ALARM_RATE))
    return (gumbel + b) / a + CRITICAL_Z_MARGIN


def _best_split(
    cumulative: np.ndarray,
    start: int,
    end: int,
    min_segment: int,
    sigma: float,
    *,
    at: int | None = None,
) -> tuple[int, float]:
    """The split k of x[start:end] with the largest z, both sides at least min_segment
    long (or z at `at`); `cumulative` is [0, cumsum(x)]."""
    length = end - start
    if at is not None:
        splits = np.array([at])
    else:
        splits = np.arange(start + min_segment, end - min_segment + 1)
    if length < 2 * min_segment or len(splits) == 0:
        return start, 0.0
    left_count = (splits - start).astype(float)
    right_count = (end - splits).astype(float)
    left_sum = cumulative[splits] - cumulative[start]
    right_sum = cumulative[end] - cumulative[splits]
    shift = left_sum / left_count - right_sum / right_count
    z = np.abs(shift) * np.sqrt(left_count * right_count / length) / sigma
    best = int(np.argmax(z))
    return int(splits[best]), float(z[best])


def _seeded_intervals(length: int, shortest: int) -> list[tuple[np.ndarray, int]]:
    """(starts, interval length) per layer: the whole series, then layers of intervals
    half as long as the layer above, overlapping by half, down to `shortest`."""
    layers = [(np.array([0]), length)]
    size = length
    while size // 2 >= shortest:
        size //= 2
        count = 2 * math.ceil(length / size) - 1
        starts = np.unique(np.round(np.linspace(0, length - size, count)).astype(int))
        layers.append((starts, size))
    return layers


def _interval_splits(
    cumulative: np.ndarray, starts: np.ndarray, size: int, min_segment: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each interval [start, start + size) of one layer: its best split and its z."""
    offsets = np.arange(min_segment, size - min_segment + 1)
    splits = starts[:, None] + offsets[None, :]
    left_count = offsets.astype(float)
    right_count = size - left_count
    left_sum = cumulative[splits] - cumulative[starts][:, None]
    total = (cumulative[starts + size] - cumulative[starts])[:, None]
    shift = left_sum / left_count - (total - left_sum) / right_count
    z = np.abs(shift) * (np.sqrt(left_count * right_count / size) / sigma)
    best = np.argmax(z, axis=1)
    rows = np.arange(len(starts))
    return splits[rows, best], z[rows, best]


def _segment(cumulative: np.ndarray, sigma: float, min_segment: int) -> list[int]:
    """The change points (sample indices, sorted): seeded intervals, narrowest over the
    threshold first, then each re-located and re-tested between its neighbours."""
    length = len(cumulative) - 1
    threshold = critical_z(length)
    candidates: list[tuple[int, int, int]] = []
    for starts, size in _seeded_intervals(length, 4 * min_segment):
        splits, z = _interval_splits(cumulative, starts, size, min_segment, sigma)
        strong = z >= threshold
        candidates.extend(
            (int(start), int(start) + size, int(split))
            for start, split in zip(starts[strong], splits[strong], strict=True)
        )
    candidates.sort(key=lambda candidate: candidate[1] - candidate[0])
    chosen: list[int] = []
    for start, end, split in candidates:
        if len(chosen) == MAX_CHANGES:
            break
        if any(start < taken < end or abs(split - taken) < min_segment for taken in chosen):
            continue
        chosen.append(split)
    chosen.sort()
    while chosen:
        margins = []
        for number in range(len(chosen)):
            left = chosen[number - 1] if number else 0
            right = chosen[number + 1] if number + 1 < len(chosen) else length
            chosen[number], z = _best_split(cumulative, left, right, min_segment, sigma)
            margins.append(z - threshold)
        weakest = int(np.argmin(margins))
        if margins[weakest] >= 0.0:
            break
        del chosen[weakest]
    return chosen


def _long_run_sigma(centred: np.ndarray, held_run: float, min_segment: int) -> float:
    """σ_lr from sums of b consecutive samples: D_t = S[t+2b, t+3b) − S[t, t+b) has
    variance 2·b·σ_lr² once b exceeds the noise's memory; the block skipped between the two
    keeps their shared memory out. A step touches 3b of the n − 3b differences and a slow
    drift shifts their median (removed), so the robust scale of D ignores both. b is n/40
    within [10, 60] samples, and at least two updates of a held gauge."""
    length = len(centred)
    block = int(np.clip(length // 40, 10, 60))
    block = max(block, min_segment, math.ceil(2 * held_run))
    block = min(block, max(1, length // 8))
    cumulative = np.concatenate(([0.0], np.cumsum(centred)))
    sums = cumulative[block:] - cumulative[:-block]
    differences = sums[2 * block :] - sums[: -2 * block]
    if len(differences) < 4:
        differences, block = np.diff(centred), 1
    return _robust_scale(differences) / math.sqrt(2.0 * block)


def _robust_scale(values: np.ndarray) -> float:
    """A Huber-type scale: 1.4826·MAD, then the root mean square of the deviations from
    the median clipped at 3 of it (more efficient than the MAD, as robust to a few
    outliers). The plain root mean square when more than half the deviations are 0."""
    deviations = values - np.median(values)
    mad_sigma = _MAD_TO_SIGMA * float(np.median(np.abs(deviations)))
    if mad_sigma <= 0.0:
        return float(np.sqrt(np.mean(deviations**2)))
    clipped = np.clip(deviations, -3.0 * mad_sigma, 3.0 * mad_sigma)
    return float(np.sqrt(np.mean(clipped**2) / _CLIPPED_SECOND_MOMENT))


def _half_width(factor: float, sigma: float, shift: float) -> int:
    """Bai's interval half-width in samples, ⌈c·σ²/δ²⌉, at least 1."""
    width = factor * (sigma / shift) ** 2 if shift != 0.0 else math.inf
    return int(min(math.ceil(width), _UNBOUNDED)) if math.isfinite(width) else _UNBOUNDED


def _held_segments(levels: np.ndarray, number: int, shift: float) -> tuple[int, int | None]:
    """How long each side of change `number` (between segments number − 1 and number)
    held, against the midpoint of their levels: the first segment of the unbroken run on
    the before side up to the change, and the first later segment back on that side (None
    when the series never came back)."""
    midpoint = levels[number - 1] + shift / 2.0
    before_side = (levels - midpoint) * np.sign(shift) <= 0.0
    later = np.flatnonzero(before_side[number + 1 :])
    back = None if len(later) == 0 else number + 1 + int(later[0])
    earlier = np.flatnonzero(~before_side[: number - 1])
    since = 0 if len(earlier) == 0 else int(earlier[-1]) + 1
    return since, back


# --------------------------------------------------------------------------- the series


def _check_settings(
    min_segment: int,
    min_duration: pd.Timedelta,
    confidence: float,
    scale: Scale,
    rate_window: pd.Timedelta | None,
) -> None:
    if scale not in ("auto", "log", "linear"):
        raise TarsUserError(
            f"scale must be 'auto', 'log' or 'linear', not {scale!r}",
            where="scale",
            remedy="pass 'auto' unless you know the series' noise",
        )
    if isinstance(min_segment, bool) or not isinstance(min_segment, int | np.integer):
        raise TarsUserError(
            f"min_segment must be an integer, not {min_segment!r}",
            where="min_segment",
            remedy="pass the fewest samples a level may hold, e.g. 5",
        )
    if min_segment < 2:
        raise TarsUserError(
            f"min_segment must be at least 2, not {min_segment}",
            where="min_segment",
            remedy="a level needs two samples to have a mean and a spread; pass e.g. 5",
        )
    if not (_is_number(confidence) and 0.0 < confidence < 1.0):
        raise TarsUserError(
            f"confidence must lie strictly between 0 and 1, not {confidence!r}",
            where="confidence",
            remedy="pass e.g. 0.95 for a 95 % interval",
        )
    _check_duration(min_duration, "min_duration", "pd.Timedelta(minutes=60)")
    if rate_window is not None:
        _check_duration(rate_window, "rate_window", "pd.Timedelta(minutes=5) for rate(x[5m])")


def _is_number(value: object) -> bool:
    return isinstance(value, float | int | np.floating | np.integer) and not isinstance(value, bool)


def _check_duration(value: object, where: str, example: str) -> None:
    try:
        duration = pd.Timedelta(value)
    except (TypeError, ValueError) as error:
        raise TarsUserError(
            f"{where} must be a duration ({error})",
            where=where,
            remedy=f"pass a pandas Timedelta, e.g. {example}",
        ) from error
    if pd.isna(duration) or duration < pd.Timedelta(0):
        raise TarsUserError(
            f"{where} must be a duration of 0 or more, not {value!r}",
            where=where,
            remedy=f"pass a pandas Timedelta, e.g. {example}",
        )


def _prepare(
    ts: np.ndarray, values: np.ndarray, expected: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(ts as datetime64[ns] UTC, values, expected): samples with a non-finite value,
    expectation or time dropped, the rest sorted by time (stable)."""
    times = _utc_nanoseconds(ts)
    raw = _float_array(values, "values")
    if len(raw) != len(times):
        raise TarsUserError(
            f"values has {len(raw)} samples but ts has {len(times)}",
            where="values",
            remedy="pass one value per timestamp",
        )
    keep = np.isfinite(raw) & ~np.isnat(times)
    seasonal = None
    if expected is not None:
        seasonal = _float_array(expected, "expected")
        if len(seasonal) != len(times):
            raise TarsUserError(
                f"expected has {len(seasonal)} samples but ts has {len(times)}",
                where="expected",
                remedy="pass one expectation per timestamp, or None",
            )
        keep &= np.isfinite(seasonal)
    order = np.argsort(times[keep], kind="stable")
    times, raw = times[keep][order], raw[keep][order]
    if seasonal is not None:
        seasonal = seasonal[keep][order]
    return times, raw, seasonal


def _utc_nanoseconds(ts: np.ndarray) -> np.ndarray:
    try:
        with warnings.catch_warnings():  # strings are parsed one by one: say so only on failure
            warnings.simplefilter("ignore", UserWarning)
            index = pd.DatetimeIndex(pd.to_datetime(np.asarray(ts).ravel(), utc=True))
    except (TypeError, ValueError) as error:
        raise TarsUserError(
            f"ts could not be read as timestamps ({error})",
            where="ts",
            remedy="pass datetime64 values in UTC or timezone-aware pandas Timestamps",
        ) from error
    return index.tz_convert(None).as_unit("ns").to_numpy()


def _float_array(values: np.ndarray, where: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as error:
        raise TarsUserError(
            f"{where} must be numbers ({error})",
            where=where,
            remedy=f"pass {where} as an array of floats (NaN for a missing sample)",
        ) from error


def _use_log(raw: np.ndarray, seasonal: np.ndarray | None, scale: Scale) -> bool:
    positive = bool(np.all(raw > 0.0)) and (seasonal is None or bool(np.all(seasonal > 0.0)))
    if scale == "log" and not positive:
        raise TarsUserError(
            "scale='log' needs every value and expectation to be positive",
            where="scale",
            remedy="pass scale='linear' (or 'auto') for a series that reaches 0",
        )
    return scale == "log" or (scale == "auto" and positive)


def _deviation(raw: np.ndarray, seasonal: np.ndarray | None, use_log: bool) -> np.ndarray:
    if use_log:
        deviation = np.log(raw)
        return deviation if seasonal is None else deviation - np.log(seasonal)
    return raw if seasonal is None else raw - seasonal


def _clip_spikes(deviation: np.ndarray) -> np.ndarray:
    """Each sample clipped to its rolling median ± SPIKE_CLIP robust deviations; a held or
    sparse series (its changes are single samples far from the median) is left alone."""
    local = (
        pd.Series(deviation).rolling(SPIKE_WINDOW, center=True, min_periods=1).median()
    ).to_numpy()
    residual = np.abs(deviation - local)
    if np.mean(residual == 0.0) >= HELD_ZERO_SHARE:
        return deviation
    spread = SPIKE_CLIP * _MAD_TO_SIGMA * float(np.median(residual))
    return np.clip(deviation, local - spread, local + spread)


def _held_run(raw: np.ndarray) -> float:
    """Samples per run of one value when the series is held (at least half its samples
    repeat the previous one: a gauge updated hourly), else 1."""
    if len(raw) < 2:
        return 1.0
    repeats = raw[1:] == raw[:-1]
    if np.mean(repeats) < 0.5:
        return 1.0
    return len(raw) / (1.0 + float(np.count_nonzero(~repeats)))


def _sparse_min_segment(raw: np.ndarray, min_segment: int) -> int:
    """min_segment, raised for a sparse series (more than half its samples 0) until each
    side of a split holds SPARSE_EVENTS non-zero samples on average: a mean of a few
    rare events is far from Gaussian, and a chance burst of them would pass for a change."""
    nonzero_share = float(np.mean(raw != 0.0))
    if nonzero_share >= 0.5 or nonzero_share == 0.0:
        return min_segment
    return max(min_segment, math.ceil(SPARSE_EVENTS / nonzero_share))


def _levels_in_units(
    level_before: float,
    level_after: float,
    seasonal: np.ndarray | None,
    split: int,
    min_segment: int,
    use_log: bool,
) -> tuple[float, float]:
    """The two segment levels as KPI values at the onset's time: the expectation there
    (median over min_segment samples each side; 1 or 0 without one) × exp(level), or
    + level."""
    if seasonal is None:
        anchor = 1.0 if use_log else 0.0
    else:
        anchor = float(np.median(seasonal[max(0, split - min_segment) : split + min_segment]))
    if use_log:
        return anchor * math.exp(level_before), anchor * math.exp(level_after)
    return anchor + level_before, anchor + level_after


def _size(change: ChangePoint) -> float:
    """The change's size on the scale it was segmented on."""
    if change.method.endswith("_log"):
        return abs(math.log(change.after / change.before))
    return abs(change.after - change.before)


def _change_pct(before: float, after: float, near_zero: float) -> float | None:
    if abs(before) < near_zero:
        return None
    return (after - before) / abs(before) * 100.0


def _window(
    within: tuple[pd.Timestamp, pd.Timestamp] | None,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    if within is None:
        return pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    try:
        low, high = (_utc(moment) for moment in within)
    except (TypeError, ValueError) as error:
        raise TarsUserError(
            f"within must be two timestamps ({error})",
            where="within",
            remedy="pass (start, end) as timezone-aware pandas Timestamps, or None",
        ) from error
    if low > high:
        raise TarsUserError(
            f"within starts after it ends ({low} > {high})",
            where="within",
            remedy="pass (start, end) with start ≤ end",
        )
    return low, high


def _utc(moment: object) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    if pd.isna(stamp):
        raise ValueError("NaT is not a time")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _timestamp(value: np.datetime64) -> pd.Timestamp:
    return pd.Timestamp(value).tz_localize("UTC")


def _minutes(delta: pd.Timedelta) -> float:
    return delta.total_seconds() / 60.0
