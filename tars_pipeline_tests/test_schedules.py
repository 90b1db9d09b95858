"""The nightly schedules' tick logic: which release-days are due, in the release's zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from tars_pipeline.config import Release
from tars_pipeline.definitions import defs as location
from tars_pipeline.resources import TarsConfigResource
from tars_pipeline.schedules import SEQUENCE_TAG, DueDay, due_days, finished_days
from tars_pipeline.sensors import register_releases
from tars_pipeline_tests.conftest import REPO

NEW_YORK = ZoneInfo("America/New_York")
WEEK = Release(name="v1.0.1", ga_date=dt.date(2026, 3, 3), timezone="America/New_York")


def _at(day: int, hour: int = 23, minute: int = 59) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=NEW_YORK)


def test_each_evening_of_the_window_requests_that_day() -> None:
    assert due_days([WEEK], _at(3)) == [DueDay("v1.0.1", 0, final=False)]
    assert due_days([WEEK], _at(6)) == [DueDay("v1.0.1", 3, final=False)]
    assert due_days([WEEK], _at(10)) == [DueDay("v1.0.1", 7, final=True)]


def test_the_day_clocks_spring_forward_is_still_day_five() -> None:
    # 2026-03-08 has 23 hours in New York; 23:59 local is 03:59 UTC on the 9th.
    tick = _at(8).astimezone(dt.UTC)
    assert tick.date() == dt.date(2026, 3, 9)
    assert due_days([WEEK], tick) == [DueDay("v1.0.1", 5, final=False)]
    # and the follow-up after it (00:15 on the 9th, now EDT) sees day 5 finished
    assert finished_days([WEEK], _at(9, 0, 15)) == [DueDay("v1.0.1", 5, final=False)]


def test_before_ga_and_after_the_window_nothing_is_due() -> None:
    assert due_days([WEEK], _at(2)) == []
    assert due_days([WEEK], _at(11)) == []
    assert finished_days([WEEK], _at(3, 0, 15)) == []
    assert finished_days([WEEK], _at(12, 0, 15)) == []


def test_naive_tick_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_days([WEEK], dt.datetime(2026, 3, 3, 23, 59))


def _tick(name: str, at: dt.datetime) -> dg.ScheduleExecutionData:
    schedule = location.get_schedule_def(name)
    with dg.instance_for_test() as instance:
        register_releases(instance, ["v1.0.1"])
        context = dg.build_schedule_context(
            instance=instance,
            repository_def=location.get_repository_def(),
            scheduled_execution_time=at,
            resources={"tars_config": TarsConfigResource(config_path=str(REPO / "tars.yaml"))},
        )
        return schedule.evaluate_tick(context)


def test_the_demo_release_has_its_zone_schedules() -> None:
    schedules = {s.name: s for s in location.schedules}
    assert set(schedules) == {
        "tars_nightly_america_new_york",
        "tars_baseline_america_new_york",
        "tars_close_america_new_york",
    }
    targets = {name: schedule.job_name for name, schedule in schedules.items()}
    assert targets == {
        "tars_nightly_america_new_york": "tars_day",
        "tars_baseline_america_new_york": "tars_baseline",
        "tars_close_america_new_york": "tars_close",
    }
    nightly = schedules["tars_nightly_america_new_york"]
    assert (nightly.cron_schedule, nightly.execution_timezone) == (
        "59 23 * * *",
        "America/New_York",
    )


def test_every_night_requests_that_days_partition() -> None:
    (request,) = _tick("tars_nightly_america_new_york", _at(5)).run_requests
    assert request.partition_key == "day_02|v1.0.1"
    assert request.run_key == "v1.0.1/nightly/2026-03-05/day_02|v1.0.1"
    # one scheduled run per release at a time, in submission order (dagster.yaml's limit)
    assert request.tags[SEQUENCE_TAG] == "v1.0.1"


def test_the_morning_after_ga_day_builds_the_baseline() -> None:
    (request,) = _tick("tars_baseline_america_new_york", _at(4, 0, 15)).run_requests
    assert request.partition_key == "day_00|v1.0.1"
    assert not _tick("tars_baseline_america_new_york", _at(5, 0, 15)).run_requests


def test_after_the_last_day_come_regressions_and_retrospective() -> None:
    (request,) = _tick("tars_close_america_new_york", _at(11, 0, 15)).run_requests
    assert (request.partition_key, request.run_key) == ("v1.0.1", "v1.0.1/close/2026-03-11/v1.0.1")


def test_ticks_outside_the_window_skip_with_a_reason() -> None:
    nightly = _tick("tars_nightly_america_new_york", _at(20))
    assert not nightly.run_requests
    assert "on 2026-03-20, nothing due" in (nightly.skip_message or "")
    midweek = _tick("tars_close_america_new_york", _at(7, 0, 15))
    assert not midweek.run_requests and midweek.skip_message


def test_the_instance_runs_one_scheduled_run_per_release_at_a_time() -> None:
    """dagster.yaml: 4 runs at once overall, but one per `tars/sequence` value."""
    import yaml

    from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG

    runs = yaml.safe_load(PACKAGED_INSTANCE_CONFIG.read_text(encoding="utf-8"))["concurrency"]
    limits = runs["runs"]["tag_concurrency_limits"]
    assert {"key": SEQUENCE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    assert runs["runs"]["max_concurrent_runs"] >= 4
