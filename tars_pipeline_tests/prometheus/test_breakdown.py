"""The top-contributor breakdown, fetched from a real Prometheus and read from snapshot files.

One service, `checkout`, backfilled with promtool: http_requests_total and a latency
histogram by uri × code × instance, scraped every 60 s, for a two-hour baseline window and a
two-hour degraded window. In the degraded window /api/v1/payments/{id} answers 5 % of its
requests with 503, and instance 10.0.0.2:8080 adds 300 ms to every request. Each KPI's
breakdown must rank its own injected value first.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from tars_pipeline.config import KpiBreakdown, PrometheusSourceConfig, default_kpis
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.contributors import BREAKDOWN_COLUMNS
from tars_pipeline.sources.breakdown import (
    BREAKDOWN_DIR,
    BreakdownQuery,
    breakdown_query_for,
    default_breakdowns,
    fetch_breakdown,
    rank_breakdown,
    render_breakdown,
    snapshot_breakdown,
)
from tars_pipeline.sources.prometheus import PrometheusClient
from tars_pipeline_tests.prometheus.conftest import backfill, require_binaries, serving

KPIS = {kpi.name: kpi for kpi in default_kpis()}
SERVICE = "checkout"
PAYMENTS = "/api/v1/payments/{id}"
URIS = {PAYMENTS: 0.10, "/api/v1/search": 0.40, "/api/v1/users/{id}": 0.30, "/health": 0.20}
LATENCY_S = {
    PAYMENTS: 0.040,
    "/api/v1/search": 0.150,
    "/api/v1/users/{id}": 0.080,
    "/health": 0.004,
}
INSTANCES = ("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080")
SLOW_INSTANCE = INSTANCES[1]
EXTRA_LATENCY_S = 0.300
REQUESTS_PER_MINUTE = 1200.0  # per instance
RATE_500 = 0.002
RATE_503 = 0.05  # payments, degraded window
BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
STEP = 60
WINDOW_STEPS = 120  # two hours
REL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Week:
    """Per-minute increments of each (uri, instance): minute k covers (t_k − 60 s, t_k]."""

    start: dt.datetime  # t_0, the baseline window's first evaluation time

    @property
    def baseline(self) -> tuple[dt.datetime, dt.datetime]:
        return self.start, self.start + dt.timedelta(seconds=STEP * WINDOW_STEPS)

    @property
    def observed(self) -> tuple[dt.datetime, dt.datetime]:
        return self.baseline[1], self.baseline[1] + dt.timedelta(seconds=STEP * WINDOW_STEPS)

    def minutes(self) -> Iterator[tuple[int, bool]]:
        """(k, degraded) for k = 0 .. 239."""
        for k in range(2 * WINDOW_STEPS):
            yield k, k >= WINDOW_STEPS

    @staticmethod
    def cell(uri: str, instance: str, degraded: bool) -> dict[str, float]:
        """One minute of one (uri, instance): requests by code, and the latency."""
        requests = REQUESTS_PER_MINUTE * URIS[uri]
        rate_503 = RATE_503 if degraded and uri == PAYMENTS else 0.0
        latency = LATENCY_S[uri] + (
            EXTRA_LATENCY_S if degraded and instance == SLOW_INSTANCE else 0
        )
        return {
            "200": requests * (1 - RATE_500 - rate_503),
            "500": requests * RATE_500,
            "503": requests * rate_503,
            "latency": latency,
            "requests": requests,
        }

    def stamp(self, k: int) -> int:
        return int(self.start.timestamp()) + STEP * k


def labels(uri: str, instance: str, **extra: str) -> str:
    pairs = {"service": SERVICE, "uri": uri, "instance": instance, **extra}
    return ",".join(f'{name}="{value}"' for name, value in pairs.items())


def write_openmetrics(week: Week, path: Path) -> None:
    lines = ["# TYPE http_requests counter\n"]
    for uri, instance, code in itertools.product(URIS, INSTANCES, ("200", "500", "503")):
        total = 0.0
        series = f"http_requests_total{{{labels(uri, instance, code=code)}}}"
        lines.append(f"{series} 0.0 {week.stamp(-1)}\n")
        for k, degraded in week.minutes():
            total += Week.cell(uri, instance, degraded)[code]
            lines.append(f"{series} {total!r} {week.stamp(k)}\n")
    lines.append("# TYPE http_request_duration_seconds histogram\n")
    for uri, instance in itertools.product(URIS, INSTANCES):
        buckets = np.zeros(len(BUCKETS_S) + 1)
        count = duration = 0.0
        name = "http_request_duration_seconds"
        for k in range(-1, 2 * WINDOW_STEPS):
            if k >= 0:
                cell = Week.cell(uri, instance, k >= WINDOW_STEPS)
                # Every request of the minute takes `latency`: cumulative buckets from its own.
                buckets += cell["requests"] * (np.array([*BUCKETS_S, np.inf]) >= cell["latency"])
                count += cell["requests"]
                duration += cell["requests"] * cell["latency"]
            stamp = week.stamp(k)
            for bound, value in zip((*BUCKETS_S, "+Inf"), buckets.tolist(), strict=True):
                le = bound if isinstance(bound, str) else repr(bound)
                lines.append(f"{name}_bucket{{{labels(uri, instance, le=le)}}} {value!r} {stamp}\n")
            lines.append(f"{name}_count{{{labels(uri, instance)}}} {count!r} {week.stamp(k)}\n")
            lines.append(f"{name}_sum{{{labels(uri, instance)}}} {duration!r} {week.stamp(k)}\n")
    lines.append("# EOF\n")
    path.write_text("".join(lines), encoding="utf-8")


def expected_errors(uri: str, degraded: bool) -> tuple[float, float]:
    """(errors/s, requests/s) of a uri over its instances, as the breakdown should read."""
    cells = [Week.cell(uri, instance, degraded) for instance in INSTANCES]
    errors = sum(cell["500"] + cell["503"] for cell in cells) / STEP
    return errors, sum(cell["requests"] for cell in cells) / STEP


@dataclass(frozen=True)
class Server:
    url: str
    week: Week


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    prometheus, promtool = require_binaries()
    folder = tmp_path_factory.mktemp("breakdown")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    week = Week(start=now - dt.timedelta(days=1, hours=6))
    source = folder / "checkout.om"
    write_openmetrics(week, source)
    data_dir = folder / "tsdb"
    data_dir.mkdir()
    backfill(promtool, source, data_dir)
    with serving(prometheus, data_dir, folder) as (url, _port, _pid):
        yield Server(url=url, week=week)


def client(url: str, **settings: object) -> PrometheusClient:
    return PrometheusClient(
        PrometheusSourceConfig(
            url=url,
            rate_window="1m",  # scraped every 60 s: one step per rate()
            retries=1,
            retry_backoff_seconds=0.01,
            timeout_seconds=10.0,
            **settings,
        )
    )


def fetch(server: Server, kpi: str, query: BreakdownQuery | None = None, **settings: object):
    query = query or default_breakdowns()[kpi]
    with client(server.url, **settings) as connection:
        return fetch_breakdown(
            connection,
            query,
            kpi=KPIS[kpi],
            service=SERVICE,
            service_label="service",
            rate_window="1m",
            baseline=server.week.baseline,
            observed=server.week.observed,
            step_seconds=STEP,
        )


@pytest.mark.slow
def test_errors_in_one_uri_rank_that_uri_first(server: Server) -> None:
    breakdown = fetch(server, "error_rate")
    # status, route, pod, region, version: no series carries them, so they are skipped.
    assert list(dict.fromkeys(breakdown["dimension"])) == ["uri", "code", "instance"]
    by_uri = breakdown[breakdown["dimension"] == "uri"].set_index("element")
    for uri in URIS:
        for side, degraded in (("baseline", False), ("observed", True)):
            errors, requests = expected_errors(uri, degraded)
            assert by_uri.loc[uri, f"{side}_num"] == pytest.approx(errors, rel=REL_TOLERANCE)
            assert by_uri.loc[uri, f"{side}_den"] == pytest.approx(requests, rel=REL_TOLERANCE)
    by_code = breakdown[breakdown["dimension"] == "code"].set_index("element")
    assert by_code.loc["503", "baseline_num"] == 0.0  # its counters exist, at 0
    assert np.isnan(by_code.loc["200", "observed_num"])  # not an error: no series, 0

    result = rank_breakdown(breakdown, default_breakdowns()["error_rate"])
    assert result is not None
    assert result.leader.label == f"uri={PAYMENTS}"
    assert result.leader.share_pct == pytest.approx(100.0, abs=1e-6)
    assert [item.label for item in result.top] == [f"uri={PAYMENTS}", "code=503"]
    assert result.headline("Error rate", "%") == (
        f"100 % of the error rate increase is uri={PAYMENTS} (0.2 → 5.2 %), code=503."
    )

    availability = rank_breakdown(
        fetch(server, "availability"), default_breakdowns()["availability"]
    )
    assert availability is not None and availability.direction == "decrease"
    assert availability.leader.label == f"uri={PAYMENTS}"
    assert (availability.leader.baseline, availability.leader.observed) == (
        pytest.approx(99.8),
        pytest.approx(94.8),
    )


@pytest.mark.slow
def test_latency_on_one_instance_ranks_that_instance_first(server: Server) -> None:
    query = default_breakdowns()["latency_p99"]
    breakdown = fetch(server, "latency_p99")
    assert list(dict.fromkeys(breakdown["dimension"])) == ["uri", "instance"]
    result = rank_breakdown(breakdown, query)
    assert result is not None
    assert result.leader.label == f"instance={SLOW_INSTANCE}"
    assert result.leader.share_pct == pytest.approx(100.0, abs=1e-6)
    # Mean latency: Σ share · latency = 4 + 60 + 24 + 0.8 = 88.8 ms; +300 ms on the slow one.
    assert result.leader.baseline == pytest.approx(88.8, rel=REL_TOLERANCE)
    assert result.leader.observed == pytest.approx(388.8, rel=REL_TOLERANCE)
    assert result.observed - result.baseline == pytest.approx(100.0, rel=REL_TOLERANCE)
    # The slice's own p99, from its histogram: the slowest uri's bucket (0.1, 0.25] on the
    # baseline, (0.25, 0.5] once 300 ms slower: histogram_quantile interpolates inside it.
    assert 100 < result.leader.baseline_kpi < 250
    assert 250 < result.leader.observed_kpi < 500
    others = [item for item in result.dimensions[0].elements if item.element != SLOW_INSTANCE]
    assert all(item.observed_kpi == pytest.approx(item.baseline_kpi) for item in others)
    headline = result.headline("Latency p99", "ms")
    assert headline.startswith(f"100 % of the latency p99 increase is instance={SLOW_INSTANCE} (")


@pytest.mark.slow
def test_short_chunks_give_the_same_breakdown(server: Server) -> None:
    whole = fetch(server, "error_rate")
    chunked = fetch(server, "error_rate", max_points_per_query=7, max_concurrent_queries=1)
    pd.testing.assert_frame_equal(whole, chunked, rtol=1e-12)


@pytest.mark.slow
def test_a_rejected_breakdown_query_names_the_breakdown(server: Server) -> None:
    broken = BreakdownQuery(numerator="sum by ({by}) (rate(http_requests_total[1m]")
    with pytest.raises(TarsUserError) as raised:
        fetch(server, "throughput", broken)
    assert raised.value.where == "kpis[throughput].breakdown"
    assert "breakdown query of KPI 'throughput'" in str(raised.value)


@pytest.mark.slow
def test_prometheus_and_the_snapshot_give_the_same_breakdown(
    server: Server, tmp_path: Path
) -> None:
    """The breakdown files hold, per timestamp, what each `sum by` gives: read back, they
    average to what the server's range queries average to."""
    write_breakdown_files(tmp_path, server.week)
    from_files = snapshot_breakdown(
        tmp_path,
        service=SERVICE,
        kpi="error_rate",
        baseline=server.week.baseline,
        observed=server.week.observed,
    )
    from_server = fetch(server, "error_rate")
    key = ["dimension", "element"]
    merged = from_server.merge(from_files, on=key, how="outer", suffixes=("", "_file"))
    assert len(merged) == len(from_server) == len(from_files)
    for column in BREAKDOWN_COLUMNS[2:]:
        ours = merged[column].fillna(0.0).to_numpy()
        theirs = merged[f"{column}_file"].fillna(0.0).to_numpy()
        np.testing.assert_allclose(ours, theirs, rtol=REL_TOLERANCE)


def write_breakdown_files(release_dir: Path, week: Week) -> None:
    """error_rate rows by uri, code and instance at every minute, split over two files."""
    rows = []
    for k, degraded in week.minutes():
        ts = pd.Timestamp(week.stamp(k), unit="s", tz="UTC")
        cells = {
            (uri, instance): Week.cell(uri, instance, degraded)
            for uri, instance in itertools.product(URIS, INSTANCES)
        }
        for dimension, position in (("uri", 0), ("instance", 1)):
            values = {key[position] for key in cells}
            for value in values:
                mine = [cell for key, cell in cells.items() if key[position] == value]
                errors = sum(cell["500"] + cell["503"] for cell in mine) / STEP
                requests = sum(cell["requests"] for cell in mine) / STEP
                rows.append((SERVICE, "error_rate", ts, dimension, value, errors, requests))
        for code in ("200", "500", "503"):
            count = sum(cell[code] for cell in cells.values()) / STEP
            if count > 0:  # a code with no requests has no series, as in Prometheus
                errors = count if code != "200" else None
                rows.append((SERVICE, "error_rate", ts, "code", code, errors, count))
    frame = pd.DataFrame(
        rows, columns=["service", "kpi", "ts", "dimension", "element", "numerator", "denominator"]
    )
    folder = release_dir / BREAKDOWN_DIR
    folder.mkdir(parents=True)
    half = len(frame) // 2
    to_parquet(frame.iloc[:half], folder / "part-1.parquet")
    to_parquet(frame.iloc[half:], folder / "part-2.parquet")


def to_parquet(frame: pd.DataFrame, path: Path) -> None:
    """The frame as a Parquet file, written by DuckDB (pandas would need pyarrow)."""
    with duckdb.connect() as conn:
        conn.register("frame", frame)
        conn.execute(f"COPY frame TO '{path}' (FORMAT parquet)")


# --- snapshot files, without a server ----------------------------------------------------------

T0 = dt.datetime(2026, 3, 3, 5, 0, tzinfo=dt.UTC)
BASELINE = (T0, T0 + dt.timedelta(minutes=3))
OBSERVED = (T0 + dt.timedelta(minutes=3), T0 + dt.timedelta(minutes=6))


def write_rows(release_dir: Path, rows: list[tuple], name: str = "b.parquet", **columns) -> Path:
    frame = pd.DataFrame(
        rows,
        columns=["service", "kpi", "minute", "dimension", "element", "numerator", "denominator"],
    )
    frame.insert(2, "ts", [T0 + dt.timedelta(minutes=m) for m in frame.pop("minute")])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for column, value in columns.items():
        if value is None:
            frame = frame.drop(columns=[column])
        else:
            frame[column] = value
    folder = release_dir / BREAKDOWN_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    to_parquet(frame, path)
    return path


def read(release_dir: Path, kpi: str = "error_rate") -> pd.DataFrame:
    return snapshot_breakdown(
        release_dir, service=SERVICE, kpi=kpi, baseline=BASELINE, observed=OBSERVED
    )


def test_snapshot_averages_over_the_windows_timestamps(tmp_path: Path) -> None:
    rows = [
        # /a at every minute; /b only at minute 1 of the baseline (absent = 0 elsewhere).
        *[(SERVICE, "error_rate", m, "uri", "/a", 1.0, 100.0) for m in range(6)],
        (SERVICE, "error_rate", 1, "uri", "/b", 6.0, 30.0),
        (SERVICE, "error_rate", 4, "uri", "/b", float("nan"), 30.0),  # a gap: dropped
        (SERVICE, "error_rate", 7, "uri", "/b", 99.0, 99.0),  # after both windows
        ("search", "error_rate", 1, "uri", "/a", 50.0, 50.0),  # another service
        (SERVICE, "latency_p99", 1, "uri", "/a", 50.0, 50.0),  # another KPI
    ]
    write_rows(tmp_path, rows)
    frame = read(tmp_path).set_index("element")
    assert list(frame.columns) == list(BREAKDOWN_COLUMNS[:1] + BREAKDOWN_COLUMNS[2:])
    assert frame.loc["/a", "baseline_num"] == pytest.approx(1.0)
    assert frame.loc["/b", "baseline_num"] == pytest.approx(6.0 / 3)  # one of three minutes
    assert frame.loc["/b", "baseline_den"] == pytest.approx(30.0 / 3)
    assert np.isnan(frame.loc["/b", "observed_num"])  # its only finite value was NaN
    assert frame.loc["/b", "observed_den"] == pytest.approx(30.0 / 3)
    result = rank_breakdown(read(tmp_path), default_breakdowns()["error_rate"])
    assert result is not None and result.direction == "decrease"
    assert result.leader.element == "/b"  # its errors went away


def test_an_additive_snapshot_needs_no_denominator(tmp_path: Path) -> None:
    rows = [
        *[(SERVICE, "throughput", m, "uri", "/a", 10.0, None) for m in range(6)],
        *[(SERVICE, "throughput", m, "uri", "/b", 10.0 if m < 3 else 40.0, None) for m in range(6)],
    ]
    write_rows(tmp_path, rows, denominator=None)
    frame = read(tmp_path, "throughput")
    assert frame["baseline_den"].isna().all()
    result = rank_breakdown(frame, default_breakdowns()["throughput"])
    assert result is not None and result.leader.label == "uri=/b"
    assert result.leader.share_pct == pytest.approx(100.0)


def test_no_breakdown_folder_is_an_empty_breakdown(tmp_path: Path) -> None:
    frame = read(tmp_path)
    assert frame.empty and list(frame.columns) == list(BREAKDOWN_COLUMNS)
    assert rank_breakdown(frame, default_breakdowns()["error_rate"]) is None


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"element": None}, "no column"),
        ({"numerator": "many"}, "not a number"),
        ({"ts": pd.Timestamp("2026-03-03 05:00")}, "without a time zone"),
    ],
)
def test_bad_snapshot_files_are_refused_naming_the_file(
    tmp_path: Path, columns: dict, message: str
) -> None:
    path = write_rows(tmp_path, [(SERVICE, "error_rate", 0, "uri", "/a", 1.0, 2.0)], **columns)
    with pytest.raises(TarsUserError, match=message) as raised:
        read(tmp_path)
    assert raised.value.where == str(path)


def test_a_truncated_file_and_duplicate_rows_are_refused(tmp_path: Path) -> None:
    row = (SERVICE, "error_rate", 0, "uri", "/a", 1.0, 2.0)
    write_rows(tmp_path, [row, row])
    with pytest.raises(TarsUserError, match="2 rows for checkout / error_rate uri=/a"):
        read(tmp_path)
    broken = tmp_path / "other"
    (broken / BREAKDOWN_DIR).mkdir(parents=True)
    (broken / BREAKDOWN_DIR / "cut.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(TarsUserError, match=r"cannot read cut\.parquet"):
        read(broken)


# --- queries ------------------------------------------------------------------------------------


def test_every_default_kpi_has_a_breakdown_and_the_placeholders_are_filled() -> None:
    service = 'we"ird{by}'
    for kpi in default_kpis():
        query = breakdown_query_for(kpi)
        assert query is not None, kpi.name
        rendered = render_breakdown(
            query.numerator, by="uri", service=service, service_label="app", rate_window="5m"
        )
        assert "sum by (uri)" in rendered or "count by (uri)" in rendered
        assert 'app="we\\"ird{by}"' in rendered  # escaped; the {by} inside it is text
        assert "{" + "service" not in rendered.replace('app="', "")
    p99 = default_breakdowns()["latency_p99"]
    assert p99.measure == "mean latency" and "histogram_quantile(0.99, sum by (le, {by})" in (
        p99.slice_query or ""
    )
    with pytest.raises(ValueError, match="label name"):
        render_breakdown(
            "sum by ({by}) (x)",
            by="uri) or vector(1",
            service="s",
            service_label="a",
            rate_window="1m",
        )


def test_a_redefined_kpi_gets_its_own_breakdown_or_none() -> None:
    custom = KPIS["error_rate"].model_copy(update={"query": "sum(my_errors) / sum(my_requests)"})
    assert breakdown_query_for(custom) is None  # not over http_requests_total any more
    configured = custom.model_copy(
        update={
            "breakdown": KpiBreakdown(
                numerator="sum by ({by}) (my_errors)",
                denominator="sum by ({by}) (my_requests)",
                scale=100,
                labels=("endpoint",),
            )
        }
    )
    query = breakdown_query_for(configured)
    assert query == BreakdownQuery(
        "sum by ({by}) (my_errors)", "sum by ({by}) (my_requests)", 100.0, ("endpoint",)
    )
    no_by = configured.model_copy(
        update={"breakdown": KpiBreakdown(numerator="sum(my_errors)", labels=("endpoint",))}
    )
    with pytest.raises(TarsUserError, match=r"no \{by\}") as raised:
        breakdown_query_for(no_by)
    assert raised.value.where == "kpis[error_rate].breakdown"
