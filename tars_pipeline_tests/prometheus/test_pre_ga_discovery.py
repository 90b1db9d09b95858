"""Service discovery for the pre-GA reference week, against a real Prometheus.

A release that lists no `services` has them discovered from `source.services_match`.
With a `reference_date`, `daily_summary` (via `read_reference`) fetches pre-GA dates
(GA − 7 days, ...); discovery once always started at GA day, so for those dates it asked
Prometheus for a range running backwards (GA start → the reference day's end), found
nothing, and every day after Day 0 failed with "no services found".

The bundled week starts at GA day, so this module backfills its own small TSDB (three
hours of one counter for a few services on three dates) into a throw-away server started
like the session one (`conftest.serving`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tars_pipeline.assets.day_fetch import read_reference
from tars_pipeline.config import PrometheusSourceConfig, Release, TarsConfig, default_kpis
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.seasonality import date_bounds
from tars_pipeline.sources.prometheus import PrometheusSource
from tars_pipeline_tests.prometheus.conftest import (
    BUNDLED_GA,
    TIMEZONE,
    PrometheusServer,
    assert_blocks_not_in_future,
    assert_seconds_before_now,
    backfill,
    require_binaries,
    serving,
    shifted_ga_date,
)

THROUGHPUT = next(kpi for kpi in default_kpis() if kpi.name == "throughput")
STEP_SECONDS = 60
HOURS = 3  # of samples per date, from 01:00 local
REQUESTS_PER_SECOND = 5.0
REFERENCE_SERVICES = ("checkout", "search")
"""Seen on the reference days (GA − 7, the GA weekday; GA − 6, Day 1's weekday)."""
GA_DAY_ONLY = "api-gateway"
"""Seen on GA day only: in-window discovery keeps it on later days (looks back to GA)."""


def write_counters(path: Path, series: dict[str, list[dt.datetime]]) -> None:
    """`http_requests_total{service, code="200"}` at a steady rate, one sample a minute for
    HOURS hours from each start; OpenMetrics wants each metric family in one block."""
    lines = ["# TYPE http_requests_total counter\n"]
    for service, starts in series.items():
        count = 0.0
        for start in starts:
            first = int(start.timestamp())
            for minute in range(HOURS * 60):
                count += REQUESTS_PER_SECOND * STEP_SECONDS
                lines.append(
                    f'http_requests_total{{service="{service}",code="200"}} '
                    f"{count} {first + STEP_SECONDS * minute}\n"
                )
    path.write_text("".join(lines) + "# EOF\n", encoding="utf-8")


def one_am(release: Release, date: dt.date) -> dt.datetime:
    return date_bounds(release, date)[0] + dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def pre_ga_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    prometheus, promtool = require_binaries()
    folder = tmp_path_factory.mktemp("prometheus-pre-ga")
    now = dt.datetime.now(dt.UTC)
    ga_date = shifted_ga_date(now)
    release = Release(name="probe", ga_date=ga_date, timezone=TIMEZONE)
    reference = [ga_date - dt.timedelta(days=7), ga_date - dt.timedelta(days=6)]
    ga_day = [one_am(release, ga_date)]
    series = {
        GA_DAY_ONLY: ga_day,
        "checkout": [one_am(release, date) for date in reference] + ga_day,
        "search": [one_am(release, date) for date in reference],
    }
    source = folder / "pre_ga.om"
    write_counters(source, series)
    assert_seconds_before_now(source, now)
    data_dir = folder / "tsdb"
    data_dir.mkdir()
    backfill(promtool, source, data_dir)
    assert_blocks_not_in_future(data_dir, now)
    with serving(prometheus, data_dir, folder) as (url, port, pid):
        yield PrometheusServer(
            url=url,
            port=port,
            pid=pid,
            ga_date=ga_date,
            shift_days=(ga_date - BUNDLED_GA).days,
            data_dir=data_dir,
            log_path=folder / "prometheus.log",
        )


def discovering_release(server: PrometheusServer) -> Release:
    """No `services`: they come from `services_match` (default `http_requests_total`)."""
    return server.release.model_copy(
        update={"services": (), "reference_date": server.ga_date - dt.timedelta(days=7)}
    )


def source_for(server: PrometheusServer) -> PrometheusSource:
    settings = PrometheusSourceConfig(
        url=server.url, rate_window="5m", retries=1, retry_backoff_seconds=0.01
    )
    assert settings.services_match == "http_requests_total"
    return PrometheusSource(settings)


def fetch_date(server: PrometheusServer, date: dt.date):
    release = discovering_release(server)
    start, end = date_bounds(release, date)
    return source_for(server).fetch_day(release, start, end, [THROUGHPUT], STEP_SECONDS)


def test_a_pre_ga_reference_day_discovers_the_services_seen_that_day(pre_ga_server):
    fetched = fetch_date(pre_ga_server, pre_ga_server.ga_date - dt.timedelta(days=7))

    assert sorted({row.service for row in fetched.coverage}) == list(REFERENCE_SERVICES)
    assert sorted(fetched.samples["service"].unique()) == list(REFERENCE_SERVICES)
    # rate() ramps over its 5m window at each end of a three-hour run; the rest is exact.
    values = fetched.samples["value"]
    assert values.median() == pytest.approx(REQUESTS_PER_SECOND)
    assert values.max() == pytest.approx(REQUESTS_PER_SECOND)
    for row in fetched.coverage:
        assert row.points >= HOURS * 60 - 10, row


def test_read_reference_after_day_0_with_discovered_services(pre_ga_server):
    """The path of the report: `daily_summary` → `read_reference` for Day 1."""
    release = discovering_release(pre_ga_server)
    config = TarsConfig(
        source=source_for(pre_ga_server).settings,
        releases=(release,),
        kpis=(THROUGHPUT,),
        slos=(),
        step_seconds=STEP_SECONDS,
    )
    reference = read_reference(source_for(pre_ga_server), config, release, 1)

    assert reference is not None
    for frame, date in (
        (reference.ga_weekday, release.ga_date - dt.timedelta(days=7)),
        (reference.day_weekday, release.ga_date - dt.timedelta(days=6)),
    ):
        assert sorted(frame["service"].unique()) == list(REFERENCE_SERVICES)
        start, end = date_bounds(release, date)
        stamps = frame["ts"]
        assert stamps.min() >= start and stamps.max() < end


def test_an_in_window_day_still_discovers_from_ga_day(pre_ga_server):
    """Day 1 has no data at all: the services seen since GA day are listed, all missing."""
    release = discovering_release(pre_ga_server)
    start, end = release.day_bounds(1)
    fetched = source_for(pre_ga_server).fetch_day(release, start, end, [THROUGHPUT], STEP_SECONDS)

    assert fetched.samples.empty
    assert sorted(row.service for row in fetched.coverage) == ["api-gateway", "checkout"]
    assert all(row.points == 0 for row in fetched.coverage)


def test_an_empty_pre_ga_day_keeps_the_error_with_a_forward_range(pre_ga_server):
    release = discovering_release(pre_ga_server)
    date = release.ga_date - dt.timedelta(days=14)
    start, end = date_bounds(release, date)

    with pytest.raises(TarsUserError, match="no services found") as raised:
        fetch_date(pre_ga_server, date)

    found = re.search(r"between (\S+) and (\S+)", str(raised.value))
    assert found, raised.value
    since, until = (dt.datetime.fromisoformat(moment) for moment in found.groups())
    assert since < until
    assert (since, until) == (start, end)
