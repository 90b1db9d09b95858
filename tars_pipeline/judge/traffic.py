"""Request and error counts behind a percentage KPI: a rate test, and a low-traffic guard.

An error rate in % says nothing about how many requests it was measured on. Two rules need
the counts, estimated from the service's `throughput` (req/s) and the KPI's samples at the
same timestamps, each sample standing for one step of `step_seconds`:

    requests_i = throughput_i · step_seconds
    errors_i   = requests_i · error_pct_i / 100      (error_pct = 100 − availability)

summed over a window (a day, or the GA day).

- **Rate test** (`rate_test`). Where the GA day had ~no errors, a relative change is
  undefined and a rank test on per-minute percentages misses errors that came in a few
  minutes (the hole Kayenta's users hit, kayenta#377). Errors are then counted:
  with k₁ errors in n₁ baseline requests and k₂ in n₂ requests on the day, under equal
  rates and given k₁ + k₂, k₂ ~ Binomial(k₁ + k₂, n₂ / (n₁ + n₂)) — the conditional test
  for two Poisson rates (Przyborowski & Wileński 1940; Gu et al., "Testing the ratio of
  two Poisson rates", Biometrical Journal 50(2), 2008). The one-sided p-value is
  P(X ≥ k₂) (`scipy.stats.binomtest`, alternative "greater"): small when the day's error
  proportion exceeds the baseline's.
- **Low-traffic guard** (`has_enough_traffic`). A day judged on fewer than `min_requests`
  requests is "insufficient traffic": one failed request of 500 is 0.2 %, twice a 99.9 %
  SLO's budget, and says nothing about the release. The default, 10 000 per day-window,
  keeps one failed request at most a tenth of a 99.9 % SLO's daily budget (10 / 0.001).

Pure: numpy, pandas and scipy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np
import pandas as pd

ErrorShare = Literal["bad", "good"]
# KPIs that are a percentage of requests: failed ones ("bad") or served ones ("good").
ERROR_LIKE_KPIS: Mapping[str, ErrorShare] = MappingProxyType(
    {"error_rate": "bad", "availability": "good"}
)
THROUGHPUT_KPI = "throughput"
# Thresholds.min_requests' default (config.py states the same number).
DEFAULT_MIN_REQUESTS = 10_000.0


def error_share(kpi_name: str) -> ErrorShare | None:
    """ "bad" for error_rate (% of requests failed), "good" for availability (% served),
    None for a KPI that is not a share of requests."""
    return ERROR_LIKE_KPIS.get(kpi_name)


def error_pct(values: np.ndarray, share: ErrorShare) -> np.ndarray:
    """The samples as % of requests that failed, clipped to [0, 100]; NaN stays NaN."""
    values = np.asarray(values, dtype="float64")
    failed = values if share == "bad" else 100.0 - values
    return np.clip(failed, 0.0, 100.0)


@dataclass(frozen=True)
class TrafficCounts:
    """Estimated requests and errors over a window, and the samples they come from."""

    requests: float
    errors: float
    samples: int

    @property
    def error_rate_pct(self) -> float | None:
        """errors / requests · 100; None without requests."""
        return self.errors / self.requests * 100.0 if self.requests > 0 else None


def request_count(throughput: np.ndarray, step_seconds: float) -> float:
    """Σ throughput · step_seconds over the finite, non-negative samples (req/s → requests)."""
    rps = np.asarray(throughput, dtype="float64")
    rps = rps[np.isfinite(rps) & (rps >= 0)]
    return float(rps.sum() * step_seconds)


def traffic_counts(
    throughput: np.ndarray, values: np.ndarray, step_seconds: float, share: ErrorShare
) -> TrafficCounts:
    """Requests and errors from aligned samples (the same timestamps, in the same order):
    Σ throughput_i · step and Σ throughput_i · step · error_pct_i / 100, over the samples
    where both are finite (and throughput ≥ 0)."""
    rps = np.asarray(throughput, dtype="float64")
    failed = error_pct(values, share)
    if rps.shape != failed.shape:
        raise ValueError(f"throughput has {rps.shape} samples, the KPI {failed.shape}")
    both = np.isfinite(rps) & np.isfinite(failed) & (rps >= 0)
    requests = rps[both] * step_seconds
    return TrafficCounts(
        requests=float(requests.sum()),
        errors=float((requests * failed[both] / 100.0).sum()),
        samples=int(both.sum()),
    )


def traffic_counts_from_frames(
    throughput: pd.DataFrame | None,
    values: pd.DataFrame | None,
    step_seconds: float,
    share: ErrorShare,
) -> TrafficCounts | None:
    """`traffic_counts` of two frames with `ts` and `value` (one service; throughput and
    the error-like KPI), paired on equal `ts`. A timestamp on one side only is left out.

    None when no timestamp pairs up (no throughput measured: the counts are unknown, which
    is not the same as 0 requests); pass that None on to `compare_samples` as it is."""
    if throughput is None or values is None or throughput.empty or values.empty:
        return None
    paired = _paired_on_ts(throughput, values)
    if paired is None:
        return None
    return traffic_counts(*paired, step_seconds, share)


def _ts_codes(frame: pd.DataFrame) -> np.ndarray | None:
    """`ts` as int64 nanoseconds, or None when it is not a datetime column."""
    ts = frame["ts"]
    if not pd.api.types.is_datetime64_any_dtype(ts.dtype):
        return None
    # UTC nanoseconds, as `ts.dt.as_unit("ns").array.asi8` gives them, without the
    # accessor's cost (this runs for every service, KPI and day).
    return ts.to_numpy(dtype="datetime64[ns]").view("int64")


def _paired_on_ts(left: pd.DataFrame, right: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The two frames' values on the timestamps both have, in `left`'s order, the first
    sample of a repeated timestamp kept on each side (an inner merge on de-duplicated `ts`,
    done on integer codes: this runs once per service, KPI and day)."""
    left_ts, right_ts = _ts_codes(left), _ts_codes(right)
    if left_ts is None or right_ts is None:
        a = left[["ts", "value"]].drop_duplicates("ts")
        b = right[["ts", "value"]].drop_duplicates("ts")
        paired = a.merge(b, on="ts", suffixes=("_rps", "_kpi"))
        if paired.empty:
            return None
        return paired["value_rps"].to_numpy("float64"), paired["value_kpi"].to_numpy("float64")
    _, left_first = np.unique(left_ts, return_index=True)
    left_rows = np.sort(left_first)
    right_unique, right_first = np.unique(right_ts, return_index=True)
    wanted = left_ts[left_rows]
    at = np.minimum(np.searchsorted(right_unique, wanted), len(right_unique) - 1)
    found = right_unique[at] == wanted
    if not found.any():
        return None
    left_values = left["value"].to_numpy("float64")[left_rows[found]]
    right_values = right["value"].to_numpy("float64")[right_first[at[found]]]
    return left_values, right_values


def has_enough_traffic(requests: float, min_requests: float = DEFAULT_MIN_REQUESTS) -> bool:
    """At least `min_requests` requests in the window: its error rate can be judged."""
    return bool(requests >= min_requests)


def insufficient_traffic_reason(
    requests: float, min_requests: float = DEFAULT_MIN_REQUESTS, what: str = "the day"
) -> str:
    """The sentence a report shows for a window judged on too few requests."""
    return (
        f"insufficient traffic: {requests:,.0f} requests on {what}, fewer than "
        f"min_requests {min_requests:,.0f}; its error rate is not judged"
    )


@dataclass(frozen=True)
class RateTest:
    """The conditional binomial test of the day's error proportion against the baseline's.

    Counts are rounded to whole errors; `*_rate_pct` are errors / requests · 100 (None
    without requests).
    """

    p_value: float
    baseline_errors: int
    baseline_requests: float
    observed_errors: int
    observed_requests: float
    baseline_rate_pct: float | None
    observed_rate_pct: float | None

    @property
    def higher(self) -> bool:
        """The day's error proportion is above the baseline's."""
        base = self.baseline_rate_pct or 0.0
        return self.observed_rate_pct is not None and self.observed_rate_pct > base

    def is_adverse(self, p_threshold: float) -> bool:
        """Significant at `p_threshold` and the day's proportion is the higher one."""
        return self.p_value < p_threshold and self.higher


def rate_test(baseline: TrafficCounts, observed: TrafficCounts) -> RateTest:
    """One-sided test that the day's error proportion exceeds the baseline's: given
    k₁ + k₂ errors, k₂ ~ Binomial(k₁ + k₂, n₂ / (n₁ + n₂)) under equal rates; p = P(X ≥ k₂).

    p = 1 when either side has no requests or there is no error at all.
    """
    from scipy import stats  # imported when used: ~0.5 s a process

    k1, k2 = round(baseline.errors), round(observed.errors)
    n1, n2 = baseline.requests, observed.requests
    p_value = 1.0
    if n1 > 0 and n2 > 0 and k1 + k2 > 0:
        p_value = float(stats.binomtest(k2, k1 + k2, n2 / (n1 + n2), alternative="greater").pvalue)
    return RateTest(
        p_value=min(max(p_value, 0.0), 1.0),
        baseline_errors=k1,
        baseline_requests=n1,
        observed_errors=k2,
        observed_requests=n2,
        baseline_rate_pct=k1 / n1 * 100.0 if n1 > 0 else None,
        observed_rate_pct=k2 / n2 * 100.0 if n2 > 0 else None,
    )
