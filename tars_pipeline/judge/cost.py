"""Cost: what a day cost, how the window compares with GA day, and where to save.

Cost KPIs (`kind: cost`) are hourly prices in USD/h sampled every step, as OpenCost exports
them (`node_cpu_hourly_cost`, `node_ram_hourly_cost`, `pv_hourly_cost`): a day's cost is
the mean hourly price × the hours in that day. Taking the mean rather than a sum of samples
keeps a day with gaps from looking cheaper than it was.

Without cost metrics, usage × a price table gives the same USD/h (`pricing.priced_usage`,
`cost.prices`): usage KPIs (cores, GiB, GiB/h) are cost KPIs too, priced per service.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tars_pipeline.config import CostConfig, KpiDefinition, cost_resource_type, is_usage_kpi
from tars_pipeline.judge.pricing import priced_usage

DAILY_COST_COLUMNS: tuple[str, ...] = (
    "service",
    "resource_type",
    "cost_usd",
    "usd_per_hour",
    "sample_count",
)
_NEAR_ZERO_USD = 1e-9


def _hourly_by_resource(
    frame: pd.DataFrame, resource_types: Mapping[str, str], keys: list[str]
) -> pd.DataFrame:
    """USD/h per [day,] service × resource type: each KPI's mean, summed over the KPIs of
    one resource type (several cost KPIs of a type add up)."""
    per_kpi = (
        frame.groupby(keys, sort=True, observed=True)["value"].agg(["mean", "size"]).reset_index()
    )
    per_kpi["resource_type"] = per_kpi["kpi"].astype(str).map(resource_types)
    group = [key for key in keys if key != "kpi"] + ["resource_type"]
    return (
        per_kpi.groupby(group, sort=True, observed=True)
        .agg(usd_per_hour=("mean", "sum"), sample_count=("size", "sum"))
        .reset_index()
    )


def daily_cost(
    samples: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    *,
    hours_in_day: float,
    cost: CostConfig | None = None,
) -> pd.DataFrame:
    """Cost per service × resource type: cost_usd = mean(USD/h samples) × hours_in_day.

    `hours_in_day` is 24, or 23/25 on a daylight-saving day in the release timezone. With a
    `day` column in `samples` the result has one row per day too (every day then counts
    `hours_in_day` hours). Several cost KPIs of one resource type add up. Columns: [day,]
    service, resource_type, cost_usd, usd_per_hour, sample_count.

    With `cost.prices`, usage KPIs are priced into USD/h (`pricing.priced_usage`). Where
    both exist, per [day,] service × resource type the cost KPIs' samples win and usage
    fills in where they have none (`cost.basis: auto`); `basis: prices` takes usage only.
    """
    by_day = "day" in samples.columns
    columns = (["day"] if by_day else []) + list(DAILY_COST_COLUMNS)
    only_usage = cost is not None and cost.basis == "prices"
    cost_kpis = {
        name: kpi
        for name, kpi in kpis.items()
        if kpi.kind == "cost" and not is_usage_kpi(kpi) and not only_usage
    }
    frame = samples[samples["kpi"].isin(list(cost_kpis))]
    frame = frame[np.isfinite(frame["value"].to_numpy(dtype="float64"))]
    keys = (["day"] if by_day else []) + ["service", "kpi"]
    group = [key for key in keys if key != "kpi"] + ["resource_type"]
    result = None
    if not frame.empty:
        resource_types = {name: cost_resource_type(kpi) for name, kpi in cost_kpis.items()}
        result = _hourly_by_resource(frame, resource_types, keys)
    if cost is not None and cost.prices is not None:
        usage = samples[np.isfinite(samples["value"].to_numpy(dtype="float64"))]
        rates = priced_usage(usage, kpis, cost.prices, days_per_month=cost.days_per_month)
        if not rates.empty:
            resource_types = {
                str(name): cost_resource_type(kpis[str(name)]) for name in rates["kpi"].unique()
            }
            priced = _hourly_by_resource(rates, resource_types, keys)
            if result is not None:
                # Cost metrics win where they have samples: usage fills in the rest only.
                measured = pd.MultiIndex.from_frame(result[group])
                priced = priced[~pd.MultiIndex.from_frame(priced[group]).isin(measured)]
                priced = pd.concat([result, priced], ignore_index=True)
                priced = priced.sort_values(group, kind="stable", ignore_index=True)
            result = priced
    if result is None:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    result["cost_usd"] = result["usd_per_hour"] * hours_in_day
    result["sample_count"] = result["sample_count"].astype(int)
    return result[columns]


def change_pct(new: float | None, old: float | None) -> float | None:
    """(new − old) / |old| × 100; None when either is missing or old is ~0 (undefined)."""
    if new is None or old is None or abs(old) < _NEAR_ZERO_USD:
        return None
    return (new - old) / abs(old) * 100.0


def _breakdown(
    ga_day: pd.DataFrame, window: pd.DataFrame, column: str, window_days: int, total: float
) -> list[dict]:
    ga_by = ga_day.groupby(column)["cost_usd"].sum()
    window_by = window.groupby(column)["cost_usd"].sum()
    rows = []
    for name in sorted(set(ga_by.index) | set(window_by.index)):
        ga_cost = float(ga_by.get(name, 0.0)) if not ga_day.empty else None
        average = float(window_by.get(name, 0.0)) / window_days if window_days else None
        rows.append(
            {
                column: name,
                "ga_day_cost": ga_cost,
                "daily_average": average,
                "change_pct": change_pct(average, ga_cost),
                "share_pct": average / total * 100.0 if average is not None and total else None,
            }
        )
    return sorted(rows, key=lambda row: -(row["daily_average"] or row["ga_day_cost"] or 0.0))


def right_sizing_hints(
    window: pd.DataFrame,
    utilisation: pd.DataFrame,
    *,
    window_days: int,
    days_per_month: float,
    low_utilisation_pct: float,
    target_utilisation_pct: float,
    cpu_kpi: str,
    compute_resource_type: str,
) -> list[dict]:
    """A service whose mean CPU utilisation over the window is below `low_utilisation_pct`
    pays for idle compute: resized to run at `target_utilisation_pct`, it needs
    utilisation / target of its compute, saving (1 − utilisation / target) of that cost.
    """
    if utilisation is None or utilisation.empty or not window_days:
        return []
    cpu = utilisation[utilisation["kpi"] == cpu_kpi]
    if "day" in cpu.columns and (cpu["day"] >= 1).any():
        cpu = cpu[cpu["day"] >= 1]
    mean_cpu = cpu.groupby("service")["mean"].mean()
    compute = window[window["resource_type"] == compute_resource_type]
    compute_daily = compute.groupby("service")["cost_usd"].sum() / window_days
    hints = []
    for service, cpu_pct in mean_cpu.items():
        cpu_pct = float(cpu_pct)
        compute_cost = float(compute_daily.get(service, 0.0))
        if not math.isfinite(cpu_pct) or cpu_pct >= low_utilisation_pct or compute_cost <= 0:
            continue
        saving_share = 1.0 - max(cpu_pct, 0.0) / target_utilisation_pct
        saving_daily = compute_cost * saving_share
        monthly = saving_daily * days_per_month
        hints.append(
            {
                "kind": "right_sizing",
                "service": service,
                "resource_type": compute_resource_type,
                "title": (
                    f"Right-size {service} compute (CPU {cpu_pct:.1f} %, below "
                    f"{low_utilisation_pct:g} %)"
                ),
                "detail": (
                    f"Mean CPU utilisation over the window was {cpu_pct:.1f} %. Sized to run at "
                    f"~{target_utilisation_pct:g} %, compute would cost ~{saving_share:.0%} less: "
                    f"${compute_cost:,.2f}/day → ${compute_cost - saving_daily:,.2f}/day."
                ),
                "cpu_utilisation_pct": cpu_pct,
                "target_utilisation_pct": target_utilisation_pct,
                "current_daily_cost": compute_cost,
                "estimated_monthly_saving": monthly,
            }
        )
    return hints


def growth_hints(
    ga_day: pd.DataFrame,
    window: pd.DataFrame,
    *,
    window_days: int,
    days_per_month: float,
    growth_hint_pct: float,
) -> list[dict]:
    """A service × resource type whose daily average grew ≥ `growth_hint_pct` over GA day:
    back at the GA-day level it would save (average − GA day) × days_per_month."""
    if ga_day.empty or not window_days:
        return []
    keys = ["service", "resource_type"]
    ga_by = ga_day.groupby(keys)["cost_usd"].sum()
    window_by = window.groupby(keys)["cost_usd"].sum() / window_days
    hints = []
    for (service, resource), average in window_by.items():
        ga_cost = float(ga_by.get((service, resource), 0.0))
        growth = change_pct(float(average), ga_cost)
        if growth is None or growth < growth_hint_pct:
            continue
        increase = float(average) - ga_cost
        hints.append(
            {
                "kind": "cost_growth",
                "service": service,
                "resource_type": resource,
                "title": (
                    f"Review {resource} cost growth on {service} (+{growth:.1f} %: "
                    f"${ga_cost:,.2f} → ${float(average):,.2f}/day)"
                ),
                "detail": (
                    f"{resource.capitalize()} cost on {service} averaged "
                    f"${float(average):,.2f}/day "
                    f"against ${ga_cost:,.2f} on GA day. Check new replicas, larger instances or "
                    f"traffic growth; back at the GA-day level it saves "
                    f"${increase * days_per_month:,.0f}/month."
                ),
                "change_pct": growth,
                "current_daily_cost": float(average),
                "estimated_monthly_saving": increase * days_per_month,
            }
        )
    return hints


def first_day_beyond(
    cost_by_day: pd.Series, ga_day_cost: float | None, threshold_pct: float
) -> dict | None:
    """The first day 1..N whose total cost moved ≥ `threshold_pct` from GA day's, with the
    days after it: day, cost_usd, change_pct, and `held` (every later day stayed beyond the
    threshold on the same side: a level change, not a one-day spike). None when no day did,
    or GA day's cost is unknown or ~0 (a relative change is then undefined: `change_pct`)."""
    later = cost_by_day[cost_by_day.index >= 1].sort_index()
    moved = {int(day): change_pct(float(cost), ga_day_cost) for day, cost in later.items()}
    at_least = threshold_pct * (1 - 1e-9)
    beyond = [day for day, pct in moved.items() if pct is not None and abs(pct) >= at_least]
    if not beyond:
        return None
    day = beyond[0]
    side = 1.0 if moved[day] > 0 else -1.0
    return {
        "day": day,
        "cost_usd": float(later.loc[day]),
        "change_pct": moved[day],
        "threshold_pct": threshold_pct,
        "held": all(
            pct is not None and pct * side >= at_least
            for later_day, pct in moved.items()
            if later_day >= day
        ),
    }


def cost_analysis(
    daily: pd.DataFrame,
    utilisation: pd.DataFrame,
    *,
    days_per_month: float,
    low_utilisation_pct: float,
    target_utilisation_pct: float = 60.0,
    growth_hint_pct: float = 10.0,
    step_threshold_pct: float = 10.0,
    cpu_kpi: str = "cpu_utilization",
    compute_resource_type: str = "compute",
) -> dict:
    """GA-day cost vs the window's daily average, by resource type and service, with hints.

    `daily`: day, service, resource_type, cost_usd (days 0..N; `daily_cost` per day).
    `utilisation`: day, service, kpi, mean (daily KPI means; only `cpu_kpi` rows are used).

    - ga_day_cost = Σ day-0 cost (None without day 0)
    - daily_average = Σ cost over days 1..N ÷ number of those days with cost data
    - change_pct = (daily_average − ga_day_cost) / ga_day_cost × 100
    - projected_monthly = daily_average × days_per_month
    - by_resource / by_service: ga_day_cost, daily_average, change_pct, share_pct (of the
      window's daily average), largest first
    - level_change: the first day whose total cost is ≥ `step_threshold_pct` away from GA
      day (see `first_day_beyond`), so a step is dated when it starts, not when the week's
      average catches up
    - hints (largest saving first): right-sizing (see `right_sizing_hints`) and cost growth
      ≥ `growth_hint_pct` per service × resource type (see `growth_hints`), each with
      service, title, detail, estimated_monthly_saving.
    """
    ga_day = daily[daily["day"] == 0]
    window = daily[daily["day"] >= 1]
    window_days = int(window["day"].nunique())
    ga_day_cost = float(ga_day["cost_usd"].sum()) if not ga_day.empty else None
    daily_average = float(window["cost_usd"].sum()) / window_days if window_days else None
    total = daily_average or 0.0
    hints = right_sizing_hints(
        window,
        utilisation,
        window_days=window_days,
        days_per_month=days_per_month,
        low_utilisation_pct=low_utilisation_pct,
        target_utilisation_pct=target_utilisation_pct,
        cpu_kpi=cpu_kpi,
        compute_resource_type=compute_resource_type,
    ) + growth_hints(
        ga_day,
        window,
        window_days=window_days,
        days_per_month=days_per_month,
        growth_hint_pct=growth_hint_pct,
    )
    by_day = daily.groupby("day")["cost_usd"].sum()
    return {
        "level_change": first_day_beyond(by_day, ga_day_cost, step_threshold_pct),
        "ga_day_cost": ga_day_cost,
        "daily_average": daily_average,
        "change_pct": change_pct(daily_average, ga_day_cost),
        "window_days": window_days,
        "by_day": [{"day": int(day), "cost_usd": float(cost)} for day, cost in by_day.items()],
        "by_resource": _breakdown(ga_day, window, "resource_type", window_days, total),
        "by_service": _breakdown(ga_day, window, "service", window_days, total),
        "projected_monthly": daily_average * days_per_month if daily_average is not None else None,
        "days_per_month": days_per_month,
        "hints": sorted(hints, key=lambda hint: -hint["estimated_monthly_saving"]),
    }
