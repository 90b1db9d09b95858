"""The per-step JSON outputs named by the seed: ga_kpi_summary, day_NN_summary,
anomaly_events. Each is a plain dict (JSON-ready through `jsonio`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tars_pipeline import __version__
from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.judge.day import DayAnalysis
from tars_pipeline.judge.drift import DAY_COMPARISON_COLUMNS, DRIFT_COLUMNS
from tars_pipeline.judge.maintenance import windows_between
from tars_pipeline.judge.seasonality import reference_dates
from tars_pipeline.reporting.escape import markdown, signed_pct
from tars_pipeline.reporting.jsonio import to_jsonable

# 1.1: regression_summary and the retrospective carry the release `verdict`.
SCHEMA_VERSION = "1.3"
# A day summary's drift rows: the drift step's columns, less the flags only the judge reads
# (`relative`, `adverse_change`) and the catalog's attributes.
DAY_SUMMARY_DRIFT_COLUMNS = tuple(
    name
    for name in DRIFT_COLUMNS
    if name not in ("relative", "adverse_change", "direction", "kind", "unit")
)


def _header(release: Release) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": f"tars-observability {__version__}",
        "release": {
            "name": release.name,
            "ga_date": release.ga_date.isoformat(),
            "timezone": release.timezone,
            "window_days": release.window_days,
            **release_window_fields(release),
        },
    }


def release_window_fields(release: Release) -> dict[str, str]:
    """The GA moment and the kind of day windows, for a release with `ga_at` (the
    documents of a calendar-day release are as they were)."""
    if release.ga_at is None:
        return {}
    return {"ga_at": release.ga_at.isoformat(), "day_windows": release.day_windows}


def _round(value: Any, digits: int = 4) -> Any:
    return round(float(value), digits) if pd.notna(value) else None


def ga_kpi_summary(release: Release, config: TarsConfig, stats: pd.DataFrame) -> dict[str, Any]:
    """Day 0: the baseline every later day is judged against."""
    start, end = release.day_bounds(0)
    rows = []
    for record in stats.sort_values(["service", "kpi"]).to_dict(orient="records"):
        kpi = config.kpi(record["kpi"]) if record["kpi"] in {k.name for k in config.kpis} else None
        rows.append(
            {
                "service": record["service"],
                "kpi": record["kpi"],
                "unit": kpi.unit if kpi else None,
                "direction": kpi.direction if kpi else None,
                "kind": kpi.kind if kpi else None,
                **{
                    column: _round(record[column])
                    for column in ("mean", "p50", "p95", "p99", "min", "max", "stddev")
                },
                "sample_count": int(record["sample_count"]),
            }
        )
    return {
        **_header(release),
        "day": 0,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "step_seconds": config.step_seconds,
        "services": sorted(stats["service"].unique().tolist()),
        "baseline": rows,
    }


def baseline_markdown(stats: pd.DataFrame, config: TarsConfig) -> str:
    units = {kpi.name: kpi.unit for kpi in config.kpis}
    lines = [
        "| Service | KPI | Mean | p95 | p99 | Samples |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in stats.sort_values(["service", "kpi"]).itertuples():
        unit = units.get(row.kpi, "")
        lines.append(
            f"| {markdown(row.service)} | {markdown(row.kpi)} | {row.mean:.4g} {unit} | "
            f"{row.p95:.4g} | {row.p99:.4g} | {row.sample_count} |"
        )
    return "\n".join(lines)


def day_summary(
    release: Release,
    day: int,
    *,
    health: dict[str, Any],
    drift: pd.DataFrame,
    slo: pd.DataFrame,
    cost: pd.DataFrame,
    anomalies: pd.DataFrame,
) -> dict[str, Any]:
    """One day: drift vs baseline per KPI, health score with contributions, SLOs, cost."""
    start, end = release.day_bounds(day)
    drift_rows = drift.sort_values(["service", "kpi"])[list(DAY_SUMMARY_DRIFT_COLUMNS)]
    return {
        **_header(release),
        "day": day,
        "date": release.day_date(day).isoformat(),
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "health": health,
        "drift": drift_rows,
        "flagged": int(drift["flagged"].sum()) if len(drift) else 0,
        "slo": slo,
        "cost_usd": {
            "total": round(float(cost["cost_usd"].sum()), 2) if len(cost) else 0.0,
            "by_resource": {
                resource: round(float(value), 2)
                for resource, value in cost.groupby("resource_type")["cost_usd"].sum().items()
            }
            if len(cost)
            else {},
        },
        "anomaly_count": len(anomalies),
    }


def day_summary_doc(
    release: Release,
    day: int,
    analysis: DayAnalysis,
    config: TarsConfig,
    *,
    stored_anomalies: int,
    reference_used: bool,
) -> dict[str, Any]:
    """day_NN_summary.json: `day_summary` plus the seasonal comparison columns of each drift
    row, what was left out of the judgement, and the reference week used (if any)."""
    health = analysis.health
    summary = day_summary(
        release,
        day,
        health={
            "score": health.score,
            "band": health.band,
            "weighted_kpi_score": health.weighted_kpi_score,
            "anomaly_penalty": health.anomaly_penalty,
            "contributions": health.contributions,
        },
        drift=analysis.drift,
        slo=analysis.slo,
        cost=analysis.cost,
        anomalies=analysis.anomalies,
    )
    keys = ["service", "kpi"]
    summary["drift"] = summary["drift"].merge(
        analysis.drift[[*keys, *DAY_COMPARISON_COLUMNS]], on=keys, how="left"
    )
    start, end = release.day_bounds(day)
    summary["data_quality"] = {
        "dropped_samples": analysis.dropped,
        "maintenance_excluded_samples": analysis.excluded,
        "maintenance_windows": [
            window.model_dump(mode="json")
            for window in windows_between(config.maintenance_windows, start, end)
        ],
        "anomalies_in_maintenance": stored_anomalies - len(analysis.anomalies),
    }
    summary["reference_week"] = (
        {
            "dates": [d.isoformat() for d in reference_dates(release, day) or ()],
            "source": "reference_date" if release.reference_date else "auto",
        }
        if reference_used
        else None
    )
    return summary


def anomaly_events_doc(release: Release, events: pd.DataFrame, z_threshold: float) -> dict:
    """anomaly_events.json: every event of the release so far (`store.read_anomaly_record`).

    Each event says where it comes from (`source`: "nightly" or "live") when the document
    holds a live one; a record of nightly events only is written as before continuous mode
    wrote the file (no `source`: every event is the nightly run's)."""
    if "source" in events and (events["source"] != "live").all():
        events = events.drop(columns=["source"])
    ordered = events.sort_values(["day", "start"], kind="stable") if len(events) else events
    return {
        **_header(release),
        "z_threshold": z_threshold,
        "days": sorted({int(d) for d in events["day"]}) if len(events) else [],
        "count": len(events),
        "events": ordered,
    }


def regression_summary_doc(
    release: Release, days: list[int], judgement: dict[str, Any]
) -> dict[str, Any]:
    """regression_summary.json: the window's judgement with the days it covers."""
    return to_jsonable(
        {
            "schema_version": SCHEMA_VERSION,
            "release": {
                "name": release.name,
                "ga_date": release.ga_date.isoformat(),
                "timezone": release.timezone,
                "window_days": release.window_days,
            },
            "days_analysed": days,
            "complete": days == list(range(1, release.window_days + 1)),
            **judgement,
        }
    )


def ranking_markdown(degradations: list[dict[str, Any]]) -> str:
    """The degradations, worst first, one Markdown line each (the UI's asset page)."""
    ranking = "\n".join(
        f"{rank}. **{d['severity']}** {markdown(d['kpi'])} on {markdown(d['service'])}: "
        f"{signed_pct(d['change_pct'])} (day {d['day_first']}, {d['status']})"
        for rank, d in enumerate(degradations, start=1)
    )
    return ranking or "_No degradations._"


def onsets_markdown(degradations: list[dict[str, Any]]) -> str:
    """When each degradation began and what came before it, for the asset's page."""
    lines = []
    for record in degradations:
        onset = record.get("onset")
        if not onset:
            continue
        line = (
            f"- {record['kpi']} on {record['service']}: {onset['local_time']} ± "
            f"{max(onset['onset_minus_minutes'], onset['onset_plus_minutes']):.0f} min on "
            f"day {onset['day']}"
        )
        causes = record.get("annotations") or []
        if causes:
            line += f"; {causes[0]['sentence']}"
        lines.append(line)
    return "\n".join(lines) or "no onset found"
