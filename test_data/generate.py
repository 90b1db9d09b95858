"""Generate the shipped test data: release v1.0.1's GA week as an offline metric snapshot.

Why synthetic data: SPEC §5 requires that a fresh clone reproduces the seed's "Real-World
Example" end to end (availability 99.95 %, a high P99 latency regression on Day 2, a medium
error-rate regression on Day 4, CPU +15.7 %, volatile memory, about $336/day of cost). No real
production week has exactly those numbers, so this script builds one: per-minute series that
look like production (a daily traffic cycle, latency and CPU that follow load, a memory
sawtooth, bounded noise, a few short incidents) and whose *daily means* are solved for
exactly, so every number downstream is known in advance and tests can assert it. The noise is
shaped so that an EWMA z-score detector (span 60, |z| >= 3) reports the injected incidents and
essentially nothing else: the anomaly list in the retrospective is part of the story too.

Deterministic by construction: one fixed seed, one random stream per series (so adding a
series never reshuffles the others), and DuckDB writing single-threaded so the Parquet bytes
repeat. Run it again after changing a number here and commit its output.

Usage: python test_data/generate.py [--out DIR]   (default: test_data/snapshot)
       python test_data/generate.py --openmetrics FILE [--shift-days N]

The same week also comes out as raw Prometheus series in OpenMetrics text (`--openmetrics`,
see `write_openmetrics`): request counters, a latency histogram, CPU counters, memory and
cost gauges, from which the default PromQL catalog gives back the snapshot's values. That
file is ~85 MB, so it is not committed: tests write it on the fly and load it into a real
Prometheus with `promtool tsdb create-blocks-from openmetrics`.

Output, the offline snapshot format read by the snapshot metric source:
    <out>/<release>/YYYY-MM-DD.parquet   one file per local calendar day of the release,
        columns service VARCHAR, kpi VARCHAR, ts TIMESTAMPTZ (UTC), value DOUBLE,
        sorted by service, kpi, ts
    <out>/<release>/manifest.json        what the files hold (release, timezone, step, ...)
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from tars_pipeline.config import Release, default_kpis

SEED = 20260303
"""The one seed; each series draws from its own stream, see `series_rng`."""

RELEASE = Release(
    name="v1.0.1",
    ga_date=dt.date(2026, 3, 3),  # a Tuesday; US DST starts on Day 5 (Sunday 2026-03-08)
    timezone="America/New_York",
    window_days=7,
)
STEP_SECONDS = 60
SERVICES: tuple[str, ...] = ("api-gateway", "checkout", "search")
KPIS = {kpi.name: kpi for kpi in default_kpis()}
DEFAULT_OUT = Path(__file__).resolve().parent / "snapshot"
MANIFEST_FORMAT = "tars-snapshot"
MANIFEST_FORMAT_VERSION = 1

# Values are rounded to what a dashboard would show; this also keeps the snapshot small.
DECIMALS_BY_UNIT = {"%": 4, "ms": 2, "req/s": 2, "USD/h": 4}

# --- The story (SPEC §5): exact daily means, Day 0 .. Day 7 -----------------------------------

# api-gateway: availability is the success (99.95 % vs the 99.9 % target) ...
GATEWAY_ERROR_RATE_PCT = 0.05
# ... p99 latency is the high-severity regression: +20 % on Day 2, resolved from Day 3 on.
GATEWAY_LATENCY_P99_MS = (150.0, 151.0, 180.0, 154.0, 152.0, 151.0, 150.5, 151.5)
# p95 and p50 move with it on Day 2, but stay under the 10 % drift threshold.
GATEWAY_LATENCY_P95_MS = (110.0, 110.4, 118.8, 111.3, 110.7, 110.3, 110.2, 110.6)  # Day 2 +8 %
GATEWAY_LATENCY_P50_MS = (45.0, 45.09, 46.35, 45.27, 45.14, 45.05, 45.0, 45.09)  # Day 2 +3 %
# CPU creeps up with traffic: +15.7 % by Day 7, an unexpected drift, not a regression.
GATEWAY_CPU_PCT = (45.2, 46.3, 47.5, 48.5, 49.6, 50.6, 51.4, 52.3)
GATEWAY_THROUGHPUT_DAY0_RPS = 850.0
GATEWAY_THROUGHPUT_GROWTH_PCT = (0.0, 2.0, 4.0, 5.5, 7.0, 8.5, 10.0, 12.0)

# checkout: the medium-severity error-rate regression on Day 4, tailing off on Day 5.
CHECKOUT_ERROR_RATE_PCT = (0.05, 0.05, 0.051, 0.049, 0.08, 0.06, 0.05, 0.05)

# search: memory that swings day to day (±18 %): volatile, an unexpected drift.
SEARCH_MEMORY_DAY0_PCT = 58.0
SEARCH_MEMORY_DRIFT_PCT = (0.0, 12.0, -14.0, 18.0, -16.0, 15.0, -17.0, 11.0)
SEARCH_ERROR_RATE_PCT = 0.02

# Cost: dollars per local day summed over every service and resource type.
# Day 0 $300, then up to $350; the Day 1..7 average is $336, +12 % over GA day.
DAILY_COST_USD = (300.0, 318.0, 326.0, 332.0, 338.0, 342.0, 346.0, 350.0)
COST_SHARE_BY_SERVICE_PCT = {"api-gateway": 50, "checkout": 30, "search": 20}
COST_SHARE_BY_RESOURCE_PCT = {"compute": 60, "memory": 20, "storage": 12, "network": 8}

# Every other series is flat: its Day 0 mean, and day-to-day wobble well inside the 10 %
# drift threshold so that it produces no finding.
FLAT_DAY0_MEANS: dict[tuple[str, str], float] = {
    ("api-gateway", "memory_utilization"): 62.0,
    ("checkout", "throughput"): 300.0,
    ("checkout", "latency_p50"): 38.0,
    ("checkout", "latency_p95"): 82.0,
    ("checkout", "latency_p99"): 120.0,
    ("checkout", "cpu_utilization"): 38.0,
    ("checkout", "memory_utilization"): 55.0,
    ("search", "throughput"): 400.0,
    ("search", "latency_p50"): 24.0,
    ("search", "latency_p95"): 58.0,
    ("search", "latency_p99"): 95.0,
    ("search", "cpu_utilization"): 30.0,  # low utilisation: the right-sizing hint
}
FLAT_WOBBLE_PCT = 1.2


@dataclass(frozen=True)
class Incident:
    """A short excursion that the EWMA anomaly detector should report.

    Around the peak the series blends from its normal value to `peak_value` and back
    (sine-squared ramps), the way a latency spike or an error burst looks on a dashboard.
    """

    service: str
    kpi: str
    day: int
    peak_local: dt.time
    rise_minutes: int
    decay_minutes: int
    peak_value: float


INCIDENTS: tuple[Incident, ...] = (
    # Day 2: the ~20-minute p99 spike that comes with the latency regression.
    Incident("api-gateway", "latency_p99", 2, dt.time(14, 0), 6, 14, 420.0),
    Incident("api-gateway", "latency_p95", 2, dt.time(14, 0), 6, 14, 210.0),
    Incident("api-gateway", "latency_p50", 2, dt.time(14, 0), 6, 14, 62.0),
    # Day 4: a ~15-minute checkout error burst on top of the elevated error rate.
    Incident("checkout", "error_rate", 4, dt.time(11, 20), 5, 10, 0.5),
    # Day 5: one mild ~10-minute CPU spike.
    Incident("api-gateway", "cpu_utilization", 5, dt.time(16, 30), 3, 7, 76.0),
)


@dataclass(frozen=True)
class Shape:
    """How a KPI moves within a day, relative to its daily level.

    Why these ratios: an EWMA z-score detector (span 60, |z| >= 3) must report the incidents
    and nothing else. It trails a smooth trend by about span/2 samples, so a trend that is
    neither much smaller nor much larger than the noise inflates |z| past 3 by itself: the
    load swing is kept small against the noise for latency, CPU and cost, and large for
    throughput (where the detector's variance absorbs the lag).
    """

    load_amplitude: float
    """Relative swing with the daily traffic cycle (+ at the 14:00 peak, - at 04:00)."""
    noise_sigma: float
    """Relative standard deviation of the per-minute noise (bounded at ±NOISE_BOUND_SIGMA σ)."""
    sawtooth_amplitude: float = 0.0
    """Relative amplitude of the slow rise-and-release of memory between restarts."""


SHAPES: dict[str, Shape] = {
    "throughput": Shape(load_amplitude=0.35, noise_sigma=0.012),
    "latency_p50": Shape(load_amplitude=0.03, noise_sigma=0.015),
    "latency_p95": Shape(load_amplitude=0.04, noise_sigma=0.025),
    "latency_p99": Shape(load_amplitude=0.05, noise_sigma=0.04),
    "cpu_utilization": Shape(load_amplitude=0.08, noise_sigma=0.015),
    "memory_utilization": Shape(load_amplitude=0.0, noise_sigma=0.006, sawtooth_amplitude=0.01),
    "error_rate": Shape(load_amplitude=0.0, noise_sigma=0.09),
    "cost_compute": Shape(load_amplitude=0.04, noise_sigma=0.01),
    "cost_memory": Shape(load_amplitude=0.015, noise_sigma=0.006),
    "cost_storage": Shape(load_amplitude=0.0, noise_sigma=0.006),
    "cost_network": Shape(load_amplitude=0.10, noise_sigma=0.02),
}
NOISE_BOUND_SIGMA = 2.2
NOISE_BLOCK_MINUTES = 10
TRAFFIC_PEAK_HOUR = 14.0
TRAFFIC_TROUGH_HOUR = 4.0
SAWTOOTH_PERIOD_MINUTES = 12 * 60
SAWTOOTH_HARMONICS = 3  # the release takes ~3 h (a rolling restart), not one sample
SAWTOOTH_SERVICE_OFFSET_MINUTES = 150  # services do not restart in lockstep
DAY_RAMP_MINUTES = 360
"""A new day's level settles in over the first hours after local midnight instead of jumping
at 00:00 (a change rolling out overnight), so a detector that runs across days does not see a
step at every midnight. The day means stay exact: `solve_day_levels` accounts for the ramp."""


def series_rng(purpose: str, service: str, kpi: str) -> np.random.Generator:
    """A random stream of its own for one series and purpose.

    Keyed by names (CRC-32, which unlike `hash()` is the same in every process), so adding,
    removing or reordering services and KPIs leaves every other series' data unchanged.
    """
    key = [zlib.crc32(name.encode()) for name in (purpose, service, kpi)]
    return np.random.default_rng([SEED, *key])


# --- Time axis ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeAxis:
    """Every sample instant of the window, with what the shapes need to know about it."""

    ts: pd.DatetimeIndex  # UTC instants on the step grid
    day: np.ndarray  # day number 0..N of each sample
    local_hour: np.ndarray  # hour of the local wall clock, fractional
    minute: np.ndarray  # minutes since the start of Day 0
    day_start_minute: np.ndarray  # minutes since the start of Day 0, per day


def build_time_axis(release: Release, step_seconds: int) -> TimeAxis:
    """Samples at every step from each day's local midnight (inclusive) to the next (exclusive).

    Day windows come from `Release.day_bounds`, so the 23-hour DST day gets 23 hours of samples.
    """
    window_start = release.day_bounds(0)[0]
    stamps: list[pd.DatetimeIndex] = []
    days: list[np.ndarray] = []
    for day in release.days:
        start, end = release.day_bounds(day)
        stamps.append(
            pd.date_range(start, end, freq=f"{step_seconds}s", inclusive="left").as_unit("us")
        )
        days.append(np.full(len(stamps[-1]), day))
    ts = stamps[0].append(stamps[1:])
    local = ts.tz_convert(release.tz)
    day_starts = [release.day_bounds(day)[0] for day in release.days]
    return TimeAxis(
        ts=ts,
        day=np.concatenate(days),
        local_hour=np.asarray(local.hour + local.minute / 60.0, dtype=float),
        minute=np.asarray((ts - window_start).total_seconds() / 60.0, dtype=float),
        day_start_minute=np.array([(s - window_start).total_seconds() / 60.0 for s in day_starts]),
    )


# --- Within-day shapes -------------------------------------------------------------------------


def traffic_cycle(local_hour: np.ndarray) -> np.ndarray:
    """+1 at the afternoon peak, -1 at the early-morning trough, smooth in between.

    Users follow the local clock, so this uses local hours (and skips an hour on the DST day).
    Rising takes 10 h and falling 14 h, like real traffic; each half is half a cosine, so the
    daily mean is 0 and the cycle does not shift a day's level.
    """
    rise_hours = TRAFFIC_PEAK_HOUR - TRAFFIC_TROUGH_HOUR
    since_peak = (local_hour - TRAFFIC_PEAK_HOUR) % 24.0
    falling = since_peak < 24.0 - rise_hours
    phase = np.where(
        falling,
        np.pi * since_peak / (24.0 - rise_hours),
        np.pi + np.pi * (since_peak - (24.0 - rise_hours)) / rise_hours,
    )
    return np.cos(phase)


def sawtooth(minute: np.ndarray, offset_minutes: float) -> np.ndarray:
    """Slow rise and quicker release in [-1, 1]: memory growing until a restart or GC.

    A truncated Fourier series, so the release is quicker than the rise but not a one-sample
    cliff that any anomaly detector would (rightly) flag. Restarts follow the UTC clock of
    the fleet, not the users' local time.
    """
    theta = 2.0 * np.pi * (minute + offset_minutes) / SAWTOOTH_PERIOD_MINUTES
    harmonics = np.arange(1, SAWTOOTH_HARMONICS + 1)
    wave = -(np.sin(np.outer(theta, harmonics)) / harmonics).sum(axis=1)
    return wave / np.abs(wave).max()


def bounded_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit Gaussian noise truncated at ±NOISE_BOUND_SIGMA, stratified in short blocks.

    Why stratified: with independent draws, a run of quiet minutes shrinks the EWMA variance
    and the next ordinary 2σ minute scores |z| > 3, so a z-score detector would report a few
    "anomalies" a day that are pure chance. Here every block of `NOISE_BLOCK_MINUTES` samples
    draws one value from each of that many equal-probability slices of the distribution, in
    random order: the marginal distribution is the same truncated Gaussian, but the local
    spread is steady, so the detector sees noise as noise. Truncated (redrawn) rather than
    clipped, so no samples pile up exactly on the bound.
    """
    blocks = -(-size // NOISE_BLOCK_MINUTES)
    slices = np.arange(NOISE_BLOCK_MINUTES) + rng.random((blocks, NOISE_BLOCK_MINUTES))
    quantiles = rng.permuted(slices / NOISE_BLOCK_MINUTES, axis=1).ravel()[:size]
    low, high = ndtr(-NOISE_BOUND_SIGMA), ndtr(NOISE_BOUND_SIGMA)
    return ndtri(low + quantiles * (high - low))


def day_level_basis(axis: TimeAxis) -> np.ndarray:
    """(samples × days) weights: column d is how much of Day d's level each sample carries.

    Rows sum to 1. A day's weight rises from 0 to 1 over `DAY_RAMP_MINUTES` after its local
    midnight (raised cosine) while the previous day's falls; the series is then linear in the
    day levels, which lets `solve_day_levels` hit exact daily means.
    """
    since_midnight = axis.minute[:, None] - axis.day_start_minute[None, 1:]
    progress = np.clip(since_midnight / DAY_RAMP_MINUTES, 0.0, 1.0)
    reached = (1.0 - np.cos(np.pi * progress)) / 2.0  # reached[t, k]: share of Day k+1
    ones = np.ones((len(axis.minute), 1))
    zeros = np.zeros((len(axis.minute), 1))
    return np.hstack([ones, reached]) - np.hstack([reached, zeros])


def incident_weight(axis: TimeAxis, release: Release, incident: Incident) -> np.ndarray:
    """0 outside the incident, rising to 1 at the peak minute and back (sine-squared ramps)."""
    peak = dt.datetime.combine(release.day_date(incident.day), incident.peak_local, release.tz)
    peak_minute = (peak - release.day_bounds(0)[0]).total_seconds() / 60.0
    offset = axis.minute - peak_minute
    rising = np.clip(1.0 + offset / incident.rise_minutes, 0.0, 1.0)
    falling = np.clip(1.0 - offset / incident.decay_minutes, 0.0, 1.0)
    return np.where(offset <= 0, np.sin(np.pi / 2 * rising), np.sin(np.pi / 2 * falling)) ** 2


# --- Daily targets -----------------------------------------------------------------------------


def day_mean_targets(service: str, kpi: str) -> np.ndarray:
    """The story's daily means for one (service, KPI) series; availability and cost excluded."""
    story: dict[tuple[str, str], Sequence[float]] = {
        ("api-gateway", "latency_p99"): GATEWAY_LATENCY_P99_MS,
        ("api-gateway", "latency_p95"): GATEWAY_LATENCY_P95_MS,
        ("api-gateway", "latency_p50"): GATEWAY_LATENCY_P50_MS,
        ("api-gateway", "cpu_utilization"): GATEWAY_CPU_PCT,
        ("api-gateway", "throughput"): [
            GATEWAY_THROUGHPUT_DAY0_RPS * (1 + pct / 100) for pct in GATEWAY_THROUGHPUT_GROWTH_PCT
        ],
        ("checkout", "error_rate"): CHECKOUT_ERROR_RATE_PCT,
        ("search", "memory_utilization"): [
            SEARCH_MEMORY_DAY0_PCT * (1 + pct / 100) for pct in SEARCH_MEMORY_DRIFT_PCT
        ],
        ("api-gateway", "error_rate"): [GATEWAY_ERROR_RATE_PCT] * len(RELEASE.days),
        ("search", "error_rate"): [SEARCH_ERROR_RATE_PCT] * len(RELEASE.days),
    }
    if (service, kpi) in story:
        targets = np.array(story[service, kpi], dtype=float)
    else:
        # Flat series wobble a little from day to day; Day 0 is the round baseline number.
        rng = series_rng("wobble", service, kpi)
        wobble = rng.uniform(-FLAT_WOBBLE_PCT, FLAT_WOBBLE_PCT, len(RELEASE.days)) / 100
        wobble[0] = 0.0
        targets = FLAT_DAY0_MEANS[service, kpi] * (1 + wobble)
    decimals = DECIMALS_BY_UNIT[KPIS[kpi].unit]
    return np.round(targets, decimals)


def cost_day_sums_units() -> dict[tuple[str, str], np.ndarray]:
    """Per cost series and day, the exact sum of its samples in rounding units.

    A sample is an hourly rate held for one step, so a day's dollars are
    sum(rate) × step / 3600. Splitting each day's total by the service and resource shares
    with largest-remainder rounding makes the day totals exact to the last unit.
    """
    scale = 10 ** DECIMALS_BY_UNIT["USD/h"]
    series = [
        (service, f"cost_{resource}", service_pct * resource_pct)
        for service, service_pct in COST_SHARE_BY_SERVICE_PCT.items()
        for resource, resource_pct in COST_SHARE_BY_RESOURCE_PCT.items()
    ]
    weight_total = sum(weight for _, _, weight in series)
    sums = {(service, kpi): np.zeros(len(DAILY_COST_USD), np.int64) for service, kpi, _ in series}
    steps_per_hour = 3600 // STEP_SECONDS
    for day, dollars in enumerate(DAILY_COST_USD):
        total_units = round(dollars * steps_per_hour * scale)
        quotients = [divmod(total_units * weight, weight_total) for _, _, weight in series]
        shares = [quotient for quotient, _ in quotients]
        by_remainder = sorted(range(len(series)), key=lambda i: -quotients[i][1])
        for i in by_remainder[: total_units - sum(shares)]:
            shares[i] += 1
        for (service, kpi, _), share in zip(series, shares, strict=True):
            sums[service, kpi][day] = share
    return sums


# --- Assembling the series ---------------------------------------------------------------------


def solve_day_levels(
    basis: np.ndarray,
    shape_factor: np.ndarray,
    weight: np.ndarray,
    peak: np.ndarray,
    day: np.ndarray,
    target_means: np.ndarray,
) -> np.ndarray:
    """The day levels that make every day's mean come out at its target.

    The series is `(1 - weight) * (basis @ levels) * shape_factor + weight * peak`, which is
    linear in the levels, so the daily means are `A @ levels + b` with
    `A[d, k] = mean over Day d of (1 - weight) * basis[:, k] * shape_factor`: one small linear
    solve absorbs the traffic cycle, the noise, the midnight ramps and the incidents.
    """
    n_days = basis.shape[1]
    counts = np.bincount(day, minlength=n_days)
    carried = ((1.0 - weight) * shape_factor)[:, None] * basis
    coefficients = np.column_stack(
        [np.bincount(day, weights=carried[:, k], minlength=n_days) / counts for k in range(n_days)]
    )
    incident_part = np.bincount(day, weights=weight * peak, minlength=n_days) / counts
    return np.linalg.solve(coefficients, target_means - incident_part)


def quantize_to_sum(values: np.ndarray, total_units: int) -> np.ndarray:
    """Round `values` (already in rounding units) to integers that sum to `total_units`.

    Largest-remainder rounding: every sample moves by less than one unit, and the day's mean
    is exact rather than off by the accumulated rounding error.
    """
    floors = np.floor(values)
    remainders = values - floors
    units = floors.astype(np.int64)
    shortfall = int(total_units - units.sum())
    if abs(shortfall) > len(values):
        raise ValueError(f"cannot reach {total_units} units from values summing to {values.sum()}")
    order = np.argsort(-remainders, kind="stable")
    if shortfall > 0:
        units[order[:shortfall]] += 1
    elif shortfall < 0:
        units[order[::-1][:-shortfall]] -= 1
    return units


def series_units(axis: TimeAxis, service: str, kpi: str, day_sums_units: np.ndarray) -> np.ndarray:
    """One (service, KPI) series over the whole window, in integer rounding units.

    `day_sums_units[d]` is the exact sum Day d's samples must have, i.e. the daily mean times
    the day's sample count.
    """
    shape = SHAPES[kpi]
    scale = 10 ** DECIMALS_BY_UNIT[KPIS[kpi].unit]
    noise = bounded_noise(series_rng("noise", service, kpi), len(axis.ts))
    shape_factor = (
        1.0
        + shape.load_amplitude * traffic_cycle(axis.local_hour)
        + shape.sawtooth_amplitude
        * sawtooth(axis.minute, SAWTOOTH_SERVICE_OFFSET_MINUTES * SERVICES.index(service))
    ) * (1.0 + shape.noise_sigma * noise)

    weight = np.zeros(len(axis.ts))
    peak = np.zeros(len(axis.ts))
    for incident in INCIDENTS:
        if (incident.service, incident.kpi) == (service, kpi):
            this_weight = incident_weight(axis, RELEASE, incident)
            peak = np.where(this_weight > 0, incident.peak_value, peak)
            weight = np.maximum(weight, this_weight)

    counts = np.bincount(axis.day)
    basis = day_level_basis(axis)
    levels = solve_day_levels(
        basis, shape_factor, weight, peak, axis.day, day_sums_units / scale / counts
    )
    values = (1.0 - weight) * (basis @ levels) * shape_factor + weight * peak
    units = np.empty(len(values), np.int64)
    for day, day_sum in enumerate(day_sums_units):
        in_day = axis.day == day
        units[in_day] = quantize_to_sum(values[in_day] * scale, int(day_sum))
    return units


def generate_samples() -> pd.DataFrame:
    """Every sample of the release window: service, kpi, ts (UTC), value."""
    axis = build_time_axis(RELEASE, STEP_SECONDS)
    counts = np.bincount(axis.day)
    cost_sums = cost_day_sums_units()
    percent_scale = 10 ** DECIMALS_BY_UNIT["%"]
    frames = []
    for service in SERVICES:
        units: dict[str, np.ndarray] = {}
        for kpi in KPIS:
            if kpi == "availability":
                continue
            if KPIS[kpi].kind == "cost":
                day_sums = cost_sums[service, kpi]
            else:
                scale = 10 ** DECIMALS_BY_UNIT[KPIS[kpi].unit]
                day_sums = (
                    np.round(day_mean_targets(service, kpi) * scale).astype(np.int64) * counts
                )
            units[kpi] = series_units(axis, service, kpi, day_sums)
        # Both come from the same request counters: availability = 100 % - error rate, exactly.
        units["availability"] = 100 * percent_scale - units["error_rate"]
        for kpi in KPIS:
            scale = 10 ** DECIMALS_BY_UNIT[KPIS[kpi].unit]
            frames.append(
                pd.DataFrame(
                    {"service": service, "kpi": kpi, "ts": axis.ts, "value": units[kpi] / scale}
                )
            )
    return pd.concat(frames, ignore_index=True)


# --- Writing the snapshot ----------------------------------------------------------------------


def _sql_string(text: str) -> str:
    """A SQL string literal; COPY's target path cannot be a bound parameter."""
    return "'" + text.replace("'", "''") + "'"


def write_snapshot(samples: pd.DataFrame, out_dir: Path) -> Path:
    """Write one Parquet file per local day and the manifest; returns the release directory."""
    release_dir = out_dir / RELEASE.name
    release_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        # One thread: the same input then always gives the same row groups and bytes.
        con.execute("SET threads = 1")
        con.execute("SET TimeZone = 'UTC'")
        for day in RELEASE.days:
            start, end = RELEASE.day_bounds(day)
            day_samples = samples[(samples["ts"] >= start) & (samples["ts"] < end)]
            path = release_dir / f"{RELEASE.day_date(day).isoformat()}.parquet"
            con.register("day_samples", day_samples)
            con.execute(
                "COPY (SELECT service::VARCHAR AS service, kpi::VARCHAR AS kpi,"
                " ts::TIMESTAMPTZ AS ts, value::DOUBLE AS value"
                " FROM day_samples ORDER BY service, kpi, ts)"
                f" TO {_sql_string(str(path))} (FORMAT parquet, COMPRESSION zstd)"
            )
            con.unregister("day_samples")
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_FORMAT_VERSION,
        "release": RELEASE.name,
        "ga_date": RELEASE.ga_date.isoformat(),
        "timezone": RELEASE.timezone,
        "window_days": RELEASE.window_days,
        "step_seconds": STEP_SECONDS,
        "services": list(SERVICES),
        "kpis": list(KPIS),
        "generated_by": "test_data/generate.py",
    }
    (release_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return release_dir


# --- The same week as raw Prometheus series (OpenMetrics) -------------------------------------
#
# What the default KPI catalog (tars_pipeline/config.py::default_kpis) reads, built so that the
# catalog's PromQL, evaluated every 60 s with rate windows of one step ([1m]), returns the
# snapshot's per-minute values:
#   throughput, error rate, availability  <- http_requests_total{service, code} counters
#   latency p50/p95/p99                    <- http_request_duration_seconds histogram
#   CPU                                    <- process_cpu_seconds_total counter
#   memory                                 <- container_memory_working_set_bytes / ..._limit_bytes
#   cost                                   <- OpenCost-style hourly-cost gauges
# Counters are floats: a minute's increment is the snapshot's rate × 60 s, so rate() gives the
# rate back without the rounding noise integer request counts would add to a 0.05 % error rate.

HISTOGRAM_BUCKETS_SECONDS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 1.0, 2.5,
)  # fmt: skip
"""Bucket bounds of the latency histogram.

Why these: `histogram_quantile` interpolates linearly inside the bucket that holds the
quantile, and can hit an exact value only when p50, p95 and p99 fall in different buckets at
every minute. 25 ms steps from 50 ms to 200 ms separate them for all three services (the
tightest pair, p99/p95, is 1.19 apart); the rest is a conventional layout around them.
"""
QUANTILE_ANCHORS: tuple[tuple[str, float], ...] = (
    ("latency_p50", 0.50),
    ("latency_p95", 0.95),
    ("latency_p99", 0.99),
)
FASTEST_SHARE_OF_P50 = 0.4  # no request is faster than 40 % of the median
SLOWEST_MULTIPLE_OF_P99 = 2.5  # and none slower than 2.5 × p99
MIN_DENSITY = 1e-3  # share of requests per second of latency in a quantile's bucket
NOT_FOUND_SHARE = 0.004  # 0.4 % of requests are 404s: client errors, not in the error rate
MEMORY_LIMIT_BYTES = 4 * 1024**3
COST_METRICS = {
    "cost_compute": "node_cpu_hourly_cost",
    "cost_memory": "node_ram_hourly_cost",
    "cost_storage": "pv_hourly_cost",
    "cost_network": "network_hourly_cost",
}
MAX_SECONDS_TIMESTAMP = 10**11
"""Unix time in seconds stays below this until the year 5138; milliseconds exceed it today.

A millisecond timestamp read as seconds lands thousands of years ahead, and Prometheus's time
retention (counted from the newest block) then deletes every real block: refuse to write one.
"""


def _latency_knots(quantiles_seconds: Sequence[float]) -> tuple[list[float], list[float]]:
    """The reference latency CDF: piecewise linear through these (seconds, share) knots."""
    p50, _, p99 = quantiles_seconds
    xs = [FASTEST_SHARE_OF_P50 * p50, *quantiles_seconds, SLOWEST_MULTIPLE_OF_P99 * p99]
    return xs, [0.0, *(share for _, share in QUANTILE_ANCHORS), 1.0]


def bucket_cdf(quantiles_seconds: Sequence[float], bounds: Sequence[float]) -> list[float]:
    """The share of requests at or below each bucket bound, so that `histogram_quantile`
    gives back exactly p50, p95 and p99 (`quantiles_seconds`).

    Why not just sample a latency distribution at the bounds: `histogram_quantile` reads a
    straight line between two bounds, while any distribution bends at its quantiles, inside
    a bucket, so sampled counts are off by up to half a bucket. Here the CDF is straight
    inside each quantile's bucket and passes through the quantile: the bucket's density `s`
    sets both its bounds (F(lower) = q - s·(p - lower), F(upper) = q + s·(upper - p)). Every
    other bound follows the reference CDF (`_latency_knots`). When two quantiles sit in
    adjacent buckets their shared bound ties the two densities, so a chain of adjacent
    buckets has one free density: it is taken as close to the reference as the neighbouring
    bounds allow, which keeps the counts non-decreasing in `le`.
    """
    knots_x, knots_y = _latency_knots(quantiles_seconds)
    cdf = np.interp(bounds, knots_x, knots_y).tolist()
    anchors = [
        (x, share) for x, (_, share) in zip(quantiles_seconds, QUANTILE_ANCHORS, strict=True)
    ]
    buckets = [bisect.bisect_left(bounds, x) for x, _ in anchors]
    if buckets[-1] >= len(bounds) or len(set(buckets)) < len(buckets):
        raise ValueError(f"quantiles {quantiles_seconds} share a bucket or exceed the bounds")

    def lower(j: int) -> float:
        return bounds[j - 1] if j > 0 else 0.0

    chains: list[list[int]] = []
    for k, j in enumerate(buckets):
        if chains and buckets[chains[-1][-1]] == j - 1:
            chains[-1].append(k)
        else:
            chains.append([k])
    for chain in chains:
        first, last = buckets[chain[0]], buckets[chain[-1]]
        below = cdf[first - 2] if first >= 2 else 0.0  # the bound under the chain's first
        above = cdf[last + 1] if last + 1 < len(bounds) else 1.0
        # Density of each bucket in the chain as alpha + beta * s, s = the first's density.
        alpha, beta = [0.0], [1.0]
        for a, b in itertools.pairwise(chain):
            (xa, qa), (xb, qb) = anchors[a], anchors[b]
            shared = bounds[buckets[a]]
            span_a, span_b = shared - xa, xb - shared
            alpha.append((qb - qa - alpha[-1] * span_a) / span_b)
            beta.append(-beta[-1] * span_a / span_b)
        low, high = 0.0, np.inf
        (x0, q0), (xn, qn) = anchors[chain[0]], anchors[chain[-1]]
        bounds_on_s = [
            (alpha_i, beta_i, MIN_DENSITY, np.inf)
            for alpha_i, beta_i in zip(alpha, beta, strict=True)
        ]
        if first == 0:  # the first bucket starts at 0 with no requests below it
            bounds_on_s.append((0.0, 1.0, q0 / x0, q0 / x0))
        else:
            bounds_on_s.append((0.0, 1.0, -np.inf, (q0 - below) / (x0 - lower(first))))
        room = (above - qn) / (bounds[last] - xn) if bounds[last] > xn else np.inf
        bounds_on_s.append((alpha[-1], beta[-1], -np.inf, room))
        for alpha_i, beta_i, lo_i, hi_i in bounds_on_s:  # lo_i <= alpha_i + beta_i s <= hi_i
            if beta_i == 0:
                if not lo_i <= alpha_i <= hi_i:
                    low, high = np.inf, -np.inf
                continue
            ends = sorted(((lo_i - alpha_i) / beta_i, (hi_i - alpha_i) / beta_i))
            low, high = max(low, ends[0]), min(high, ends[1])
        if low > high:
            raise ValueError(f"bucket bounds cannot reproduce quantiles {quantiles_seconds}")
        if len(chain) == 1:  # the reference CDF's chord across the bucket
            rise = np.interp(bounds[first], knots_x, knots_y) - np.interp(
                lower(first), knots_x, knots_y
            )
            natural = rise / (bounds[first] - lower(first))
        else:  # the line through the chain's first two quantiles
            natural = (anchors[chain[1]][1] - q0) / (anchors[chain[1]][0] - x0)
        # The reference slope when it fits; else the middle of what fits, so no bucket of
        # the chain is left (nearly) empty, which would pin a quantile to a bucket bound.
        s = float(natural if low <= natural <= high else (low + high) / 2)
        if first > 0:
            cdf[first - 1] = q0 - s * (x0 - lower(first))
        for index, k in enumerate(chain):
            x, q = anchors[k]
            cdf[buckets[k]] = q + (alpha[index] + beta[index] * s) * (bounds[buckets[k]] - x)
    if any(b < a - 1e-12 for a, b in itertools.pairwise([0.0, *cdf, 1.0])):
        raise ValueError(f"bucket counts not monotonic for quantiles {quantiles_seconds}")
    return cdf


def latency_bucket_counts(
    quantiles_seconds: np.ndarray, requests: np.ndarray, bounds: Sequence[float]
) -> np.ndarray:
    """Per minute (rows of p50, p95, p99 in seconds), requests at or below each bound."""
    shares = np.array([bucket_cdf(row, bounds) for row in quantiles_seconds.tolist()])
    return np.clip(shares, 0.0, 1.0) * requests[:, None]


def mean_latency_seconds(quantiles_seconds: np.ndarray) -> np.ndarray:
    """Mean of the piecewise-linear latency distribution (for the histogram's `_sum`)."""
    knots_x = np.column_stack(
        [
            FASTEST_SHARE_OF_P50 * quantiles_seconds[:, 0],
            quantiles_seconds,
            SLOWEST_MULTIPLE_OF_P99 * quantiles_seconds[:, 2],
        ]
    )
    mass = np.diff(np.concatenate([[0.0], [q for _, q in QUANTILE_ANCHORS], [1.0]]))
    return ((knots_x[:, :-1] + knots_x[:, 1:]) / 2 * mass).sum(axis=1)


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _lines(series: str, timestamps: np.ndarray, values: np.ndarray) -> list[str]:
    return [
        f"{series} {value!r} {ts}\n" for ts, value in zip(timestamps, values.tolist(), strict=True)
    ]


def openmetrics_families(
    samples: pd.DataFrame, step_seconds: int = STEP_SECONDS
) -> dict[str, tuple[str, str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """The raw series, per metric family: (type, help, {series text: (timestamps, values)}).

    Timestamps are Unix seconds. Counters start at 0 one step before the window, so the
    window's first minute has a rate too.
    """
    wide = samples.pivot_table(index="ts", columns=["service", "kpi"], values="value")
    wide = wide.sort_index()
    seconds = wide.index.as_unit("s").asi8.astype(np.int64)
    # The window is contiguous in UTC (the DST day is shorter in local time only), so every
    # increment spans one step; a gap would need scaling, so refuse one instead of guessing.
    if not (np.diff(seconds) == step_seconds).all():
        raise ValueError("samples must be contiguous on the step grid")
    counter_ts = np.concatenate([[seconds[0] - step_seconds], seconds])

    def counter(increments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return counter_ts, np.concatenate([[0.0], np.cumsum(increments)])

    families: dict[str, tuple[str, str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {
        "http_requests": ("counter", "HTTP requests handled, by status code.", {}),
        "http_request_duration_seconds": ("histogram", "HTTP request latency.", {}),
        "process_cpu_seconds": ("counter", "CPU time used, in seconds.", {}),
        "container_memory_working_set_bytes": ("gauge", "Memory working set.", {}),
        "container_spec_memory_limit_bytes": ("gauge", "Memory limit.", {}),
        **{
            metric: ("gauge", f"OpenCost-style {kpi.removeprefix('cost_')} cost, USD/h.", {})
            for kpi, metric in COST_METRICS.items()
        },
    }
    for service in SERVICES:
        label = f'service="{_label_value(service)}"'
        column = {kpi: wide[service, kpi].to_numpy(dtype=float) for kpi in KPIS}
        requests = column["throughput"] * step_seconds
        errors = requests * column["error_rate"] / 100
        not_found = requests * NOT_FOUND_SHARE
        http = families["http_requests"][2]
        http[f'http_requests_total{{{label},code="200"}}'] = counter(requests - errors - not_found)
        http[f'http_requests_total{{{label},code="404"}}'] = counter(not_found)
        http[f'http_requests_total{{{label},code="500"}}'] = counter(errors)

        quantiles = np.column_stack([column[kpi] / 1000 for kpi, _ in QUANTILE_ANCHORS])
        buckets = latency_bucket_counts(quantiles, requests, HISTOGRAM_BUCKETS_SECONDS)
        histogram = families["http_request_duration_seconds"][2]
        for j, bound in enumerate(HISTOGRAM_BUCKETS_SECONDS):
            name = f'http_request_duration_seconds_bucket{{{label},le="{bound!r}"}}'
            histogram[name] = counter(buckets[:, j])
        name = f'http_request_duration_seconds_bucket{{{label},le="+Inf"}}'
        histogram[name] = counter(requests)
        histogram[f"http_request_duration_seconds_count{{{label}}}"] = counter(requests)
        histogram[f"http_request_duration_seconds_sum{{{label}}}"] = counter(
            requests * mean_latency_seconds(quantiles)
        )

        families["process_cpu_seconds"][2][f"process_cpu_seconds_total{{{label}}}"] = counter(
            column["cpu_utilization"] / 100 * step_seconds
        )
        limit = np.full(len(seconds), float(MEMORY_LIMIT_BYTES))
        working_set = np.round(column["memory_utilization"] / 100 * MEMORY_LIMIT_BYTES)
        families["container_memory_working_set_bytes"][2][
            f"container_memory_working_set_bytes{{{label}}}"
        ] = (seconds, working_set)
        families["container_spec_memory_limit_bytes"][2][
            f"container_spec_memory_limit_bytes{{{label}}}"
        ] = (seconds, limit)
        for kpi, metric in COST_METRICS.items():
            families[metric][2][f"{metric}{{{label}}}"] = (seconds, column[kpi])
    return families


def write_openmetrics(
    samples: pd.DataFrame, path: Path, *, shift_seconds: int = 0, step_seconds: int = STEP_SECONDS
) -> int:
    """Write the week as OpenMetrics text (timestamps in seconds, `# EOF` last); returns lines.

    `shift_seconds` moves every timestamp, so a test can place the week just before "now".
    A histogram's samples are written point by point (all buckets, count and sum of one
    timestamp together), as OpenMetrics groups a histogram's MetricPoint; other series one
    after the other, each in time order.
    """
    families = openmetrics_families(samples, step_seconds)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for family, (kind, help_text, series) in families.items():
            out.write(f"# TYPE {family} {kind}\n# HELP {family} {help_text}\n")
            count += 2
            if kind == "histogram":
                # Group by label set (everything but `le`), then write point by point.
                groups: dict[str, list[str]] = {}
                for name in series:
                    key = name.split(",le=")[0].split("{", 1)[1].rstrip("}")
                    groups.setdefault(key, []).append(name)
                for names in groups.values():
                    stamps = series[names[0]][0] + shift_seconds
                    _check_seconds(stamps)
                    columns = [series[name][1].tolist() for name in names]
                    chunk = []
                    for i, ts in enumerate(stamps.tolist()):
                        for name, values in zip(names, columns, strict=True):
                            chunk.append(f"{name} {values[i]!r} {ts}\n")
                    out.writelines(chunk)
                    count += len(chunk)
                continue
            for name, (stamps, values) in series.items():
                shifted = stamps + shift_seconds
                _check_seconds(shifted)
                lines = _lines(name, shifted, values)
                out.writelines(lines)
                count += len(lines)
        out.write("# EOF\n")
    return count + 1


def _check_seconds(stamps: np.ndarray) -> None:
    if len(stamps) and (stamps.max() >= MAX_SECONDS_TIMESTAMP or stamps.min() < 0):
        raise ValueError(
            f"timestamps must be Unix seconds, got {stamps.min()}..{stamps.max()} "
            "(milliseconds would create far-future blocks that retention then deletes)"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"snapshot root (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--openmetrics",
        type=Path,
        metavar="FILE",
        help="write the week as raw Prometheus series in OpenMetrics text instead",
    )
    parser.add_argument(
        "--shift-days",
        type=int,
        default=0,
        metavar="N",
        help="with --openmetrics: move every timestamp N days (whole weeks keep the DST day)",
    )
    args = parser.parse_args(argv)
    if args.openmetrics:
        lines = write_openmetrics(
            generate_samples(), args.openmetrics, shift_seconds=args.shift_days * 86_400
        )
        print(f"wrote {args.openmetrics} ({lines} lines)")
        return
    release_dir = write_snapshot(generate_samples(), args.out)
    print(f"wrote {release_dir}")


if __name__ == "__main__":
    main()
