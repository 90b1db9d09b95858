"""anomaly_events.json while several days of a release commit at once (a parallel backfill).

Each day's run stores its events, then rewrites the file from the store. The interleaving
that used to lose a day — run B reads the record before run A commits, and writes after
A has written — is replayed step by step here on a real store and a real output file: the
two runs are driven in that order by hand (no real scheduler can be made to interleave
them on demand, so this is where the test orders the steps itself).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tars_pipeline.config import load_config
from tars_pipeline.reporting.jsonio import write_json
from tars_pipeline.store import (
    open_store,
    read_anomaly_record,
    replace_partition,
    store_location,
    write_settled_record,
)
from tars_pipeline_tests.conftest import write_config

RELEASE = "v1.0.0"


def _events(day: int) -> pd.DataFrame:
    start = pd.Timestamp("2026-03-03T12:00:00Z") + pd.Timedelta(days=day)
    return pd.DataFrame(
        {
            "service": ["checkout"],
            "kpi": ["latency_p95_ms"],
            "start": [start],
            "end": [start + pd.Timedelta(minutes=5)],
            "peak_ts": [start + pd.Timedelta(minutes=2)],
            "peak_z": [6.5 + day],
            "peak_value": [900.0],
            "expected_value": [300.0],
            "direction": ["spike"],
            "severity": ["high"],
            "points": [5],
            "alarm_ts": [start],
        }
    )


def _commit(location, day: int) -> None:
    marker = pd.DataFrame({"z_threshold": [3.0], "event_count": [1]})
    with open_store(location) as conn:
        replace_partition(
            conn, RELEASE, day, {"anomaly_events": _events(day), "anomaly_days": marker}
        )


def _days_in(path: Path) -> list[int]:
    return json.loads(path.read_text("utf-8"))["days"]


def test_a_run_that_read_before_another_committed_writes_again(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    location = store_location(config)
    release = config.releases[0]
    out = tmp_path / "anomaly_events.json"
    writes: list[list[int]] = []

    def read() -> pd.DataFrame:
        with open_store(location) as conn:
            return read_anomaly_record(conn, RELEASE)

    def write_as(run: str):
        def write(record: pd.DataFrame) -> Path:
            from tars_pipeline.reporting import outputs

            if run == "B" and not writes:
                # B has read (day 4 only); now A commits day 3 and writes, all of it
                # before B's write lands.
                _commit(location, 3)
                write_settled_record(read, write_as("A"))
            path = write_json(out, outputs.anomaly_events_doc(release, record, 3.0))
            writes.append(sorted({int(d) for d in record["day"]}))
            return path

        return write

    _commit(location, 4)
    write_settled_record(read, write_as("B"))

    # A wrote days 3 and 4; B's first write (day 4 alone) came after it, and B, reading the
    # record again, wrote both days once more.
    assert writes == [[3, 4], [4], [3, 4]]
    assert _days_in(out) == [3, 4]


def test_a_record_that_does_not_change_is_written_once(tmp_path: Path) -> None:
    calls = {"read": 0, "write": 0}
    record = pd.DataFrame({"day": [1, 2]})

    def read() -> pd.DataFrame:
        calls["read"] += 1
        return record.copy()

    def write(_: pd.DataFrame) -> Path:
        calls["write"] += 1
        return tmp_path / "x.json"

    write_settled_record(read, write)
    assert calls == {"read": 2, "write": 1}
