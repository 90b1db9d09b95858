"""Three releases backfilled at once, on a Dagster instance kept in Postgres.

The real parts: Debian's Postgres (a throw-away cluster on loopback) holding the instance's
runs, event logs and schedules; dagster-webserver and dagster-daemon on loopback; the
backfill launched through GraphQL as the UI's "Materialize all" does, all partitions of
all assets; the instance's own settings (up to 4 runs at once, the Parquet store). Then
every run must have succeeded and every report of every release must be what a serial
run of the same release (the command-line path, one step after another) writes.

The three releases replay the bundled week's first WINDOW_DAYS days under three names
(the same samples), so any difference between the parallel and the serial outputs is the
concurrency's doing. (benchmarks/parallel_backfill.py times the whole 3 × 8 days.)
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from tars_pipeline.config import load_config
from tars_pipeline.sensors import register_releases
from tars_pipeline.store import open_store, partition_row_counts, store_location
from tars_pipeline_tests.conftest import SNAPSHOT, run_the_week, week_runner, write_config
from tars_pipeline_tests.servers import postgres_server
from tars_pipeline_tests.test_golden_outputs import OUTPUTS, normalise
from tars_pipeline_tests.test_ui import ASSETS, DagsterUI

pytestmark = pytest.mark.slow

NAMES = ("v1.0.1", "v1.1.0", "v2.0.0")
WINDOW_DAYS = 2


def _snapshot(root: Path) -> Path:
    """The bundled week under each of NAMES."""
    for name in NAMES:
        shutil.copytree(SNAPSHOT / "v1.0.1", root / name)
        manifest = root / name / "manifest.json"
        body = json.loads(manifest.read_text(encoding="utf-8"))
        manifest.write_text(json.dumps({**body, "release": name}), encoding="utf-8")
    return root


def _config(folder: Path, snapshot: Path) -> Path:
    folder.mkdir(parents=True)
    releases = [
        {
            "name": name,
            "ga_date": "2026-03-03",
            "timezone": "America/New_York",
            "window_days": WINDOW_DAYS,
        }
        for name in NAMES
    ]
    source = {"type": "snapshot", "path": str(snapshot)}
    return write_config(folder, releases=releases, source=source)


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each release run alone, step after step, on the command-line path."""
    root = tmp_path_factory.mktemp("serial")
    config = load_config(_config(root / "project", _snapshot(root / "snapshot")))
    with week_runner(root, config) as (runner, _instance):
        for name in NAMES:
            run_the_week(runner, name)
    return root / "project"


@pytest.fixture(scope="module")
def parallel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DagsterUI]]:
    root = tmp_path_factory.mktemp("parallel")
    config = _config(root / "project", _snapshot(root / "snapshot"))
    with postgres_server(root / "postgres") as postgres:
        server = DagsterUI(root, config, extra_settings=postgres.instance_yaml())
        with dg.DagsterInstance.from_config(str(server.home)) as instance:
            register_releases(instance, list(NAMES))
        server.start()
        try:
            yield root / "project", server
        finally:
            server.stop()


def test_a_backfill_of_three_releases_runs_in_parallel_with_the_serial_outputs(
    serial: Path, parallel: tuple[Path, DagsterUI]
) -> None:
    project, server = parallel
    params = {"assetSelection": [{"path": [name]} for name in ASSETS], "allPartitions": True}
    status = server.wait_for_backfill(server.launch_backfill(params), timeout=900)
    log_tail = server.log.read_text()[-4000:]
    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}, (status, log_tail)

    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        records = instance.get_run_records()
        failed = [r.dagster_run.run_id for r in records if not r.dagster_run.is_success]
        assert records and not failed, (failed, log_tail)
        # Runs overlapped: some run started before another one ended.
        spans = sorted((r.start_time, r.end_time) for r in records if r.start_time)
        overlaps = [later < ended for (_, ended), (later, _) in itertools.pairwise(spans)]
        assert any(overlaps)

    config = load_config(project / "tars.yaml")
    reference = load_config(serial / "tars.yaml")
    for name in NAMES:
        with (
            open_store(store_location(config)) as store,
            open_store(store_location(reference)) as expected,
        ):
            assert partition_row_counts(store, name) == partition_row_counts(expected, name)
        for output in OUTPUTS:
            if output.startswith("day_") and int(output[4:6]) > WINDOW_DAYS:
                continue
            produced = normalise((project / "out" / name / output).read_text(encoding="utf-8"))
            wanted = normalise((serial / "out" / name / output).read_text(encoding="utf-8"))
            assert produced == wanted, (name, output)
