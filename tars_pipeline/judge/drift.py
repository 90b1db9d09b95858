"""Drift: how far a day's statistic moved from the baseline's, and whether that is bad.

SPEC §3 "Drift": drift_pct = (day − base) / |base| × 100, flagged when |drift_pct| ≥ the
KPI's threshold (default 10 %). *Adverse* drift is the part of the move in the KPI's bad
direction (up for lower_is_better, down for higher_is_better, never for neutral).

Where the baseline is zero or near it (|base| < kpi.near_zero) a percentage is undefined:
the row says so (`relative = False`, `drift_pct` and `adverse_drift_pct` NaN, which the JSON
writer maps to null) and carries the absolute change instead. Such a row is flagged when it
moved the bad way by more than `near_zero` — an error rate going from 0 to 0.3 % is news,
not a silent pass. Nothing here divides by zero or emits Infinity.

`compare_day` is the day's comparison as the pipeline runs it: the baseline is first turned
into an expectation for the hours the day covers (and, with a pre-GA reference week, for
its weekday; see `seasonality`), then `compute_drift` compares the two. The whole-day
comparison is kept alongside (`overall_*`), so a reader sees what the seasonality changed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tars_pipeline.config import KpiDefinition
from tars_pipeline.judge import seasonality
from tars_pipeline.judge.direction import adverse_signs
from tars_pipeline.judge.formatting import format_significant
from tars_pipeline.reporting.escape import markdown

DRIFT_COLUMNS: tuple[str, ...] = (
    "service",
    "kpi",
    "statistic",
    "baseline_value",
    "observed_value",
    "abs_change",
    "drift_pct",
    "relative",
    "adverse_drift_pct",
    "adverse_change",
    "threshold_pct",
    "flagged",
    "direction",
    "kind",
    "unit",
)
# What `compare_day` adds: how the baseline was matched to the day, and the plain
# whole-day comparison for contrast.
DAY_COMPARISON_COLUMNS: tuple[str, ...] = (
    "baseline_method",
    "hours_compared",
    "weekday_factor",
    "overall_baseline_value",
    "overall_observed_value",
    "overall_drift_pct",
    "max_hourly_drift_pct",
    "max_hourly_drift_hour",
)
_COMPARABLE = ("mean", "p50", "p95", "p99", "min", "max")
_KPI_ATTRIBUTES = ("statistic", "threshold_pct", "near_zero", "direction", "kind", "unit")
# A drift of exactly the threshold (e.g. an error rate 0.05 → 0.055 % at 10 %) must flag
# even though (0.055 − 0.05) / 0.05 × 100 is 9.999999999999995 in binary floating point.
_THRESHOLD_RELATIVE_TOLERANCE = 1e-9


def _empty_drift() -> pd.DataFrame:
    dtypes = {
        "relative": "bool",
        "flagged": "bool",
        **{name: object for name in ("service", "kpi", "statistic", "direction", "kind", "unit")},
    }
    return pd.DataFrame(
        {name: pd.Series(dtype=dtypes.get(name, "float64")) for name in DRIFT_COLUMNS}
    )


def _catalog_frame(kpis: Mapping[str, KpiDefinition]) -> pd.DataFrame:
    rows = [
        {"kpi": name, **{attribute: getattr(kpi, attribute) for attribute in _KPI_ATTRIBUTES}}
        for name, kpi in kpis.items()
    ]
    return pd.DataFrame(rows, columns=["kpi", *_KPI_ATTRIBUTES])


def _select_statistic(merged: pd.DataFrame, statistic: pd.Series, suffix: str) -> np.ndarray:
    """Row-wise `merged[statistic[i] + suffix][i]`: each KPI compares its own statistic.

    A statistic missing from the summary gives NaN, and the row is then left out.
    """
    selected = np.full(len(merged), np.nan)
    for name in statistic.unique():
        column = f"{name}{suffix}"
        if column in merged.columns:
            rows = (statistic == name).to_numpy()
            selected[rows] = merged.loc[rows, column].to_numpy(dtype="float64")
    return selected


def compute_drift(
    day_stats: pd.DataFrame,
    baseline_stats: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
) -> pd.DataFrame:
    """Drift of each (service, kpi) present in both summaries and in the KPI catalog.

    Inputs are `stats.summarise` frames. Per row, with base/day the KPI's `statistic`:

    - abs_change = day − base
    - drift_pct = (day − base) / |base| × 100, NaN when |base| < near_zero (`relative` False)
    - adverse_drift_pct = max(drift_pct, 0) for lower_is_better, max(−drift_pct, 0) for
      higher_is_better, 0.0 for neutral; NaN when not relative
    - adverse_change = the same in the KPI's unit (≥ 0; 0.0 for neutral)
    - flagged = |drift_pct| ≥ threshold_pct when relative, else adverse_change > near_zero

    Rows whose KPI is not in `kpis`, whose statistic is missing or non-finite on either
    side, or whose change overflows a float, are left out. The result is sorted by service and KPI.
    """
    if day_stats.empty or baseline_stats.empty or not kpis:
        return _empty_drift()
    keys = ["service", "kpi"]
    day = day_stats[keys + [c for c in _COMPARABLE if c in day_stats.columns]]
    base = baseline_stats[keys + [c for c in _COMPARABLE if c in baseline_stats.columns]]
    merged = day.merge(base, on=keys, how="inner", suffixes=("_day", "_base"))
    merged = merged.merge(_catalog_frame(kpis), on="kpi", how="inner")
    if merged.empty:
        return _empty_drift()
    statistic = merged["statistic"]
    observed = _select_statistic(merged, statistic, suffix="_day")
    baseline = _select_statistic(merged, statistic, suffix="_base")
    keep = np.isfinite(observed) & np.isfinite(baseline) & np.isfinite(observed - baseline)
    merged, observed, baseline = (
        merged.loc[keep].reset_index(drop=True),
        observed[keep],
        baseline[keep],
    )

    near_zero = merged["near_zero"].to_numpy(dtype="float64")
    threshold_pct = merged["threshold_pct"].to_numpy(dtype="float64")

    abs_change = observed - baseline
    magnitude = np.abs(baseline)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        drift_pct = abs_change / magnitude * 100.0
    relative = (magnitude >= near_zero) & (magnitude > 0) & np.isfinite(drift_pct)
    drift_pct = np.where(relative, drift_pct, np.nan)

    sign = adverse_signs(merged["direction"])
    adverse_change = np.maximum(sign * abs_change, 0.0)
    adverse_drift_pct = np.where(relative, np.maximum(sign * drift_pct, 0.0), np.nan)

    with np.errstate(invalid="ignore"):
        over_threshold = np.abs(drift_pct) >= threshold_pct * (1 - _THRESHOLD_RELATIVE_TOLERANCE)
    flagged = np.where(relative, over_threshold, adverse_change > near_zero)

    drift = pd.DataFrame(
        {
            "service": merged["service"],
            "kpi": merged["kpi"],
            "statistic": statistic,
            "baseline_value": baseline,
            "observed_value": observed,
            "abs_change": abs_change,
            "drift_pct": drift_pct,
            "relative": relative.astype(bool),
            "adverse_drift_pct": adverse_drift_pct,
            "adverse_change": adverse_change,
            "threshold_pct": threshold_pct,
            "flagged": flagged.astype(bool),
            "direction": merged["direction"],
            "kind": merged["kind"],
            "unit": merged["unit"],
        }
    )
    return drift.sort_values(keys, kind="stable").reset_index(drop=True)


def compare_day(
    day_samples: pd.DataFrame,
    baseline_samples: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    *,
    timezone: str,
    hour_of_day: bool = True,
    reference: seasonality.ReferenceDays | None = None,
    day_summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Drift of one day against the baseline, matched for the time of day (and weekday).

    1. `seasonality.expectation`: the day's statistics over the local hours both sides
       cover, and the baseline's expectation for exactly those hours (× the weekday factor
       with a reference week);
    2. `compute_drift` of the two: DRIFT_COLUMNS, as SPEC §3 defines drift;
    3. the plain whole-day comparison for contrast: overall_baseline_value,
       overall_observed_value, overall_drift_pct (NaN when undefined);
    4. the largest hour-of-day drift of the day vs the baseline's same hour
       (max_hourly_drift_pct, max_hourly_drift_hour; NaN / -1 when undefined).

    baseline_method says what was compared ("hour_of_day", "+weekday" when a factor was
    applied, "overall" when no hour was in common), hours_compared over how many hours.
    Inputs are sample frames (service, kpi, ts, value), already cleaned (`stats.prefilter`,
    `maintenance.exclude_maintenance`). `day_summary`, when the caller has it, is
    `summarise(day_samples)`. Columns: DRIFT_COLUMNS + DAY_COMPARISON_COLUMNS.
    """
    expected = seasonality.expectation(
        day_samples,
        baseline_samples,
        timezone,
        hour_of_day=hour_of_day,
        reference=reference,
        kpis=kpis,
        day_summary=day_summary,
    )
    drift = compute_drift(expected.day_stats, expected.baseline_stats, kpis)
    overall = compute_drift(expected.day_summary, expected.baseline_summary, kpis)
    overall = overall[["service", "kpi", "baseline_value", "observed_value", "drift_pct"]].rename(
        columns={
            "baseline_value": "overall_baseline_value",
            "observed_value": "overall_observed_value",
            "drift_pct": "overall_drift_pct",
        }
    )
    hourly = seasonality.largest_hourly_drift(
        seasonality.hourly_comparison(
            day_samples,
            baseline_samples,
            timezone,
            kpis,
            baseline_profile=expected.baseline_profile,
        )
    )
    keys = ["service", "kpi"]
    drift = (
        drift.merge(expected.info, on=keys, how="left")
        .merge(overall, on=keys, how="left")
        .merge(hourly, on=keys, how="left")
    )
    drift["baseline_method"] = drift["baseline_method"].fillna("overall")
    drift["hours_compared"] = drift["hours_compared"].fillna(0).astype("int64")
    drift["weekday_factor"] = drift["weekday_factor"].fillna(1.0).astype("float64")
    drift["max_hourly_drift_hour"] = drift["max_hourly_drift_hour"].fillna(-1).astype("int64")
    for column in (
        "overall_baseline_value",
        "overall_observed_value",
        "overall_drift_pct",
        "max_hourly_drift_pct",
    ):
        drift[column] = drift[column].astype("float64")
    return drift[[*DRIFT_COLUMNS, *DAY_COMPARISON_COLUMNS]]


def _table_value(value: float) -> str:
    """A value in the drift table: six significant digits, thousands separated only from
    a million on (the table keeps the decimals a smaller figure has)."""
    return format_significant(value, 6, thousands_from=1e6)


def _drift_cell(row: pd.Series) -> str:
    if row["relative"]:
        return f"{row['drift_pct']:+.1f} %"
    change = row["abs_change"]
    sign = "+" if change >= 0 else "-"
    return f"n/a (abs {sign}{_table_value(abs(change))} {markdown(row['unit'])})"


def _flag_cell(row: pd.Series) -> str:
    if not row["flagged"]:
        return ""
    if row["direction"] == "neutral":
        return "flagged"
    adverse = row["adverse_change"] > 0
    return "flagged (adverse)" if adverse else "flagged (better)"


def drift_table_markdown(drift: pd.DataFrame, limit: int = 20) -> str:
    """A GitHub-Markdown table of the drift rows: flagged first, then by |drift|.

    Columns: Service | KPI | Baseline | Observed | Drift | Flag. Rows without a relative
    drift show "n/a (abs +X unit)"; among flagged rows they sort first, since a change
    from ~0 is the largest relative move there is. At most `limit` rows are listed; a
    final line says how many were left out.
    """
    header = (
        "| Service | KPI | Baseline | Observed | Drift | Flag |\n"
        "| --- | --- | ---: | ---: | ---: | --- |"
    )
    if drift.empty:
        return header + "\n\n_No KPI drift to report._"
    magnitude = drift["drift_pct"].abs()
    undefined_rank = np.where(drift["flagged"], np.inf, -1.0)
    order = drift.assign(
        _flagged=drift["flagged"].astype(bool),
        _magnitude=magnitude.fillna(pd.Series(undefined_rank, index=drift.index)),
    ).sort_values(
        ["_flagged", "_magnitude", "service", "kpi"],
        ascending=[False, False, True, True],
        kind="stable",
    )
    shown = order.head(max(limit, 0))
    lines = [header]
    for _, row in shown.iterrows():
        unit = markdown(row["unit"])
        cells = [
            markdown(row["service"]),
            markdown(row["kpi"]),
            f"{_table_value(row['baseline_value'])} {unit}",
            f"{_table_value(row['observed_value'])} {unit}",
            _drift_cell(row),
            _flag_cell(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    hidden = len(order) - len(shown)
    if hidden > 0:
        lines.append(f"\n_{hidden} more row(s) not shown._")
    return "\n".join(lines)
