"""The offline snapshot source: the sample contract, and clear errors for bad snapshots."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from tars_pipeline.config import Release, default_kpis
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources.snapshot import SnapshotSource
from tars_pipeline_tests.conftest import SNAPSHOT

WEEK = Release(name="v1.0.1", ga_date=dt.date(2026, 3, 3), timezone="America/New_York")
KPIS = default_kpis()


def test_a_day_is_its_local_calendar_day_with_every_series_complete() -> None:
    start, end = WEEK.day_bounds(5)  # the 23-hour day
    fetched = SnapshotSource(SNAPSHOT).fetch_day(WEEK, start, end, KPIS, 60)
    assert list(fetched.samples.columns) == ["service", "kpi", "ts", "value"]
    assert fetched.samples["ts"].min() == start and fetched.samples["ts"].max() < end
    assert {c.points for c in fetched.coverage} == {1380}
    assert not fetched.missing and not fetched.incomplete
    assert len(fetched.coverage) == 3 * len(KPIS)


def test_a_kpi_the_snapshot_lacks_is_reported_missing_not_zero() -> None:
    extra = KPIS[0].model_copy(update={"name": "queue_depth"})
    start, end = WEEK.day_bounds(1)
    fetched = SnapshotSource(SNAPSHOT).fetch_day(WEEK, start, end, [*KPIS, extra], 60)
    assert {(c.kpi, c.points) for c in fetched.missing} == {("queue_depth", 0)}
    assert "queue_depth" not in set(fetched.samples["kpi"])


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "snap"
    shutil.copytree(SNAPSHOT / "v1.0.1", root / "v1.0.1")
    return root


def test_a_step_other_than_the_snapshots_is_refused(tmp_path: Path) -> None:
    start, end = WEEK.day_bounds(1)
    with pytest.raises(TarsUserError, match="taken at a 60 s step but step_seconds is 300"):
        SnapshotSource(_copy(tmp_path)).fetch_day(WEEK, start, end, KPIS, 300)


def test_missing_or_foreign_manifests_name_the_file(tmp_path: Path) -> None:
    start, end = WEEK.day_bounds(1)
    with pytest.raises(TarsUserError, match=r"no snapshot for release 'v1\.0\.1'"):
        SnapshotSource(tmp_path).fetch_day(WEEK, start, end, KPIS, 60)
    root = _copy(tmp_path)
    manifest = root / "v1.0.1" / "manifest.json"
    manifest.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(TarsUserError, match=r"manifest\.json.*expected 'tars-snapshot'"):
        SnapshotSource(root).fetch_day(WEEK, start, end, KPIS, 60)


def test_a_broken_file_fails_its_own_days_not_the_week(tmp_path: Path) -> None:
    """Day 3's file truncated: GA day still reads; day 3 names the file and the fix."""
    root = _copy(tmp_path)
    broken = root / "v1.0.1" / "2026-03-06.parquet"
    broken.write_bytes(broken.read_bytes()[:1000])
    source = SnapshotSource(root)
    fetched = source.fetch_day(WEEK, *WEEK.day_bounds(0), KPIS, 60)
    assert not fetched.missing and not fetched.incomplete
    with pytest.raises(TarsUserError, match=r"(?s)2026-03-06\.parquet.*truncated"):
        source.fetch_day(WEEK, *WEEK.day_bounds(3), KPIS, 60)
