"""Runs a dead command-line process left behind: found, failed, their slots freed.

A `tars-*` command executes its run inside its own process. Killed there (SIGKILL, an OOM
kill, a machine reboot), the run stays STARTED in the instance and keeps its slots in the
`tars_store` pool: the daemon's run monitoring cannot tell, because no run launcher
started that process. So every run a command starts carries the host and the process that
runs it (`tars/host`, `tars/pid`, and the process's start time `tars/pid_started`, so a
reused pid is not mistaken for it), and every command first looks for runs of this host
whose process is gone: each is marked failed with the reason, and its concurrency slots
are freed, before the command's own run claims any.

Runs the daemon launched are not touched here: run monitoring (dagster.yaml) fails those
whose worker died, and times out a run past `run_monitoring.max_runtime_seconds` (or its
`dagster/max_runtime` tag).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import RunsFilter

HOST_TAG = "tars/host"
PID_TAG = "tars/pid"
PID_STARTED_TAG = "tars/pid_started"
IN_PROGRESS = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None when there is no
    such process; "" where /proc is not there to say (the pid alone then decides)."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # someone else's process: it exists
        return ""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    # Field 22; the fields after the command name (in parentheses, may hold spaces) start
    # at field 3.
    return text.rsplit(")", 1)[1].split()[19]


def process_tags() -> dict[str, str]:
    """The tags that name this process as a run's executor."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_STARTED_TAG: _started(pid) or ""}


def _gone(tags: dict[str, str]) -> bool:
    try:
        pid = int(tags[PID_TAG])
    except (KeyError, ValueError):
        return False
    started = _started(pid)
    if started is None:
        return True
    recorded = tags.get(PID_STARTED_TAG, "")
    return bool(started and recorded and started != recorded)  # the pid was reused


@dataclass(frozen=True)
class Reaped:
    run_id: str
    partition: str
    pid: str


def reap_dead_runs(
    instance: dg.DagsterInstance, notify: Callable[[str], None] | None = None
) -> list[Reaped]:
    """Fail this host's in-progress command-line runs whose process is gone and free their
    concurrency slots; `notify` gets one line per run."""
    host = socket.gethostname()
    records = instance.get_run_records(
        filters=RunsFilter(statuses=IN_PROGRESS, tags={HOST_TAG: host})
    )
    reaped = []
    for record in records:
        run = record.dagster_run
        if not _gone(dict(run.tags)):
            continue
        current = instance.get_run_by_id(run.run_id)  # another command may have just done it
        if current is None or current.is_finished:
            continue
        partition = run.tags.get("dagster/partition", run.job_name)
        message = (
            f"The process that ran this run (pid {run.tags.get(PID_TAG)} on {host}) is gone: "
            "killed or crashed mid-run. Marked failed by the next TARS command; the partition "
            "keeps the rows of its last successful run."
        )
        instance.report_run_failed(run, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(Reaped(run.run_id, partition, run.tags.get(PID_TAG, "?")))
        if notify is not None:
            notify(
                f"note: run {run.run_id[:8]} ({partition}) was left running by a process that "
                f"is gone (pid {run.tags.get(PID_TAG)}): marked failed, its slots freed"
            )
    return reaped
