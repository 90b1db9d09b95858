"""Load the realistic weeks into one Prometheus, run TARS on each, and score what it wrote.

`load_suite` generates every week as OpenMetrics, backfills them into ONE TSDB (one promtool
call per week, the next week generated while promtool reads the previous one) and serves it
with ONE Prometheus; `run_week` runs GA day, Days 1..7, the regression summary and the
retrospective through the real Dagster graph (the CLIs' code path); `score_week` compares
the outputs with the ground truth. The scoring rules are in docs/scenario-suite.md.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tars_pipeline.config import load_config
from tars_pipeline_tests.conftest import run_the_week, week_runner, write_config
from tars_pipeline_tests.prometheus.conftest import (
    assert_blocks_not_in_future,
    assert_seconds_before_now,
    serving,
)
from tars_pipeline_tests.realistic import generator as gen
from tars_pipeline_tests.realistic.weeks import placed_weeks

MAX_BLOCK_DURATION = "10000h"
"""promtool re-reads the whole file once per block range; one range per week keeps it to one
pass (24 h blocks would read each week's file 16 times)."""
EVENT_SLACK_SECONDS = 5 * 60
"""An anomaly event may start or end this long outside an injected interval and still count."""
STEP_ONSET_SECONDS = 30 * 60
"""A lasting step is looked for in its first 30 minutes (with the slack above): control
series carry ~17 events a week, so a longer window would be hit by chance."""
COST_ONSET_SECONDS = 2 * 60 * 60
"""An hourly cost gauge shows a step in the hour after it."""


def _onset_end(truth: gen.Truth, kpi: str | None) -> int:
    if truth.end_ts is not None:
        return truth.end_ts
    cost = kpi is not None and gen.KIND_OF.get(kpi) == "cost"
    return truth.start_ts + (COST_ONSET_SECONDS if cost else STEP_ONSET_SECONDS)


DISCOVERED = {"w1", "w6"}
"""Weeks whose services TARS discovers (source.services_match) instead of reading a list."""


def binaries() -> tuple[str, str] | None:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    return (prometheus, promtool) if prometheus and promtool else None


# --------------------------------------------------------------------------- loading


@dataclass
class Suite:
    url: str
    weeks: tuple[gen.WeekSpec, ...]
    truths: dict[str, list[gen.Truth]]
    load_seconds: float
    samples: int
    folder: Path
    timings: dict[str, float] = field(default_factory=dict)

    def week(self, key: str) -> gen.WeekSpec:
        return next(w for w in self.weeks if w.key == key)


def _backfill(promtool: str, source: Path, data_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            f"--max-block-duration={MAX_BLOCK_DURATION}",
            str(source),
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen, source: Path) -> None:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, f"promtool failed on {source.name}:\n{output[-2000:]}"
    source.unlink()


def build_tsdb(
    weeks: Iterable[gen.WeekSpec], data_dir: Path, promtool: str, now: dt.datetime
) -> tuple[int, dict[str, float]]:
    """Every week into `data_dir`; returns the sample count and per-step timings."""
    data_dir.mkdir(parents=True, exist_ok=True)
    samples = 0
    timings = {"generate": 0.0, "backfill_wait": 0.0}
    running: tuple[subprocess.Popen, Path] | None = None
    for week in weeks:
        path = data_dir.parent / f"{week.key}.om"
        started = time.monotonic()
        samples += gen.write_week(week, path)
        timings["generate"] += time.monotonic() - started
        assert_seconds_before_now(path, now)
        if running is not None:
            started = time.monotonic()
            _finish(*running)
            timings["backfill_wait"] += time.monotonic() - started
        running = (_backfill(promtool, path, data_dir), path)
    if running is not None:
        started = time.monotonic()
        _finish(*running)
        timings["backfill_wait"] += time.monotonic() - started
    assert_blocks_not_in_future(data_dir, now)
    return samples, timings


@contextmanager
def load_suite(folder: Path, keys: Iterable[str] | None = None) -> Iterator[Suite]:
    """Generate, backfill and serve the weeks (all, or those in `keys`)."""
    found = binaries()
    assert found is not None, "prometheus/promtool not installed"
    prometheus, promtool = found
    now = dt.datetime.now(dt.UTC)
    weeks = placed_weeks(now)
    if keys is not None:
        wanted = set(keys)
        unknown = wanted - {w.key for w in weeks}
        assert not unknown, f"unknown week(s) {sorted(unknown)}"
        weeks = tuple(w for w in weeks if w.key in wanted)
    started = time.monotonic()
    truths = {w.key: gen.ground_truth(w) for w in weeks}
    truth_seconds = time.monotonic() - started
    samples, timings = build_tsdb(weeks, folder / "tsdb", promtool, now)
    with serving(prometheus, folder / "tsdb", folder) as (url, _port, _pid):
        load_seconds = time.monotonic() - started
        timings["truth"] = truth_seconds
        yield Suite(url, weeks, truths, load_seconds, samples, folder, timings)


# --------------------------------------------------------------------------- the config

SEL = '{service_label}="{service}"'
WINDOW = "[{rate_window}]"
REQ = f"sum(rate(http_server_requests_seconds_count{{{SEL}}}{WINDOW}))"
ERR = f'sum(rate(http_server_requests_seconds_count{{{SEL},outcome="SERVER_ERROR"}}{WINDOW}))'


def _quantile(q: str) -> str:
    return (
        f"1000 * histogram_quantile({q}, sum by (le) "
        f"(rate(http_server_requests_seconds_bucket{{{SEL}}}{WINDOW})))"
    )


def kpi_catalog() -> list[dict[str, Any]]:
    """The default KPI names with PromQL over Micrometer / kube-state / OpenCost names."""
    queries = {
        "availability": f"100 * (1 - {ERR} / {REQ})",
        "error_rate": f"100 * {ERR} / {REQ}",
        "throughput": REQ,
        "latency_p50": _quantile("0.50"),
        "latency_p95": _quantile("0.95"),
        "latency_p99": _quantile("0.99"),
        "cpu_utilization": f"100 * avg(process_cpu_usage{{{SEL}}})",
        "memory_utilization": (
            f'100 * sum(jvm_memory_used_bytes{{{SEL},area="heap"}}) / '
            f'sum(jvm_memory_max_bytes{{{SEL},area="heap"}})'
        ),
        **{kpi: f"sum({family}{{{SEL}}})" for kpi, family in gen.COST_FAMILIES.items()},
    }
    return [
        {
            "name": name,
            "query": query,
            **({"breakdown": BREAKDOWNS[name]} if name in BREAKDOWNS else {}),
        }
        for name, query in queries.items()
    ]


def _by(metric: str, extra: str = "") -> str:
    return f"sum by ({{by}}) (rate({metric}{{{SEL}{extra}}}{WINDOW}))"


_HTTP_LABELS = ["uri", "status", "instance", "method"]
_ERRORS = {
    "numerator": _by("http_server_requests_seconds_count", ',outcome="SERVER_ERROR"'),
    "denominator": _by("http_server_requests_seconds_count"),
    "scale": 100.0,
    "labels": _HTTP_LABELS,
}
_LATENCY = {
    "numerator": _by("http_server_requests_seconds_sum"),
    "denominator": _by("http_server_requests_seconds_count"),
    "scale": 1000.0,
    "labels": _HTTP_LABELS,
}


def _latency(q: str) -> dict[str, Any]:
    slice_query = (
        f"1000 * histogram_quantile({q}, sum by (le, {{by}}) "
        f"(rate(http_server_requests_seconds_bucket{{{SEL}}}{WINDOW})))"
    )
    return {**_LATENCY, "measure": "mean latency", "slice_query": slice_query}


BREAKDOWNS: dict[str, dict[str, Any]] = {
    "availability": {**_ERRORS, "complement": True},
    "error_rate": _ERRORS,
    "throughput": {"numerator": _by("http_server_requests_seconds_count"), "labels": _HTTP_LABELS},
    "latency_p50": _latency("0.50"),
    "latency_p95": _latency("0.95"),
    "latency_p99": _latency("0.99"),
}
"""Top-contributor queries over the Micrometer names: errors / requests and mean latency
(duration sum / count) by label (docs/methods/contributors.md)."""


SLOS = [
    {"name": "availability", "kpi": "availability", "sli": "ratio", "target_pct": 99.5},
    {
        "name": "latency_p99",
        "kpi": "latency_p99",
        "sli": "threshold",
        "objective": 1500.0,
        "target_pct": 99.0,
    },
]
"""Targets a quiet week meets comfortably (the bundled defaults assume other traffic)."""


def week_config(week: gen.WeekSpec, url: str, folder: Path, **extra: Any) -> Path:
    assert week.ga_date is not None
    source: dict[str, Any] = {
        "type": "prometheus",
        "url": url,
        "service_label": "application",
        "rate_window": f"{gen.RATE_WINDOW_MINUTES}m",
        "retries": 1,
    }
    release: dict[str, Any] = {
        "name": week.release_name,
        "ga_date": week.ga_date.isoformat(),
        "timezone": week.timezone,
        "window_days": gen.WINDOW_DAYS,
        "reference_date": (week.ga_date - dt.timedelta(days=gen.REFERENCE_DAYS)).isoformat(),
    }
    if week.key in DISCOVERED:
        source["services_match"] = (
            f'http_server_requests_seconds_count{{application=~"{week.key}-.*"}}'
        )
    else:
        release["services"] = [s.name for s in week.services]
    return write_config(
        folder,
        source=source,
        releases=[release],
        kpis=kpi_catalog(),
        slos=SLOS,
        step_seconds=60,
        **extra,
    )


# --------------------------------------------------------------------------- running


@dataclass
class WeekRun:
    key: str
    seconds: float
    retrospective: dict[str, Any]
    anomaly_events: dict[str, Any]
    error: str | None = None


def run_week(week: gen.WeekSpec, url: str, folder: Path) -> WeekRun:
    folder.mkdir(parents=True, exist_ok=True)
    config = load_config(week_config(week, url, folder))
    started = time.monotonic()
    try:
        with week_runner(folder, config) as (runner, _instance):
            run_the_week(runner, week.release_name)
    except Exception as error:  # the scorer reports it and goes on
        return WeekRun(
            week.key, time.monotonic() - started, {}, {}, f"{type(error).__name__}: {error}"
        )
    out = folder / "out" / week.release_name
    read = lambda name: json.loads((out / name).read_text(encoding="utf-8"))  # noqa: E731
    return WeekRun(
        week.key,
        time.monotonic() - started,
        read("GA_7DAY_RETROSPECTIVE.json"),
        read("anomaly_events.json"),
    )


# --------------------------------------------------------------------------- scoring


def precision_recall(
    found: set[tuple], truth: set[tuple], optional: set[tuple] = frozenset()
) -> tuple[int, int, int, float | None, float | None]:
    """(tp, fp, fn, precision, recall); a found item in `optional` is neither tp nor fp, and
    optional items are never missed. Precision is None with nothing found, recall with
    nothing to find."""
    tp = len(found & truth)
    fp = len(found - truth - optional)
    fn = len(truth - found)
    counted = tp + fp
    precision = tp / counted if counted else None
    recall = tp / len(truth) if truth else None
    return tp, fp, fn, precision, recall


def _ts(value: str | None) -> float | None:
    if value is None:
        return None
    return dt.datetime.fromisoformat(value).timestamp()


def expected_verdicts(truths: list[gen.Truth]) -> set[str]:
    """pass when no injection truly degrades a KPI (incidents aside); otherwise warn or fail.
    A week whose only degradations are incidents may pass or warn or fail."""
    lasting = [d for t in truths if not t.injection.incident for d in t.degradations]
    if lasting:
        return {"warn", "fail"}
    if any(t.degradations for t in truths):
        return {"pass", "warn", "fail"}
    return {"pass"}


def _evidence_key(item: dict[str, Any]) -> tuple[str | None, str | None]:
    evidence = item.get("evidence") or {}
    return evidence.get("service") or item.get("service"), evidence.get("kpi") or item.get("kpi")


def score_week(week: gen.WeekSpec, truths: list[gen.Truth], run: WeekRun) -> dict[str, Any]:
    retro, events_doc = run.retrospective, run.anomaly_events
    row: dict[str, Any] = {
        "week": week.key,
        "title": week.title,
        "run_seconds": round(run.seconds, 1),
    }
    if run.error:
        row["error"] = run.error
        return row
    affected = {(t.injection.service, k) for t in truths for k in t.affected_kpis}

    # Degradations on (kpi, service, first day); incidents' are optional.
    truth_set = {d for t in truths if not t.injection.incident for d in t.degradations}
    optional = {d for t in truths if t.injection.incident for d in t.degradations}
    optional_keys = {(k, s) for k, s, _ in optional}
    found = {(d["kpi"], d["service"], int(d["day_first"])) for d in retro.get("degradations", [])}
    tp, fp, fn, precision, recall = precision_recall(found, truth_set, optional)
    found_keys = {(k, s) for k, s, _ in found}
    truth_keys = {(k, s) for k, s, _ in truth_set}
    _, _, _, key_precision, key_recall = precision_recall(found_keys, truth_keys, optional_keys)
    row.update(
        truth_degradations=len(truth_set),
        found_degradations=len(found),
        deg_tp=tp,
        deg_fp=fp,
        deg_fn=fn,
        deg_precision=precision,
        deg_recall=recall,
        deg_key_precision=key_precision,
        deg_key_recall=key_recall,
        missed=sorted(f"{s}/{k}@d{d}" for k, s, d in truth_set - found),
        false_degradations=sorted(f"{s}/{k}@d{d}" for k, s, d in found - truth_set - optional),
    )

    # Sudden changes: an event on the right (service, kpi) overlapping the injected interval.
    events = events_doc.get("events", []) if events_doc else []
    sudden = [t for t in truths if t.injection.sudden and t.sudden_kpis]
    hits = 0
    detail = []
    for t in sudden:
        lo = t.start_ts - EVENT_SLACK_SECONDS
        matched = [
            e
            for e in events
            if e.get("service") == t.injection.service
            and e.get("kpi") in t.sudden_kpis
            and (_ts(e.get("start")) or 0) <= _onset_end(t, e.get("kpi")) + EVENT_SLACK_SECONDS
            and (_ts(e.get("end")) or _ts(e.get("start")) or 0) >= lo
        ]
        hits += bool(matched)
        detail.append(f"{t.injection.label}:{'found' if matched else 'MISSED'}")
    row.update(sudden_total=len(sudden), sudden_found=hits, sudden_detail=detail)

    # Events on series no injection touches (controls).
    series = {(s.name, k) for s in week.services for k in gen.KPI_NAMES}
    controls = series - affected
    control_events = [e for e in events if (e.get("service"), e.get("kpi")) in controls]
    row.update(
        control_series=len(controls),
        control_events=len(control_events),
        control_events_per_series=round(len(control_events) / max(len(controls), 1), 3),
        control_criticals=sum(e.get("severity") == "critical" for e in control_events),
        control_events_by_kpi=dict(Counter(str(e.get("kpi")) for e in control_events)),
        control_criticals_by_kpi=dict(
            Counter(str(e.get("kpi")) for e in control_events if e.get("severity") == "critical")
        ),
        events_total=len(events),
    )

    # Health: GA day, and the minimum over clean days (no injection active on any series).
    health = {int(h["day"]): float(h["score"]) for h in retro.get("health_scores", [])}
    busy = set()
    for t in truths:
        first = t.injection.day
        last = gen.WINDOW_DAYS if t.end_ts is None else _day_of(week, t.end_ts - 1)
        busy |= set(range(first, last + 1))
    clean = [d for d in range(1, gen.WINDOW_DAYS + 1) if d not in busy]
    row.update(
        ga_health=health.get(0),
        clean_days=len(clean),
        clean_min_health=min((health[d] for d in clean if d in health), default=None),
        min_health=min(health.values(), default=None),
    )

    verdict = retro.get("verdict") or {}
    expected = expected_verdicts(truths)
    row.update(
        verdict=verdict.get("status"),
        verdict_expected="/".join(sorted(expected)),
        verdict_ok=verdict.get("status") in expected,
    )

    # Recommendations: noise = evidence naming a KPI of a series no injection affects.
    # Items without a catalog KPI in their evidence (cost hints, totals) are not judged.
    recs = retro.get("recommendations", [])
    noise = 0
    for item in recs:
        service, kpi = _evidence_key(item)
        if service is not None and kpi in gen.KPI_NAMES and (service, kpi) not in affected:
            noise += 1
    per_incident = []
    for t in truths:
        kpis = t.affected_kpis
        count = 0
        for item in recs:
            service, kpi = _evidence_key(item)
            priority = item.get("priority") in ("P0", "P1")
            if priority and service == t.injection.service and (kpi is None or kpi in kpis):
                count += 1
        per_incident.append(count)
    row.update(
        recommendations=len(recs),
        rec_noise=noise,
        p01_per_injection=per_incident,
        injections_with_one_p01=sum(c == 1 for c in per_incident),
        # The rule, one P0/P1 item per incident: of the injections that got any,
        # how many got more than one (duplicates of one incident).
        injections_with_p01=sum(c >= 1 for c in per_incident),
        injections_with_duplicate_p01=sum(c > 1 for c in per_incident),
        injections=len(truths),
        drifts=len(retro.get("unexpected_drifts", [])),
        drifts_on_controls=sum(
            (d.get("service"), d.get("kpi")) not in affected
            for d in retro.get("unexpected_drifts", [])
        ),
    )

    # Incidents, when the product writes them.
    incidents = retro.get("incidents")
    if incidents is None and events_doc:
        incidents = events_doc.get("incidents")
    if incidents is not None:
        matched = 0
        for t in truths:
            lo = t.start_ts - EVENT_SLACK_SECONDS
            hi = _onset_end(t, None) + EVENT_SLACK_SECONDS
            matched += any(
                i.get("service") == t.injection.service
                and (_ts(i.get("start")) or 0) <= hi
                and (_ts(i.get("end")) or _ts(i.get("start")) or 0) >= lo
                for i in incidents
            )
        row.update(incidents=len(incidents), incidents_matching_injections=matched)
    else:
        row.update(incidents=None)
    alarms = [e.get("alarm_ts") for e in events if e.get("alarm_ts")]
    if alarms:
        row["events_with_alarm_ts"] = len(alarms)
    # A cost step: TARS may date it as the cost section's level change (total cost).
    level = (retro.get("cost_analysis") or {}).get("level_change") or {}
    row["cost_steps"] = [
        {
            "injection": t.injection.label,
            "day": t.injection.day,
            "level_change_day": level.get("day"),
        }
        for t in truths
        if t.injection.kind == "cost_step"
    ]
    data_quality = retro.get("data_quality") or {}
    row["completeness_pct"] = data_quality.get("completeness_pct")
    return row


def _day_of(week: gen.WeekSpec, ts: int) -> int:
    for day in range(-gen.REFERENCE_DAYS, gen.WINDOW_DAYS + 1):
        lo, hi = gen.day_bounds(week, day)
        if lo <= ts < hi:
            return day
    return gen.WINDOW_DAYS
