"""What the window could have seen: each KPI's minimum detectable effect (MDE).

"No degradation" means something only next to the smallest change the week's traffic could
have shown. Per (service, KPI) with a bad side, `honesty.min_detectable_effect` of GA day's
samples against a day's sample count, at thresholds.p_value and thresholds.power; per KPI
the largest over services (the least sensitive one bounds what the whole report can claim)
and the median. A change is reported only from the degradation threshold up, so the
record gives both: what the statistics could see and where reporting starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from tars_pipeline.config import KpiDefinition
from tars_pipeline.judge import clock
from tars_pipeline.judge.direction import has_bad_side
from tars_pipeline.judge.formatting import finite_or_none, magnitude_pct
from tars_pipeline.judge.honesty import mde_sentence, min_detectable_effect


def sensitivity(
    baseline_samples: pd.DataFrame,
    day_samples: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    *,
    alpha: float,
    power: float,
    degradation_threshold_pct: Callable[[KpiDefinition], float],
    timezone: str = "UTC",
) -> list[dict[str, Any]]:
    """One record per KPI: kpi, kpi_title, unit, threshold_pct (where reporting starts),
    mde_pct_max / mde_pct_median over services, sentence, services (service, mde record)."""
    by_kpi = services_sensitivity(
        baseline_samples, day_samples, kpis, alpha=alpha, power=power, timezone=timezone
    )
    return sensitivity_records(
        by_kpi, kpis, alpha=alpha, power=power, degradation_threshold_pct=degradation_threshold_pct
    )


def services_sensitivity(
    baseline_samples: pd.DataFrame,
    day_samples: pd.DataFrame,
    kpis: Mapping[str, KpiDefinition],
    *,
    alpha: float,
    power: float,
    timezone: str = "UTC",
) -> dict[str, list[dict[str, Any]]]:
    """Per KPI, each service's MDE record, for the services of these samples (any subset of
    the window's: `merge_services` joins the subsets in service order)."""
    if baseline_samples is None or baseline_samples.empty:
        return {}
    values = baseline_samples["value"].to_numpy(dtype="float64")
    hours = None
    if "ts" in baseline_samples.columns:
        hours = clock.hour_of_day(clock.local_nanoseconds(baseline_samples["ts"], timezone))
    groups = baseline_samples.groupby(["service", "kpi"], sort=True, observed=True).indices
    per_day: dict[tuple[str, str], float] = {}
    if day_samples is not None and len(day_samples):
        sizes = day_samples.groupby(["service", "kpi", "day"], observed=True).size()
        for (service, kpi, _day), size in sizes.items():
            key = (str(service), str(kpi))
            per_day[key] = max(per_day.get(key, 0.0), float(size))
    by_kpi: dict[str, list[dict[str, Any]]] = {}
    for (service, kpi_name), positions in groups.items():
        kpi = kpis.get(str(kpi_name))
        if kpi is None or kpi.kind == "cost" or not has_bad_side(kpi.direction):
            continue
        base = values[positions]
        n_observed = int(per_day.get((str(service), str(kpi_name)), base.size))
        mde = min_detectable_effect(
            base,
            n_observed,
            alpha=alpha,
            power=power,
            statistic=kpi.statistic if kpi.statistic in ("mean", "p50", "p95", "p99") else "mean",
            near_zero=kpi.near_zero,
            strata=hours[positions] if hours is not None else None,
        )
        by_kpi.setdefault(kpi.name, []).append({"service": str(service), "mde": mde.as_record()})
    return by_kpi


def merge_services(
    into: dict[str, list[dict[str, Any]]], more: Mapping[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """`into` with the services of `more` appended (KPIs in order of first appearance)."""
    for name, services in more.items():
        into.setdefault(name, []).extend(services)
    return into


def sensitivity_records(
    by_kpi: Mapping[str, list[dict[str, Any]]],
    kpis: Mapping[str, KpiDefinition],
    *,
    alpha: float,
    power: float,
    degradation_threshold_pct: Callable[[KpiDefinition], float],
) -> list[dict[str, Any]]:
    """The per-KPI records of `sensitivity` from its services' MDEs."""
    records = []
    for name, services in by_kpi.items():
        kpi = kpis[name]
        pcts = [s["mde"]["pct"] for s in services if s["mde"]["pct"] is not None]
        worst = max(pcts) if pcts else None
        threshold = degradation_threshold_pct(kpi)
        subject = kpi.title[:1].lower() + kpi.title[1:]
        if worst is not None:
            sentence = (
                f"a {subject} change under {magnitude_pct(worst)} could not have been reliably "
                f"seen with this traffic on every service; changes are reported from "
                f"{magnitude_pct(threshold)}"
            )
        else:
            first = services[0]["mde"]
            from tars_pipeline.judge.honesty import Mde

            sentence = mde_sentence(
                Mde(
                    None,
                    None,
                    first["n_eff_baseline"] or 0.0,
                    first["n_eff_observed"] or 0.0,
                    alpha,
                    power,
                    outcome=first["outcome"],
                ),
                subject,
                kpi.unit,
            )
        records.append(
            {
                "kpi": name,
                "kpi_title": kpi.title,
                "unit": kpi.unit,
                "threshold_pct": threshold,
                "mde_pct_max": finite_or_none(worst),
                "mde_pct_median": finite_or_none(float(np.median(pcts))) if pcts else None,
                "alpha": alpha,
                "power": power,
                "sentence": sentence,
                "services": services,
            }
        )
    return records
