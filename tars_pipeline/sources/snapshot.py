"""Offline snapshot source: KPI samples from Parquet files, for replay and for the demo.

Layout (written by `test_data/generate.py`, and by the Prometheus snapshot exporter):

    <root>/<release>/manifest.json        release, timezone, step, services, KPIs
    <root>/<release>/YYYY-MM-DD.parquet   columns service, kpi, ts (TIMESTAMPTZ), value

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
        files = sorted(folder.glob("*.parquet"))
        services = list(release.services or manifest.get("services", []))
        kpi_names = [kpi.name for kpi in kpis]
        samples = empty_samples()
        if files:
            try:
                with duckdb.connect() as conn:
                    samples = conn.execute(
                        "SELECT service, kpi, ts, value FROM read_parquet(?) "
                        "WHERE ts >= ? AND ts < ? AND list_contains(?, kpi) "
                        "AND (len(?) = 0 OR list_contains(?, service)) "
                        "ORDER BY service, kpi, ts",
                        [[str(f) for f in files], start, end, kpi_names, services, services],
                    ).df()
            except duckdb.Error as error:
                raise TarsUserError(
                    f"cannot read snapshot files: {error}",
                    where=str(folder),
                    remedy="each file needs columns service, kpi, ts, value",
                ) from None
        if len(samples):
            samples["ts"] = pd.to_datetime(samples["ts"], utc=True)
            finite = np.isfinite(samples["value"].to_numpy(dtype="float64", na_value=np.nan))
            samples = samples[finite].reset_index(drop=True)
        if not services:
            services = sorted(samples["service"].unique()) if len(samples) else []
        expected = expected_points(start, end, step_seconds)
        return DayFetch(samples=samples, coverage=coverage_of(samples, services, kpis, expected))
