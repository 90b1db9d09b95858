"""Continuous mode (SPEC §3): the anomaly detector on the latest samples, every few minutes.

While a release's window is open, the `tars_continuous_anomalies` sensor fetches the last
hour of samples from the metric source (plus the detector's warm-up history before it, as
the `anomaly_events` asset warms up on the previous day), runs the same `detect_anomalies`
with the thresholds of tars.yaml, and records each event it has not reported before: a log
line on the tick and an `AssetObservation` of `anomaly_events` on the event's release-day
partition, so live events show on the asset in the UI before the nightly run stores them.

The sensor launches no run and writes neither the store nor the JSON outputs; the nightly
`anomaly_events` partition stays the record. It is stopped by default: start it in the UI
(Automation) for the release week.

Dedupe: the cursor keeps each reported event as (release, service, kpi, start) → end. An
event is new unless one of the same series overlaps it in time: a tick that sees an ongoing
event grow (or, with a slightly different warm-up, start one sample later) reports nothing
new. Entries older than any future fetch are dropped, so the cursor stays small.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.day import day_anomalies
from tars_pipeline.judge.maintenance import events_outside_maintenance
from tars_pipeline.partitions import release_day_key
from tars_pipeline.resources import TarsConfigResource
from tars_pipeline.sources import build_source
from tars_pipeline.store import ParquetLocation, read_table, store_location
from tars_pipeline.store_parquet import ParquetStore, StoreVersionError

SENSOR_NAME = "tars_continuous_anomalies"
ASSET_KEY = dg.AssetKey("anomaly_events")
MINIMUM_INTERVAL_SECONDS = 300
# The window judged at each tick: longer than the tick interval, so a tick the daemon
# skips or runs late loses nothing.
LOOKBACK = dt.timedelta(hours=1)
CURSOR_VERSION = 1


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


def latest_events(config: TarsConfig, release: Release, now: dt.datetime) -> list[LiveEvent]:
    """Events of `release` that touch the last LOOKBACK before `now`, outside maintenance:
    the nightly asset's detector and cleaning (`judge.day.day_anomalies`) on live samples."""
    fetch_from, judge_from = fetch_window(config, now)
    fetched = build_source(config).fetch_day(
        release, fetch_from, now, config.kpis, config.step_seconds
    )
    events = day_anomalies(
        fetched.samples,
        config,
        judged_from=fetch_from,
        baseline=stored_ga_day(config, release) if day_of(release, now) > 0 else None,
        timezone=release.timezone,
    )
    if events.empty:
        return []
    events = events[pd.to_datetime(events["end"], utc=True) >= pd.Timestamp(judge_from)]
    events = events_outside_maintenance(events, config.maintenance_windows)
    return [
        LiveEvent(release.name, day_of(release, record["start"]), record)
        for record in events.to_dict(orient="records")
    ]


class SeenEvents:
    """The cursor: reported events as {"release|service|kpi|start": end}, both ISO UTC."""

    def __init__(self, cursor: str | None):
        self.ends: dict[str, str] = {}
        if cursor:
            try:
                state = json.loads(cursor)
            except json.JSONDecodeError:
                state = {}
            if isinstance(state, dict) and state.get("version") == CURSOR_VERSION:
                self.ends = {str(k): str(v) for k, v in state.get("seen", {}).items()}

    def _overlapping(self, live: LiveEvent) -> str | None:
        start, end = _iso(live.event["start"]), _iso(live.event["end"])
        prefix = live.series + "|"
        for key, seen_end in self.ends.items():
            seen_start = key[len(prefix) :] if key.startswith(prefix) else None
            if seen_start is not None and seen_start <= end and start <= seen_end:
                return key
        return None

    def add_if_new(self, live: LiveEvent) -> bool:
        """Remember `live`; True when no event of its series overlapping it was seen."""
        end = _iso(live.event["end"])
        known = live.key if live.key in self.ends else self._overlapping(live)
        if known is None:
            self.ends[live.key] = end
            return True
        self.ends[known] = max(self.ends[known], end)
        return False

    def forget_before(self, moment: dt.datetime) -> None:
        """Drop events that ended before `moment`: no later fetch can see them again."""
        cutoff = _iso(moment)
        self.ends = {key: end for key, end in self.ends.items() if end >= cutoff}

    def cursor(self) -> str:
        return json.dumps({"version": CURSOR_VERSION, "seen": self.ends}, sort_keys=True)


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
        "EWMA z-score detector on the last hour of samples and records each new "
        "anomaly event as an observation of anomaly_events (no run is launched)."
    ),
)
def tars_continuous_anomalies(
    context: dg.SensorEvaluationContext, tars_config: TarsConfigResource
) -> dg.SensorResult:
    config = tars_config.load()
    now = dt.datetime.now(dt.UTC)
    seen = SeenEvents(context.cursor)
    releases = active_releases(config, now)
    if not releases:
        seen.forget_before(now)
        return dg.SensorResult(skip_reason="no release window covers now", cursor=seen.cursor())
    reported: list[str] = []
    failed: list[str] = []
    for release in releases:
        try:
            found = latest_events(config, release, now)
        except TarsUserError as error:
            context.log.error(f"{release.name}: cannot read the latest samples: {error}")
            failed.append(release.name)
            continue
        for live in found:
            if not seen.add_if_new(live):
                continue
            event = live.event
            context.log.info(
                f"new anomaly: {live.release} day {live.day} {event['service']} "
                f"{event['kpi']} {event['direction']} from {_iso(event['start'])}, "
                f"peak z {event['peak_z']:.2f} ({event['severity']})"
            )
            context.instance.report_runless_asset_event(
                observation(live, config.thresholds.z_threshold)
            )
            reported.append(live.key)
    seen.forget_before(fetch_window(config, now)[0] - LOOKBACK)
    names = ", ".join(release.name for release in releases)
    summary = f"{len(reported)} new anomaly event(s) for {names}"
    if failed:
        summary += f"; could not read {', '.join(failed)} (see the tick's logs)"
    return dg.SensorResult(skip_reason=summary, cursor=seen.cursor())
