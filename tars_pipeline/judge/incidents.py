"""Incidents: what happened to one service at one time, however many KPIs show it.

One fault moves several KPIs together: an error-rate step is also an availability dip,
a slow dependency lifts p50, p95 and p99 at once, a load surge lifts CPU with throughput.
Reporting each KPI as its own finding turns one incident into several work items. Here,
by time and service and never by KPI name:

1. **Anomaly clusters** (`cluster_events`): a service's anomaly events whose spans overlap
   or lie within `gap` (15 min) of each other are one cluster.
2. **Incidents** (`build_incidents`): a service's degradations first seen on the same day
   are one incident, joined by that service's anomaly clusters that start on that day and
   involve one of those KPIs (they date the onset to the minute; a CPU blip the same day
   does not join an error-rate step), and by its SLOs over budget on those KPIs. Every
   cluster left over is an incident of its own (a transient: minutes, not a shift).
3. The incident's **severity** is its worst member's; its **leading KPI** is the member
   that alarmed first (the anomaly with the earliest `alarm_ts`), else the most severe
   degradation (largest adverse drift on a tie).

Health (`health.score_day`) penalises a day's anomaly clusters by severity, not raw events;
recommendations (`recommendations.merge_by_incident`) give one item per incident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tars_pipeline.judge.severity import SEVERITY_RANK

DEFAULT_GAP = pd.Timedelta(minutes=15)
_LEAST = len(SEVERITY_RANK)


def worst(severities: Iterable[str | None]) -> str | None:
    """The most severe of `severities` (critical > high > medium > low), None if none."""
    ranked = [s for s in severities if s in SEVERITY_RANK]
    return min(ranked, key=SEVERITY_RANK.__getitem__) if ranked else None


def cluster_events(events: pd.DataFrame, gap: pd.Timedelta = DEFAULT_GAP) -> list[pd.DataFrame]:
    """A service's anomaly events grouped by time: an event starting within `gap` of the
    current cluster's latest end joins it. Clusters oldest first, per service in order."""
    if events is None or events.empty:
        return []
    frame = events.assign(
        start=pd.to_datetime(events["start"], utc=True),
        end=pd.to_datetime(events["end"], utc=True),
    ).sort_values(["service", "start"], kind="stable")
    clusters: list[pd.DataFrame] = []
    for _, rows in frame.groupby("service", sort=True):
        label, labels, reach = 0, [], None
        for start, end in zip(rows["start"], rows["end"], strict=True):
            if reach is not None and start > reach + gap:
                label += 1
                reach = None
            reach = end if reach is None else max(reach, end)
            labels.append(label)
        clusters.extend(group for _, group in rows.groupby(labels, sort=True))
    return clusters


@dataclass
class Incident:
    """One service's incident: its members, when it began, peaked and ended, how bad."""

    service: str
    first_day: int | None
    degradations: list[Mapping] = field(default_factory=list)
    anomalies: list[pd.DataFrame] = field(default_factory=list)
    slos: list[Mapping] = field(default_factory=list)

    @property
    def events(self) -> pd.DataFrame:
        return pd.concat(self.anomalies, ignore_index=True) if self.anomalies else pd.DataFrame()

    @property
    def kpis(self) -> list[str]:
        """Every KPI involved, leading KPI first, then in order of appearance."""
        names = [str(d["kpi"]) for d in self.degradations]
        events = self.events
        if len(events):
            names += [str(k) for k in events.sort_values("start")["kpi"]]
        names += [str(s.get("kpi")) for s in self.slos]
        ordered = list(dict.fromkeys([self.leading_kpi, *names]))
        return [name for name in ordered if name and name != "None"]

    @property
    def severity(self) -> str | None:
        levels = [d.get("severity") for d in self.degradations]
        if any(s.get("exhausted") for s in self.slos):
            levels.append("critical")
        elif any((s.get("burn_rate") or 0) > 1 for s in self.slos):
            levels.append("high")
        events = self.events
        if not self.degradations and len(events):
            levels += list(events["severity"])
        return worst(levels)

    @property
    def leading_kpi(self) -> str:
        events = self.events
        if len(events):
            alarm = events["alarm_ts"] if "alarm_ts" in events else events["start"]
            order = events.assign(_alarm=pd.to_datetime(alarm, utc=True)).sort_values(
                ["_alarm", "start"], kind="stable"
            )
            return str(order["kpi"].iloc[0])
        if self.degradations:
            lead = min(
                self.degradations,
                key=lambda d: (
                    SEVERITY_RANK.get(str(d.get("severity")), _LEAST),
                    -(d.get("adverse_drift_pct") or 0.0),
                ),
            )
            return str(lead["kpi"])
        return str(self.slos[0].get("kpi")) if self.slos else ""

    def as_record(self, number: int) -> dict[str, Any]:
        """id, service, first_day, kind ("regression" with degradations, else "transient"),
        severity, leading_kpi, kpis, start / peak_ts / end (from its anomalies; null for a
        regression without any), members (one per finding: type, kpi, severity, day)."""
        events = self.events
        start = end = peak = None
        if len(events):
            start = pd.to_datetime(events["start"], utc=True).min()
            end = pd.to_datetime(events["end"], utc=True).max()
            peak = events.loc[events["peak_z"].abs().idxmax(), "peak_ts"]
        members: list[dict[str, Any]] = [
            {
                "type": "degradation",
                "kpi": d["kpi"],
                "severity": d.get("severity"),
                "day": d.get("day_first"),
                "status": d.get("status"),
            }
            for d in self.degradations
        ]
        members += [
            {
                "type": "anomaly",
                "kpi": row["kpi"],
                "severity": row["severity"],
                "day": int(row["day"]) if "day" in row and pd.notna(row["day"]) else None,
                "start": row["start"],
                "alarm_ts": row.get("alarm_ts"),
                "peak_z": row["peak_z"],
            }
            for _, row in (events.sort_values("start") if len(events) else events).iterrows()
        ]
        members += [
            {
                "type": "slo",
                "kpi": s.get("kpi"),
                "slo": s.get("slo"),
                "severity": "critical" if s.get("exhausted") else "high",
                "burn_rate": s.get("burn_rate"),
            }
            for s in self.slos
        ]
        return {
            "id": f"{self.service}#{number}",
            "service": self.service,
            "first_day": self.first_day,
            "kind": "regression" if self.degradations else "transient",
            "severity": self.severity,
            "leading_kpi": self.leading_kpi,
            "kpis": self.kpis,
            "start": start,
            "peak_ts": peak,
            "end": end,
            "members": members,
        }


def _day_of(events: pd.DataFrame) -> int | None:
    if "day" not in events or events["day"].isna().all():
        return None
    return int(events["day"].min())


def _over_budget(summary: Mapping) -> bool:
    return bool(summary.get("exhausted")) or (summary.get("burn_rate") or 0.0) > 1.0


def build_incidents(
    degradations: Sequence[Mapping],
    anomalies: pd.DataFrame | None,
    slo_summaries: Sequence[Mapping] = (),
    *,
    gap: pd.Timedelta = DEFAULT_GAP,
) -> list[dict[str, Any]]:
    """The window's incidents (module docstring), most severe first, as records.

    `degradations` are `Degradation.as_record()`s, `anomalies` the window's events with a
    `day` column, `slo_summaries` the window's SLO summaries (with `service`)."""
    incidents: dict[tuple[str, int], Incident] = {}
    for degradation in degradations:
        key = (str(degradation["service"]), int(degradation["day_first"]))
        incidents.setdefault(key, Incident(*key)).degradations.append(degradation)
    transients: list[Incident] = []
    for cluster in cluster_events(anomalies if anomalies is not None else pd.DataFrame(), gap):
        service, day = str(cluster["service"].iloc[0]), _day_of(cluster)
        host = incidents.get((service, day)) if day is not None else None
        shares_a_kpi = host is not None and bool(
            set(cluster["kpi"]) & {str(d["kpi"]) for d in host.degradations}
        )
        if shares_a_kpi:
            host.anomalies.append(cluster)
        else:
            transients.append(Incident(service, day, anomalies=[cluster]))
    for summary in slo_summaries:
        if not _over_budget(summary):
            continue
        service, kpi = str(summary.get("service")), summary.get("kpi")
        hosts = [i for i in incidents.values() if i.service == service and kpi in i.kpis]
        hosts = hosts or [i for i in transients if i.service == service and kpi in i.kpis]
        if hosts:
            hosts[0].slos.append(summary)
    every = [*incidents.values(), *transients]
    every.sort(
        key=lambda i: (
            SEVERITY_RANK.get(i.severity or "", _LEAST),
            i.first_day if i.first_day is not None else 1_000,
            i.service,
        )
    )
    counters: dict[str, int] = {}
    records = []
    for incident in every:
        counters[incident.service] = counters.get(incident.service, 0) + 1
        records.append(incident.as_record(counters[incident.service]))
    return records
