"""The seed's release week, generated: samples, drift rows and SLO status for the judge's
step tests (`test_compare`, `test_degradations`, `test_drifts`, `test_successes`).

api-gateway's p99 latency jumps 150 → 180 ms on day 2 and stays high (a high regression
inside its 200 ms SLO); its error rate goes 0.05 % → 0.08 % on day 4 only (+60 %, yet well
inside a 99 % SLO: medium); CPU creeps up with throughput; search's memory swings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from tars_pipeline.config import (
    KpiDefinition,
    Release,
    SnapshotSourceConfig,
    TarsConfig,
    default_kpis,
)
from tars_pipeline.judge.degradations import find_degradations
from tars_pipeline.judge.direction import adverse_sign
from tars_pipeline.judge.drifts import find_unexpected_drifts
from tars_pipeline.judge.slo import slo_day_status

KPIS: dict[str, KpiDefinition] = {kpi.name: kpi for kpi in default_kpis()}
CONFIG = TarsConfig(
    source=SnapshotSourceConfig(path=Path("snapshot")),
    releases=(Release(name="v1.0.1", ga_date=dt.date(2025, 11, 19)),),
)
GA = pd.Timestamp("2025-11-19", tz="UTC")
SAMPLES_PER_DAY = 1440
LAST_DAY = 7


def day_samples(
    service: str, kpi: str, day: int, mean: float, sd: float, rng: np.random.Generator
) -> pd.DataFrame:
    """One day of minute samples around `mean`, whose mean is exactly `mean`."""
    noise = rng.normal(0.0, sd, SAMPLES_PER_DAY) if sd else np.zeros(SAMPLES_PER_DAY)
    values = np.clip(mean + noise - noise.mean(), 0.0, None)
    ts = pd.date_range(GA + pd.Timedelta(days=day), periods=SAMPLES_PER_DAY, freq="60s")
    return pd.DataFrame({"service": service, "kpi": kpi, "ts": ts, "value": values, "day": day})


def week(
    service: str, kpi: str, means: list[float], sd: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Days 0..N: `means[0]` is GA day."""
    return pd.concat(
        [day_samples(service, kpi, day, mean, sd, rng) for day, mean in enumerate(means)],
        ignore_index=True,
    )


def drift_frame(
    rows: Iterable[tuple[str, str, int, float, float]], kpis: Mapping[str, KpiDefinition]
) -> pd.DataFrame:
    """Drift rows (service, kpi, day, baseline, observed) with the drift module's columns."""
    records = []
    for service, name, day, baseline, observed in rows:
        kpi = kpis[name]
        relative = abs(baseline) >= kpi.near_zero and baseline != 0
        change = observed - baseline
        drift_pct = change / abs(baseline) * 100 if relative else float("nan")
        sign = adverse_sign(kpi.direction)
        adverse_change = max(sign * change, 0.0)
        adverse_pct = max(sign * drift_pct, 0.0) if relative else float("nan")
        flagged = abs(drift_pct) >= kpi.threshold_pct if relative else adverse_change > 0
        records.append(
            {
                "service": service,
                "kpi": name,
                "day": day,
                "statistic": kpi.statistic,
                "baseline_value": baseline,
                "observed_value": observed,
                "abs_change": change,
                "drift_pct": drift_pct,
                "relative": relative,
                "adverse_drift_pct": adverse_pct,
                "adverse_change": adverse_change,
                "threshold_pct": kpi.threshold_pct,
                "flagged": flagged,
                "direction": kpi.direction,
                "kind": kpi.kind,
                "unit": kpi.unit,
            }
        )
    return pd.DataFrame(records)


def drift_from_samples(samples: pd.DataFrame) -> pd.DataFrame:
    means = samples.groupby(["service", "kpi", "day"])["value"].mean()
    rows = [
        (service, kpi, day, means[(service, kpi, 0)], mean)
        for (service, kpi, day), mean in means.items()
        if day >= 1
    ]
    return drift_frame(rows, KPIS)


def slo_status_of(samples: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (service, kpi_name, day), group in samples.groupby(["service", "kpi", "day"]):
        values = group["value"].to_numpy()
        for slo in CONFIG.slos_for(kpi_name):
            status = slo_day_status(values, slo, KPIS[kpi_name], float(values.mean()))
            rows.append(
                {
                    "day": day,
                    "service": service,
                    "kpi": kpi_name,
                    "slo": slo.name,
                    "utilisation": status.utilisation,
                    "breached": status.breached,
                    "exhausted": False,
                }
            )
    return pd.DataFrame(rows)


def release_week_samples(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.concat(
        [
            week("api-gateway", "latency_p99", [150, 151, 180, 172, 168, 166, 167, 168], 6, rng),
            week(
                "api-gateway", "error_rate", [0.05, 0.05, 0.05, 0.05, 0.08] + [0.05] * 3, 0.005, rng
            ),
            week("api-gateway", "latency_p50", [40.0] * 8, 3, rng),  # no change at all
        ],
        ignore_index=True,
    )


def judge(samples: pd.DataFrame, slo_status: pd.DataFrame | None = None) -> list[dict]:
    """The degradation records (`Degradation.as_record()`) of a sample week."""
    degradations = find_degradations(
        drift_from_samples(samples),
        samples[samples["day"] == 0],
        samples[samples["day"] >= 1],
        slo_status if slo_status is not None else slo_status_of(samples),
        KPIS,
        p_value=CONFIG.thresholds.p_value,
        degradation_threshold_pct=CONFIG.degradation_threshold_pct,
        well_inside_utilisation=CONFIG.thresholds.slo_well_inside_utilisation,
        last_day=LAST_DAY,
    )
    return [degradation.as_record() for degradation in degradations]


def release_week_degradations() -> list[dict]:
    return judge(release_week_samples())


def release_week_drift() -> pd.DataFrame:
    """Daily means over days 1..7 of the KPIs that drift without regressing."""
    cpu = [46.6, 47.9, 49.3, 50.0, 51.2, 51.9, 52.3]
    throughput = [1015.0, 1030.0, 1050.0, 1065.0, 1085.0, 1100.0, 1120.0]
    memory_drift = [18.0, -12.0, 15.0, -17.0, 16.0, -10.0, 18.0]
    rows = []
    for day in range(1, 8):
        rows += [
            ("api-gateway", "cpu_utilization", day, 45.2, cpu[day - 1]),
            ("api-gateway", "throughput", day, 1000.0, throughput[day - 1]),
            ("api-gateway", "memory_utilization", day, 50.0, 51.0),  # +2 %: nothing to say
            ("search", "memory_utilization", day, 60.0, 60.0 * (1 + memory_drift[day - 1] / 100)),
            ("search", "cpu_utilization", day, 30.0, 42.0),  # +40 %: beyond the watch band
            ("api-gateway", "cost_compute", day, 5.0, 6.0),  # cost has its own section
        ]
    return drift_frame(rows, KPIS)


def unexpected_drift_records(
    drift: pd.DataFrame, degraded: Iterable[tuple[str, str]] = (), max_pct: float = 30.0
) -> list[dict]:
    return [d.as_record() for d in find_unexpected_drifts(drift, degraded, KPIS, max_pct=max_pct)]


def release_week_unexpected_drifts() -> list[dict]:
    return unexpected_drift_records(
        release_week_drift(), max_pct=CONFIG.thresholds.unexpected_drift_max_pct
    )


def by_kpi(records: list[dict]) -> dict[tuple[str, str], dict]:
    return {(record["service"], record["kpi"]): record for record in records}
