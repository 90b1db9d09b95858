"""The nightly run at 23:59 reads a day that has not ended: up to now, judged as such."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG, Progress, Runner
from tars_pipeline.config import load_config
from tars_pipeline.errors import TarsUserError
from tars_pipeline_tests.conftest import SNAPSHOT, write_config


def _snapshot_of_today(root: Path, today: dt.date) -> None:
    """The bundled GA day, moved to today (UTC) as release 'today'."""
    folder = root / "today"
    folder.mkdir(parents=True)
    shift = (today - dt.date(2026, 3, 3)).days
    with duckdb.connect() as conn:
        conn.execute(
            f"COPY (SELECT service, kpi, ts + INTERVAL '{shift} days' - INTERVAL '5 hours' AS ts, "
            f"value FROM read_parquet('{SNAPSHOT / 'v1.0.1' / '2026-03-03.parquet'}')) "
            f"TO '{folder / 'today.parquet'}' (FORMAT parquet)"
        )
    manifest = json.loads((SNAPSHOT / "v1.0.1" / "manifest.json").read_text())
    manifest.update(release="today", ga_date=today.isoformat(), timezone="UTC")
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_day_in_progress_is_read_up_to_now_and_complete_so_far(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    if now.hour == 0 and now.minute < 5:
        pytest.skip("too close to midnight UTC for a meaningful partial day")
    _snapshot_of_today(tmp_path / "snap", now.date())
    config = load_config(
        write_config(
            tmp_path,
            source={"type": "snapshot", "path": str(tmp_path / "snap")},
            releases=[{"name": "today", "ga_date": now.date().isoformat(), "timezone": "UTC"}],
        )
    )
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runner = Runner(config, instance=instance, progress=Progress(enabled=False))
        release = config.release("today")
        result = runner.day(release, 0, ("kpi_samples",))
        meta = runner.metadata(result, "kpi_samples")
        # The run reads up to its own "now", which may be a minute past the test's.
        assert dt.datetime.fromisoformat(meta["window_end"]) <= dt.datetime.now(dt.UTC)
        assert meta["completeness_pct"] == pytest.approx(100.0)
        assert 0 < meta["rows"] < 36 * 1440
        with pytest.raises(TarsUserError, match="in the future"):
            runner.day(release, 1, ("kpi_samples",))
