"""Faults only a gateway in front of Prometheus produces: auth, 429, 5xx that recover, stalls.

The server here is a FAKE (fake_server.py says why): a real Prometheus has no auth, no rate
limit, and cannot be told to fail twice and then recover. Requests still go over real
sockets through the real client, so retries, backoff, timeouts and headers are real.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Iterator

import pytest

from tars_pipeline.config import PrometheusSourceConfig, Release, default_kpis
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources.prometheus import PrometheusSource
from tars_pipeline_tests.prometheus.fake_server import Answer, FakePrometheus, prometheus_error

RELEASE = Release(name="v9", ga_date=dt.date(2026, 3, 3), timezone="UTC", services=("api-gateway",))
START = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
END = START + dt.timedelta(hours=1)
THROUGHPUT = [kpi for kpi in default_kpis() if kpi.name == "throughput"]


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    server = FakePrometheus().start()
    yield server
    server.stop()


def _fetch(fake: FakePrometheus, **settings: object):
    config = PrometheusSourceConfig(
        url=fake.url,
        **{"retries": 2, "retry_backoff_seconds": 0.01, "timeout_seconds": 5.0, **settings},
    )
    return PrometheusSource(config).fetch_day(RELEASE, START, END, THROUGHPUT, 60)


def _queries(fake: FakePrometheus) -> list:
    return [seen for seen in fake.seen if seen.path == "/api/v1/query_range"]


def test_5xx_then_recovery_is_retried_and_the_day_is_complete(fake: FakePrometheus) -> None:
    fake.script(
        Answer(503, prometheus_error("unavailable", "ingester ring not ready")),
        Answer(502, "bad gateway"),
    )
    fetch = _fetch(fake)
    assert len(_queries(fake)) == 3
    assert len(fetch.samples) == 60 and not fetch.missing and not fetch.incomplete


def test_5xx_that_does_not_recover_names_the_kpi_the_status_and_the_attempts(
    fake: FakePrometheus,
) -> None:
    fake.script(*[Answer(500, prometheus_error("internal", "chunk read failed"))] * 3)
    with pytest.raises(TarsUserError) as failure:
        _fetch(fake)
    message = str(failure.value)
    assert "KPI 'throughput'" in message and "HTTP 500" in message
    assert "chunk read failed" in message and "after 3 attempts" in message
    assert "source.retries" in message
    assert len(_queries(fake)) == 3


def test_429_waits_for_retry_after_then_succeeds(fake: FakePrometheus) -> None:
    fake.script(Answer(429, "too many requests", headers={"Retry-After": "1"}))
    fetch = _fetch(fake)
    first, second = _queries(fake)
    assert second.at - first.at >= 0.9  # honoured Retry-After, not the 0.01 s backoff
    assert len(fetch.samples) == 60


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_say_which_credentials_were_sent(
    fake: FakePrometheus, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.script(Answer(status, "Unauthorized" if status == 401 else "Forbidden"))
    with pytest.raises(TarsUserError) as failure:
        _fetch(fake, bearer_token_env="TARS_PROMETHEUS_TOKEN")
    message = str(failure.value)
    assert f"HTTP {status}" in message
    assert "no credentials were sent ($TARS_PROMETHEUS_TOKEN" in message
    assert "source.bearer_token_env" in message
    assert len(_queries(fake)) == 1  # an auth failure is not retried


def test_a_bearer_token_is_sent_and_never_shown(
    fake: FakePrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_PROM_TOKEN", "s3cret-token")
    fake.script(Answer(403, "Forbidden"))
    with pytest.raises(TarsUserError) as failure:
        _fetch(fake, bearer_token_env="MY_PROM_TOKEN", headers={"X-Scope-OrgID": "team-a"})
    sent = _queries(fake)[0].headers
    assert sent["Authorization"] == "Bearer s3cret-token"
    assert sent["X-Scope-OrgID"] == "team-a"
    assert "a bearer token from $MY_PROM_TOKEN was sent" in str(failure.value)
    assert "s3cret-token" not in str(failure.value)


def test_basic_auth_and_tenant_header_reach_the_server(
    fake: FakePrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARS_PROMETHEUS_USERNAME", "tars")  # the config's default variables
    monkeypatch.setenv("TARS_PROMETHEUS_PASSWORD", "pw")
    fetch = _fetch(fake, headers={"X-Scope-OrgID": "tenant-1"})
    sent = _queries(fake)[0].headers
    assert sent["Authorization"] == "Basic " + base64.b64encode(b"tars:pw").decode()
    assert sent["X-Scope-OrgID"] == "tenant-1"
    assert len(fetch.samples) == 60


def test_a_stalled_server_times_out_with_the_setting_named(fake: FakePrometheus) -> None:
    fake.script(*[Answer(200, {}, delay_seconds=1.5)] * 2)
    began = time.monotonic()
    with pytest.raises(TarsUserError) as failure:
        _fetch(fake, timeout_seconds=0.3, retries=1)
    message = str(failure.value)
    assert "no answer from" in message and "within 0.3 s (2 attempts)" in message
    assert "source.timeout_seconds" in message and "'throughput'" in message
    assert time.monotonic() - began < 3.0


def test_a_timeout_then_an_answer_is_retried(fake: FakePrometheus) -> None:
    fake.script(Answer(200, {}, delay_seconds=1.0))
    fetch = _fetch(fake, timeout_seconds=0.3, retries=1)
    assert len(fetch.samples) == 60


def test_a_url_without_the_api_says_so(fake: FakePrometheus) -> None:
    fake.script(Answer(404, "404 page not found\n"))
    with pytest.raises(TarsUserError, match=r"no Prometheus query API at .* \(HTTP 404"):
        _fetch(fake)


def test_a_server_that_is_not_prometheus_says_so(fake: FakePrometheus) -> None:
    fake.script(Answer(200, "<html>Grafana login</html>"))
    with pytest.raises(TarsUserError, match="not with Prometheus API JSON"):
        _fetch(fake)


def test_a_kpi_with_one_series_per_instance_asks_for_aggregation(fake: FakePrometheus) -> None:
    series = [
        {"metric": {"instance": f"pod-{i}"}, "values": [[START.timestamp(), "1"]]} for i in (1, 2)
    ]
    fake.script(
        Answer(200, {"status": "success", "data": {"resultType": "matrix", "result": series}})
    )
    with pytest.raises(TarsUserError) as failure:
        _fetch(fake)
    assert "returned 2 series for service 'api-gateway'" in str(failure.value)
    assert "kpis[throughput].query" in str(failure.value)


def test_services_are_discovered_when_the_release_lists_none(fake: FakePrometheus) -> None:
    release = RELEASE.model_copy(update={"services": ()})
    fake.script(Answer(200, {"status": "success", "data": ["search", "api-gateway"]}))
    config = PrometheusSourceConfig(url=fake.url, retries=0)
    fetch = PrometheusSource(config).fetch_day(release, START, END, THROUGHPUT, 60)
    label_call = fake.seen[0]
    assert label_call.path == "/api/v1/label/service/values"
    assert label_call.query["match[]"] == "http_requests_total"
    assert sorted({c.service for c in fetch.coverage}) == ["api-gateway", "search"]


MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": [], "pad": "x" * 4096}}


def test_an_answer_broken_off_mid_body_is_fetched_again(fake: FakePrometheus) -> None:
    """A Prometheus restarting mid-response (IncompleteRead): urllib3 has handed over the
    response by then, so TARS retries it itself."""
    fake.script(Answer(200, MATRIX, broken_off=True))
    fetch = _fetch(fake)
    assert len(_queries(fake)) == 2
    assert len(fetch.samples) == 60 and not fetch.missing


def test_answers_that_keep_breaking_off_say_so_after_the_retries(fake: FakePrometheus) -> None:
    fake.script(*[Answer(200, MATRIX, broken_off=True)] * 3)
    with pytest.raises(TarsUserError) as failure:
        _fetch(fake)
    assert "broke off mid-response" in str(failure.value)
    assert "source.retries" in str(failure.value) and "3 attempts" in str(failure.value)
    assert len(_queries(fake)) == 3


@pytest.mark.parametrize("limit", [1, 3])
def test_range_queries_in_flight_are_bounded_by_the_setting(
    fake: FakePrometheus, limit: int
) -> None:
    """Counted where only the server can see it: the requests it was answering at once."""
    # Long answers, so the queries overlap even on a loaded machine (a thread that starts
    # late still finds the others in flight).
    fake.default_delay_seconds = 0.4
    release = RELEASE.model_copy(update={"services": tuple(f"svc-{n}" for n in range(9))})
    config = PrometheusSourceConfig(url=fake.url, retries=0, max_concurrent_queries=limit)
    fetched = PrometheusSource(config).fetch_day(release, START, END, THROUGHPUT, 60)
    assert len(_queries(fake)) == 9 and not fetched.missing
    assert fake.most_in_flight <= limit  # the bound, always
    assert fake.most_in_flight >= min(limit, 2)  # and the concurrency is used
    assert list(fetched.samples["service"].unique()) == sorted(release.services)


def test_a_failing_query_among_concurrent_ones_fails_the_day_naming_it(
    fake: FakePrometheus,
) -> None:
    fake.default_delay_seconds = 0.05
    fake.script(Answer(400, prometheus_error("bad_data", "parse error at char 3")))
    release = RELEASE.model_copy(update={"services": tuple(f"svc-{n}" for n in range(6))})
    config = PrometheusSourceConfig(url=fake.url, retries=0, max_concurrent_queries=4)
    with pytest.raises(TarsUserError, match="parse error at char 3"):
        PrometheusSource(config).fetch_day(release, START, END, THROUGHPUT, 60)
    assert len(_queries(fake)) <= 6


def test_a_proxy_from_the_environment_is_used(
    fake: FakePrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY and NO_PROXY are read once per client, with requests' own rules."""
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    config = PrometheusSourceConfig(url="http://prometheus.invalid:9090", retries=0)
    fetched = PrometheusSource(config).fetch_day(RELEASE, START, END, THROUGHPUT, 60)
    assert not fetched.missing and len(_queries(fake)) == 1


def test_netrc_credentials_are_sent_and_never_quoted(
    fake: FakePrometheus, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login reader password n3trc-s3cret\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    pair = base64.b64encode(b"reader:n3trc-s3cret").decode()
    fake.script(Answer(401, f"unauthorized: got Basic {pair} (n3trc-s3cret)"))
    config = PrometheusSourceConfig(url=fake.url, retries=0)
    with pytest.raises(TarsUserError) as raised:
        PrometheusSource(config).fetch_day(RELEASE, START, END, THROUGHPUT, 60)
    assert fake.seen[-1].headers.get("Authorization") == f"Basic {pair}"
    message = str(raised.value)
    assert "n3trc-s3cret" not in message and pair not in message
    assert "~/.netrc" in message
