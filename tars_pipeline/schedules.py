"""The nightly schedules, one pair per distinct release timezone (a cron has one zone).

- `tars_nightly_<zone>` at 23:59 local: the day's partition (samples, anomaly events,
  daily summary) for every release of that zone whose window covers today.
- `tars_follow_up_<zone>` at 00:15 local: release-level work that needs a finished day —
  the baseline after Day 0, the regression summary and retrospective after the last day.

Two schedules because a Dagster schedule targets one job and a job holds one partitions
definition (release x day, or release). The instance runs one TARS run at a time in
submission order (dagster.yaml), so a follow-up never overtakes the day it needs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby

import dagster as dg

from tars_pipeline.config import Release
from tars_pipeline.partitions import day_key, release_day_key

NIGHTLY_CRON = "59 23 * * *"
FOLLOW_UP_CRON = "15 0 * * *"

DAILY_JOB = "tars_daily"
RELEASE_JOB = "tars_release"
DAILY_ASSETS = ("kpi_samples", "anomaly_events", "daily_summary")
RELEASE_ASSETS = ("baseline", "regression_summary", "retrospective", "release_notifications")
FINAL_ASSETS = ("regression_summary", "retrospective", "release_notifications")


@dataclass(frozen=True)
class DueDay:
    """A release-day whose partition is due at a tick."""

    release: str
    day: int
    final: bool


def due_days(releases: Sequence[Release], at: dt.datetime) -> list[DueDay]:
    """Release-days ending at `at`: the local calendar day of each release, if in window."""
    if at.tzinfo is None:
        raise ValueError("tick time must be timezone-aware")
    due = []
    for release in releases:
        day = release.day_of(at)
        if 0 <= day <= release.window_days:
            due.append(DueDay(release.name, day, final=day == release.window_days))
    return due


def finished_days(releases: Sequence[Release], at: dt.datetime) -> list[DueDay]:
    """Release-days that ended on the local calendar day before `at` (for follow-ups)."""
    if at.tzinfo is None:
        raise ValueError("tick time must be timezone-aware")
    finished = []
    for release in releases:
        day = release.day_of(at) - 1
        if 0 <= day <= release.window_days:
            finished.append(DueDay(release.name, day, final=day == release.window_days))
    return finished


def _keys(names: Sequence[str]) -> list[dg.AssetKey]:
    return [dg.AssetKey(name) for name in names]


def nightly_requests(due: DueDay, date: dt.date) -> dg.RunRequest:
    """The day's partition: samples, anomaly events and the daily summary."""
    return dg.RunRequest(
        run_key=f"{due.release}/{day_key(due.day)}/{date.isoformat()}",
        partition_key=release_day_key(due.release, due.day),
    )


def follow_up_requests(finished: DueDay, date: dt.date) -> Iterator[dg.RunRequest]:
    """After Day 0 the baseline; after the last day the regression summary and retro."""
    if finished.day == 0:
        yield dg.RunRequest(
            run_key=f"{finished.release}/baseline/{date.isoformat()}",
            partition_key=finished.release,
            asset_selection=_keys(("baseline",)),
        )
    if finished.final:
        yield dg.RunRequest(
            run_key=f"{finished.release}/retrospective/{date.isoformat()}",
            partition_key=finished.release,
            asset_selection=_keys(FINAL_ASSETS),
        )


def _slug(timezone: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", timezone.lower()).strip("_")


def zone_schedules(
    timezone: str,
    releases: Sequence[Release],
    daily_job: dg.UnresolvedAssetJobDefinition,
    release_job: dg.UnresolvedAssetJobDefinition,
) -> list[dg.ScheduleDefinition]:
    """The 23:59 and 00:15 schedules for the releases of one timezone."""
    names = ", ".join(release.name for release in releases)

    @dg.schedule(
        name=f"tars_nightly_{_slug(timezone)}",
        cron_schedule=NIGHTLY_CRON,
        execution_timezone=timezone,
        job=daily_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"23:59 {timezone}: the ending day's partition of {names}.",
    )
    def nightly(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
        at = context.scheduled_execution_time
        due = due_days(releases, at)
        if not due:
            yield dg.SkipReason(f"no release window covers {at.date().isoformat()}")
        for item in due:
            yield nightly_requests(item, at.date())

    @dg.schedule(
        name=f"tars_follow_up_{_slug(timezone)}",
        cron_schedule=FOLLOW_UP_CRON,
        execution_timezone=timezone,
        job=release_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"00:15 {timezone}: baseline after Day 0 and the retrospective after "
        f"the last day of {names}.",
    )
    def follow_up(
        context: dg.ScheduleEvaluationContext,
    ) -> Iterator[dg.RunRequest | dg.SkipReason]:
        at = context.scheduled_execution_time
        requests = [
            request
            for finished in finished_days(releases, at)
            for request in follow_up_requests(finished, at.date())
        ]
        if not requests:
            yield dg.SkipReason("no release finished its GA day or its window yesterday")
        yield from requests

    return [nightly, follow_up]


def build_jobs(
    assets: Sequence[dg.AssetsDefinition],
) -> tuple[dg.UnresolvedAssetJobDefinition, dg.UnresolvedAssetJobDefinition]:
    by_name = {asset.key.path[-1]: asset for asset in assets}
    daily = dg.define_asset_job(
        DAILY_JOB,
        selection=[by_name[name] for name in DAILY_ASSETS],
        description="One release-day: KPI samples, anomaly events, daily summary.",
    )
    release = dg.define_asset_job(
        RELEASE_JOB,
        selection=[by_name[name] for name in RELEASE_ASSETS],
        description="Release-level assets: baseline, regression summary, retrospective.",
    )
    return daily, release


def build_schedules(
    releases: Sequence[Release],
    daily_job: dg.UnresolvedAssetJobDefinition,
    release_job: dg.UnresolvedAssetJobDefinition,
) -> list[dg.ScheduleDefinition]:
    by_zone = sorted(releases, key=lambda release: release.timezone)
    return [
        schedule
        for timezone, members in groupby(by_zone, key=lambda release: release.timezone)
        for schedule in zone_schedules(timezone, tuple(members), daily_job, release_job)
    ]
