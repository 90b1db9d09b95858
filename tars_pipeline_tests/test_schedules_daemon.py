"""The schedules, ticking in Dagster's own daemon through a GA week's clock.

The daemon is `dagster-daemon run` on the packaged dagster.yaml, with one change: its
scheduler reads a driven clock that starts at 23:58 on GA day (New York) and runs 20
minutes per second, so the whole 1-day window's ticks (23:59 nightly, 00:15 baseline,
23:59 nightly, 00:15 close) happen in about 75 seconds, one scheduler iteration (10 driven
minutes) apart at least. The runs the ticks request are real
runs, queued and launched by the same daemon; their outputs must be what the command-line
path writes for the same week.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from tars_pipeline.config import load_config
from tars_pipeline.schedules import SEQUENCE_TAG
from tars_pipeline.sensors import register_releases
from tars_pipeline_tests.conftest import DEMO_RELEASE, run_the_week, week_runner, write_config
from tars_pipeline_tests.test_golden_outputs import normalise
from tars_pipeline_tests.test_ui import DagsterUI

pytestmark = pytest.mark.slow

RELEASE = {
    "name": DEMO_RELEASE,
    "ga_date": "2026-03-03",
    "timezone": "America/New_York",
    "window_days": 1,
}
START = dt.datetime(2026, 3, 3, 23, 58, tzinfo=ZoneInfo("America/New_York"))
SPEED = 1200.0  # driven seconds per real second: 10 min per scheduler iteration
# The scheduler's clock (only the scheduler's: runs, monitoring and the queue keep real
# time), and its loop at 0.5 s real, as the backfill test drives the backfill daemon.
DAEMON = f"""
import datetime as dt, time
import dagster._daemon.controller as controller
import dagster._scheduler.scheduler as scheduler
controller.DEFAULT_DAEMON_INTERVAL_SECONDS = 1
began = []
def now():  # 23:58 when the scheduler first asks, then SPEED driven seconds a second
    began or began.append(time.time())
    return {START.timestamp()} + (time.time() - began[0]) * {SPEED}
scheduler.get_current_timestamp = now
scheduler.get_current_datetime = lambda tz=None: dt.datetime.fromtimestamp(now(), dt.timezone.utc)
def next_iteration(start):
    time.sleep(0.5)
    return start
scheduler._get_next_scheduler_iteration_time = next_iteration
from dagster._daemon.cli import main
main()
"""
OUTPUTS = (
    "day_00_summary.json",
    "ga_kpi_summary.json",
    "day_01_summary.json",
    "anomaly_events.json",
    "regression_summary.json",
    "GA_7DAY_RETROSPECTIVE.json",
    "GA_7DAY_RETROSPECTIVE.md",
)


def test_the_schedules_run_the_week_in_order_on_a_driven_clock(tmp_path: Path) -> None:
    reference = tmp_path / "cli"
    reference.mkdir()
    config = load_config(write_config(reference, releases=[RELEASE]))
    with week_runner(reference, config) as (runner, _instance):
        run_the_week(runner)

    project = tmp_path / "daemon"
    project.mkdir()
    server = DagsterUI(project, write_config(project, releases=[RELEASE]))
    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        register_releases(instance, [DEMO_RELEASE])
    server._spawn([sys.executable, "-c", DAEMON, "run", "-w", "workspace.yaml"])
    try:
        deadline = time.monotonic() + 600
        with dg.DagsterInstance.from_config(str(server.home)) as instance:
            while True:
                runs = [r.dagster_run for r in instance.get_run_records()]
                close = [run for run in runs if run.job_name == "tars_close"]
                if close and close[0].is_finished:
                    break
                assert time.monotonic() < deadline, server.log.read_text()[-4000:]
                time.sleep(2)
            runs = [r.dagster_run for r in instance.get_run_records(ascending=True)]
    finally:
        server.stop()

    order = [(run.job_name, run.tags.get("dagster/partition", "")) for run in runs]
    assert order == [
        ("tars_day", f"day_00|{DEMO_RELEASE}"),
        ("tars_baseline", f"day_00|{DEMO_RELEASE}"),
        ("tars_day", f"day_01|{DEMO_RELEASE}"),
        ("tars_close", DEMO_RELEASE),
    ], order
    assert all(run.is_success for run in runs), [(r.job_name, r.status) for r in runs]
    assert {run.tags.get(SEQUENCE_TAG) for run in runs} == {DEMO_RELEASE}
    for name in OUTPUTS:
        produced = normalise((project / "out" / DEMO_RELEASE / name).read_text(encoding="utf-8"))
        wanted = normalise((reference / "out" / DEMO_RELEASE / name).read_text(encoding="utf-8"))
        assert produced == wanted, name
