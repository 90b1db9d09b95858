"""Day 0 as the 24 hours from a GA moment (`ga_at`), and every later day after it.

Launches rarely happen at midnight. With `ga_at` the days are windows from the GA moment:
`24h` (exactly 24 hours each, the same UTC time every day), `local_time` (the GA's local
time of day every day: a DST day lasts 23 or 25 hours) or `calendar` (Day 0 from the
moment to midnight, then calendar days). The week of 2026-03-05 in New York crosses the
spring-forward change (Sunday 2026-03-08, 02:00 EST -> 03:00 EDT).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from pydantic import ValidationError

from tars_pipeline.config import Release, load_config
from tars_pipeline.resources import TarsConfigResource
from tars_pipeline.schedules import (
    SEQUENCE_TAG,
    build_schedules,
    ended_days,
    window_cron,
)
from tars_pipeline_tests.conftest import run_the_week, week_runner, write_config

NEW_YORK = ZoneInfo("America/New_York")
GA_AT = "2026-03-05T14:30:00-05:00"


def release(**fields: object) -> Release:
    settings: dict[str, object] = {
        "name": "v2",
        "ga_at": GA_AT,
        "timezone": "America/New_York",
        **fields,
    }
    return Release.model_validate(settings)


def local_bounds(rel: Release, day: int) -> tuple[str, str, float]:
    start, end = rel.day_bounds(day)
    hours = (end - start).total_seconds() / 3600
    return start.astimezone(NEW_YORK).isoformat(), end.astimezone(NEW_YORK).isoformat(), hours


def test_24h_windows_keep_the_utc_time_across_spring_forward() -> None:
    rel = release()
    assert rel.ga_date == dt.date(2026, 3, 5)
    assert local_bounds(rel, 0) == ("2026-03-05T14:30:00-05:00", "2026-03-06T14:30:00-05:00", 24)
    # The window holding the change is still 24 hours; the local time moves an hour.
    assert local_bounds(rel, 2) == ("2026-03-07T14:30:00-05:00", "2026-03-08T15:30:00-04:00", 24)
    assert local_bounds(rel, 3)[0] == "2026-03-08T15:30:00-04:00"
    assert {local_bounds(rel, day)[2] for day in rel.days} == {24}


def test_local_time_windows_keep_the_wall_clock_and_the_dst_day_is_shorter() -> None:
    rel = release(day_windows="local_time")
    assert local_bounds(rel, 2) == ("2026-03-07T14:30:00-05:00", "2026-03-08T14:30:00-04:00", 23)
    assert local_bounds(rel, 3) == ("2026-03-08T14:30:00-04:00", "2026-03-09T14:30:00-04:00", 24)
    autumn = release(ga_at="2026-10-30T09:00:00-04:00", day_windows="local_time")
    assert local_bounds(autumn, 1) == ("2026-10-31T09:00:00-04:00", "2026-11-01T09:00:00-05:00", 25)


def test_calendar_windows_start_at_the_moment_then_follow_midnights() -> None:
    rel = release(day_windows="calendar")
    assert local_bounds(rel, 0) == ("2026-03-05T14:30:00-05:00", "2026-03-06T00:00:00-05:00", 9.5)
    assert local_bounds(rel, 3) == ("2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00", 23)
    assert not rel.windows_from_ga_moment  # its days end at midnight: the zone schedules


@pytest.mark.parametrize("windows", ["24h", "local_time", "calendar"])
def test_every_moment_belongs_to_exactly_one_day(windows: str) -> None:
    rel = release(day_windows=windows)
    for day in range(-8, rel.window_days + 3):
        start, end = rel.day_bounds(day)
        assert rel.day_bounds(day + 1)[0] == end  # no gap, no overlap
        assert rel.day_of(start) == day
        assert rel.day_of(end - dt.timedelta(microseconds=1)) == day
        assert rel.day_date(day) == start.astimezone(NEW_YORK).date()


def test_a_moment_in_another_offset_is_read_in_the_release_timezone() -> None:
    rel = release(ga_at="2026-03-05T20:30:00+01:00")  # 14:30 in New York
    assert rel.ga_date == dt.date(2026, 3, 5)
    assert rel.day_bounds(0)[0] == dt.datetime(2026, 3, 5, 19, 30, tzinfo=dt.UTC)
    late = release(ga_at="2026-03-06T02:30:00+01:00")  # still the 5th in New York
    assert late.ga_date == dt.date(2026, 3, 5)


def test_calendar_day_releases_are_as_they_were() -> None:
    rel = Release(name="v1", ga_date=dt.date(2026, 3, 3), timezone="America/New_York")
    assert rel.day_bounds(5) == (
        dt.datetime(2026, 3, 8, 5, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 9, 4, tzinfo=dt.UTC),
    )
    assert rel.day_of(dt.datetime(2026, 3, 8, 23, 59, tzinfo=NEW_YORK)) == 5


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ga_at": "2026-03-05T14:30:00"}, "needs its UTC offset"),
        ({"ga_date": "2026-03-06"}, "is not the local date of ga_at"),
        ({"ga_at": None}, "required: the GA day"),
        ({"ga_at": None, "ga_date": "2026-03-05", "day_windows": "24h"}, "applies to a release"),
        ({"day_windows": "weekly"}, "day_windows"),
    ],
)
def test_inconsistent_ga_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        release(**fields)


# --- Schedules ---------------------------------------------------------------------------


def test_window_schedules_tick_five_minutes_after_each_boundary() -> None:
    assert window_cron(release()) == ("35 19 * * *", "UTC")
    assert window_cron(release(day_windows="local_time")) == ("35 14 * * *", "America/New_York")
    names = {s.name for s in build_schedules([release()])}
    assert {"tars_window_v2", "tars_window_baseline_v2", "tars_window_close_v2"} <= names
    assert window_cron(release(), dt.timedelta(minutes=15)) == ("45 19 * * *", "UTC")


def test_ended_days_finds_the_day_each_tick_follows() -> None:
    rel = release(day_windows="local_time")
    tick = dt.datetime(2026, 3, 8, 14, 35, tzinfo=NEW_YORK)  # after the 23-hour Day 2
    assert [(d.day, d.final) for d in ended_days([rel], tick, dt.timedelta(minutes=5))] == [
        (2, False)
    ]
    assert ended_days([rel], tick - dt.timedelta(minutes=6), dt.timedelta(minutes=5)) == [
        d for d in ended_days([rel], tick - dt.timedelta(days=1), dt.timedelta(minutes=5))
    ]


@dataclass
class Ticked:
    run_requests: list[dg.RunRequest]
    skip_message: str | None


Evaluate = Callable[[str, dt.datetime], Ticked]
RELEASES = [
    {"name": "v2", "ga_at": GA_AT, "timezone": "America/New_York", "window_days": 7},
    {"name": "v1", "ga_date": "2026-03-05", "timezone": "America/New_York"},
]
SCHEDULES = {
    schedule.name: schedule
    for schedule in build_schedules([Release.model_validate(r) for r in RELEASES])
}


@pytest.fixture
def evaluate(tmp_path: Path) -> Evaluate:
    """One tick of a LOCATION schedule, reading a tars.yaml with RELEASES."""
    config_path = write_config(tmp_path, releases=RELEASES)

    def tick(name: str, at: dt.datetime) -> Ticked:
        """The schedule's function invoked directly (Dagster's way to unit-test one)."""
        with (
            dg.instance_for_test() as instance,
            dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=at,
                resources={"tars_config": TarsConfigResource(config_path=str(config_path))},
            ) as context,
        ):
            result = SCHEDULES[name](context)
            items = list(result) if result is not None else []
        requests = [item for item in items if isinstance(item, dg.RunRequest)]
        skips = [item.skip_message for item in items if isinstance(item, dg.SkipReason)]
        return Ticked(requests, skips[0] if skips else None)

    return tick


def test_after_day_0_come_the_day_then_its_baseline(evaluate: Evaluate) -> None:
    at = dt.datetime(2026, 3, 6, 19, 35, tzinfo=dt.UTC)
    (request,) = evaluate("tars_window_v2", at).run_requests
    assert request.partition_key == "day_00|v2"
    assert request.tags[SEQUENCE_TAG] == "v2"
    follow_up = at + dt.timedelta(minutes=10)
    (baseline,) = evaluate("tars_window_baseline_v2", follow_up).run_requests
    assert (baseline.partition_key, baseline.tags[SEQUENCE_TAG]) == ("day_00|v2", "v2")
    assert not evaluate("tars_window_close_v2", follow_up).run_requests


def test_later_days_run_alone_and_the_close_waits_for_the_last(evaluate: Evaluate) -> None:
    day3 = dt.datetime(2026, 3, 9, 19, 35, tzinfo=dt.UTC)
    (request,) = evaluate("tars_window_v2", day3).run_requests
    assert request.partition_key == "day_03|v2"
    for name in ("tars_window_baseline_v2", "tars_window_close_v2"):
        skipped = evaluate(name, day3 + dt.timedelta(minutes=10))
        assert not skipped.run_requests and skipped.skip_message
    last = dt.datetime(2026, 3, 13, 19, 45, tzinfo=dt.UTC)  # Day 7 ended 19:30 UTC
    (close,) = evaluate("tars_window_close_v2", last).run_requests
    assert (close.partition_key, close.tags[SEQUENCE_TAG]) == ("v2", "v2")


def test_the_zone_nightly_leaves_ga_at_releases_to_their_own_schedule(
    evaluate: Evaluate,
) -> None:
    at = dt.datetime(2026, 3, 7, 23, 59, tzinfo=NEW_YORK)
    keys = [r.partition_key for r in evaluate("tars_nightly_america_new_york", at).run_requests]
    assert keys == ["day_02|v1"]


# --- The week through the real graph ------------------------------------------------------


@pytest.mark.slow
def test_a_week_from_a_ga_moment_through_the_graph(tmp_path: Path) -> None:
    """The bundled week (calendar days from 2026-03-03 in New York) judged as windows from
    14:30 on GA day: six 24-hour days fit in the data, across the DST change (Day 4)."""
    ga_at = "2026-03-03T14:30:00-05:00"
    config = load_config(
        write_config(
            tmp_path,
            releases=[
                {
                    "name": "v1.0.1",
                    "ga_at": ga_at,
                    "timezone": "America/New_York",
                    "window_days": 6,
                }
            ],
        )
    )
    with week_runner(tmp_path, config) as (runner, _instance):
        run_the_week(runner)
    out = tmp_path / "out" / "v1.0.1"
    ga_day = json.loads((out / "day_00_summary.json").read_text(encoding="utf-8"))
    assert ga_day["release"]["ga_at"] == "2026-03-03T14:30:00-05:00"
    assert ga_day["window"] == {
        "start": "2026-03-03T19:30:00+00:00",
        "end": "2026-03-04T19:30:00+00:00",
    }
    dst = json.loads((out / "day_04_summary.json").read_text(encoding="utf-8"))
    assert dst["window"] == {
        "start": "2026-03-07T19:30:00+00:00",
        "end": "2026-03-08T19:30:00+00:00",
    }
    assert dst["date"] == "2026-03-07"
    retro = json.loads((out / "GA_7DAY_RETROSPECTIVE.json").read_text(encoding="utf-8"))
    windows = retro["window"]["days"]
    assert [day["day"] for day in windows] == list(range(7))
    assert {day["hours"] for day in windows} == {24.0}
    assert windows[0]["start"] == "2026-03-03T19:30:00+00:00"
    assert retro["release"]["ga_at"] == ga_at
    # The seed's story still reads in windows from 14:30: the Day-2 p99 step is there.
    assert any(d["kpi"] == "latency_p99" for d in retro["degradations"])
