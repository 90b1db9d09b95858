"""CSV mode of tars-anomaly-detector: the anomaly detector on any `timestamp,value` file.

No release, store or Dagster instance is involved: the file is read, checked, scored by the
same `detect_anomalies` the `anomaly_events` asset uses, and the events come back as a
JSON-ready document. This is how the detector is checked on data nobody here made (NAB's
labelled CloudWatch series; see docs/anomaly-detection.md).

Input rules: a header with `timestamp` and `value` columns (any case, any other columns are
ignored); ISO 8601 timestamps, naive ones read as UTC, ones with an offset converted to UTC;
numeric values. An empty value is a gap and is skipped; a row whose timestamp or value cannot
be read stops the run with the line number. Rows are ordered by time, keeping file order
among equal timestamps, so a timestamp repeated around a daylight-saving change is kept
(and reported in `notes`) rather than merged or rejected.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from tars_pipeline import __version__, defaults
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.anomaly import (
    DEFAULT_MERGE_GAP,
    DEFAULT_SINGLE_SAMPLE_Z,
    Method,
    detect_anomalies,
)
from tars_pipeline.reporting.jsonio import dumps, to_jsonable, write_json

SCHEMA_VERSION = "1.0"
REQUIRED_COLUMNS: tuple[str, ...] = ("timestamp", "value")
# The CSV mode's defaults are the pipeline's (tars.yaml `thresholds:` defaults).
# (tars_pipeline.defaults, not the config models: importing pydantic's would double this
# mode's start-up.)
DEFAULT_Z_THRESHOLD = defaults.Z_THRESHOLD
DEFAULT_SPAN = defaults.EWMA_SPAN
DEFAULT_WARMUP = defaults.WARMUP_SAMPLES
DEFAULT_MIN_POINTS = defaults.ANOMALY_MIN_POINTS
# A KPI's default drift threshold: the smallest move (in % of the level) that can be an event.
DEFAULT_MIN_CHANGE_PCT = defaults.KPI_THRESHOLD_PCT
# A line number for row 0 of the frame: the header is line 1.
_FIRST_DATA_LINE = 2
_SHOWN_BAD_ROWS = 3


def _bad_rows(where: str, what: str, mask: np.ndarray, raw: pd.Series, remedy: str) -> None:
    rows = np.flatnonzero(mask)
    if not len(rows):
        return
    shown = ", ".join(
        f"line {row + _FIRST_DATA_LINE} ({raw.iloc[row]!r})" for row in rows[:_SHOWN_BAD_ROWS]
    )
    more = f" and {len(rows) - _SHOWN_BAD_ROWS} more" if len(rows) > _SHOWN_BAD_ROWS else ""
    raise TarsUserError(f"{len(rows)} {what}: {shown}{more}", where=where, remedy=remedy)


def read_series(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The file's (ts, value) rows in time order, and notes on what was done to them."""
    where = str(path)
    if not path.exists():
        raise TarsUserError("file not found", where=where, remedy="check the --input path")
    if not path.is_file():
        raise TarsUserError("not a file", where=where, remedy="--input takes one CSV file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise TarsUserError(
            "the file is empty", where=where, remedy="expected a header 'timestamp,value'"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise TarsUserError(
            f"not a readable CSV file: {error}", where=where, remedy="expected 'timestamp,value'"
        ) from None
    columns = {str(name).strip().lower(): name for name in frame.columns}
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise TarsUserError(
            f"missing column(s) {', '.join(missing)}; the header has {list(frame.columns)}",
            where=where,
            remedy="the first line must name the columns, e.g. 'timestamp,value'",
        )
    raw_ts = frame[columns["timestamp"]].str.strip()
    raw_value = frame[columns["value"]].str.strip()
    notes: list[str] = []

    gap = raw_value.eq("") | raw_value.str.lower().isin(["nan", "null", "none", "na"])
    if gap.any():
        notes.append(f"{int(gap.sum())} row(s) without a value were skipped as gaps")
    raw_ts, raw_value = raw_ts[~gap], raw_value[~gap]

    ts = pd.to_datetime(raw_ts, utc=True, errors="coerce", format="ISO8601")
    _bad_rows(
        where,
        "timestamp(s) that are not ISO 8601",
        ts.isna().to_numpy(),
        raw_ts,
        "write timestamps as e.g. 2014-02-14 14:30:00 (naive = UTC) or 2014-02-14T14:30:00Z",
    )
    values = pd.to_numeric(raw_value, errors="coerce")
    _bad_rows(
        where,
        "value(s) that are not finite numbers",
        ~np.isfinite(values.to_numpy(dtype="float64", na_value=np.nan)),
        raw_value,
        "values must be plain numbers such as 12.5 (leave the cell empty for a gap)",
    )
    series = pd.DataFrame(
        {"ts": ts.to_numpy(), "value": values.to_numpy(dtype="float64")}
    ).reset_index(drop=True)
    series["ts"] = pd.to_datetime(series["ts"], utc=True)
    backwards = series["ts"].diff() < pd.Timedelta(0)
    if backwards.any():
        first = int(np.flatnonzero(backwards.to_numpy())[0])
        notes.append(
            f"timestamps go back in time {int(backwards.sum())} time(s) (first at line "
            f"{first + _FIRST_DATA_LINE} of the rows kept); rows were sorted by timestamp. "
            "Local times around a daylight-saving change should carry their UTC offset"
        )
        series = series.sort_values("ts", kind="stable").reset_index(drop=True)
    repeated = int(series["ts"].duplicated().sum())
    if repeated:
        first = series.loc[series["ts"].duplicated(keep=False), "ts"].iloc[0]
        notes.append(
            f"{repeated} row(s) repeat an earlier timestamp (first at {first.isoformat()}, "
            "e.g. a daylight-saving change); they were kept in file order"
        )
    return series, notes


def detect_csv(
    path: Path,
    *,
    z_threshold: float = DEFAULT_Z_THRESHOLD,
    span: int = DEFAULT_SPAN,
    warmup: int = DEFAULT_WARMUP,
    method: Method = "ewma",
    min_points: int = DEFAULT_MIN_POINTS,
    single_sample_z: float | None = DEFAULT_SINGLE_SAMPLE_Z,
    merge_gap: int = DEFAULT_MERGE_GAP,
    min_change_pct: float = DEFAULT_MIN_CHANGE_PCT,
    gap_edge_seconds: float = 0.0,
) -> dict[str, Any]:
    """Anomaly events of the `timestamp,value` CSV at `path`, as a JSON-ready document.

    Raises TarsUserError, naming the file and the problem, for a missing or unreadable
    file, missing columns, unreadable timestamps or values, too few rows, or settings out
    of range.
    """
    path = Path(path)
    where = str(path)
    if not z_threshold > 0:
        raise TarsUserError(f"must be a positive number, got {z_threshold}", where="--z-threshold")
    if span < 2:
        raise TarsUserError(f"must be at least 2 samples, got {span}", where="--span")
    if warmup < 0:
        raise TarsUserError(f"must be 0 or more samples, got {warmup}", where="--warmup")
    if method not in ("ewma", "robust"):
        raise TarsUserError(f"must be 'ewma' or 'robust', got {method!r}", where="--method")
    if not min_change_pct > 0 or not np.isfinite(min_change_pct):
        raise TarsUserError(
            f"must be a positive number, got {min_change_pct}", where="--min-change-pct"
        )
    series, notes = read_series(path)
    judged_from = max(warmup, span) if method == "robust" else max(warmup, 1)
    if len(series) <= judged_from:
        raise TarsUserError(
            f"{len(series)} row(s) with a value: too few, the first {judged_from} are the "
            "detector's warm-up and nothing would be judged",
            where=where,
            remedy="give a longer series or a smaller --warmup"
            + (" / --span" if method == "robust" else ""),
        )
    samples = series.assign(service=path.stem, kpi="value")[["service", "kpi", "ts", "value"]]
    events = detect_anomalies(
        samples,
        span=span,
        warmup=warmup,
        z_threshold=z_threshold,
        severity_z=defaults.anomaly_severity_z(),
        method=method,
        min_points=min_points,
        single_sample_z=single_sample_z,
        merge_gap=merge_gap,
        min_change=min_change_pct / 100.0,
        gap_edge_seconds=gap_edge_seconds,
    )
    steps = series["ts"].diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    return to_jsonable(
        {
            "schema_version": SCHEMA_VERSION,
            "generator": f"tars-observability {__version__}",
            "input": {
                "path": where,
                "rows": len(series),
                "first_ts": series["ts"].iloc[0],
                "last_ts": series["ts"].iloc[-1],
                "median_step_seconds": steps.median().total_seconds() if len(steps) else None,
            },
            "settings": {
                "method": method,
                "z_threshold": z_threshold,
                "span": span,
                "warmup": warmup,
                "min_points": min_points,
                "single_sample_z": single_sample_z,
                "merge_gap": merge_gap,
                "min_change_pct": min_change_pct,
                "severity_z": defaults.anomaly_severity_z(),
            },
            "notes": notes,
            "count": len(events),
            "events": events.drop(columns=["service", "kpi"]),
        }
    )


def summary(document: dict[str, Any]) -> str:
    """One line for the terminal: how many events, over how many rows, at what threshold."""
    settings = document["settings"]
    lines = [
        f"{document['input']['path']}: {document['count']} anomaly event(s) over "
        f"{document['input']['rows']} rows (|z| >= {settings['z_threshold']}, "
        f"{settings['method']}, span {settings['span']})"
    ]
    lines += [f"  note: {note}" for note in document["notes"]]
    return "\n".join(lines)


def write_document(
    document: dict[str, Any], output: Path | None, stream: TextIO | None = None
) -> Path | None:
    """Write the events document to `output` (atomically), or to `stream` (stdout) when
    no output is given; returns the file written, if any."""
    if output is None:
        (stream or sys.stdout).write(dumps(document))
        return None
    output = Path(output)
    if output.is_dir():
        raise TarsUserError(
            f"{output} is a folder", where="--output", remedy="name a file, e.g. events.json"
        )
    try:
        return write_json(output, document)
    except OSError as error:
        raise TarsUserError(
            f"cannot write {output} ({error.strerror or error})",
            where="--output",
            remedy="name a file in a folder this user can create and write",
        ) from None
