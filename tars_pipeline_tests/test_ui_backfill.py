"""'Materialize all' from the UI: a real `dagster dev` (webserver + daemon) runs a backfill
of the whole graph. The instance settings in dagster.yaml queue the runs one at a time, so
no run fails on DuckDB's single-writer lock.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG
from tars_pipeline.sensors import register_releases
from tars_pipeline.store import read_document
from tars_pipeline_tests.conftest import DEMO_RELEASE, REPO, write_config

pytestmark = pytest.mark.slow

ASSETS = [
    "kpi_samples",
    "baseline",
    "anomaly_events",
    "daily_summary",
    "regression_summary",
    "retrospective",
]
LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


class DagsterDev:
    def __init__(self, folder: Path, config: Path):
        self.port = _free_port()
        self.home = folder / "dagster_home"
        self.home.mkdir()
        shutil.copyfile(PACKAGED_INSTANCE_CONFIG, self.home / "dagster.yaml")
        self.log = folder / "dagster-dev.log"
        self.env = {**os.environ, "DAGSTER_HOME": str(self.home), "TARS_CONFIG": str(config)}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        dagster = Path(sys.executable).parent / "dagster"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [
                    str(dagster),
                    "dev",
                    "-w",
                    "workspace.yaml",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=5):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(1)
        raise AssertionError("dagster dev did not come up:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[tuple[DagsterDev, Path]]:
    releases = [
        {
            "name": DEMO_RELEASE,
            "ga_date": "2026-03-03",
            "timezone": "America/New_York",
            "window_days": 2,
        }
    ]
    config = write_config(tmp_path, releases=releases)
    server = DagsterDev(tmp_path, config)
    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        register_releases(instance, [DEMO_RELEASE])
    server.start()
    try:
        yield server, tmp_path
    finally:
        server.stop()


def test_materialize_all_from_the_ui_completes_without_lock_failures(dagster_dev) -> None:
    server, folder = dagster_dev
    params = {"assetSelection": [{"path": [name]} for name in ASSETS], "allPartitions": True}
    deadline = time.monotonic() + 90
    while True:  # the code location may still be loading
        launched = _graphql(server.port, LAUNCH, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] == "LaunchBackfillSuccess" or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    status = None
    deadline = time.monotonic() + 480
    while time.monotonic() < deadline:
        status = _graphql(server.port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if status.get("status") in {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED"}:
            break
        time.sleep(3)
    log_tail = server.log.read_text()[-4000:]
    assert status and status.get("status") in {"COMPLETED", "COMPLETED_SUCCESS"}, (status, log_tail)

    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        runs = instance.get_run_records()
        assert runs, "the backfill launched no runs"
        failed = [
            r.dagster_run.run_id
            for r in runs
            if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS
        ]
        assert not failed, (failed, log_tail)
    with duckdb.connect(str(folder / "data" / "tars.duckdb"), read_only=True) as conn:
        retrospective = read_document(conn, DEMO_RELEASE, "retrospective")
    assert retrospective is not None
    assert [h["day"] for h in retrospective["health_scores"]] == [0, 1, 2]
    assert (folder / "out" / DEMO_RELEASE / "GA_7DAY_RETROSPECTIVE.md").is_file()
