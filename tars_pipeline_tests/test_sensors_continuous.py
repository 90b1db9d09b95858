"""Continuous mode: during a live release window, a spike in the last hour becomes one
observation of anomaly_events, reported once however often the sensor ticks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.sensors_continuous import (
    ASSET_KEY,
    MINIMUM_INTERVAL_SECONDS,
    SENSOR_NAME,
    tars_continuous_anomalies,
)
from tars_pipeline.sources.snapshot import MANIFEST_NAME, SNAPSHOT_FORMAT
from tars_pipeline_tests.conftest import write_config

RELEASE = "live-1"
SAMPLES = 240  # four hours at a 60 s step, ending now
SPIKE_MINUTES_AGO = 20


def write_live_snapshot(root: Path, ga_date: dt.date) -> pd.Timestamp:
    """A snapshot in the committed format whose samples end now; returns the spike's start."""
    now = pd.Timestamp.now(tz="UTC").floor("min")
    ts = pd.date_range(end=now, periods=SAMPLES, freq="60s")
    latency = np.round(np.random.default_rng(8).uniform(118.0, 122.0, SAMPLES), 3)
    spike = SAMPLES - 1 - SPIKE_MINUTES_AGO
    latency[spike : spike + 5] = 320.0
    samples = pd.concat(
        [
            pd.DataFrame({"service": "checkout", "kpi": "latency_p99", "ts": ts, "value": latency}),
            pd.DataFrame({"service": "checkout", "kpi": "throughput", "ts": ts, "value": 300.0}),
        ],
        ignore_index=True,
    )
    folder = root / RELEASE
    folder.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("samples", samples)
        target = str(folder / f"{now.date().isoformat()}.parquet").replace("'", "''")
        con.execute(
            "COPY (SELECT service::VARCHAR AS service, kpi::VARCHAR AS kpi,"
            " ts::TIMESTAMPTZ AS ts, value::DOUBLE AS value FROM samples"
            f" ORDER BY service, kpi, ts) TO '{target}' (FORMAT parquet)"
        )
    manifest = {
        "format": SNAPSHOT_FORMAT,
        "format_version": 1,
        "release": RELEASE,
        "ga_date": ga_date.isoformat(),
        "timezone": "UTC",
        "window_days": 7,
        "step_seconds": 60,
        "services": ["checkout"],
        "kpis": ["latency_p99", "throughput"],
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    return ts[spike]


def _config(tmp_path: Path, ga_date: dt.date, snapshot: Path) -> TarsConfigResource:
    path = write_config(
        tmp_path,
        source={"type": "snapshot", "path": str(snapshot)},
        releases=[
            {"name": RELEASE, "ga_date": ga_date.isoformat(), "timezone": "UTC", "window_days": 7}
        ],
    )
    return TarsConfigResource(config_path=str(path))


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _tick(instance: dg.DagsterInstance, config: TarsConfigResource, cursor: str | None = None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"tars_config": config, "reports": ReportsResource()},
    )
    result = tars_continuous_anomalies(context)
    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests  # continuous mode observes; it launches no run
    return result


def _observations(instance: dg.DagsterInstance) -> list[dg.AssetObservation]:
    records = instance.fetch_observations(ASSET_KEY, limit=50).records
    return [record.asset_observation for record in records]


def test_a_spike_in_the_last_hour_is_observed_once_on_its_release_day(tmp_path, instance):
    ga_date = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    spike_start = write_live_snapshot(tmp_path / "snapshot", ga_date)
    config = _config(tmp_path, ga_date, tmp_path / "snapshot")

    first = _tick(instance, config)

    assert first.skip_reason.skip_message.startswith(f"1 new anomaly event(s) for {RELEASE}")
    (observed,) = _observations(instance)
    meta = {key: value.value for key, value in observed.metadata.items()}
    assert meta["service"] == "checkout" and meta["kpi"] == "latency_p99"
    assert meta["direction"] == "spike" and meta["severity"] == "critical"
    assert meta["start"] == spike_start.isoformat()
    assert meta["peak_value"] == 320.0
    assert meta["source"] == "continuous sensor"
    day = (spike_start.date() - ga_date).days
    assert observed.partition == dg.MultiPartitionKey({"release": RELEASE, "day": f"day_{day:02d}"})
    seen = json.loads(first.cursor)["seen"]
    assert list(seen) == [f"{RELEASE}|checkout|latency_p99|{spike_start.isoformat()}"]

    again = _tick(instance, config, cursor=first.cursor)

    assert again.skip_reason.skip_message.startswith("0 new anomaly event(s)")
    assert len(_observations(instance)) == 1
    assert json.loads(again.cursor)["seen"] == seen


def test_no_release_window_covers_now_nothing_is_read(tmp_path, instance):
    long_ago = dt.date(2020, 1, 6)
    config = _config(tmp_path, long_ago, tmp_path / "no-snapshot-needed")

    result = _tick(instance, config)

    assert result.skip_reason.skip_message == "no release window covers now"
    assert _observations(instance) == []


def test_an_unreadable_source_is_logged_and_the_tick_still_completes(tmp_path, instance):
    ga_date = dt.datetime.now(dt.UTC).date()
    config = _config(tmp_path, ga_date, tmp_path / "missing")

    result = _tick(instance, config)

    assert f"could not read {RELEASE}" in result.skip_reason.skip_message
    assert _observations(instance) == []


def test_the_sensor_is_stopped_by_default_and_ticks_every_five_minutes():
    sensor = tars_continuous_anomalies

    assert sensor.name == SENSOR_NAME
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.minimum_interval_seconds == MINIMUM_INTERVAL_SECONDS == 300
    assert sensor.required_resource_keys == {"tars_config", "reports"}
