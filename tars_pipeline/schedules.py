"""Jobs, one per need of the week, and the schedules that run them in each release timezone.

Jobs:
- `tars_day` (release x day): kpi_samples, anomaly_events, daily_summary.
- `tars_baseline` (release x day_00): baseline.
- `tars_close` (release): regression_summary, retrospective, release_notifications.

Schedules, per distinct release timezone (a cron has one zone):
- `tars_nightly_<zone>` at 23:59 local: the ending day's partition of every release whose
  window covers it;
- `tars_baseline_<zone>` at 00:15 local: the baseline of releases whose GA day just ended;
- `tars_close_<zone>` at 00:15 local: the Day-7 work of releases whose last day just ended.

A release with `ga_at` whose days end at the GA's time of day (`day_windows` 24h or
local_time) is left out of its zone's schedules and gets its own: `tars_window_<release>`,
WINDOW_LAG after each of its day boundaries (UTC for 24h windows, which end at the same UTC
time every day; the release timezone for local_time windows), runs the day that just
ended; `tars_window_baseline_<release>` and `tars_window_close_<release>`, FOLLOW_UP_LAG
later, the baseline after Day 0 and the Day-7 work after the last day.

Which zones have schedules is read from tars.yaml when the code location loads (a new zone
needs a reload); which releases are due is read at each tick, so an edited release list or
GA date takes effect at once. Every scheduled run carries the tag `tars/sequence: <release>`,
which dagster.yaml limits to one run per value: a release's scheduled runs start in the order
they were submitted, one after the other (a follow-up never overtakes the day it needs), while
other releases and backfills run beside them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import dagster as dg

from tars_pipeline.assets.anomaly_events import anomaly_events
from tars_pipeline.assets.baseline import baseline
from tars_pipeline.assets.daily_summary import daily_summary
from tars_pipeline.assets.kpi_samples import kpi_samples
from tars_pipeline.assets.notifications import release_notifications
from tars_pipeline.assets.regression_summary import regression_summary
from tars_pipeline.assets.retrospective import retrospective
from tars_pipeline.config import Release
from tars_pipeline.partitions import release_day_key
from tars_pipeline.resources import TarsConfigResource

NIGHTLY_CRON = "59 23 * * *"
SEQUENCE_TAG = "tars/sequence"
FOLLOW_UP_CRON = "15 0 * * *"
WINDOW_LAG = dt.timedelta(minutes=5)
"""How long after a day boundary the window schedule runs: the last scrape is in by then."""
FOLLOW_UP_LAG = dt.timedelta(minutes=10)
"""The Day-7 work's window schedule runs this long after the last day's."""

day_job = dg.define_asset_job(
    "tars_day",
    selection=[kpi_samples, anomaly_events, daily_summary],
    description="One release-day: KPI samples, anomaly events, daily summary (and its checks).",
)
baseline_job = dg.define_asset_job(
    "tars_baseline", selection=[baseline], description="The GA-day baseline of a release."
)
close_job = dg.define_asset_job(
    "tars_close",
    selection=[regression_summary, retrospective, release_notifications],
    description="Day 7: regression summary, retrospective, notifications.",
)
JOBS = (day_job, baseline_job, close_job)


@dataclass(frozen=True)
class DueDay:
    """A release-day whose partition is due at a tick."""

    release: str
    day: int
    final: bool


def _in_window(releases: Sequence[Release], day_of: dict[str, int]) -> list[DueDay]:
    return [
        DueDay(
            release.name, day_of[release.name], final=day_of[release.name] == release.window_days
        )
        for release in releases
        if 0 <= day_of[release.name] <= release.window_days
    ]


def due_days(releases: Sequence[Release], at: dt.datetime) -> list[DueDay]:
    """Release-days ending at `at`: the local calendar day of each release, if in window."""
    if at.tzinfo is None:
        raise ValueError("tick time must be timezone-aware")
    return _in_window(releases, {release.name: release.day_of(at) for release in releases})


def finished_days(releases: Sequence[Release], at: dt.datetime) -> list[DueDay]:
    """Release-days that ended on the local calendar day before `at` (for follow-ups)."""
    if at.tzinfo is None:
        raise ValueError("tick time must be timezone-aware")
    return _in_window(releases, {release.name: release.day_of(at) - 1 for release in releases})


def ended_days(
    releases: Sequence[Release], at: dt.datetime, lag: dt.timedelta = dt.timedelta(0)
) -> list[DueDay]:
    """Release-days whose window ended in the 24 hours up to `at` - `lag` (the window
    schedules' ticks)."""
    if at.tzinfo is None:
        raise ValueError("tick time must be timezone-aware")
    until = at - lag
    return [
        DueDay(release.name, day, final=day == release.window_days)
        for release in releases
        for day in release.days
        if until - dt.timedelta(days=1) < release.day_bounds(day)[1] <= until
    ]


def window_cron(release: Release, lag: dt.timedelta = WINDOW_LAG) -> tuple[str, str]:
    """(cron, execution timezone) of a release's window schedule: `lag` after the time of
    day its windows end (UTC for 24h windows, the release timezone for local_time ones)."""
    if release.ga_at is None:
        raise ValueError(f"release {release.name} has no ga_at")
    zone = "UTC" if release.day_windows == "24h" else release.timezone
    tick = (release.ga_at + lag).astimezone(ZoneInfo(zone))
    return f"{tick.minute} {tick.hour} * * *", zone


def window_schedules(release: Release) -> list[dg.ScheduleDefinition]:
    """The schedules of a release whose days end at the GA's time of day: the day that
    just ended, WINDOW_LAG after its end; FOLLOW_UP_LAG later, the baseline after Day 0 and
    the Day-7 work after the last day, queued behind the day they need by `tars/sequence`."""
    name = release.name
    slug = _slug(name)

    def ended(lag: dt.timedelta, context: dg.ScheduleEvaluationContext, config) -> list[DueDay]:
        releases = [r for r in config.load().releases if r.name == name]
        if not releases or not releases[0].windows_from_ga_moment:
            return []  # removed, or back to calendar days: the zone schedules have it
        return ended_days(releases, context.scheduled_execution_time, lag)

    def schedule(
        what: str,
        lag: dt.timedelta,
        job: dg.UnresolvedAssetJobDefinition,
        pick: Callable[[DueDay], bool],
        partition_key: Callable[[DueDay], str | dg.MultiPartitionKey],
        description: str,
    ) -> dg.ScheduleDefinition:
        cron, zone = window_cron(release, lag)

        @dg.schedule(
            name=f"tars_{what}_{slug}",
            cron_schedule=cron,
            execution_timezone=zone,
            job=job,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"{cron} ({zone}): {description}.",
        )
        def _schedule(
            context: dg.ScheduleEvaluationContext, tars_config: TarsConfigResource
        ) -> Iterator[dg.RunRequest | dg.SkipReason]:
            at = context.scheduled_execution_time
            items = [item for item in ended(lag, context, tars_config) if pick(item)]
            if not items:
                yield dg.SkipReason(f"at {at.isoformat()}, nothing due: {description}")
            for item in items:
                key = partition_key(item)
                yield dg.RunRequest(
                    run_key=f"{item.release}/{what}/{at.date().isoformat()}/{key}",
                    partition_key=key,
                    tags={SEQUENCE_TAG: item.release},
                )

        return _schedule

    minutes = int(WINDOW_LAG.total_seconds() // 60)
    follow_up = WINDOW_LAG + FOLLOW_UP_LAG
    return [
        schedule(
            "window",
            WINDOW_LAG,
            day_job,
            lambda item: True,
            lambda item: release_day_key(item.release, item.day),
            f"release {name}'s day that ended {minutes} minutes ago",
        ),
        schedule(
            "window_baseline",
            follow_up,
            baseline_job,
            lambda item: item.day == 0,
            lambda item: release_day_key(item.release, 0),
            f"release {name}'s baseline, after its GA day",
        ),
        schedule(
            "window_close",
            follow_up,
            close_job,
            lambda item: item.final,
            lambda item: item.release,
            f"release {name}'s Day-7 work, after its last day",
        ),
    ]


def _slug(timezone: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", timezone.lower()).strip("_")


def zone_schedules(timezone: str) -> list[dg.ScheduleDefinition]:
    """The 23:59 and 00:15 schedules for the releases of one timezone."""

    def schedule(
        name: str,
        cron: str,
        job: dg.UnresolvedAssetJobDefinition,
        due: Callable[[Sequence[Release], dt.datetime], list[DueDay]],
        partition_key: Callable[[DueDay], str | dg.MultiPartitionKey],
        what: str,
    ) -> dg.ScheduleDefinition:
        @dg.schedule(
            name=f"tars_{name}_{_slug(timezone)}",
            cron_schedule=cron,
            execution_timezone=timezone,
            job=job,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"{cron} ({timezone}): {what}.",
        )
        def _schedule(
            context: dg.ScheduleEvaluationContext, tars_config: TarsConfigResource
        ) -> Iterator[dg.RunRequest | dg.SkipReason]:
            at = context.scheduled_execution_time
            releases = [
                r
                for r in tars_config.load().releases
                if r.timezone == timezone and not r.windows_from_ga_moment
            ]
            items = due(releases, at)
            if not items:
                yield dg.SkipReason(f"on {at.date().isoformat()}, nothing due: {what}")
            for item in items:
                key = partition_key(item)
                yield dg.RunRequest(
                    run_key=f"{item.release}/{name}/{at.date().isoformat()}/{key}",
                    partition_key=key,
                    tags={SEQUENCE_TAG: item.release},
                )

        return _schedule

    return [
        schedule(
            "nightly",
            NIGHTLY_CRON,
            day_job,
            due_days,
            lambda d: release_day_key(d.release, d.day),
            "the ending day's partition of each release whose window covers it",
        ),
        schedule(
            "baseline",
            FOLLOW_UP_CRON,
            baseline_job,
            lambda releases, at: [d for d in finished_days(releases, at) if d.day == 0],
            lambda d: release_day_key(d.release, 0),
            "the baseline of each release whose GA day ended yesterday",
        ),
        schedule(
            "close",
            FOLLOW_UP_CRON,
            close_job,
            lambda releases, at: [d for d in finished_days(releases, at) if d.final],
            lambda d: d.release,
            "the Day-7 work of each release whose window ended yesterday",
        ),
    ]


def build_schedules(releases: Sequence[Release]) -> list[dg.ScheduleDefinition]:
    """The zone schedules of every release timezone, and a window schedule per release
    whose days end at the GA's time of day."""
    zones = sorted({release.timezone for release in releases})
    return [schedule for zone in zones for schedule in zone_schedules(zone)] + [
        schedule
        for release in releases
        if release.windows_from_ga_moment
        for schedule in window_schedules(release)
    ]
