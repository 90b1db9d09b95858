"""Continuous mode end to end: a real Prometheus whose data ends now, Dagster's own daemon
ticking the `tars_continuous_anomalies` sensor, then the nightly run over the same day.

The server is this module's own (the session's holds a week in the past): four hours of
the bundled week's samples, moved to end at the current minute, with a memory spike on
checkout twenty minutes ago, written as OpenMetrics by the generator and backfilled with
promtool (`backfill`, `serving` from conftest). The daemon is `dagster-daemon run` with
its sensor clock scaled: the sensor's 5-minute interval passes in 10 s of real time
(`get_elapsed` × 30; the sensor itself reads the real time), so two ticks take seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from tars_pipeline.cli.runner import Progress, Runner
from tars_pipeline.config import load_config
from tars_pipeline.sensors import register_releases
from tars_pipeline.sensors_continuous import SENSOR_NAME
from tars_pipeline.store import open_store, read_anomaly_record, read_table, store_location
from tars_pipeline_tests.conftest import SNAPSHOT, write_config
from tars_pipeline_tests.prometheus.conftest import (
    assert_blocks_not_in_future,
    backfill,
    load_generator,
    require_binaries,
    serving,
)
from tars_pipeline_tests.test_ui import DagsterUI

pytestmark = pytest.mark.slow

RELEASE = "live-prom"
MINUTES = 240
SPIKE_MINUTES_AGO = 20
SPIKE_KPI = "memory_utilization"
DAEMON = """
import dagster._daemon.controller as controller
import dagster._daemon.sensor as sensor
controller.DEFAULT_DAEMON_INTERVAL_SECONDS = 1
elapsed = sensor.get_elapsed
def driven(state):  # the sensor's 300 s interval in 10 s
    real = elapsed(state)
    return None if real is None else real * 30
sensor.get_elapsed = driven
from dagster._daemon.cli import main
main()
"""


def live_samples(now: pd.Timestamp) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Four hours of the bundled week (day 1, from 14:00 UTC) ending at `now`, every
    service and KPI, with checkout's memory at 1.6x for five minutes; and the spike's start."""
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        path = str(SNAPSHOT / "v1.0.1" / "2026-03-04.parquet").replace("'", "''")
        week = conn.execute(f"SELECT service, kpi, ts, value FROM '{path}'").df()
    week["ts"] = pd.to_datetime(week["ts"], utc=True)
    first = pd.Timestamp("2026-03-04T14:00:00Z")
    chosen = week[(week["ts"] >= first) & (week["ts"] < first + pd.Timedelta(minutes=MINUTES))]
    chosen = chosen.assign(ts=chosen["ts"] + (now - pd.Timedelta(minutes=MINUTES - 1) - first))
    spike = now - pd.Timedelta(minutes=SPIKE_MINUTES_AGO)
    hit = (
        (chosen["service"] == "checkout")
        & (chosen["kpi"] == SPIKE_KPI)
        & (chosen["ts"] >= spike)
        & (chosen["ts"] < spike + pd.Timedelta(minutes=5))
    )
    chosen.loc[hit, "value"] = chosen.loc[hit, "value"] * 1.6
    return chosen.reset_index(drop=True), spike


@pytest.fixture(scope="module")
def live_prometheus(tmp_path_factory: pytest.TempPathFactory):
    prometheus, promtool = require_binaries()
    folder = tmp_path_factory.mktemp("live-prometheus")
    now = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=1)
    samples, spike = live_samples(now)
    generator = load_generator()
    source = folder / "live.om"
    generator.write_openmetrics(samples, source)
    data_dir = folder / "tsdb"
    data_dir.mkdir()
    backfill(promtool, source, data_dir)
    assert_blocks_not_in_future(data_dir, dt.datetime.now(dt.UTC))
    with serving(prometheus, data_dir, folder) as (url, _port, _pid):
        yield url, spike


def sensor_ticks(instance: dg.DagsterInstance) -> list:
    states = [
        state
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if state.name == SENSOR_NAME
    ]
    if not states:
        return []
    state = states[0]
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
    return sorted(
        (tick for tick in ticks if tick.status != TickStatus.STARTED),
        key=lambda tick: tick.timestamp,
    )


def spike_events(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["service"] == "checkout") & (frame["kpi"] == SPIKE_KPI)]


def test_a_spike_in_the_last_hour_is_stored_once_and_the_nightly_run_agrees(
    tmp_path: Path, live_prometheus
) -> None:
    url, spike = live_prometheus
    ga_date = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    config_path = write_config(
        tmp_path,
        source={"type": "prometheus", "url": url},
        releases=[
            {"name": RELEASE, "ga_date": ga_date.isoformat(), "timezone": "UTC", "window_days": 7}
        ],
    )
    server = DagsterUI(tmp_path, config_path)
    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        register_releases(instance, [RELEASE])
    started = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "sensor",
            "start",
            SENSOR_NAME,
            "-w",
            "workspace.yaml",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    server._spawn([sys.executable, "-c", DAEMON, "run", "-w", "workspace.yaml"])
    try:
        deadline = time.monotonic() + 240
        with dg.DagsterInstance.from_config(str(server.home)) as instance:
            while len(ticks := sensor_ticks(instance)) < 2:
                assert time.monotonic() < deadline, server.log.read_text()[-4000:]
                time.sleep(1)
            observations = instance.fetch_observations(dg.AssetKey("anomaly_events"), 50).records
    finally:
        server.stop()

    reasons = [tick.skip_reason or "" for tick in ticks[:2]]
    assert all(not tick.run_ids for tick in ticks), "continuous mode launches no run"
    first_new = int(reasons[0].split()[0])
    assert first_new >= 1, reasons
    assert reasons[1].startswith("0 new anomaly event(s)"), reasons  # a second tick: nothing
    spiked = [
        o.asset_observation
        for o in observations
        if o.asset_observation.metadata["kpi"].value == SPIKE_KPI
        and o.asset_observation.metadata["service"].value == "checkout"
    ]
    assert len(spiked) == 1
    assert pd.Timestamp(spiked[0].metadata["start"].value) <= spike + pd.Timedelta(minutes=1)

    config = load_config(config_path)
    document_path = tmp_path / "out" / RELEASE / "anomaly_events.json"
    live_document = json.loads(document_path.read_text(encoding="utf-8"))
    listed = spike_events(pd.DataFrame(live_document["events"]))
    assert len(listed) == 1 and listed.iloc[0]["source"] == "live"
    assert live_document["count"] == first_new
    with open_store(store_location(config)) as store:
        live = read_table(store, "live_anomaly_events", RELEASE)
    assert len(spike_events(live)) == 1
    day = int(live["day"].iloc[0])

    # The nightly run over that day: the same detector on the whole day, and its record.
    home = tmp_path / "nightly_home"
    home.mkdir()
    os.environ.setdefault("TARS_CONFIG", str(config_path))
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        runner = Runner(config, instance=instance, progress=Progress(enabled=False))
        first_sample = spike + pd.Timedelta(minutes=SPIKE_MINUTES_AGO - (MINUTES - 1))
        day_start, _ = config.releases[0].day_bounds(day)
        if day > 0 and first_sample < pd.Timestamp(day_start):
            # The day before is stored, as the nightly schedule leaves it: the detector warms
            # up on its tail. (Without it, a spike in the first hour of a UTC day, when the
            # test runs just after midnight, would fall in the warm-up.) Only when the four
            # live hours reach into that day: otherwise it has no samples to store.
            runner.day(config.releases[0], day - 1, ("kpi_samples",))
        runner.day(config.releases[0], day, ("kpi_samples", "anomaly_events"))
    with open_store(store_location(config)) as store:
        nightly = read_table(store, "anomaly_events", RELEASE, [day])
        record = read_anomaly_record(store, RELEASE)
    assert len(spike_events(nightly)) == 1  # the nightly run found it too
    assert len(spike_events(record)) == 1  # and it is one event, not two
    document = json.loads(document_path.read_text(encoding="utf-8"))
    assert len(spike_events(pd.DataFrame(document["events"]))) == 1
    assert all("source" not in event for event in document["events"])  # the nightly record
