"""Run the pipeline's judgement on a generated week, the way the assets run it.

The nightly `daily_summary` and the Day-7 `regression_summary` are thin Dagster shells
around `analyse_day` and `judge_window`; this harness calls the same two functions, with
the generated week standing in for the store and the metric source, then builds the
recommendations and action items as the retrospective does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tars_pipeline.config import (
    KpiDefinition,
    MaintenanceWindow,
    Release,
    SnapshotSourceConfig,
    TarsConfig,
    Thresholds,
    default_kpis,
)
from tars_pipeline.judge.day import DayAnalysis, analyse_day, reference_for_day
from tars_pipeline.judge.recommendations import recommend
from tars_pipeline.judge.window import judge_window
from tars_pipeline.reporting.jsonio import to_jsonable
from tars_pipeline.sources.base import empty_samples
from tars_pipeline_tests.scenarios.generator import WINDOW_DAYS, Week

NO_ANOMALIES = pd.DataFrame(
    {
        "service": pd.Series(dtype=object),
        "kpi": pd.Series(dtype=object),
        "start": pd.Series(dtype="datetime64[us, UTC]"),
        "end": pd.Series(dtype="datetime64[us, UTC]"),
        "severity": pd.Series(dtype=object),
    }
)


def scenario_config(
    release: Release,
    *,
    maintenance: tuple[MaintenanceWindow, ...] = (),
    extra_kpis: tuple[KpiDefinition, ...] = (),
    **thresholds: Any,
) -> TarsConfig:
    """The default catalog, SLOs and thresholds (overridable by keyword) for a scenario."""
    return TarsConfig(
        source=SnapshotSourceConfig(path=Path("unused")),
        releases=(release,),
        kpis=(*default_kpis(), *extra_kpis),
        maintenance_windows=maintenance,
        thresholds=Thresholds(**thresholds),
    )


@dataclass
class Verdict:
    """Everything an SRE would read about the week."""

    days: dict[int, DayAnalysis]
    judgement: dict[str, Any]
    recommendations: list[dict]
    action_items: list[dict]
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def degradations(self) -> list[dict]:
        return self.judgement["degradations"]

    @property
    def unexpected_drifts(self) -> list[dict]:
        return self.judgement["unexpected_drifts"]

    def degradation_keys(self) -> set[tuple[str, str, int, str]]:
        """(kpi, severity, day_first, status) of every degradation."""
        return {(d["kpi"], d["severity"], d["day_first"], d["status"]) for d in self.degradations}

    def drift_keys(self) -> set[tuple[str, str]]:
        """(kpi, trend) of every unexpected drift."""
        return {(u["kpi"], u["trend"]) for u in self.unexpected_drifts}

    def drift_row(self, day: int, kpi: str) -> pd.Series:
        drift = self.days[day].drift
        return drift[drift["kpi"] == kpi].iloc[0]

    def health(self) -> dict[int, float]:
        return {day: analysis.health.score for day, analysis in self.days.items()}

    def priorities(self) -> list[str]:
        return [r["priority"] for r in self.recommendations]


def judge_days(
    samples_by_day: Mapping[int, pd.DataFrame],
    config: TarsConfig,
    release: Release,
    fetch_date: Callable[[dt.date], pd.DataFrame] | None = None,
    **judge_extra: Any,
) -> tuple[dict[int, DayAnalysis], dict, list[dict], list[dict]]:
    """The asset code path without Dagster or a store: `analyse_day` for each day (0 is
    the baseline), then `judge_window` over days 1.., then the recommendations."""
    baseline = samples_by_day[0]
    fetch = fetch_date or (lambda date: empty_samples())
    days: dict[int, DayAnalysis] = {
        day: analyse_day(
            samples=samples,
            baseline_samples=baseline,
            anomalies=NO_ANOMALIES,
            config=config,
            release=release,
            day=day,
            reference=reference_for_day(config, release, day, fetch),
        )
        for day, samples in sorted(samples_by_day.items())
    }
    window = [day for day in days if day >= 1]

    def stored(frames: dict[int, pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(
            [frame.assign(day=day) for day, frame in frames.items()], ignore_index=True
        )

    judgement = judge_window(
        config=config,
        release=release,
        days=window,
        baseline_samples=baseline,
        day_samples=stored({day: samples_by_day[day] for day in window}),
        drift=stored({day: days[day].drift for day in window}),
        slo_daily=stored({day: days[day].slo for day in window}),
        daily_stats=stored({day: days[day].stats for day in days}),
        cost_daily=stored({day: days[day].cost for day in days}),
        **judge_extra,
    )
    recommendations, action_items = recommend(
        judgement, cost_growth_pct=config.cost.growth_hint_pct
    )
    return days, judgement, recommendations, action_items


def run_week(week: Week, config: TarsConfig) -> Verdict:
    """Days 0..7 through `analyse_day`, then `judge_window` and the recommendations."""
    days, judgement, recommendations, action_items = judge_days(
        {day: week.samples(day) for day in range(WINDOW_DAYS + 1)},
        config,
        config.releases[0],
        lambda date: week.reference.get(date, empty_samples()),
    )
    document = to_jsonable(
        {**judgement, "recommendations": recommendations, "action_items": action_items}
    )
    json.dumps(document, allow_nan=False)  # the contract: never NaN or Infinity
    return Verdict(days, judgement, recommendations, action_items, document)
