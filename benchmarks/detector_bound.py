"""The anomaly detector against a NumPy/SciPy lower bound of the same arithmetic.

    .venv/bin/python benchmarks/detector_bound.py [--series 1000] [--points 10000]

The workload: `--series` series of `--points` samples each (10 M by default), per minute,
a level with bounded noise, a few level shifts and spikes per series, in the long format
the product reads (service, kpi, ts, value; service and kpi as categories, as the store
reads them; rows in no particular order).

The product: `judge.anomaly.detect_anomalies` with the thresholds' default settings (the
nightly asset's detector, no seasonality columns), from the unordered frame to the events.

The bound: what any EWMA z-score detector over this frame must do at least, written
straight in NumPy/SciPy: order the rows by series and time (one `np.lexsort` on the category
codes and timestamps), then per series the EWMA mean and variance as two first-order IIR filters
(`scipy.signal.lfilter`), the z-score against the state before each sample, and the
samples over the threshold. No gaps, holds, floors or event rules: those are the product's
extra work, and the ratio says what they cost.

Printed: the two wall times (best of `--repeat`), the throughput of each in samples/s, and
product throughput / bound throughput (the target is >= 0.5).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tars_pipeline.config import TarsConfig  # noqa: E402
from tars_pipeline.judge.anomaly import detect_anomalies  # noqa: E402


def workload(series: int, points: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    level = rng.uniform(10, 1000, series)[:, None]
    noise = rng.uniform(-0.05, 0.05, (series, points)) * level
    values = level + noise
    for row in range(series):  # a level shift and two spikes per series
        at = rng.integers(points // 4, points - 10, 3)
        values[row, at[0] :] += 0.3 * level[row, 0]
        values[row, at[1]] += 0.5 * level[row, 0]
        values[row, at[2]] -= 0.4 * level[row, 0]
    start = pd.Timestamp("2026-03-03", tz="UTC")
    ts = pd.date_range(start, periods=points, freq="60s")
    frame = pd.DataFrame(
        {
            "service": np.repeat([f"svc-{k // 12:04d}" for k in range(series)], points),
            "kpi": np.repeat([f"kpi_{k % 12:02d}" for k in range(series)], points),
            "ts": np.tile(ts, series),
            "value": values.ravel(),
        }
    )
    frame = frame.astype({"service": "category", "kpi": "category"})  # as the store reads them
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def bound(frame: pd.DataFrame, span: int, warmup: int, z_threshold: float) -> int:
    alpha = 2.0 / (span + 1.0)
    service = frame["service"].cat.codes.to_numpy()
    kpi = frame["kpi"].cat.codes.to_numpy()
    ts = frame["ts"].array.asi8
    order = np.lexsort((ts, kpi, service))
    values = frame["value"].to_numpy("float64")[order]
    key = service[order] * (kpi.max() + 1) + kpi[order]
    bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1], True])
    flagged = 0
    for first, stop in itertools.pairwise(bounds):
        x = values[first:stop]
        mean, _ = lfilter([alpha], [1.0, alpha - 1.0], x, zi=[(1.0 - alpha) * x[0]])
        diff = x[1:] - mean[:-1]
        var = lfilter([(1.0 - alpha) * alpha], [1.0, alpha - 1.0], diff * diff)
        spread = np.sqrt(np.maximum(var[:-1], 0.0))
        z = np.divide(diff[1:], spread, out=np.zeros_like(spread), where=spread > 0)
        flagged += int(np.count_nonzero(np.abs(z[warmup:]) >= z_threshold))
    return flagged


def best_of(repeat: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = workload(args.series, args.points)
    release = {"name": "bench", "ga_date": "2026-03-03"}
    settings = TarsConfig.model_validate(
        {"releases": [release], "source": {"type": "snapshot", "path": "."}}
    ).detector_settings()
    span, warmup, z = settings["span"], settings["warmup"], settings["z_threshold"]
    product_s, events = best_of(args.repeat, lambda: detect_anomalies(frame, **settings))
    bound_s, flagged = best_of(args.repeat, lambda: bound(frame, span, warmup, z))
    samples = len(frame)
    print(f"{samples:,} samples in {args.series:,} series (best of {args.repeat})")
    print(f"product  detect_anomalies: {product_s:6.2f} s  {samples / product_s:12,.0f} samples/s"
          f"  ({len(events):,} events)")  # fmt: skip
    print(f"bound    lexsort + lfilter: {bound_s:6.2f} s  {samples / bound_s:12,.0f} samples/s"
          f"  ({flagged:,} samples over |z| {z})")  # fmt: skip
    print(f"product throughput / bound throughput: {bound_s / product_s:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
