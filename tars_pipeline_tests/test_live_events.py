"""Continuous mode writes what it finds: the merge of a tick's events into the store, the
record anomaly_events.json lists (nightly days win, live events fill the others), and the
sensor's writes on both store layouts, including a DuckDB file another process holds."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from tars_pipeline.config import Release
from tars_pipeline.judge.live import LIVE_COLUMNS, merge_live, reconcile
from tars_pipeline.reporting import schema
from tars_pipeline.reporting.outputs import anomaly_events_doc
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.sensors_continuous import SeenEvents, tars_continuous_anomalies
from tars_pipeline.store import open_store, read_table, store_location
from tars_pipeline_tests.conftest import write_config
from tars_pipeline_tests.test_sensors_continuous import RELEASE, write_live_snapshot

T0 = pd.Timestamp("2026-03-05T18:56:00Z")
MINUTE = pd.Timedelta(minutes=1)


def event(
    minutes: int, length: int = 5, *, service: str = "checkout", kpi: str = "latency_p99"
) -> dict:
    start = T0 + minutes * MINUTE
    return {
        "service": service,
        "kpi": kpi,
        "start": start,
        "end": start + length * MINUTE,
        "peak_ts": start + 2 * MINUTE,
        "peak_z": 9.0,
        "peak_value": 320.0,
        "expected_value": 120.0,
        "direction": "spike",
        "severity": "critical",
        "points": length + 1,
        "alarm_ts": start + MINUTE,
    }


def frame(*events: dict, day: int | None = None) -> pd.DataFrame:
    rows = pd.DataFrame(list(events))
    return rows if day is None else rows.assign(release=RELEASE, day=day)


SEEN_AT = pd.Timestamp("2026-03-05T19:05:00Z")
EMPTY_LIVE = pd.DataFrame(columns=list(LIVE_COLUMNS))


# --- merge_live ------------------------------------------------------------------------


def test_a_new_event_is_appended_with_when_it_was_seen():
    stored, new = merge_live(EMPTY_LIVE, frame(event(0)), detected_at=SEEN_AT)

    assert len(stored) == len(new) == 1
    assert stored.loc[0, "detected_at"] == SEEN_AT
    assert list(stored.columns) == list(LIVE_COLUMNS)


def test_the_same_event_seen_again_longer_is_not_new_and_replaces_the_row():
    stored, _ = merge_live(EMPTY_LIVE, frame(event(0, 3)), detected_at=SEEN_AT)

    # The next tick: one sample later (another warm-up) and two minutes longer.
    again, new = merge_live(stored, frame(event(1, 4)), detected_at=SEEN_AT + 5 * MINUTE)

    assert new.empty
    assert len(again) == 1
    assert again.loc[0, "start"] == T0  # the first sighting's start
    assert again.loc[0, "end"] == T0 + 5 * MINUTE  # the longer sighting's end
    assert again.loc[0, "detected_at"] == SEEN_AT


def test_another_series_or_a_later_event_is_a_second_event():
    stored, _ = merge_live(EMPTY_LIVE, frame(event(0)), detected_at=SEEN_AT)

    merged, new = merge_live(
        stored, frame(event(0, kpi="error_rate"), event(30)), detected_at=SEEN_AT
    )

    assert len(new) == 2 and len(merged) == 3


def test_an_event_the_nightly_run_already_stored_is_neither_new_nor_stored():
    merged, new = merge_live(
        EMPTY_LIVE, frame(event(1)), detected_at=SEEN_AT, known=frame(event(0), day=2)
    )

    assert new.empty and merged.empty


# --- reconcile and the document ---------------------------------------------------------


def test_a_live_event_of_a_day_the_nightly_run_processed_is_left_to_the_nightly_record():
    nightly = frame(event(0), day=2)
    live = frame(event(1), day=2).assign(detected_at=SEEN_AT)

    record = reconcile(nightly, [2], live)

    assert len(record) == 1 and record.loc[0, "source"] == "nightly"


def test_a_processed_day_without_events_still_wins_over_live_ones():
    live = frame(event(0), day=2).assign(detected_at=SEEN_AT)

    assert reconcile(frame(event(0), day=1)[:0], [2], live).empty


def test_live_events_of_unprocessed_days_join_the_nightly_ones():
    nightly = frame(event(-600), day=1)
    live = frame(event(0), day=2).assign(detected_at=SEEN_AT)

    record = reconcile(nightly, [1], live)

    assert list(record["source"]) == ["nightly", "live"]
    assert "detected_at" not in record


def test_a_live_event_the_nightly_run_put_on_the_previous_day_is_listed_once():
    # Across midnight: the nightly run of day 1 stored it; day 2 has not run yet.
    nightly = frame(event(0), day=1)
    live = frame(event(2), day=2).assign(detected_at=SEEN_AT)

    assert list(reconcile(nightly, [1], live)["source"]) == ["nightly"]


RELEASE_MODEL = Release(name=RELEASE, ga_date=dt.date(2026, 3, 3), timezone="UTC")


def test_a_nightly_only_document_is_as_before_and_a_mixed_one_names_each_source():
    nightly = frame(event(-600), day=1)
    before = anomaly_events_doc(RELEASE_MODEL, nightly, 3.0)

    only_nightly = anomaly_events_doc(RELEASE_MODEL, reconcile(nightly, [1], EMPTY_LIVE), 3.0)
    live = frame(event(0), day=2).assign(detected_at=SEEN_AT)
    mixed = anomaly_events_doc(RELEASE_MODEL, reconcile(nightly, [1], live), 3.0)

    assert json.dumps(only_nightly, default=str) == json.dumps(before, default=str)
    rows = json.loads(json.dumps(schema_ready(mixed)))["events"]
    assert [row["source"] for row in rows] == ["nightly", "live"]
    assert mixed["days"] == [1, 2] and mixed["count"] == 2
    schema.validate_document("anomaly_events", schema_ready(mixed))
    bogus = schema_ready(mixed)
    bogus["events"][0]["source"] = "guess"
    assert schema.schema_errors("anomaly_events", bogus)


def schema_ready(document: dict) -> dict:
    from tars_pipeline.reporting.jsonio import to_jsonable

    return to_jsonable(document)


# --- the sensor's writes ------------------------------------------------------------------


def live_config(tmp_path: Path, layout: str) -> tuple[TarsConfigResource, pd.Timestamp]:
    ga_date = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    spike_start = write_live_snapshot(tmp_path / "snapshot", ga_date)
    path = write_config(
        tmp_path,
        source={"type": "snapshot", "path": str(tmp_path / "snapshot")},
        store_layout=layout,
        releases=[
            {"name": RELEASE, "ga_date": ga_date.isoformat(), "timezone": "UTC", "window_days": 7}
        ],
    )
    return TarsConfigResource(config_path=str(path)), spike_start


def tick(instance: dg.DagsterInstance, config: TarsConfigResource, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"tars_config": config, "reports": ReportsResource()},
    )
    result = tars_continuous_anomalies(context)
    assert isinstance(result, dg.SensorResult)
    return result


def stored_live(config: TarsConfigResource) -> pd.DataFrame:
    with open_store(store_location(config.load())) as store:
        return read_table(store, "live_anomaly_events", RELEASE)


def written_events(tmp_path: Path) -> list[dict]:
    document = json.loads((tmp_path / "out" / RELEASE / "anomaly_events.json").read_text())
    schema.validate_document("anomaly_events", document)
    return document["events"]


@pytest.mark.parametrize("layout", ["duckdb", "parquet"])
def test_a_tick_stores_the_new_event_and_writes_the_json_once(tmp_path, layout):
    config, spike_start = live_config(tmp_path, layout)
    with dg.instance_for_test() as instance:
        first = tick(instance, config, None)
        second = tick(instance, config, first.cursor)

    assert first.skip_reason.skip_message.startswith("1 new anomaly event(s)")
    assert second.skip_reason.skip_message.startswith("0 new anomaly event(s)")
    stored = stored_live(config)
    assert len(stored) == 1
    assert stored.loc[0, "start"] == spike_start
    (listed,) = written_events(tmp_path)
    assert listed["source"] == "live" and listed["start"] == spike_start.isoformat()


def test_a_lost_cursor_does_not_duplicate_the_stored_event(tmp_path):
    config, _ = live_config(tmp_path, "parquet")
    with dg.instance_for_test() as instance:
        tick(instance, config, None)
        again = tick(instance, config, None)

    assert again.skip_reason.skip_message.startswith("0 new anomaly event(s)")
    assert len(stored_live(config)) == 1
    assert len(written_events(tmp_path)) == 1


HOLD = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
conn.close()
"""


def test_events_found_while_a_run_holds_the_duckdb_file_are_written_on_the_next_tick(tmp_path):
    config, spike_start = live_config(tmp_path, "duckdb")
    store_file = config.load().store_file
    with open_store(store_location(config.load())):
        pass  # the file exists, as after the first run
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with dg.instance_for_test() as instance:
            busy = tick(instance, config, None)
            assert "store busy" in busy.skip_reason.skip_message
            assert busy.skip_reason.skip_message.startswith("0 new anomaly event(s)")
            state = json.loads(busy.cursor)
            assert state["seen"] == {} and len(state["pending"]) == 1
            assert instance.fetch_observations(dg.AssetKey("anomaly_events"), 10).records == []
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(timeout=30)
            time.sleep(0.1)

            retried = tick(instance, config, busy.cursor)
            records = instance.fetch_observations(dg.AssetKey("anomaly_events"), 10).records
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    assert retried.skip_reason.skip_message.startswith("1 new anomaly event(s)")
    assert len(records) == 1
    state = json.loads(retried.cursor)
    assert state["pending"] == [] and list(state["seen"]) == [
        f"{RELEASE}|checkout|latency_p99|{spike_start.isoformat()}"
    ]
    with duckdb.connect(str(store_file), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM live_anomaly_events").fetchone() == (1,)


def test_a_version_1_cursor_keeps_its_seen_events():
    key = f"{RELEASE}|checkout|latency_p99|2026-03-05T18:56:00+00:00"
    seen = SeenEvents(json.dumps({"version": 1, "seen": {key: "2026-03-05T19:01:00+00:00"}}))

    assert seen.ends == {key: "2026-03-05T19:01:00+00:00"}
    assert json.loads(seen.cursor())["version"] == 2


# --- tars-anomaly-detector --follow ---------------------------------------------------------


def follow_command(tmp_path: Path, *extra: str) -> list[str]:
    script = Path(sys.executable).parent / "tars-anomaly-detector"
    return [str(script), "--config", str(tmp_path / "tars.yaml"), "--follow", *extra]


def test_follow_writes_what_the_sensor_writes_and_ctrl_c_exits_130(tmp_path):
    live_config(tmp_path, "parquet")
    env = {**os.environ, "NO_COLOR": "1"}

    once = subprocess.run(
        follow_command(tmp_path, "--ticks", "1"),
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert once.returncode == 0, once.stderr
    assert "1 new anomaly event(s)" in once.stdout
    assert len(written_events(tmp_path)) == 1

    looping = subprocess.Popen(
        follow_command(tmp_path, "--interval", "0.5"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        lines = []
        while len([line for line in lines if "new anomaly event(s)" in line]) < 2:
            assert time.monotonic() < deadline and looping.poll() is None
            lines.append(looping.stdout.readline())
        looping.send_signal(signal.SIGINT)
        stdout, _ = looping.communicate(timeout=60)
    finally:
        if looping.poll() is None:
            looping.kill()
            looping.wait()

    assert looping.returncode == 130
    assert all(
        line.split(": ", 1)[1].startswith("0 new") for line in lines if "new anomaly" in line
    )
    assert "stopped after" in stdout
    assert len(written_events(tmp_path)) == 1  # a restarted follower adds no duplicate


# --- Slack, mid-week ------------------------------------------------------------------------


def test_a_critical_live_event_is_told_to_slack_only_when_asked_for():
    from tars_pipeline.config import NotificationsConfig, SlackConfig
    from tars_pipeline.errors import TarsUserError
    from tars_pipeline.notify.live import notify_live_critical

    hostile = {**event(0), "service": "<!channel> pay"}
    printed: list[str] = []
    default = NotificationsConfig(slack=SlackConfig(dry_run=True))
    asked = NotificationsConfig(slack=SlackConfig(notify_on=("live_critical",), dry_run=True))

    assert notify_live_critical(RELEASE, [hostile], default, echo=printed.append).deliveries == []
    report = notify_live_critical(RELEASE, [hostile], asked, echo=printed.append)

    (delivery,) = report.deliveries
    assert delivery.status == "dry_run" and delivery.kind == "live_critical"
    assert "&lt;!channel&gt; pay" in json.dumps(delivery.payload)
    assert "<!channel>" not in json.dumps(delivery.payload)
    live = NotificationsConfig(slack=SlackConfig(notify_on=("live_critical",)))
    with pytest.raises(TarsUserError, match="TARS_SLACK_WEBHOOK_URL is not set"):
        notify_live_critical(RELEASE, [hostile], live, env={})
