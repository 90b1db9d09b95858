"""Descriptive statistics of KPI samples: the baseline (Day 0) and each day's summary.

SPEC §3 "Baseline": per service × KPI the mean, p50, p95, p99, min, max, stddev and sample
count, plus an hour-of-day profile. The same summary of a later day is what drift compares
with the baseline (`drift.compute_drift`).

Percentiles use linear interpolation between order statistics (Hyndman & Fan 1996,
definition 7 — the default of numpy, pandas and R), computed over the raw samples of the
day, so the same samples always give the same numbers whichever source produced them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STAT_COLUMNS: tuple[str, ...] = (
    "mean",
    "p50",
    "p95",
    "p99",
    "min",
    "max",
    "stddev",
    "sample_count",
)
SUMMARY_COLUMNS: tuple[str, ...] = ("service", "kpi", *STAT_COLUMNS)
HOURLY_PROFILE_COLUMNS: tuple[str, ...] = (
    "service",
    "kpi",
    "hour",
    "mean",
    "stddev",
    "sample_count",
)
_KEYS = ["service", "kpi"]
_QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def _finite(samples: pd.DataFrame) -> pd.DataFrame:
    """Samples with a finite value (sources already drop NaN/Inf; this keeps it true)."""
    values = samples["value"].to_numpy(dtype="float64")
    mask = np.isfinite(values)
    return samples if mask.all() else samples.loc[mask]


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    dtypes = {
        "service": object,
        "kpi": object,
        "hour": "int64",
        "sample_count": "int64",
    }
    return pd.DataFrame({name: pd.Series(dtype=dtypes.get(name, "float64")) for name in columns})


def _sample_stddev(grouped: pd.core.groupby.SeriesGroupBy) -> pd.Series:
    """Sample standard deviation (ddof=1); 0.0 for a group with fewer than two samples."""
    return grouped.std(ddof=1).fillna(0.0)


def summarise(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per (service, kpi): `mean, p50, p95, p99, min, max, stddev, sample_count`.

    `stddev` is the sample standard deviation, sqrt(Σ(x − x̄)² / (n − 1)), and 0.0 when a
    series has fewer than two samples (a single point has no spread to speak of).
    Non-finite values are ignored. Empty input gives an empty frame with the same columns.
    """
    samples = _finite(samples)
    if samples.empty:
        return _empty(SUMMARY_COLUMNS)
    grouped = samples.groupby(_KEYS, sort=True)["value"]
    summary = grouped.agg(["mean", "min", "max", "size"])
    percentiles = grouped.quantile(list(_QUANTILES.values())).unstack()
    percentiles.columns = list(_QUANTILES)
    summary = summary.join(percentiles)
    summary["stddev"] = _sample_stddev(grouped)
    summary["sample_count"] = summary.pop("size").astype("int64")
    summary = summary.reset_index()
    return summary[list(SUMMARY_COLUMNS)]


def hourly_profile(samples: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """Mean, stddev (ddof=1, 0.0 below two samples) and count per hour of the local day.

    `hour` is 0-23 on the wall clock of `timezone` (the release timezone), so a daily
    traffic pattern lines up with the hours an SRE reads on their dashboards. Hours
    without samples have no row.
    """
    samples = _finite(samples)
    if samples.empty:
        return _empty(HOURLY_PROFILE_COLUMNS)
    ts = pd.to_datetime(samples["ts"])
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    hour = ts.dt.tz_convert(timezone).dt.hour.astype("int64").rename("hour")
    grouped = samples.groupby([samples["service"], samples["kpi"], hour], sort=True)["value"]
    profile = grouped.agg(["mean", "size"])
    profile["stddev"] = _sample_stddev(grouped)
    profile["sample_count"] = profile.pop("size").astype("int64")
    profile = profile.reset_index()
    return profile[list(HOURLY_PROFILE_COLUMNS)]
