"""The Prometheus source against a real Prometheus holding the bundled week.

Everything a real server can produce is produced by it: exact values, the 11,000-points
limit, NaN and +Inf, missing and partial series, a hostile service name, invalid PromQL,
and the transport faults (closed port, unknown host, https spoken to an http port).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.config import KpiDefinition, PrometheusSourceConfig, Release, default_kpis
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources.prometheus import (
    PrometheusClient,
    PrometheusSource,
    render_query,
)
from tars_pipeline.sources.snapshot import SnapshotSource
from tars_pipeline_tests.conftest import SNAPSHOT
from tars_pipeline_tests.prometheus.conftest import (
    ESCAPE_PROBE_SERVICE,
    SERVICES,
    PrometheusServer,
    free_port,
)

KPIS = {kpi.name: kpi for kpi in default_kpis()}
SAMPLE_REL_TOLERANCE = 1e-9
"""Per sample, Prometheus vs snapshot. The counters and buckets are built so the catalog's
PromQL gives the snapshot's values back exactly; what remains is float64 rounding in
rate() and histogram_quantile (measured: < 1e-9 relative, worst on latency_p99)."""


def custom_kpi(name: str, query: str, **fields: object) -> KpiDefinition:
    return KpiDefinition(
        name=name,
        title=name,
        unit="x",
        direction="lower_is_better",
        kind="resource",
        query=query,
        **fields,
    )


def source_config(url: str, **settings: object) -> PrometheusSourceConfig:
    defaults: dict[str, object] = {
        "rate_window": "1m",  # the week is scraped every 60 s: one step per rate()
        "retries": 1,
        "retry_backoff_seconds": 0.01,
        "timeout_seconds": 10.0,
    }
    return PrometheusSourceConfig(url=url, **{**defaults, **settings})


def fetch(
    server: PrometheusServer,
    day: int,
    kpis: list[KpiDefinition],
    *,
    services: tuple[str, ...] = SERVICES,
    step_seconds: int = 60,
    url: str | None = None,
    warnings: list[str] | None = None,
    **settings: object,
):
    release = server.release.model_copy(update={"services": services})
    start, end = release.day_bounds(day)
    source = PrometheusSource(
        source_config(url or server.url, **settings),
        warn=warnings.append if warnings is not None else None,
    )
    return source.fetch_day(release, start, end, kpis, step_seconds)


def snapshot_day(day: int) -> pd.DataFrame:
    release = Release(name="v1.0.1", ga_date=dt.date(2026, 3, 3), timezone="America/New_York")
    start, end = release.day_bounds(day)
    return SnapshotSource(SNAPSHOT).fetch_day(release, start, end, list(KPIS.values()), 60).samples


@pytest.mark.parametrize("day", [0, 2, 5])  # GA day, the p99 regression, the 23-hour DST day
def test_a_day_from_prometheus_is_the_snapshot_sample_by_sample(
    prometheus_server: PrometheusServer, day: int
) -> None:
    fetched = fetch(prometheus_server, day, list(KPIS.values()))
    assert not fetched.missing and not fetched.incomplete
    expected_points = 1380 if day == 5 else 1440
    assert {c.points for c in fetched.coverage} == {expected_points}

    ours = fetched.samples.assign(ts=fetched.samples["ts"] - prometheus_server.shift)
    merged = ours.merge(
        snapshot_day(day), on=["service", "kpi", "ts"], how="outer", suffixes=("", "_snapshot")
    )
    assert len(merged) == len(ours) == len(SERVICES) * len(KPIS) * expected_points
    assert merged["value"].notna().all() and merged["value_snapshot"].notna().all()
    relative = (merged["value"] - merged["value_snapshot"]).abs() / merged["value_snapshot"].abs()
    worst = relative.groupby(merged["kpi"]).max()
    assert (worst < SAMPLE_REL_TOLERANCE).all(), worst.to_dict()


def test_concurrent_queries_give_the_serial_fetch_exactly(
    prometheus_server: PrometheusServer,
) -> None:
    """max_concurrent_queries changes how many range queries are in flight, never the
    samples, their order or the coverage."""
    kpis = list(KPIS.values())
    serial = fetch(prometheus_server, 2, kpis, max_concurrent_queries=1)
    concurrent = fetch(prometheus_server, 2, kpis, max_concurrent_queries=8)
    assert len(serial.samples) == len(SERVICES) * len(KPIS) * 1440
    pd.testing.assert_frame_equal(serial.samples, concurrent.samples)
    assert serial.coverage == concurrent.coverage


def test_a_short_step_is_split_into_queries_prometheus_accepts(
    prometheus_server: PrometheusServer,
) -> None:
    kpi = KPIS["cost_compute"]
    release = prometheus_server.release
    start, end = release.day_bounds(0)
    with PrometheusClient(source_config(prometheus_server.url)) as client:
        # One query for the whole day at 5 s would be 17,280 points: Prometheus says no.
        query = render_query(
            kpi.query, service="checkout", service_label="service", rate_window="1m"
        )
        with pytest.raises(TarsUserError, match="11,000 points per timeseries"):
            client.query_range(
                query, start, end - dt.timedelta(seconds=5), 5, kpi=kpi, service="checkout"
            )
    fetched = fetch(prometheus_server, 0, [kpi], services=("checkout",), step_seconds=5)
    stamps = fetched.samples["ts"]
    assert len(stamps) == 17_280 and stamps.is_unique and stamps.is_monotonic_increasing
    assert (stamps.diff().dropna() == pd.Timedelta(seconds=5)).all()
    assert stamps.iloc[0] == start and stamps.iloc[-1] == end - dt.timedelta(seconds=5)


def test_many_small_chunks_merge_into_the_same_series(prometheus_server: PrometheusServer) -> None:
    kpis = [KPIS["latency_p99"], KPIS["error_rate"]]
    whole = fetch(prometheus_server, 2, kpis, services=("api-gateway",))
    chunked = fetch(prometheus_server, 2, kpis, services=("api-gateway",), max_points_per_query=97)
    pd.testing.assert_frame_equal(whole.samples, chunked.samples)
    assert len(chunked.samples) == 2 * 1440


def test_nan_and_inf_are_dropped_and_reported_as_gaps_never_zero(
    prometheus_server: PrometheusServer,
) -> None:
    half_day = 'sum(node_cpu_hourly_cost{service="{service}"}) and on() hour() < 12'
    kpis = [
        custom_kpi("nan_after_noon", f"({half_day}) or on() (vector(0) / 0)"),
        custom_kpi("inf_after_noon", f"({half_day}) or on() (vector(1) / 0)"),
    ]
    warnings: list[str] = []
    fetched = fetch(prometheus_server, 0, kpis, services=("checkout",), warnings=warnings)
    assert {c.kpi: c.points for c in fetched.coverage} == {
        "nan_after_noon": 720,
        "inf_after_noon": 720,
    }
    assert {c.kpi for c in fetched.incomplete} == {"nan_after_noon", "inf_after_noon"}
    values = fetched.samples["value"].to_numpy()
    assert np.isfinite(values).all() and (values > 0).all()
    assert len(warnings) == 2 and all("720 NaN/Inf sample(s) dropped" in w for w in warnings)


def test_no_series_is_missing_and_part_of_the_day_is_incomplete(
    prometheus_server: PrometheusServer,
) -> None:
    kpis = [
        custom_kpi("not_exported", 'sum(no_such_metric{service="{service}"})'),
        custom_kpi(
            "mornings_only",
            'sum(node_cpu_hourly_cost{service="{service}"}) and on() hour() < 12',
        ),
    ]
    fetched = fetch(prometheus_server, 0, kpis)
    assert {(c.service, c.kpi) for c in fetched.missing} == {
        (service, "not_exported") for service in SERVICES
    }
    assert {(c.service, c.kpi, round(c.completeness_pct)) for c in fetched.incomplete} == {
        (service, "mornings_only", 50) for service in SERVICES
    }
    assert set(fetched.samples["kpi"]) == {"mornings_only"}  # nothing filled in


def test_a_hostile_service_name_matches_nothing_instead_of_everything(
    prometheus_server: PrometheusServer,
) -> None:
    # Unescaped, this closes the matcher and adds every other service's traffic.
    hostile = 'nobody"}[1m])) or sum(rate(http_requests_total{service!="'
    kpi = KPIS["throughput"]
    fetched = fetch(prometheus_server, 0, [kpi], services=(hostile,))
    assert fetched.samples.empty and [c.service for c in fetched.missing] == [hostile]
    # The same name pasted in unescaped would have read every service's traffic.
    naive = kpi.query.replace("{service_label}", "service").replace("{rate_window}", "1m")
    naive = naive.replace("{service}", hostile)
    start, end = prometheus_server.release.day_bounds(0)
    with PrometheusClient(source_config(prometheus_server.url)) as client:
        injected = client.query_range(naive, start, end, 3600, kpi=kpi, service=hostile)
    assert injected and injected[0]["values"]


def test_a_label_value_with_quote_backslash_and_newline_is_matched_exactly(
    prometheus_server: PrometheusServer,
) -> None:
    probe = custom_kpi("probe", 'sum(tars_escape_probe{service="{service}"})')
    release = prometheus_server.release.model_copy(
        update={"services": (ESCAPE_PROBE_SERVICE, "checkout")}
    )
    start = release.day_bounds(7)[1]  # the probe's hour, right after the week
    end = start + dt.timedelta(hours=1)
    fetched = PrometheusSource(source_config(prometheus_server.url)).fetch_day(
        release, start, end, [probe], 60
    )
    by_service = fetched.samples.groupby("service")["value"].agg(["count", "min", "max"])
    assert by_service.loc[ESCAPE_PROBE_SERVICE].tolist() == [60, 7.0, 7.0]
    assert by_service.loc["checkout"].tolist() == [60, 1.0, 1.0]


def test_invalid_promql_shows_the_servers_error_with_the_kpi_name(
    prometheus_server: PrometheusServer,
) -> None:
    broken = custom_kpi("queue_depth", 'sum(rate(jobs_queued{service="{service}"}[5m])')
    with pytest.raises(TarsUserError) as failure:
        fetch(prometheus_server, 0, [KPIS["throughput"], broken])
    message = str(failure.value)
    assert message.startswith("kpis[queue_depth].query: Prometheus rejected the query of KPI")
    assert "HTTP 400 bad_data" in message and "parse error" in message
    assert 'query: sum(rate(jobs_queued{service="api-gateway"}[5m])' in message


def test_a_closed_port_is_connection_refused_naming_the_url_setting(
    prometheus_server: PrometheusServer,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TarsUserError) as failure:
        fetch(prometheus_server, 0, [KPIS["throughput"]], url=url)
    message = str(failure.value)
    assert "cannot connect to Prometheus at 127.0.0.1:" in message
    assert "connection refused (2 attempts)" in message and "source.url" in message


def test_an_unknown_host_is_a_dns_failure(prometheus_server: PrometheusServer) -> None:
    with pytest.raises(TarsUserError) as failure:
        fetch(prometheus_server, 0, [KPIS["throughput"]], url="http://prometheus.invalid:9090")
    assert "cannot resolve the host 'prometheus.invalid'" in str(failure.value)


def test_https_to_a_plain_http_port_is_a_tls_failure(prometheus_server: PrometheusServer) -> None:
    url = f"https://127.0.0.1:{prometheus_server.port}"
    with pytest.raises(TarsUserError) as failure:
        fetch(prometheus_server, 0, [KPIS["throughput"]], url=url)
    message = str(failure.value)
    assert "TLS handshake with 127.0.0.1" in message and "failed" in message
    assert "source.ca_bundle" in message


def test_a_missing_ca_bundle_is_named(prometheus_server: PrometheusServer, tmp_path: Path) -> None:
    with pytest.raises(TarsUserError, match=r"source\.ca_bundle"):
        fetch(prometheus_server, 0, [KPIS["throughput"]], ca_bundle=str(tmp_path / "none.pem"))


def test_a_day_from_the_ga_moment_is_fetched_as_its_window(
    prometheus_server: PrometheusServer,
) -> None:
    """ga_at: Day 2 is the 24 hours from 14:30 local two days after GA, sample for sample the
    snapshot over the same window."""
    release = prometheus_server.release
    ga_at = dt.datetime.combine(release.ga_date, dt.time(14, 30), tzinfo=release.tz)
    moment = release.model_copy(update={"ga_at": ga_at, "services": SERVICES})
    moment = type(release).model_validate(moment.model_dump())
    start, end = moment.day_bounds(2)
    assert end - start == dt.timedelta(hours=24)
    source = PrometheusSource(source_config(prometheus_server.url))
    fetched = source.fetch_day(moment, start, end, [KPIS["latency_p99"]], 60)
    assert not fetched.missing and not fetched.incomplete
    stamps = fetched.samples["ts"]
    assert stamps.min() == pd.Timestamp(start) and stamps.max() == pd.Timestamp(end) - pd.Timedelta(
        minutes=1
    )
    assert len(fetched.samples) == len(SERVICES) * 1440
