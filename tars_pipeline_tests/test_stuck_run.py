"""A stuck run times out: Dagster's run monitoring fails a run past its `dagster/max_runtime`
tag, says why in the run's events, frees its pool slots, and the store is left as it was.

Real parts: dagster-webserver and dagster-daemon on loopback with the packaged dagster.yaml
(run monitoring's poll interval driven down to 1 s), a backfill launched through GraphQL
with the tag, as a user sets it in the UI's launchpad. The one fake is the stuck server: a
loopback socket that listens and never answers (the kernel accepts the connection, the
request is never read), which is what a Prometheus frozen mid-query looks like to a client
and cannot be made to happen on demand with a healthy one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from tars_pipeline.sensors import register_releases
from tars_pipeline_tests.conftest import DEMO_RELEASE, write_config
from tars_pipeline_tests.test_ui import DagsterUI

pytestmark = pytest.mark.slow

MAX_RUNTIME = 8
POOL = "tars_store"
FAST_MONITORING = """
  poll_interval_seconds: 1
"""


@pytest.fixture
def silent_server() -> Iterator[str]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def _files(folder: Path) -> dict[str, int]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def test_a_stuck_run_times_out_with_a_clear_message_and_frees_its_slot(
    tmp_path: Path, silent_server: str
) -> None:
    source = {"type": "prometheus", "url": silent_server, "timeout_seconds": 600, "retries": 0}
    release = {"name": DEMO_RELEASE, "ga_date": "2026-03-03", "window_days": 1,
               "timezone": "America/New_York"}  # fmt: skip
    config = write_config(tmp_path, source=source, releases=[release])
    server = DagsterUI(tmp_path, config)
    settings = (server.home / "dagster.yaml").read_text(encoding="utf-8")
    assert "run_monitoring:\n  enabled: true\n" in settings
    settings = settings.replace(
        "run_monitoring:\n  enabled: true\n", "run_monitoring:\n  enabled: true\n" + FAST_MONITORING
    )
    (server.home / "dagster.yaml").write_text(settings, encoding="utf-8")
    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        register_releases(instance, [DEMO_RELEASE])
    store_before = _files(tmp_path / "data")

    server.start()
    try:
        backfill = server.launch_backfill(
            {
                "assetSelection": [{"path": ["kpi_samples"]}],
                "partitionNames": [f"day_00|{DEMO_RELEASE}"],
                "tags": [{"key": "dagster/max_runtime", "value": str(MAX_RUNTIME)}],
            }
        )
        assert server.wait_for_backfill(backfill, timeout=300) is not None, server.log.read_text()[
            -3000:
        ]
        with dg.DagsterInstance.from_config(str(server.home)) as instance:
            (record,) = instance.get_run_records()
            run = record.dagster_run
            assert run.status == dg.DagsterRunStatus.FAILURE
            assert run.tags["dagster/max_runtime"] == str(MAX_RUNTIME)
            # It ran until the limit, not less (it was stuck, not failing fast).
            assert record.end_time - record.start_time >= MAX_RUNTIME
            messages = [
                entry.message or ""
                for entry in instance.all_logs(run.run_id)
                if entry.dagster_event is not None
            ]
            assert any(f"maximum runtime of {MAX_RUNTIME} seconds" in m for m in messages)
            # Its pool slot is given back (free_slots_after_run_end_seconds: 30).
            deadline = time.monotonic() + 90
            storage = instance.event_log_storage
            while run.run_id in storage.get_concurrency_info(POOL).active_run_ids:
                assert time.monotonic() < deadline, "the timed-out run kept its slot"
                time.sleep(1)
    finally:
        server.stop()
    assert _files(tmp_path / "data") == store_before
