"""Usage × a price table: what a service's usage costs per hour, for a source without
cost metrics (`cost.prices`).

A usage sample is an amount in use at that moment: CPU cores, GiB of memory, GiB of
storage, GiB per hour sent. Times the price of one unit it becomes a cost rate in USD/h,
the unit of OpenCost's cost metrics, so `cost.daily_cost` costs both the same way: a
day's cost is the mean USD/h × the hours in the day (23, 24 or 25). Over a day of
`hours` hours, with the mean usage ū:

- compute: core-hours = ū cores × hours; × the price per core-hour;
- memory: GiB-hours = ū GiB × hours; × the price per GiB-hour;
- storage: GiB-months = ū GiB × hours / (days_per_month × 24 h); × the price per
  GiB-month (the month `cost.days_per_month` long, as in the monthly projection);
- network: GiB = ū GiB/h × hours; × the price per GiB.

Per sample interval (one step of `step_seconds`) that is usage × price × step / 3600 s
(and / (days_per_month × 24) more for storage); the mean × hours is that sum when the
day is complete, and does not make a day with gaps look cheaper.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tars_pipeline.config import KpiDefinition, PriceTable, cost_resource_type, is_usage_kpi

HOURS_PER_DAY = 24.0


def price_period_hours(resource_type: str, *, days_per_month: float) -> float:
    """How many hours one price covers: a month of `days_per_month` days for storage (per
    GiB-month), one hour for compute and memory (per core-hour, per GiB-hour). Network is
    priced per GiB and its usage is in GiB/h, so one hour too."""
    return days_per_month * HOURS_PER_DAY if resource_type == "storage" else 1.0


def hourly_cost(
    usage: float | np.ndarray, price: float, resource_type: str, *, days_per_month: float
) -> float | np.ndarray:
    """USD/h of `usage` (in the resource type's usage unit: cores, GiB, GiB, GiB/h) at
    `price` (per core-hour, GiB-hour, GiB-month, GiB): usage × price / period hours."""
    return usage * price / price_period_hours(resource_type, days_per_month=days_per_month)


def priced_usage(
    samples: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    prices: PriceTable,
    *,
    days_per_month: float,
) -> pd.DataFrame:
    """The usage KPIs' samples as cost rates: `value` in USD/h, with a `resource_type`
    column. A service without a price for a resource type (neither the table's nor its
    own override) is left out: its usage has no cost."""
    usage = {name: kpi for name, kpi in kpis.items() if is_usage_kpi(kpi)}
    frame = samples[samples["kpi"].isin(list(usage))]
    if frame.empty:
        return frame.assign(resource_type=pd.Series(dtype=object))
    parts = []
    for name, rows in frame.groupby("kpi", sort=True, observed=True):
        resource = cost_resource_type(usage[str(name)])
        services = rows["service"].astype(str)
        price_of = {service: prices.price(service, resource) for service in services.unique()}
        price = services.map(price_of).astype("float64").to_numpy()
        priced = np.isfinite(price)
        values = rows["value"].to_numpy(dtype="float64")[priced]
        rates = hourly_cost(values, price[priced], resource, days_per_month=days_per_month)
        parts.append(rows[priced].assign(value=rates, resource_type=resource))
    return pd.concat(parts) if parts else frame.assign(resource_type=pd.Series(dtype=object))
