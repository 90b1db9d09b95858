"""CSV mode: the anomaly detector on a `timestamp,value` file nobody here made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.cli.anomaly_csv import detect_csv, summary, write_document
from tars_pipeline.errors import TarsUserError


def _write(path: Path, values, *, start="2014-02-14 14:30:00", step="5min") -> Path:
    ts = pd.date_range(start, periods=len(values), freq=step).strftime("%Y-%m-%d %H:%M:%S")
    pd.DataFrame({"timestamp": ts, "value": values}).to_csv(path, index=False)
    return path


def _cloudwatch_cpu(rows: int = 600, seed: int = 4) -> np.ndarray:
    return np.round(np.random.default_rng(seed).normal(42.0, 1.5, rows), 3)


def test_a_spike_in_a_cloudwatch_like_series_is_one_event_in_utc(tmp_path):
    values = _cloudwatch_cpu()
    values[400:404] = 95.0
    path = _write(tmp_path / "cpu.csv", values)

    document = detect_csv(path, z_threshold=3.0, span=60, warmup=60, method="ewma")

    assert document["count"] == len(document["events"]) == 1
    event = document["events"][0]
    assert event["start"] == "2014-02-15T23:50:00+00:00"  # row 400, naive = UTC
    assert event["direction"] == "spike" and event["severity"] == "critical"
    assert event["points"] == 4
    assert document["input"]["rows"] == 600
    assert document["input"]["median_step_seconds"] == 300.0
    assert document["settings"]["z_threshold"] == 3.0
    assert document["notes"] == []
    json.dumps(document, allow_nan=False)  # plain JSON, no NaN/Infinity
    assert "1 anomaly event(s) over 600 rows" in summary(document)


def test_the_defaults_are_the_pipeline_defaults(tmp_path):
    path = _write(tmp_path / "cpu.csv", _cloudwatch_cpu())

    settings = detect_csv(path)["settings"]

    assert (settings["z_threshold"], settings["span"], settings["warmup"]) == (3.0, 60, 60)
    assert settings["method"] == "ewma"


def test_a_timestamp_repeated_around_a_dst_change_is_kept_in_file_order(tmp_path):
    # NAB's ec2_disk_write_bytes_1ef3de.csv: the skipped hour's rows all read 03:00:00.
    before = pd.date_range("2014-03-08 20:04", "2014-03-09 01:59", freq="5min")
    after = pd.date_range("2014-03-09 03:04", periods=200, freq="5min")
    stamps = [*before, *[pd.Timestamp("2014-03-09 03:00")] * 12, *after]
    values = _cloudwatch_cpu(len(stamps))
    path = tmp_path / "dst.csv"
    pd.DataFrame({"timestamp": stamps, "value": values}).to_csv(path, index=False)

    document = detect_csv(path, z_threshold=3.0, span=60, warmup=60, method="ewma")

    assert document["input"]["rows"] == len(stamps)
    assert any("11 row(s) repeat an earlier timestamp" in note for note in document["notes"])


def test_rows_out_of_time_order_are_sorted_and_said_so(tmp_path):
    values = _cloudwatch_cpu()
    values[300:303] = 90.0
    ordered = _write(tmp_path / "ordered.csv", values)
    frame = pd.read_csv(ordered)
    shuffled = tmp_path / "shuffled.csv"
    frame.sample(frac=1.0, random_state=3).to_csv(shuffled, index=False)

    expected = detect_csv(ordered, z_threshold=3.0, span=60, warmup=60, method="ewma")
    document = detect_csv(shuffled, z_threshold=3.0, span=60, warmup=60, method="ewma")

    assert document["events"] == expected["events"]
    assert any("sorted by timestamp" in note for note in document["notes"])


def test_offsets_are_converted_to_utc_and_empty_values_are_gaps(tmp_path):
    path = tmp_path / "offsets.csv"
    ts = pd.date_range("2014-02-14 14:30", periods=200, freq="5min", tz="Europe/Berlin")
    values = [str(v) for v in _cloudwatch_cpu(200)]
    values[50] = ""
    pd.DataFrame({"timestamp": [t.isoformat() for t in ts], "value": values}).to_csv(
        path, index=False
    )

    document = detect_csv(path, z_threshold=3.0, span=60, warmup=60, method="robust")

    assert document["input"]["first_ts"] == "2014-02-14T13:30:00+00:00"
    assert document["input"]["rows"] == 199
    assert document["notes"] == ["1 row(s) without a value were skipped as gaps"]


def test_extra_columns_and_header_case_do_not_matter(tmp_path):
    path = tmp_path / "extra.csv"
    frame = pd.read_csv(_write(tmp_path / "plain.csv", _cloudwatch_cpu()))
    frame.rename(columns={"timestamp": "Timestamp", "value": " VALUE"}).assign(host="i-1").to_csv(
        path, index=False
    )

    assert detect_csv(path)["input"]["rows"] == 600


def _error(path: Path, **settings) -> str:
    with pytest.raises(TarsUserError) as raised:
        detect_csv(path, **settings)
    return str(raised.value)


def test_a_missing_file_is_a_user_error_naming_it(tmp_path):
    message = _error(tmp_path / "nope.csv")

    assert "nope.csv" in message and "file not found" in message


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("time,metric\n2014-02-14 14:30:00,1.0\n")

    message = _error(path)

    assert "cols.csv" in message and "missing column(s) timestamp, value" in message


def test_an_unreadable_timestamp_is_reported_with_its_line(tmp_path):
    path = _write(tmp_path / "ts.csv", _cloudwatch_cpu(200))
    lines = path.read_text().splitlines()
    lines[5] = "yesterday," + lines[5].split(",")[1]
    path.write_text("\n".join(lines) + "\n")

    message = _error(path)

    assert "ts.csv" in message and "line 6 ('yesterday')" in message and "ISO 8601" in message


def test_unreadable_values_are_reported_with_their_lines(tmp_path):
    path = _write(tmp_path / "values.csv", _cloudwatch_cpu(200))
    lines = path.read_text().splitlines()
    lines[10] = lines[10].split(",")[0] + ",twelve"
    lines[11] = lines[11].split(",")[0] + ",inf"
    path.write_text("\n".join(lines) + "\n")

    message = _error(path)

    assert "values.csv" in message
    assert "2 value(s) that are not finite numbers" in message
    assert "line 11 ('twelve')" in message and "line 12 ('inf')" in message


def test_a_row_with_too_many_fields_is_not_a_readable_csv(tmp_path):
    path = _write(tmp_path / "fields.csv", _cloudwatch_cpu(200))
    lines = path.read_text().splitlines()
    lines[10] = lines[10].split(",")[0] + ",12,5"  # a decimal comma
    path.write_text("\n".join(lines) + "\n")

    message = _error(path)

    assert "fields.csv" in message and "not a readable CSV file" in message


def test_too_few_rows_to_judge_anything(tmp_path):
    path = _write(tmp_path / "short.csv", _cloudwatch_cpu(60))

    message = _error(path, warmup=60)

    assert "short.csv" in message and "60 row(s)" in message and "--warmup" in message
    assert detect_csv(path, warmup=10)["input"]["rows"] == 60


@pytest.mark.parametrize("content", ["", "timestamp,value\n"])
def test_an_empty_file_is_a_user_error(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)

    assert "empty.csv" in _error(path)


@pytest.mark.parametrize(
    "settings, where",
    [
        ({"z_threshold": 0.0}, "--z-threshold"),
        ({"span": 1}, "--span"),
        ({"warmup": -1}, "--warmup"),
        ({"method": "magic"}, "--method"),
    ],
)
def test_settings_out_of_range_are_user_errors(tmp_path, settings, where):
    path = _write(tmp_path / "cpu.csv", _cloudwatch_cpu())

    assert _error(path, **settings).startswith(where)


def test_the_document_goes_to_a_file_or_to_stdout(tmp_path, capsys):
    document = detect_csv(_write(tmp_path / "cpu.csv", _cloudwatch_cpu()))

    written = write_document(document, tmp_path / "out" / "events.json")
    printed = write_document(document, None)

    assert written == tmp_path / "out" / "events.json"
    assert json.loads(written.read_text()) == document
    assert printed is None and json.loads(capsys.readouterr().out) == document
    with pytest.raises(TarsUserError, match="is a folder"):
        write_document(document, tmp_path)
