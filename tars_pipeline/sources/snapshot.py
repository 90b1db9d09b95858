"""Offline snapshot source: KPI samples from Parquet files, for replay and for the demo.

Layout (written by `test_data/generate.py`, and by the Prometheus snapshot exporter):

    <root>/<release>/manifest.json        release, timezone, step, services, KPIs
    <root>/<release>/YYYY-MM-DD.parquet   columns service, kpi, ts (TIMESTAMPTZ), value
    <root>/<release>/breakdown/*.parquet  optional: service, kpi, ts, dimension, element,
                                          numerator, denominator (the label breakdown the
                                          top contributors are ranked from;
                                          sources/breakdown.py, docs/methods/contributors.md)

Files are read with DuckDB, filtered to the requested window, so how the files are split
by day does not matter to the reader.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from tars_pipeline import duck
from tars_pipeline.config import KpiDefinition, Release
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources.base import DayFetch, coverage_of, empty_samples, expected_points

SNAPSHOT_FORMAT = "tars-snapshot"
MANIFEST_NAME = "manifest.json"


class SnapshotSource:
    """Reads `<root>/<release>/*.parquet` written in the snapshot format."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def release_dir(self, release: Release) -> Path:
        return self.root / release.name

    def manifest(self, release: Release) -> dict:
        path = self.release_dir(release) / MANIFEST_NAME
        if not path.is_file():
            raise TarsUserError(
                f"no snapshot for release {release.name!r} (missing {MANIFEST_NAME})",
                where=str(path),
                remedy="point source.path at a snapshot folder, or export one with "
                "tars-snapshot / test_data/generate.py",
            )
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise TarsUserError(f"manifest is not valid JSON: {error}", where=str(path)) from None
        if manifest.get("format") != SNAPSHOT_FORMAT:
            raise TarsUserError(
                f"'format' is {manifest.get('format')!r}, expected {SNAPSHOT_FORMAT!r}",
                where=str(path),
            )
        return manifest

    def fetch_day(
        self,
        release: Release,
        start: dt.datetime,
        end: dt.datetime,
        kpis: Sequence[KpiDefinition],
        step_seconds: int,
    ) -> DayFetch:
        manifest = self.manifest(release)
        snapshot_step = manifest.get("step_seconds")
        if snapshot_step is not None and int(snapshot_step) != step_seconds:
            raise TarsUserError(
                f"the snapshot was taken at a {snapshot_step} s step but step_seconds is "
                f"{step_seconds}",
                where=str(self.release_dir(release) / MANIFEST_NAME),
                remedy=f"set step_seconds: {snapshot_step} in tars.yaml, or export the "
                "snapshot again at the configured step",
            )
        folder = self.release_dir(release)
        files = _files_for(sorted(folder.glob("*.parquet")), start, end)
        services = list(release.services or manifest.get("services", []))
        kpi_names = [kpi.name for kpi in kpis]
        samples = empty_samples()
        if files:
            with duck.connection() as conn:
                for path in files:
                    _check_file(conn, path)
                try:
                    samples = _read_samples(conn, files, start, end, kpi_names, services)
                except duckdb.Error as error:
                    raise TarsUserError(
                        f"cannot read snapshot files: {error}",
                        where=str(folder),
                        remedy="each file needs columns service, kpi, ts, value",
                    ) from None
        _refuse_duplicates(samples, folder)
        if len(samples):
            samples["ts"] = pd.to_datetime(samples["ts"], utc=True)
            finite = np.isfinite(samples["value"].to_numpy(dtype="float64", na_value=np.nan))
            samples = samples[finite].reset_index(drop=True)
        if not services:
            services = sorted(samples["service"].unique()) if len(samples) else []
        expected = expected_points(start, end, step_seconds)
        return DayFetch(samples=samples, coverage=coverage_of(samples, services, kpis, expected))


def _read_samples(
    conn: duckdb.DuckDBPyConnection,
    files: list[Path],
    start: dt.datetime,
    end: dt.datetime,
    kpis: list[str],
    services: list[str],
) -> pd.DataFrame:
    """The window's samples by (service, kpi, ts), their labels as categories of the sorted
    names: DuckDB hands over one integer code per row instead of one Python string per row
    and label (a day of 2,000 series: 0.4 GB less), and the judgement groups by the codes."""
    where = (
        "FROM read_parquet(?) WHERE ts >= ? AND ts < ? AND list_contains(?, kpi) "
        "AND (len(?) = 0 OR list_contains(?, service))"
    )
    params = [[str(f) for f in files], start, end, kpis, services, services]
    names = sorted(services) or [
        row[0]
        for row in conn.execute(f"SELECT DISTINCT service {where} ORDER BY 1", params).fetchall()
    ]
    kpi_names = sorted(kpis)
    # Sorted lists: the codes order as the names do (code points, as Python and DuckDB sort).
    frame = conn.execute(
        "SELECT list_position(?, service) - 1 AS service_code, "
        f"list_position(?, kpi) - 1 AS kpi_code, ts, value {where} "
        "ORDER BY service_code, kpi_code, ts",
        [names, kpi_names, *params],
    ).df()
    return pd.DataFrame(
        {
            "service": pd.Categorical.from_codes(frame["service_code"], names),
            "kpi": pd.Categorical.from_codes(frame["kpi_code"], kpi_names),
            "ts": frame["ts"],
            "value": frame["value"],
        }
    )


REQUIRED_COLUMNS = {"service": "VARCHAR", "kpi": "VARCHAR", "ts": "TIMESTAMP WITH TIME ZONE"}


def _files_for(files: list[Path], start: dt.datetime, end: dt.datetime) -> list[Path]:
    """The files that can hold samples of [start, end): a file named by its date
    (YYYY-MM-DD.parquet, the exporter's and the generator's layout) only when that date is
    within a day of the window, so one bad file fails its own days, not the whole week;
    every other file always."""
    first, last = start.date() - dt.timedelta(days=1), end.date() + dt.timedelta(days=1)
    chosen = []
    for path in files:
        try:
            named = dt.date.fromisoformat(path.stem)
        except ValueError:
            chosen.append(path)
            continue
        if first <= named <= last:
            chosen.append(path)
    return chosen


def _check_file(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A file that is Parquet, with the snapshot's columns and a zoned `ts`, or a clear
    error naming it: a naive `ts` would be read as UTC and shift every sample by the
    writer's offset."""
    try:
        described = conn.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as error:
        raise TarsUserError(
            f"cannot read {path.name} as Parquet ({str(error).splitlines()[0]})",
            where=str(path),
            remedy="the file is truncated or not Parquet: export that day again "
            "(tars-snapshot --day N) or remove the file",
        ) from None
    types = {str(row[0]): str(row[1]) for row in described}
    missing = [name for name in (*REQUIRED_COLUMNS, "value") if name not in types]
    if missing:
        raise TarsUserError(
            f"{path.name} has no column(s) {missing} (it has {sorted(types)})",
            where=str(path),
            remedy="each file needs columns service, kpi, ts (with time zone), value",
        )
    if not _numeric(types["value"]):
        raise TarsUserError(
            f"{path.name}: column value is {types['value']}, not a number",
            where=str(path),
            remedy="write value as a float (DOUBLE) column",
        )
    if types["ts"] != REQUIRED_COLUMNS["ts"]:
        raise TarsUserError(
            f"{path.name}: column ts is {types['ts']}, without a time zone, so its local "
            "times cannot be placed on the release's days",
            where=str(path),
            remedy="write ts as a zoned timestamp in UTC (pandas: pd.to_datetime(..., "
            "utc=True); DuckDB: TIMESTAMPTZ)",
        )


NUMERIC_TYPES = frozenset(
    ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT",
     "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
)  # fmt: skip


def _numeric(sql_type: str) -> bool:
    return sql_type in NUMERIC_TYPES or sql_type.startswith("DECIMAL")


def _refuse_duplicates(samples: pd.DataFrame, folder: Path) -> None:
    """Two values at one (service, KPI, timestamp) have no one meaning: refused, naming
    the first, rather than both counted (a doubled error sample is a false SLO breach)."""
    if samples.empty:
        return
    doubled = samples.duplicated(["service", "kpi", "ts"], keep=False)
    if not doubled.any():
        return
    first = samples[doubled].iloc[0]
    count = int(samples[doubled].duplicated(["service", "kpi", "ts"]).sum())
    raise TarsUserError(
        f"{count} duplicate sample(s): more than one value for the same service, KPI and "
        f"timestamp, the first {first['service']} / {first['kpi']} at "
        f"{pd.Timestamp(first['ts']).isoformat()}",
        where=str(folder),
        remedy="keep one row per (service, kpi, ts): a file exported twice, or two files "
        "covering the same hours, does this",
    )
