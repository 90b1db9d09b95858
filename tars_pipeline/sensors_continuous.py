"""Continuous mode (SPEC §3): the anomaly detector on the latest samples, every few minutes.

While a release's window is open, the `tars_continuous_anomalies` sensor fetches the last
hour of samples from the metric source (plus the detector's warm-up history before it, as
the `anomaly_events` asset warms up on the previous day), runs the nightly asset's
`judge.day.day_anomalies` with the thresholds of tars.yaml (and the same GA-day profile
and pre-GA references), and for each event it has not written before:

- appends it to the store's `live_anomaly_events` (release × day, the day of its peak),
- rewrites `anomaly_events.json` from the store (written aside and renamed), which then
  lists the nightly events plus the live ones of the days the nightly run has not
  processed (`store.read_anomaly_record`, `judge.live`): whoever writes last, the sensor
  or the nightly run, writes the union, and an event both found is listed once,
- records an `AssetObservation` of `anomaly_events` on its release-day partition and a
  log line on the tick,
- tells Slack of a critical one when `notifications.slack.notify_on` has "live_critical".

The sensor launches no run. `tars-anomaly-detector --follow` runs the same `evaluate` in a
loop for people without the daemon. It is stopped by default: start it in the UI
(Automation) for the release week.

Dedupe: the cursor keeps each written event as (release, service, kpi, start) → end. An
event is new unless one of the same series overlaps it in time: a tick that sees an ongoing
event grow (or, with a slightly different warm-up, start one sample later) writes nothing
new. The store merges the same way, so a lost cursor (or the sensor and --follow both
running) still stores, reports and notifies an event once. An event is marked in the
cursor only once it is written: when a run holds the single-file DuckDB store, the tick's
events stay in the cursor as pending and are written on the next tick. Entries older than
any future fetch are dropped, so the cursor stays small.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.day import day_anomalies
from tars_pipeline.judge.live import LIVE_COLUMNS, merge_live
from tars_pipeline.judge.maintenance import events_outside_maintenance
from tars_pipeline.judge.seasonality import ReferenceDays
from tars_pipeline.notify.dispatch import summary_lines
from tars_pipeline.notify.live import notify_live_critical
from tars_pipeline.partitions import release_day_key
from tars_pipeline.reporting import outputs
from tars_pipeline.reporting.jsonio import to_jsonable, write_json
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.sources import build_source
from tars_pipeline.sources.base import MetricSource
from tars_pipeline.store import (
    ParquetLocation,
    Store,
    ensure_schema,
    open_store,
    read_anomaly_record,
    read_table,
    replace_partition,
    store_location,
    write_settled_record,
)
from tars_pipeline.store_parquet import ParquetStore, StoreVersionError

SENSOR_NAME = "tars_continuous_anomalies"
ASSET_KEY = dg.AssetKey("anomaly_events")
MINIMUM_INTERVAL_SECONDS = 300
# The window judged at each tick: longer than the tick interval, so a tick the daemon
# skips or runs late loses nothing.
LOOKBACK = dt.timedelta(hours=1)
# 2: pending events (found, not written yet) beside the seen ones; a version 1 cursor's
# seen events are kept.
CURSOR_VERSION = 2
MAX_PENDING = 500


@dataclass(frozen=True)
class LiveEvent:
    """A detected event with the release and release-day it belongs to."""

    release: str
    day: int
    event: Mapping[str, Any]

    @property
    def series(self) -> str:
        return f"{self.release}|{self.event['service']}|{self.event['kpi']}"

    @property
    def key(self) -> str:
        return f"{self.series}|{_iso(self.event['start'])}"


def _iso(moment: Any) -> str:
    return pd.Timestamp(moment).tz_convert("UTC").isoformat()


def release_window(release: Release) -> tuple[dt.datetime, dt.datetime]:
    """[start of Day 0, end of the last day) in UTC."""
    return release.day_bounds(0)[0], release.day_bounds(release.window_days)[1]


def active_releases(config: TarsConfig, now: dt.datetime) -> list[Release]:
    """The configured releases whose window covers `now`."""
    active = []
    for release in config.releases:
        start, end = release_window(release)
        if start <= now < end:
            active.append(release)
    return active


def fetch_window(config: TarsConfig, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """(fetch from, judge from): the last LOOKBACK, and warm-up history before it."""
    thresholds = config.thresholds
    history = dt.timedelta(
        seconds=(thresholds.warmup_samples + thresholds.ewma_span) * config.step_seconds
    )
    judge_from = now - LOOKBACK
    return judge_from - history, judge_from


def day_of(release: Release, moment: Any) -> int:
    """The release-day (0..window_days) whose local calendar day holds `moment`."""
    return min(max(release.day_of(pd.Timestamp(moment).to_pydatetime()), 0), release.window_days)


def stored_ga_day(config: TarsConfig, release: Release) -> pd.DataFrame | None:
    """The stored GA-day samples (the profile the nightly run scores days ≥ 1 against), read
    without a lock; None when the store is absent or a run holds it: the sensor then scores
    without the time-of-day profile, as on Day 0."""
    location = store_location(config)
    if isinstance(location, ParquetLocation):
        try:
            with ParquetStore(location.root, endpoint_url=location.endpoint_url) as store:
                return store.read_table("samples", release.name, [0])
        except (duckdb.Error, OSError, StoreVersionError):
            return None
    path = config.store_file
    if not Path(path).exists():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            return read_table(conn, "samples", release.name, [0])
    except duckdb.Error:
        return None


_REFERENCES: dict[tuple[int, str, dt.date], ReferenceDays | None] = {}


def live_references(
    source: MetricSource,
    config: TarsConfig,
    release: Release,
    fetch_from: dt.datetime,
    now: dt.datetime,
) -> dict[dt.date, ReferenceDays | None]:
    """The pre-GA reference days of the local dates the fetch spans, as the nightly asset
    reads them (`day_fetch.read_reference`); none unless the release has reference days.
    Kept per config and date in this process: they are days before GA and do not change."""
    if release.reference_start is None:
        return {}
    from tars_pipeline.assets.day_fetch import read_reference

    references = {}
    first, last = fetch_from.astimezone(release.tz).date(), now.astimezone(release.tz).date()
    for date in sorted({first, last}):
        key = (id(config), release.name, date)
        if key not in _REFERENCES:
            moment = max(fetch_from, dt.datetime.combine(date, dt.time(), release.tz))
            _REFERENCES[key] = read_reference(
                source, config, release, day_of(release, moment), include_ga_day=True, date=date
            )
        references[date] = _REFERENCES[key]
    return references


def latest_events(config: TarsConfig, release: Release, now: dt.datetime) -> list[LiveEvent]:
    """Events of `release` that touch the last LOOKBACK before `now`, outside maintenance:
    the nightly asset's detector and cleaning (`judge.day.day_anomalies`) on live samples,
    each on the release-day of its peak (the partition the nightly run stores it in)."""
    fetch_from, judge_from = fetch_window(config, now)
    source = build_source(config)
    fetched = source.fetch_day(release, fetch_from, now, config.kpis, config.step_seconds)
    events = day_anomalies(
        fetched.samples,
        config,
        judged_from=fetch_from,
        baseline=stored_ga_day(config, release) if day_of(release, now) > 0 else None,
        timezone=release.timezone,
        references=live_references(source, config, release, fetch_from, now),
    )
    if events.empty:
        return []
    events = events[pd.to_datetime(events["end"], utc=True) >= pd.Timestamp(judge_from)]
    events = events_outside_maintenance(events, config.maintenance_windows)
    return [
        LiveEvent(release.name, day_of(release, record["peak_ts"]), record)
        for record in events.to_dict(orient="records")
    ]


class StoreBusyError(Exception):
    """The single-file DuckDB store is held by another process (a run writing a day): the
    tick keeps its events pending and writes them on the next one."""


@contextmanager
def open_store_now(config: TarsConfig) -> Iterator[Store]:
    """The store, without waiting: the Parquet layout takes concurrent writers; the DuckDB
    file is opened once, and a lock held elsewhere raises `StoreBusyError` at once
    (a run's resource retries for minutes; a tick must not block the daemon)."""
    location = store_location(config)
    if isinstance(location, ParquetLocation):
        with open_store(location) as store:
            yield store
        return
    path = Path(location.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = duckdb.connect(str(path))
    except duckdb.IOException as error:
        raise StoreBusyError(f"{path} is in use by another process ({error})") from error
    try:
        ensure_schema(conn)
        yield conn
    finally:
        conn.close()


@dataclass
class Recorded:
    """What one write of live events did: the events new to the store, and the JSON."""

    new: list[LiveEvent]
    document: Path | None


def record_live_events(
    config: TarsConfig,
    release: Release,
    found: list[LiveEvent],
    folder: Path,
    detected_at: dt.datetime,
) -> Recorded:
    """Append `found` to the store's live_anomaly_events (merged: `judge.live.merge_live`,
    so an event already stored, live or nightly, is not new), then rewrite
    anomaly_events.json from the store (written aside and renamed) when anything changed.
    Raises StoreBusyError, having written nothing, when the DuckDB file is held."""
    by_day: dict[int, list[LiveEvent]] = {}
    for live in found:
        by_day.setdefault(live.day, []).append(live)
    new: list[LiveEvent] = []
    with open_store_now(config) as conn:
        nightly = read_table(conn, "anomaly_events", release.name)
        for day, events in sorted(by_day.items()):
            stored = read_table(conn, "live_anomaly_events", release.name, [day])
            frame = pd.DataFrame([dict(live.event) for live in events])
            merged, added = merge_live(
                stored, frame, detected_at=pd.Timestamp(detected_at), known=nightly
            )
            if len(merged) != len(stored) or not merged.equals(stored[list(LIVE_COLUMNS)]):
                replace_partition(conn, release.name, day, {"live_anomaly_events": merged})
            starts = {(r["service"], r["kpi"], _iso(r["start"])) for r in _records(added)}
            new += [
                live
                for live in events
                if (live.event["service"], live.event["kpi"], _iso(live.event["start"])) in starts
            ]
        first = read_anomaly_record(conn, release.name) if new else None
    if first is None:
        return Recorded(new, None)

    def record() -> pd.DataFrame:
        try:
            with open_store_now(config) as conn:
                return read_anomaly_record(conn, release.name)
        except StoreBusyError:  # the events are stored and the file is written: next tick
            return first

    def write(every_day: pd.DataFrame) -> Path:
        document = outputs.anomaly_events_doc(release, every_day, config.thresholds.z_threshold)
        return write_json(folder / "anomaly_events.json", document)

    # A nightly run may be committing its day now: see store.write_settled_record.
    return Recorded(new, write_settled_record(record, write, first))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict(orient="records") if len(frame) else []


class SeenEvents:
    """The cursor: events written to the store as {"release|service|kpi|start": end}
    (ISO UTC), and the events found but not written yet (the store was busy)."""

    def __init__(self, cursor: str | None):
        self.ends: dict[str, str] = {}
        self.pending: dict[str, LiveEvent] = {}
        if cursor:
            try:
                state = json.loads(cursor)
            except json.JSONDecodeError:
                state = {}
            if isinstance(state, dict) and state.get("version") in (1, CURSOR_VERSION):
                self.ends = {str(k): str(v) for k, v in state.get("seen", {}).items()}
                for item in state.get("pending", []):
                    live = LiveEvent(str(item["release"]), int(item["day"]), item["event"])
                    self.pending[live.key] = live

    def _overlapping(self, live: LiveEvent) -> str | None:
        start, end = _iso(live.event["start"]), _iso(live.event["end"])
        prefix = live.series + "|"
        for key, seen_end in self.ends.items():
            seen_start = key[len(prefix) :] if key.startswith(prefix) else None
            if seen_start is not None and seen_start <= end and start <= seen_end:
                return key
        return None

    def is_seen(self, live: LiveEvent) -> bool:
        """Whether `live` (or an event of its series overlapping it) was written; a seen
        event that grew has its end moved, so the next tick's sighting still matches."""
        known = live.key if live.key in self.ends else self._overlapping(live)
        if known is None:
            return False
        self.ends[known] = max(self.ends[known], _iso(live.event["end"]))
        return True

    def to_write(self, release: str, found: list[LiveEvent]) -> list[LiveEvent]:
        """The events of `release` to write this tick: the pending ones, then those of
        `found` neither seen nor pending."""
        events = {key: live for key, live in self.pending.items() if live.release == release}
        for live in found:
            if live.key not in events and not self.is_seen(live):
                events[live.key] = live
        return list(events.values())

    def written(self, events: list[LiveEvent]) -> None:
        for live in events:
            self.pending.pop(live.key, None)
            if not self.is_seen(live):
                self.ends[live.key] = _iso(live.event["end"])

    def keep_pending(self, events: list[LiveEvent]) -> None:
        for live in events:
            self.pending[live.key] = live
        while len(self.pending) > MAX_PENDING:  # the oldest go first
            self.pending.pop(next(iter(self.pending)))

    def add_if_new(self, live: LiveEvent) -> bool:
        """Remember `live`; True when no event of its series overlapping it was seen."""
        if self.is_seen(live):
            return False
        self.ends[live.key] = _iso(live.event["end"])
        return True

    def forget_before(self, moment: dt.datetime) -> None:
        """Drop events that ended before `moment`: no later fetch can see them again."""
        cutoff = _iso(moment)
        self.ends = {key: end for key, end in self.ends.items() if end >= cutoff}

    def cursor(self) -> str:
        pending = [
            {"release": live.release, "day": live.day, "event": to_jsonable(dict(live.event))}
            for live in self.pending.values()
        ]
        return json.dumps(
            {"version": CURSOR_VERSION, "seen": self.ends, "pending": pending}, sort_keys=True
        )


@dataclass
class TickOutcome:
    """One evaluation of every open release window."""

    releases: list[str] = field(default_factory=list)
    new: list[LiveEvent] = field(default_factory=list)
    documents: list[Path] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    notified: int = 0

    def summary(self) -> str:
        if not self.releases:
            return "no release window covers now"
        text = f"{len(self.new)} new anomaly event(s) for {', '.join(self.releases)}"
        if self.unreadable:
            text += f"; could not read {', '.join(self.unreadable)} (see the tick's logs)"
        if self.busy:
            text += (
                f"; store busy for {', '.join(self.busy)}: their events are written on the "
                "next tick"
            )
        return text


def evaluate(
    config: TarsConfig,
    now: dt.datetime,
    seen: SeenEvents,
    folder_of: Callable[[Release], Path],
    log: logging.Logger | dg.DagsterLogManager,
    *,
    notify: bool = True,
) -> TickOutcome:
    """One tick of continuous mode (the sensor's and `tars-anomaly-detector --follow`'s):
    for each open release, the latest events, the new ones written to the store and to
    anomaly_events.json (in `folder_of(release)`), and Slack told of the critical ones
    when `notify_on` has "live_critical". `seen` is updated in place."""
    outcome = TickOutcome()
    for release in active_releases(config, now):
        outcome.releases.append(release.name)
        try:
            found = latest_events(config, release, now)
        except TarsUserError as error:
            log.error(f"{release.name}: cannot read the latest samples: {error}")
            outcome.unreadable.append(release.name)
            continue
        events = seen.to_write(release.name, found)
        if not events:
            continue
        try:
            recorded = record_live_events(config, release, events, folder_of(release), now)
        except StoreBusyError as error:
            log.warning(f"{release.name}: {len(events)} event(s) not written yet: {error}")
            seen.keep_pending(events)
            outcome.busy.append(release.name)
            continue
        seen.written(events)
        if recorded.document is not None:
            outcome.documents.append(recorded.document)
        for live in recorded.new:
            event = live.event
            log.info(
                f"new anomaly: {live.release} day {live.day} {event['service']} "
                f"{event['kpi']} {event['direction']} from {_iso(event['start'])}, "
                f"peak z {float(event['peak_z']):.2f} ({event['severity']})"
            )
        outcome.new += recorded.new
        if notify:
            outcome.notified += notify_critical(config, release, recorded.new, log)
    if outcome.releases:
        seen.forget_before(fetch_window(config, now)[0] - LOOKBACK)
    else:
        seen.forget_before(now)
    return outcome


def notify_critical(
    config: TarsConfig,
    release: Release,
    new: list[LiveEvent],
    log: logging.Logger | dg.DagsterLogManager,
) -> int:
    """Slack's "live critical anomaly" message for the critical events among `new` (each
    event is new to the store once, so it is told once); 0 unless configured."""
    critical = [live.event for live in new if live.event["severity"] == "critical"]
    slack = config.notifications.slack
    if not critical or slack is None or "live_critical" not in slack.notify_on:
        return 0
    try:
        report = notify_live_critical(release.name, critical, config.notifications, echo=log.info)
    except TarsUserError as error:  # a missing secret: named, never shown
        log.error(f"{release.name}: live critical anomaly not sent: {error}")
        return 0
    for line in summary_lines(report.deliveries):
        log.info(line)
    return report.count(status="sent") + report.count(status="dry_run")


def observation(live: LiveEvent, z_threshold: float) -> dg.AssetObservation:
    event = live.event
    return dg.AssetObservation(
        asset_key=ASSET_KEY,
        partition=release_day_key(live.release, live.day),
        description=(
            f"Live anomaly: {event['service']} {event['kpi']} {event['direction']} "
            f"(peak z {event['peak_z']:.1f}, {event['severity']})"
        ),
        metadata={
            "source": "continuous sensor",
            "release": live.release,
            "day": live.day,
            "service": str(event["service"]),
            "kpi": str(event["kpi"]),
            "start": _iso(event["start"]),
            "end": _iso(event["end"]),
            "peak_ts": _iso(event["peak_ts"]),
            "peak_z": dg.MetadataValue.float(float(event["peak_z"])),
            "peak_value": dg.MetadataValue.float(float(event["peak_value"])),
            "expected_value": dg.MetadataValue.float(float(event["expected_value"])),
            "direction": str(event["direction"]),
            "severity": str(event["severity"]),
            "points": dg.MetadataValue.int(int(event["points"])),
            "z_threshold": dg.MetadataValue.float(float(z_threshold)),
        },
    )


@dg.sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Continuous mode: every 5 minutes while a release window is open, runs the "
        "EWMA z-score detector on the last hour of samples, writes each new anomaly "
        "event to the store (live_anomaly_events) and to anomaly_events.json, records it "
        "as an observation of anomaly_events and, when configured, tells Slack of the "
        "critical ones (no run is launched)."
    ),
)
def tars_continuous_anomalies(
    context: dg.SensorEvaluationContext,
    tars_config: TarsConfigResource,
    reports: ReportsResource,
) -> dg.SensorResult:
    config = tars_config.load()
    now = dt.datetime.now(dt.UTC)
    seen = SeenEvents(context.cursor)
    outcome = evaluate(
        config, now, seen, lambda release: reports.folder(release.name, config), context.log
    )
    for live in outcome.new:
        context.instance.report_runless_asset_event(
            observation(live, config.thresholds.z_threshold)
        )
    return dg.SensorResult(skip_reason=outcome.summary(), cursor=seen.cursor())
