"""The Prometheus source's pure parts: escaping, query templates, chunking, values, config.

No server needed: these run everywhere, in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tars_pipeline.cli import commands
from tars_pipeline.config import (
    PrometheusSourceConfig,
    Release,
    SnapshotSourceConfig,
    default_kpis,
    load_config,
)
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources import build_source
from tars_pipeline.sources.prometheus import (
    MAX_POINTS_PER_SERIES,
    PrometheusClient,
    PrometheusSource,
    merge_chunks,
    parse_values,
    promql_string,
    range_chunks,
    render_query,
    with_prometheus_url,
)
from tars_pipeline.sources.snapshot import SnapshotSource
from tars_pipeline_tests.conftest import write_config
from tars_pipeline_tests.prometheus.conftest import (
    require_binaries,
    second_sunday_of_march,
    shifted_ga_date,
)

START = dt.datetime(2026, 3, 3, 5, 0, tzinfo=dt.UTC)

# --- Escaping -----------------------------------------------------------------------


def _unquote_promql(literal: str) -> str:
    """How PromQL reads a double-quoted string (Go escapes), to check the round trip."""
    assert literal[0] == literal[-1] == '"'
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        char = body[i]
        assert char != '"', f"unescaped quote ends the string early: {literal!r}"
        assert char != "\n", f"raw line break in a PromQL string: {literal!r}"
        if char == "\\":
            out.append({"n": "\n", "r": "\r", "\\": "\\", '"': '"'}[body[i + 1]])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    "name",
    [
        "checkout",
        'we"ird',
        "back\\slash",
        "line\nbreak",
        'x"} or vector(1) or up{a="',
        '\\"} or sum(rate(http_requests_total[1m])) #',
        "trailing\\",
        "{rate_window}",
    ],
)
def test_a_service_name_is_one_string_literal_whatever_it_contains(name: str) -> None:
    literal = f'"{promql_string(name)}"'
    assert _unquote_promql(literal) == name


def test_a_hostile_service_name_cannot_change_the_query() -> None:
    hostile = 'nobody"}[1m])) or sum(rate(http_requests_total{service!="'
    query = render_query(
        'sum(rate(http_requests_total{service="{service}"}[{rate_window}]))',
        service=hostile,
        service_label="service",
        rate_window="1m",
    )
    # Exactly one label matcher, whose value is the whole name.
    matchers = re.findall(r'service="((?:[^"\\]|\\.)*)"', query)
    assert len(matchers) == 1 and _unquote_promql(f'"{matchers[0]}"') == hostile
    assert query.endswith('"}[1m]))') and query.count("sum(") == 1 + hostile.count("sum(")


def test_placeholders_are_filled_once_and_promql_braces_are_left_alone() -> None:
    query = render_query(
        '{__name__="x",{service_label}="{service}",code=~"5.{2}"}[{rate_window}]',
        service="{service_label}",
        service_label="app",
        rate_window="2m",
    )
    assert query == '{__name__="x",app="{service_label}",code=~"5.{2}"}[2m]'


def test_the_default_catalog_is_promql_over_conventional_names() -> None:
    rendered = {
        kpi.name: render_query(
            kpi.query, service="checkout", service_label="service", rate_window="5m"
        )
        for kpi in default_kpis()
    }
    assert rendered["error_rate"] == (
        '100 * sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m])) / '
        'sum(rate(http_requests_total{service="checkout"}[5m]))'
    )
    assert rendered["latency_p99"] == (
        "1000 * histogram_quantile(0.99, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{service="checkout"}[5m])))'
    )
    assert "process_cpu_seconds_total" in rendered["cpu_utilization"]
    assert "container_memory_working_set_bytes" in rendered["memory_utilization"]
    assert rendered["cost_compute"] == 'sum(node_cpu_hourly_cost{service="checkout"})'
    assert all("{" + "service}" not in query for query in rendered.values())


# --- Chunking and values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "max_points", "chunks"),
    [(1440, 11_000, 1), (1440, 100, 15), (1440, 1440, 1), (1441, 1440, 2), (17_280, 11_000, 2)],
)
def test_chunks_tile_the_window_without_overlap_or_gap(
    points: int, max_points: int, chunks: int
) -> None:
    step = 60
    ranges = range_chunks(START, points, step, max_points)
    assert len(ranges) == chunks
    evaluated = [
        first + dt.timedelta(seconds=step * i)
        for first, last in ranges
        for i in range(int((last - first).total_seconds()) // step + 1)
    ]
    assert evaluated == [START + dt.timedelta(seconds=step * i) for i in range(points)]
    assert all(
        (last - first).total_seconds() // step + 1 <= min(max_points, MAX_POINTS_PER_SERIES)
        for first, last in ranges
    )


def test_no_chunk_asks_for_more_than_prometheus_allows() -> None:
    ranges = range_chunks(START, 50_000, 1, 99_999)
    assert all((last - first).total_seconds() + 1 <= 11_000 for first, last in ranges)


def test_values_arrive_as_strings_and_non_finite_ones_stay_visible() -> None:
    stamps, values = parse_values(
        [[1772514000, "1.5"], [1772514060.0, "NaN"], [1772514120, "+Inf"]]
    )
    assert stamps.tolist() == [1772514000000, 1772514060000, 1772514120000]
    assert values[0] == 1.5 and np.isnan(values[1]) and np.isposinf(values[2])


def test_merging_chunks_keeps_one_value_per_timestamp_inside_the_window() -> None:
    first = (np.array([0, 60_000, 120_000]), np.array([1.0, 2.0, 3.0]))
    overlap = (np.array([120_000, 180_000, 240_000]), np.array([9.0, 4.0, 5.0]))
    stamps, values = merge_chunks([overlap, first], 0, 240_000)
    assert stamps.tolist() == [0, 60_000, 120_000, 180_000]
    assert values.tolist()[:2] == [1.0, 2.0] and values[3] == 4.0


# --- Configuration ------------------------------------------------------------------


def test_prometheus_settings_have_safe_defaults() -> None:
    source = PrometheusSourceConfig(url="http://prometheus:9090/")
    assert source.url == "http://prometheus:9090"
    assert source.verify_tls is True and source.ca_bundle is None
    assert source.rate_window == "5m" and source.max_points_per_query == 11_000
    assert source.bearer_token_env == "TARS_PROMETHEUS_TOKEN"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "prometheus:9090"}, "expected http(s)://host"),
        ({"url": "http://user:secret@prometheus:9090"}, "credentials do not belong in the URL"),
        ({"url": "http://p:9090", "headers": {"Authorization": "Bearer x"}}, "carry credentials"),
        ({"url": "http://p:9090", "rate_window": "5 minutes"}, "rate_window"),
        ({"url": "http://p:9090", "service_label": "app-name"}, "service_label"),
        ({"url": "http://p:9090", "max_points_per_query": 20_000}, "max_points_per_query"),
        ({"url": "http://p:9090", "bearer_token": "abc"}, "bearer_token"),
    ],
)
def test_bad_prometheus_settings_are_named(tmp_path: Path, settings: dict, message: str) -> None:
    path = write_config(tmp_path, source={"type": "prometheus", **settings})
    with pytest.raises(TarsUserError, match=re.escape(message)):
        load_config(path)


def test_credentials_are_read_from_the_environment_when_connecting_never_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARS_PROMETHEUS_TOKEN", "s3cret-token")
    monkeypatch.delenv("TARS_PROMETHEUS_USERNAME", raising=False)
    (tmp_path / "ca.pem").write_text("not read before a request\n", encoding="utf-8")
    path = write_config(
        tmp_path,
        source={
            "type": "prometheus",
            "url": "https://mimir.example:8080/prometheus",
            "headers": {"X-Scope-OrgID": "team-a"},
            "ca_bundle": "ca.pem",
        },
    )
    config = load_config(path)
    source = build_source(config)
    assert isinstance(source, PrometheusSource) and source.settings is config.source
    # The config (what the tars_config resource hands out) only names the variable.
    assert config.source.bearer_token_env == "TARS_PROMETHEUS_TOKEN"
    assert "s3cret-token" not in repr(config) and "s3cret-token" not in repr(vars(source))
    assert "s3cret-token" not in config.model_dump_json()
    with source.client() as client:
        assert client.sends == "bearer"
        assert "s3cret-token" not in repr(vars(client))
        assert client.connection.headers["Authorization"] == "Bearer s3cret-token"
        assert client.connection.auth is None  # no basic-auth user
        assert client.connection.headers["X-Scope-OrgID"] == "team-a"
        assert client.connection._session.verify == str(tmp_path / "ca.pem")  # beside tars.yaml
    # Read at connection time: a token exported later is used by the next fetch.
    monkeypatch.setenv("TARS_PROMETHEUS_TOKEN", "rotated")
    with PrometheusClient(config.source, base_dir=tmp_path) as client:
        assert client.connection.headers["Authorization"] == "Bearer rotated"
    # An empty variable is no credential.
    monkeypatch.setenv("TARS_PROMETHEUS_TOKEN", "")
    with PrometheusClient(config.source, base_dir=tmp_path) as client:
        assert client.sends is None and "Authorization" not in client.connection.headers


def test_a_bearer_token_and_basic_auth_together_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_TOKEN", "t")
    monkeypatch.setenv("MY_USER", "u")
    settings = PrometheusSourceConfig(
        url="http://p:9090", bearer_token_env="MY_TOKEN", username_env="MY_USER"
    )
    with pytest.raises(TarsUserError, match=re.escape("$MY_TOKEN and $MY_USER: both a bearer")):
        PrometheusClient(settings)


def test_the_configs_source_picks_the_adapter(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert isinstance(config.source, SnapshotSourceConfig)
    assert isinstance(build_source(config), SnapshotSource)
    chosen = build_source(with_prometheus_url(config, "http://p:9090"))
    assert isinstance(chosen, PrometheusSource)
    assert chosen.settings.url == "http://p:9090"
    assert chosen.base_dir == tmp_path.resolve()


def test_prometheus_url_replaces_a_snapshot_source_and_keeps_prometheus_settings(
    tmp_path: Path,
) -> None:
    snapshot_config = load_config(write_config(tmp_path))
    switched = with_prometheus_url(snapshot_config, "http://prometheus:9090")
    assert isinstance(switched.source, PrometheusSourceConfig)
    assert switched.source.url == "http://prometheus:9090"
    prom = load_config(
        write_config(
            tmp_path,
            source={"type": "prometheus", "url": "http://old:9090", "rate_window": "2m"},
        )
    )
    assert with_prometheus_url(prom, "http://new:9090").source.rate_window == "2m"
    with pytest.raises(TarsUserError, match="--prometheus-url"):
        with_prometheus_url(snapshot_config, "prometheus:9090")


@pytest.mark.parametrize("command", ["ga_kpi", "stability_monitor", "retro"])
def test_every_command_takes_prometheus_url(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        getattr(commands, command).run(["--help"])
    assert "--prometheus-url URL" in capsys.readouterr().out


# --- The real-server fixture's rule: skip, unless .ci/run requires the servers -------------------


@pytest.mark.parametrize(
    ("required", "ci", "outcome"),
    [
        ("1", "", pytest.fail.Exception),
        ("", "true", pytest.skip.Exception),  # a team's own CI sets CI=true: still a skip
        ("", "", pytest.skip.Exception),
    ],
)
def test_a_missing_prometheus_fails_only_where_servers_are_required(
    monkeypatch: pytest.MonkeyPatch, required: str, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("TARS_REQUIRE_SERVERS", required)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="prometheus/promtool not installed"):
        require_binaries()


def test_the_week_moves_to_a_daylight_saving_week_that_has_ended() -> None:
    for now in (
        "2026-11-27T21:00:00+00:00",
        "2026-03-05T12:00:00+00:00",
        "2031-01-02T00:00:00+00:00",
    ):
        moment = dt.datetime.fromisoformat(now)
        ga = shifted_ga_date(moment)
        assert (ga - dt.date(2026, 3, 3)).days % 7 == 0  # whole weeks: same weekdays
        assert ga + dt.timedelta(days=5) == second_sunday_of_march(ga.year)  # DST on Day 5
        release = Release(name="r", ga_date=ga, timezone="America/New_York")
        assert release.day_bounds(7)[1] <= moment
        hours = [
            (end - start).total_seconds() / 3600
            for start, end in map(release.day_bounds, release.days)
        ]
        assert hours == [24, 24, 24, 24, 24, 23, 24, 24]
