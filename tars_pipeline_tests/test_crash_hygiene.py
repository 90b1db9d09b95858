"""A command killed with SIGKILL mid-run: the next command finds the dead run, fails it,
frees its concurrency slots, and runs the day again to the same outputs.

Real parts only: the command runs as its own process on a persistent instance (the
packaged dagster.yaml), is killed while a step holds its slot in the `tars_store` pool,
and the next command is another process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tars_pipeline.cli.hygiene import PID_TAG
from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG
from tars_pipeline.config import load_config
from tars_pipeline.store import open_store, read_table, store_location
from tars_pipeline_tests.conftest import DEMO_RELEASE, write_config
from tars_pipeline_tests.test_golden_outputs import GOLDEN, normalise

pytestmark = pytest.mark.slow

POOL = "tars_store"


def _command(config: Path, home: Path) -> tuple[list[str], dict[str, str]]:
    tool = str(Path(sys.executable).parent / "tars-ga-kpi")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("TARS_CONFIG", None)
    return [tool, "--config", str(config)], env


def _holding_a_slot(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """The command's run, once it is STARTED, has written an asset and a step of it holds
    a slot of the pool (so the kill lands mid-step)."""
    for record in instance.get_run_records():
        run = record.dagster_run
        if run.status != dg.DagsterRunStatus.STARTED or PID_TAG not in run.tags:
            continue
        info = instance.event_log_storage.get_concurrency_info(POOL)
        written = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        if written and run.run_id in info.active_run_ids:
            return run
    return None


def _in_pool(instance: dg.DagsterInstance) -> set[str]:
    """The runs holding a slot of the pool or with a step queued for one."""
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return set(info.active_run_ids) | {step.run_id for step in info.pending_steps}


def test_a_killed_run_is_failed_and_freed_by_the_next_command(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    command, env = _command(config_path, home)

    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    with dg.DagsterInstance.from_config(str(home)) as instance:
        deadline, run = time.monotonic() + 180, None
        while run is None:
            assert victim.poll() is None, "the command finished before it could be killed"
            assert time.monotonic() < deadline, "the run never reached a step"
            time.sleep(0.1)
            run = _holding_a_slot(instance)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        stuck = instance.get_run_by_id(run.run_id)
        assert stuck is not None and stuck.status == dg.DagsterRunStatus.STARTED
        # Left in the pool: the kill lands mid-step (a slot claimed) or, when that step had
        # just ended, with the next one queued for a slot (CI stop 26 hit that gap).
        assert run.run_id in _in_pool(instance)

        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-2000:]
        assert f"run {run.run_id[:8]}" in again.stderr
        assert "was left running by a process that is gone" in again.stderr
        failed = instance.get_run_by_id(run.run_id)
        assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
        info = instance.event_log_storage.get_concurrency_info(POOL)
        assert run.run_id not in _in_pool(instance) and not info.active_slot_count

        third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert third.returncode == 0 and "gone" not in third.stderr  # reaped once only

    out = tmp_path / "out" / DEMO_RELEASE
    for name in ("ga_kpi_summary.json", "day_00_summary.json"):
        produced = normalise((out / name).read_text(encoding="utf-8"))
        assert produced == (GOLDEN / name).read_text(encoding="utf-8"), name
    config = load_config(config_path)
    with open_store(store_location(config)) as store:
        samples = read_table(store, "samples", DEMO_RELEASE)
    assert len(samples) == len(samples.drop_duplicates(["service", "kpi", "ts"]))
