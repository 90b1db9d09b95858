"""SLO compliance: error budget, burn rate, budget consumed and burn-rate alerts.

The terms are the Google SRE Workbook's (ch. 2 "Implementing SLOs", ch. 5 "Alerting on
SLOs"), as Sloth and Pyrra also name them:

- **SLI**: the share of good events; its complement is the *error ratio* (`bad_fraction`).
- **error budget** = 1 − target, the error ratio the SLO allows over its period (30 days).
- **burn rate** = observed error ratio ÷ error budget. At 1 the budget lasts exactly the
  period; at 14.4 a 30-day budget is gone in 50 hours.
- **budget consumed** = bad events in the window ÷ bad events the budget allows over the
  whole period.
- **multi-window, multi-burn-rate alerts** (Workbook ch. 5, "6: Multiwindow,
  Multi-Burn-Rate Alerts", table 5-8): fire when the burn rate over a long window *and* over
  a short window both exceed the same threshold; the short window makes the alert reset
  quickly once the burn stops.

Two kinds of SLI (`SloDefinition.sli`):

- `ratio`: the KPI is already a percentage of good events (higher_is_better, availability)
  or of bad events (lower_is_better, error rate); each sample is one step's error ratio.
- `threshold`: a sample is bad when the KPI is on the wrong side of `objective` (a
  time-slice SLO, e.g. "p99 latency ≤ 200 ms in 99 % of minutes"); a value equal to the
  objective is good.

Every sample weighs the same: without request counts a step's error ratio stands for that
step (the Workbook's "time-based" approximation).

**Low traffic.** Given the day's request count (`traffic.request_count` of the service's
throughput, or `traffic.traffic_counts_from_frames(...).requests`), a ratio SLI judged on
fewer than `min_requests` requests is "insufficient traffic" (`SloDayStatus.
insufficient_traffic`, with a `reason`): neither compliant-or-not evidence nor a breach,
since one failed request of 500 is already twice a 99.9 % budget. `slo_window_summary`
leaves such days (an `insufficient_traffic` column in `by_day`) out of the window's budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tars_pipeline.config import KpiDefinition, SloDefinition
from tars_pipeline.judge.direction import beyond, has_bad_side
from tars_pipeline.judge.formatting import finite_or_none
from tars_pipeline.judge.traffic import (
    DEFAULT_MIN_REQUESTS,
    has_enough_traffic,
    insufficient_traffic_reason,
)

# burn_rate ≤ 1 must hold for an error ratio equal to the budget, which binary floating
# point can land a hair above (0.001 / (1 − 0.999) = 0.9999999999999991 or 1.0000000000000009).
_TOLERANCE = 1e-9
_ONE_HOUR = pd.Timedelta(hours=1)


# ---------------------------------------------------------------------------------------
# Per sample and per day
# ---------------------------------------------------------------------------------------


def error_budget(slo: SloDefinition) -> float:
    """The allowed error ratio: 1 − target (SRE Workbook ch. 2), e.g. 0.001 for 99.9 %."""
    return 1.0 - slo.target_pct / 100.0


def bad_per_sample(values: np.ndarray, slo: SloDefinition, kpi: KpiDefinition) -> np.ndarray:
    """Each sample's error ratio in [0, 1]; NaN stays NaN (a gap, not a good or bad step).

    ratio SLI, higher_is_better KPI in % of good events: 1 − v/100; lower_is_better KPI in %
    of bad events: v/100 (clipped to [0, 1]). threshold SLI: 1.0 when the sample is on the
    wrong side of `slo.objective` (above it for lower_is_better, below for higher_is_better),
    else 0.0. A neutral KPI has no bad side and cannot carry an SLO.
    """
    if slo.kpi != kpi.name:
        raise ValueError(f"SLO {slo.name!r} is on KPI {slo.kpi!r}, not {kpi.name!r}")
    if not has_bad_side(kpi.direction):
        raise ValueError(f"SLO {slo.name!r}: KPI {kpi.name!r} is neutral, it has no bad side")
    values = np.asarray(values, dtype="float64")
    if slo.sli == "ratio":
        bad_events = kpi.direction == "lower_is_better"  # the KPI counts bad events, not good
        bad = values / 100.0 if bad_events else 1.0 - values / 100.0
        return np.clip(bad, 0.0, 1.0)
    objective = float(slo.objective)  # type: ignore[arg-type]  # validated by the model
    wrong_side = beyond(values, objective, kpi.direction)
    return np.where(np.isfinite(values), wrong_side.astype("float64"), np.nan)


def bad_fraction(values: np.ndarray, slo: SloDefinition, kpi: KpiDefinition) -> float:
    """The error ratio of a set of samples: the mean of `bad_per_sample` over finite samples.

    No samples give 0.0, as a Prometheus ratio with no bad events would: "no data" is not
    told apart here but by the caller's sample count (`SloDayStatus.no_data`).
    """
    bad = bad_per_sample(values, slo, kpi)
    finite = bad[np.isfinite(bad)]
    return float(finite.mean()) if finite.size else 0.0


@dataclass(frozen=True)
class SloDayStatus:
    """One SLO on one service-day, with the numbers that decide it.

    - bad_fraction: the day's error ratio; burn_rate = bad_fraction / error budget
    - compliant: burn_rate ≤ 1 (the day spent no more than its share of the budget)
    - utilisation: how much of the objective the day uses. ratio SLI: the burn rate.
      threshold SLI: the day's statistic against the objective (observed / objective for
      lower_is_better, objective / observed for higher_is_better), so 180 ms against a
      200 ms objective is 0.9. None when undefined (no data, or a zero denominator).
    - breached: utilisation > 1 or not compliant.
    - requests: the day's request count when the caller gave one; insufficient_traffic:
      a ratio SLI with fewer than min_requests requests, then compliant, not breached,
      utilisation None (not judged), and `reason` says why. bad_fraction and burn_rate keep
      the numbers measured.
    """

    slo: str
    bad_fraction: float
    burn_rate: float
    compliant: bool
    utilisation: float | None
    breached: bool
    sample_count: int
    requests: float | None = None
    insufficient_traffic: bool = False
    reason: str | None = None

    @property
    def no_data(self) -> bool:
        return self.sample_count == 0


def _threshold_utilisation(
    statistic_value: float, slo: SloDefinition, kpi: KpiDefinition
) -> float | None:
    if not math.isfinite(statistic_value):
        return None
    objective = float(slo.objective)  # type: ignore[arg-type]
    if kpi.direction == "lower_is_better":
        numerator, denominator = statistic_value, objective
    else:
        numerator, denominator = objective, statistic_value
    if denominator <= 0:
        return None
    return numerator / denominator


def slo_day_status(
    values: np.ndarray,
    slo: SloDefinition,
    kpi: KpiDefinition,
    statistic_value: float,
    *,
    requests: float | None = None,
    min_requests: float = DEFAULT_MIN_REQUESTS,
) -> SloDayStatus:
    """Judge one SLO on one day's samples; `statistic_value` is the day's KPI statistic
    (the one drift compares), used by threshold SLIs for utilisation.

    A day without samples is compliant and not breached, with `utilisation` None and
    `sample_count` 0: the SLO cannot be judged, which the caller reports as missing data.
    With `requests` (the day's request count) below `min_requests`, a ratio SLI's day is
    "insufficient traffic": compliant, not breached, `utilisation` None, with a `reason`.
    Without `requests` (None) nothing changes.
    """
    values = np.asarray(values, dtype="float64")
    sample_count = int(np.isfinite(values).sum())
    fraction = bad_fraction(values, slo, kpi)
    burn_rate = fraction / error_budget(slo)
    compliant = burn_rate <= 1.0 + _TOLERANCE
    if sample_count == 0:
        utilisation = None
    elif slo.sli == "ratio":
        utilisation = burn_rate
    else:
        utilisation = _threshold_utilisation(float(statistic_value), slo, kpi)
    breached = (not compliant) or (utilisation is not None and utilisation > 1.0 + _TOLERANCE)
    status = SloDayStatus(
        slo=slo.name,
        bad_fraction=fraction,
        burn_rate=burn_rate,
        compliant=bool(compliant),
        utilisation=utilisation,
        breached=bool(breached),
        sample_count=sample_count,
        requests=requests,
    )
    if (
        requests is None
        or slo.sli != "ratio"
        or sample_count == 0
        or has_enough_traffic(requests, min_requests)
    ):
        return status
    return replace(
        status,
        compliant=True,
        utilisation=None,
        breached=False,
        insufficient_traffic=True,
        reason=insufficient_traffic_reason(requests, min_requests),
    )


# ---------------------------------------------------------------------------------------
# Multi-window, multi-burn-rate alerts (SRE Workbook ch. 5, table 5-8)
# ---------------------------------------------------------------------------------------


def burn_rate_threshold(
    budget_consumed_fraction: float, period_days: int, long_window: pd.Timedelta
) -> float:
    """The burn rate at which `budget_consumed_fraction` of the period's budget is spent
    within `long_window`: fraction × period hours ÷ window hours (SRE Workbook ch. 5).

    For a 30-day period: 2 % in 1 h → 14.4, 5 % in 6 h → 6, 10 % in 3 d → 1.
    """
    period_hours = period_days * 24.0
    return budget_consumed_fraction * period_hours / (long_window / _ONE_HOUR)


@dataclass(frozen=True)
class BurnRateAlert:
    """One row of the Workbook's table 5-8: a severity, its two windows, and the share of
    the period's budget that the long window may burn before it fires."""

    severity: str
    long_window: pd.Timedelta
    short_window: pd.Timedelta
    budget_consumed_fraction: float

    def burn_rate_threshold(self, period_days: int) -> float:
        return burn_rate_threshold(self.budget_consumed_fraction, period_days, self.long_window)


MULTIWINDOW_ALERTS: tuple[BurnRateAlert, ...] = (
    BurnRateAlert("page", pd.Timedelta(hours=1), pd.Timedelta(minutes=5), 0.02),
    BurnRateAlert("page", pd.Timedelta(hours=6), pd.Timedelta(minutes=30), 0.05),
    BurnRateAlert("ticket", pd.Timedelta(days=3), pd.Timedelta(hours=6), 0.10),
)


def window_label(window: pd.Timedelta) -> str:
    """A Prometheus-style duration: 5m, 1h, 3d."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _iso(timestamp: pd.Timestamp) -> str:
    return timestamp.isoformat()


def multiwindow_alerts(
    ts: pd.Series,
    bad: np.ndarray,
    slo: SloDefinition,
    step_seconds: int,
    *,
    alerts: Sequence[BurnRateAlert] = MULTIWINDOW_ALERTS,
) -> list[dict]:
    """The burn-rate alerts that would have fired on this series (one service, one SLO).

    At each sample the error ratio over the trailing long and short windows is a time-based
    rolling mean of `bad` (per-sample error ratios); the alert fires where both burn rates
    exceed the threshold, as in the Workbook's rule
    ``error_ratio[1h] > 14.4 × budget and error_ratio[5m] > 14.4 × budget``.
    A point is only evaluated once the data covers a whole long window, so a 3-day ticket
    needs three days of samples. Gaps (NaN) count as neither good nor bad.

    Each fired alert: severity, long_window, short_window (labels and seconds),
    burn_rate_threshold, budget_consumed_pct (the table's "budget consumed"), first_fired and
    last_fired (ISO timestamps), points_firing, duration_seconds (points × step), episodes
    (separate firing stretches) and peak_burn_rate (long window, while firing).
    """
    values = np.asarray(bad, dtype="float64")
    if len(values) != len(ts):
        raise ValueError(f"ts has {len(ts)} points but bad has {len(values)}")
    series = pd.Series(values, index=pd.DatetimeIndex(ts)).sort_index()
    series = series[np.isfinite(series.to_numpy())]
    if series.empty:
        return []
    budget = error_budget(slo)
    step = pd.Timedelta(seconds=step_seconds)
    elapsed = series.index - series.index[0]
    fired: list[dict] = []
    for alert in alerts:
        threshold = alert.burn_rate_threshold(slo.period_days)
        long_burn = series.rolling(alert.long_window).mean() / budget
        short_burn = series.rolling(alert.short_window).mean() / budget
        covered = elapsed >= alert.long_window - step
        firing = (long_burn.to_numpy() > threshold) & (short_burn.to_numpy() > threshold)
        firing &= np.asarray(covered)
        if not firing.any():
            continue
        at = series.index[firing]
        episodes = int(firing[0]) + int((np.diff(firing.astype("int8")) == 1).sum())
        points = int(firing.sum())
        fired.append(
            {
                "severity": alert.severity,
                "long_window": window_label(alert.long_window),
                "short_window": window_label(alert.short_window),
                "long_window_seconds": int(alert.long_window.total_seconds()),
                "short_window_seconds": int(alert.short_window.total_seconds()),
                "burn_rate_threshold": threshold,
                "budget_consumed_pct": alert.budget_consumed_fraction * 100.0,
                "first_fired": _iso(at[0]),
                "last_fired": _iso(at[-1]),
                "points_firing": points,
                "duration_seconds": points * step_seconds,
                "episodes": episodes,
                "peak_burn_rate": float(long_burn.to_numpy()[firing].max()),
            }
        )
    return fired


# ---------------------------------------------------------------------------------------
# The window: budget consumed, days to exhaustion
# ---------------------------------------------------------------------------------------


def days_to_exhaustion(
    budget_consumed_pct: float, current_burn_rate: float, period_days: int
) -> float | None:
    """Days until the remaining budget is gone at the current burn rate.

    At burn rate b a day spends b / period_days of the budget, so the remaining share
    (1 − consumed) lasts (1 − consumed) × period_days / b days. 0 when already exhausted;
    None when nothing burns (b ≤ 0: never), or burns so little that the quotient is no
    finite number of days.
    """
    remaining = 1.0 - budget_consumed_pct / 100.0
    if remaining <= 0:
        return 0.0
    if current_burn_rate <= 0:
        return None
    with np.errstate(over="ignore", divide="ignore"):
        days = np.float64(remaining) * period_days / np.float64(current_burn_rate)
    return float(days) if np.isfinite(days) else None


def _window_samples_bad(
    samples: pd.DataFrame, slo: SloDefinition, kpi: KpiDefinition | None
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """The SLO's samples: timestamps, per-sample error ratios, and KPI values."""
    frame = samples
    if "kpi" in frame.columns:
        frame = frame[frame["kpi"] == slo.kpi]
    if "service" in frame.columns and frame["service"].nunique() > 1:
        raise ValueError("slo_window_summary: samples must hold one service")
    values = (
        frame["value"].to_numpy(dtype="float64")
        if "value" in frame.columns
        else np.full(len(frame), np.nan)
    )
    if "bad" in frame.columns:
        return frame["ts"], frame["bad"].to_numpy(dtype="float64"), values
    if kpi is None:
        raise ValueError("slo_window_summary: pass kpi= (or a 'bad' column) with samples")
    return frame["ts"], bad_per_sample(values, slo, kpi), values


def slo_window_summary(
    by_day: pd.DataFrame,
    slo: SloDefinition,
    *,
    window_days: int,
    samples: pd.DataFrame | None = None,
    step_seconds: int = 60,
    kpi: KpiDefinition | None = None,
) -> dict:
    """One SLO over the release window for ONE service.

    `by_day` has a row per day: day, bad_fraction, burn_rate, compliant, sample_count (and
    optionally utilisation). `window_days` is the length of the window being summarised;
    the days with samples stand for it.

    - window error ratio = Σ bad_fraction·sample_count / Σ sample_count (sample-weighted)
    - burn_rate = window error ratio / error budget (the window's average burn)
    - budget_consumed_pct = burn_rate × window_days / period_days × 100, i.e. bad events in
      the window ÷ bad events the budget allows over the SLO period
    - days_to_exhaustion at the last observed day's burn rate (see `days_to_exhaustion`)
    - sli_pct = (1 − window error ratio) × 100; met = burn_rate ≤ 1
    - kpi_mean: the mean KPI value of `samples` (None without them)
    - alerts_fired: `multiwindow_alerts` on `samples` (columns ts and value, or a
      precomputed per-sample `bad`; filtered to the SLO's KPI when a kpi column exists;
      `kpi` is needed to turn values into error ratios). Empty without samples.

    Without any samples: sli_pct None, met False, nothing consumed.

    With an `insufficient_traffic` column in `by_day` (`SloDayStatus.insufficient_traffic`),
    those days are left out of every window figure as a day without samples is, each
    `by_day` record gets `insufficient_traffic`, and `days_insufficient_traffic` counts
    them (the last key). Without the column nothing changes.
    """
    budget = error_budget(slo)
    days = by_day.sort_values("day")
    counts = days["sample_count"].to_numpy(dtype="float64")
    fractions = days["bad_fraction"].to_numpy(dtype="float64")
    flags_traffic = "insufficient_traffic" in days.columns
    low_traffic = (
        days["insufficient_traffic"].fillna(False).to_numpy(dtype=bool)
        if flags_traffic
        else np.zeros(len(days), dtype=bool)
    )
    observed = (counts > 0) & np.isfinite(fractions) & ~low_traffic
    total = float(counts[observed].sum())
    has_data = total > 0
    window_bad = float((fractions[observed] * counts[observed]).sum() / total) if has_data else 0.0
    burn_rate = window_bad / budget
    consumed_pct = burn_rate * window_days / slo.period_days * 100.0
    current_burn = (
        float(days["burn_rate"].to_numpy(dtype="float64")[observed][-1]) if has_data else 0.0
    )

    by_day_records = []
    # Column lists, not `to_dict("records")`: the same Python values, without pandas'
    # per-call cost (a few ms for a week's rows, for every SLO of every service).
    names = ["day", "bad_fraction", "burn_rate", "compliant", "sample_count"]
    with_utilisation = "utilisation" in days.columns
    columns = [days[name].tolist() for name in names + ["utilisation"] * with_utilisation]
    for values, low in zip(zip(*columns, strict=True), low_traffic, strict=True):
        row = dict(zip(names + ["utilisation"] * with_utilisation, values, strict=True))
        record = {
            "day": int(row["day"]),
            "bad_fraction_pct": finite_or_none(float(row["bad_fraction"]) * 100.0),
            "burn_rate": finite_or_none(float(row["burn_rate"])),
            "compliant": bool(row["compliant"]),
            "sample_count": int(row["sample_count"]),
        }
        if with_utilisation:
            record["utilisation"] = finite_or_none(row["utilisation"])
        if flags_traffic:
            record["insufficient_traffic"] = bool(low)
        by_day_records.append(record)

    alerts: list[dict] = []
    kpi_mean = None
    if samples is not None and len(samples):
        ts, bad, values = _window_samples_bad(samples, slo, kpi)
        alerts = multiwindow_alerts(ts, bad, slo, step_seconds)
        finite_values = values[np.isfinite(values)]
        kpi_mean = float(finite_values.mean()) if finite_values.size else None

    summary = {
        "slo": slo.name,
        "kpi": slo.kpi,
        "sli": slo.sli,
        "objective": slo.objective,
        "target": slo.target_pct,
        "period_days": slo.period_days,
        "window_days": window_days,
        "days_observed": int(observed.sum()),
        "sample_count": int(total),
        "sli_pct": (1.0 - window_bad) * 100.0 if has_data else None,
        "kpi_mean": kpi_mean,
        "met": bool(has_data and burn_rate <= 1.0 + _TOLERANCE),
        "error_budget_pct": budget * 100.0,
        "budget_consumed_pct": consumed_pct,
        "budget_remaining_pct": max(0.0, 100.0 - consumed_pct),
        "exhausted": consumed_pct >= 100.0,
        "burn_rate": burn_rate,
        "current_burn_rate": current_burn,
        "days_to_exhaustion": days_to_exhaustion(consumed_pct, current_burn, slo.period_days),
        "compliant_days": int(days["compliant"].astype(bool)[observed].sum()),
        "by_day": by_day_records,
        "alerts_fired": alerts,
    }
    if flags_traffic:
        summary["days_insufficient_traffic"] = int(low_traffic.sum())
    return summary
