"""Annotation sources end to end: a real Prometheus, and an emulator of GitHub's API.

**Prometheus.** A small OpenMetrics file is backfilled with promtool into a throw-away
server started like the session one (`conftest.serving`): three deployments whose
`kube_deployment_status_observed_generation` steps at known minutes (one aligned with
the step, one between steps, one deployment appearing mid-window, one NaN scrape), and
`ALERTS` series (a page that fires twice, a pending state, an alert firing since before
the window). The annotations' times are asserted to the step: the first evaluation at or
after the sample that carried the change, computed here independently.

**GitHub.** There is no GitHub offline, so `GitHubEmulator` below is an emulator of the
documented REST endpoints `GET /repos/{owner}/{repo}/deployments` (filter `environment`)
and `GET /repos/{owner}/{repo}/releases`: newest first, paginated with `page`/`per_page`
and a `Link: rel="next"` header (pages of 2 here, so pagination is exercised), and a 401
`Bad credentials` for a wrong token, whose body echoes the header it got, as a careless
proxy might. It runs on loopback in the style of `notify/server.py`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pandas as pd
import pytest

from tars_pipeline.config import PrometheusSourceConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.annotations import annotations_before
from tars_pipeline.notify.http import HttpClient
from tars_pipeline.sources.annotations import (
    annotations_from_github,
    annotations_from_prometheus,
    series_events,
)
from tars_pipeline.sources.prometheus import PrometheusClient
from tars_pipeline_tests.prometheus.conftest import (
    assert_blocks_not_in_future,
    assert_seconds_before_now,
    backfill,
    require_binaries,
    serving,
)

SCRAPE_SECONDS = 15
WHERE = "annotations.prometheus[0]"


# --- the Prometheus fixture ---------------------------------------------------------------


@dataclass(frozen=True)
class Week:
    """What the backfilled server holds: its URL and the window's first minute (UTC)."""

    url: str
    t0: dt.datetime

    def at(self, minutes: float) -> dt.datetime:
        return self.t0 + dt.timedelta(minutes=minutes)


def _gauge_lines(name: str, labels: str, values: dict[int, float]) -> list[str]:
    return [
        f"{name}{{{labels}}} {'NaN' if math.isnan(v) else repr(v)} {second}\n"
        for second, v in sorted(values.items())
    ]


def _steps(
    t0_s: int, first_min: float, last_min: float, levels: list[tuple[float, float]]
) -> dict[int, float]:
    """A sample every 15 s from first_min to last_min; `levels` are (from minute, value)."""
    samples = {}
    second = t0_s + int(first_min * 60)
    while second <= t0_s + int(last_min * 60):
        minute = (second - t0_s) / 60
        samples[second] = next(v for start, v in reversed(levels) if minute >= start)
        second += SCRAPE_SECONDS
    return samples


GENERATION = "kube_deployment_status_observed_generation"
CHECKOUT_CHANGES_MIN = (20.0, 47.5)  # 20:00 on a step; 47:30 between steps
SEARCH_CHANGE_MIN = 33.25  # 33:15
SEARCH_NAN_MIN = 60.0  # one NaN scrape, then the same generation again
BILLING_APPEARS_MIN = 90.0
PAGE_RUNS_MIN = ((25.0, 39.75), (70.5, None))  # HighLatency firing; the second never ends


def write_changes(path: Path, t0: dt.datetime) -> None:
    t0_s = int(t0.timestamp())
    lines = [f"# TYPE {GENERATION} gauge\n"]
    lines += _gauge_lines(
        GENERATION,
        'deployment="checkout",namespace="shop"',
        _steps(t0_s, -30, 130, [(-30, 3.0), (20.0, 4.0), (47.5, 5.0)]),
    )
    search = _steps(t0_s, -30, 130, [(-30, 7.0), (SEARCH_CHANGE_MIN, 8.0)])
    search[t0_s + int(SEARCH_NAN_MIN * 60)] = math.nan
    lines += _gauge_lines(GENERATION, 'deployment="search",namespace="shop"', search)
    lines += _gauge_lines(
        GENERATION,
        'deployment="billing",namespace="shop"',
        _steps(t0_s, BILLING_APPEARS_MIN, 130, [(BILLING_APPEARS_MIN, 1.0)]),
    )
    lines.append("# TYPE ALERTS gauge\n")
    page = 'alertname="HighLatency",alertstate="firing",service="checkout",severity="page"'
    firing: dict[int, float] = {}
    for start, stop in PAGE_RUNS_MIN:
        firing |= _steps(t0_s, start, stop if stop is not None else 130, [(start, 1.0)])
        if stop is not None:
            # A resolved alert gets a staleness marker; a NaN sample stands in for it here.
            firing[t0_s + int(stop * 60) + SCRAPE_SECONDS] = math.nan
    lines += _gauge_lines("ALERTS", page, firing)
    pending = 'alertname="HighLatency",alertstate="pending",service="checkout",severity="page"'
    lines += _gauge_lines("ALERTS", pending, _steps(t0_s, 23, 24.75, [(23, 1.0)]))
    old = 'alertname="DiskFull",alertstate="firing",service="search"'
    disk = _steps(t0_s, -30, 10, [(-30, 1.0)])
    disk[t0_s + 10 * 60 + SCRAPE_SECONDS] = math.nan
    lines += _gauge_lines("ALERTS", old, disk)
    path.write_text("".join(lines) + "# EOF\n", encoding="utf-8")


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    prometheus, promtool = require_binaries()
    folder = tmp_path_factory.mktemp("prometheus-annotations")
    now = dt.datetime.now(dt.UTC)
    t0 = (now - dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    source = folder / "changes.om"
    write_changes(source, t0)
    assert_seconds_before_now(source, now)
    data_dir = folder / "tsdb"
    data_dir.mkdir()
    backfill(promtool, source, data_dir)
    assert_blocks_not_in_future(data_dir, now)
    with serving(prometheus, data_dir, folder) as (url, _port, _pid):
        yield Week(url=url, t0=t0)


def client_for(url: str, **settings: Any) -> PrometheusClient:
    config = PrometheusSourceConfig(
        url=url, retries=1, retry_backoff_seconds=0.01, timeout_seconds=10.0, **settings
    )
    return PrometheusClient(config)


def first_evaluation(week: Week, minute: float, step_seconds: int) -> pd.Timestamp:
    """The first evaluation t0 + k·step at or after a sample at `minute` (by integers)."""
    offset = round(minute * 60)
    k = -(-offset // step_seconds)  # ceiling division
    return pd.Timestamp(week.t0 + dt.timedelta(seconds=k * step_seconds))


def generations(week: Week, *, step_seconds: int = 60, **settings: Any):
    with client_for(week.url, **settings) as client:
        return annotations_from_prometheus(
            client,
            query=GENERATION,
            mode="changes",
            kind="deploy",
            title="{deployment} generation {value} (was {previous})",
            service_label="deployment",
            start=week.at(0),
            end=week.at(120),
            step_seconds=step_seconds,
            where=WHERE,
        )


# --- Prometheus: changes ------------------------------------------------------------------


@pytest.mark.parametrize("step_seconds", [60, 300])
def test_each_generation_change_is_one_deploy_at_the_step_that_shows_it(
    week: Week, step_seconds: int
) -> None:
    found = generations(week, step_seconds=step_seconds)

    expected = sorted(
        [
            (first_evaluation(week, CHECKOUT_CHANGES_MIN[0], step_seconds), "checkout", "4", "3"),
            (first_evaluation(week, CHECKOUT_CHANGES_MIN[1], step_seconds), "checkout", "5", "4"),
            (first_evaluation(week, SEARCH_CHANGE_MIN, step_seconds), "search", "8", "7"),
            # billing appears mid-window: a new deployment, no previous generation
            (first_evaluation(week, BILLING_APPEARS_MIN, step_seconds), "billing", "1", "none"),
        ]
    )
    assert [(a.ts, a.service, a.title) for a in found] == [
        (ts, service, f"{service} generation {new} (was {old})")
        for ts, service, new, old in expected
    ]
    assert {(a.kind, a.source, a.end) for a in found} == {("deploy", "prometheus", None)}
    # The NaN scrape of search at minute 60 made no change in or out.
    assert [a.ts for a in found if a.service == "search"] == [
        first_evaluation(week, SEARCH_CHANGE_MIN, step_seconds)
    ]


def test_a_long_window_queried_in_chunks_gives_the_same_annotations(week: Week) -> None:
    assert generations(week, max_points_per_query=7) == generations(week)


def test_the_deploy_is_named_on_a_finding_that_began_after_it(week: Week) -> None:
    """checkout's generation 4 appears at minute 20: a latency step at minute 23 names it,
    one at minute 19 does not; search's deploy at 34:00 is not checkout's."""
    found = generations(week)
    later = annotations_before(found, pd.Timestamp(week.at(23)), service="checkout")
    assert [m.sentence for m in later] == ["began 3 min after deploy checkout generation 4 (was 3)"]
    assert annotations_before(found, pd.Timestamp(week.at(19)), service="checkout") == []
    search = annotations_before(found, pd.Timestamp(week.at(35)), service="search")
    assert [m.annotation.title for m in search] == ["search generation 8 (was 7)"]


# --- Prometheus: firing -------------------------------------------------------------------


def test_each_firing_run_of_an_alert_is_one_annotation_with_its_end(week: Week) -> None:
    with client_for(week.url) as client:
        found = annotations_from_prometheus(
            client,
            query='ALERTS{alertstate="firing"}',
            mode="firing",
            kind="alert",
            title="{alertname} ({severity})",
            service_label="service",
            start=week.at(0),
            end=week.at(120),
            step_seconds=60,
            where=WHERE,
        )
    (first_start, first_stop), (second_start, _) = PAGE_RUNS_MIN
    # The first run's last firing sample is at 39:45; the NaN at 40:00 ends it, so the
    # last evaluation still firing is 39:00. The second run is firing at the window's end.
    assert [(a.ts, a.end, a.title, a.service) for a in found] == [
        (
            first_evaluation(week, first_start, 60),
            pd.Timestamp(week.at(math.floor(first_stop))),
            "HighLatency (page)",
            "checkout",
        ),
        (first_evaluation(week, second_start, 60), None, "HighLatency (page)", "checkout"),
    ]  # DiskFull fired before the window began; the pending state is not selected


def test_a_changes_query_in_firing_mode_dates_the_rollouts_as_changes_mode_does(
    week: Week,
) -> None:
    """`changes(x[2m]) > 0` is present for two evaluations after each change; each run is
    one rollout, at the same evaluation as changes mode gives."""
    with client_for(week.url) as client:
        found = annotations_from_prometheus(
            client,
            query=f'changes({GENERATION}{{deployment="checkout"}}[2m]) > 0',
            mode="firing",
            kind="deploy",
            title="{deployment} rolled out",
            service_label="deployment",
            start=week.at(0),
            end=week.at(120),
            step_seconds=60,
            where=WHERE,
        )
    expected = [
        a.ts for a in generations(week) if a.service == "checkout"
    ]  # the changes-mode times
    assert [a.ts for a in found] == expected
    assert [a.end - a.ts for a in found] == [pd.Timedelta(minutes=1)] * 2
    assert {a.title for a in found} == {"checkout rolled out"}


# --- Prometheus: mistakes -----------------------------------------------------------------


def test_a_broken_query_names_the_annotation_setting(week: Week) -> None:
    with client_for(week.url) as client, pytest.raises(TarsUserError) as raised:
        annotations_from_prometheus(
            client,
            query=f"{GENERATION}{{deployment=",
            mode="changes",
            kind="deploy",
            title="{deployment}",
            service_label="deployment",
            start=week.at(0),
            end=week.at(120),
            step_seconds=60,
            where=WHERE,
        )
    assert raised.value.where == f"{WHERE}.query"
    assert "HTTP 400" in str(raised.value) and "kpis[" not in str(raised.value)


def test_a_title_naming_a_label_no_series_has_lists_the_labels(week: Week) -> None:
    with client_for(week.url) as client, pytest.raises(TarsUserError) as raised:
        annotations_from_prometheus(
            client,
            query=GENERATION,
            mode="changes",
            kind="deploy",
            title="{deploymnet} generation {value}",
            service_label="deployment",
            start=week.at(0),
            end=week.at(120),
            step_seconds=60,
            where=WHERE,
        )
    assert raised.value.where == f"{WHERE}.title"
    assert "deploymnet" in str(raised.value) and "deployment, namespace" in str(raised.value)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"mode": "edges"}, "mode"),
        ({"kind": "rollout"}, "kind"),
        ({"title": "{deployment"}, "title"),
        ({"title": "{0.__class__}"}, "title"),
        ({"service_label": "deploy-ment"}, "service_label"),
        ({"step_seconds": 0}, "step_seconds"),
        ({"query": " "}, "query"),
    ],
)
def test_bad_settings_are_refused_before_any_query(arguments: dict, field: str) -> None:
    settings = dict(
        query=GENERATION,
        mode="changes",
        kind="deploy",
        title="{deployment}",
        service_label="deployment",
        start=dt.datetime(2026, 3, 5, tzinfo=dt.UTC),
        end=dt.datetime(2026, 3, 6, tzinfo=dt.UTC),
        step_seconds=60,
    )
    # A closed port: any query would fail differently, so nothing is sent.
    client = client_for("http://127.0.0.1:9")
    with pytest.raises(TarsUserError) as raised:
        annotations_from_prometheus(client, **{**settings, **arguments}, where=WHERE)
    assert raised.value.where == f"{WHERE}.{field}"


def test_series_events_on_a_hand_made_series() -> None:
    """The pure step: minute stamps 0..9 (ms), a gap at 4-5, a NaN at 7."""
    stamps = [m * 60_000 for m in (0, 1, 2, 3, 6, 7, 8, 9)]
    values = [1.0, 1.0, 2.0, 2.0, 2.0, float("nan"), 3.0, 0.0]
    changes = series_events(
        stamps, values, mode="changes", first_ms=0, last_ms=540_000, step_ms=60_000
    )
    assert [(e.ts_ms // 60_000, e.value, e.previous) for e in changes] == [
        (2, 2.0, 1.0),
        (8, 3.0, 2.0),
        (9, 0.0, 3.0),
    ]
    firing = series_events(
        stamps, values, mode="firing", first_ms=0, last_ms=540_000, step_ms=60_000
    )
    # Runs of finite non-zero presence: 0-3 (began before: left out), 6, 8.
    assert [(e.ts_ms // 60_000, e.end_ms // 60_000) for e in firing] == [(6, 6), (8, 8)]


# --- the GitHub emulator ------------------------------------------------------------------

TOKEN = "ghp_annotations_token_0123456789"
REPO = "acme/shop"


@dataclass
class GitHubEmulator:
    """GET deployments and releases of one repository, as the REST API documents them."""

    token: str = TOKEN
    page_size: int = 2
    deployments: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    next_link_host: str | None = None  # to play a Link header pointing elsewhere

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/api"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body, headers = emulator._answer(self)
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(handler.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        headers = {key.lower(): value for key, value in handler.headers.items()}
        with self._lock:
            self.requests.append((parts.path, query, headers))
        authorization = headers.get("authorization", "")
        if authorization != f"Bearer {self.token}":
            # Echoes what it got, as a careless proxy might: the client must scrub it.
            return 401, {"message": "Bad credentials", "got": authorization}, {}
        if parts.path == f"/api/repos/{REPO}/deployments":
            items = [
                d
                for d in self.deployments
                if "environment" not in query or d["environment"] == query["environment"]
            ]
        elif parts.path == f"/api/repos/{REPO}/releases":
            items = self.releases
        else:
            return 404, {"message": "Not Found"}, {}
        items = sorted(items, key=lambda item: item["created_at"], reverse=True)
        size = min(int(query.get("per_page", 30)), self.page_size)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * size : page * size]
        links = {}
        if page * size < len(items):
            base = self.next_link_host or self.url.removesuffix("/api")
            after = urlencode({**query, "page": page + 1})
            links["Link"] = f'<{base}{parts.path}?{after}>; rel="next"'
        return 200, chunk, links


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubEmulator]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    emulator = GitHubEmulator()
    yield emulator
    emulator.stop()


@pytest.fixture
def http() -> HttpClient:
    return HttpClient(timeout_seconds=5.0, retries=1, backoff_seconds=0.0, sleep=lambda s: None)


WEEK_START = pd.Timestamp("2026-03-03T05:00:00Z")
WEEK_END = pd.Timestamp("2026-03-11T05:00:00Z")


def deployment(number: int, created_at: str, environment: str = "production", **extra: Any):
    return {
        "id": number,
        "sha": f"{number:x}4f2a9c0d1e2b3a4f5e6d7c8b9a0f1e2d3c4b5a6",
        "ref": "main",
        "environment": environment,
        "description": f"deploy #{number}",
        "created_at": created_at,
        **extra,
    }


def release(tag: str, created_at: str, published_at: str | None, **extra: Any):
    return {
        "id": abs(hash(tag)) % 10_000,
        "tag_name": tag,
        "name": extra.pop("name", tag),
        "draft": published_at is None,
        "prerelease": extra.pop("prerelease", False),
        "created_at": created_at,
        "published_at": published_at,
        "html_url": f"https://github.example/{REPO}/releases/tag/{tag}",
        **extra,
    }


def read_github(github: GitHubEmulator, http: HttpClient, **options: Any):
    arguments = dict(
        api_url=github.url,
        repo=REPO,
        token=TOKEN,
        since=WEEK_START,
        until=WEEK_END,
        service="checkout",
    )
    return annotations_from_github(http, **{**arguments, **options})


def test_deployments_in_the_window_across_pages_and_stopping_at_older_ones(github, http):
    github.deployments = [
        deployment(1, "2026-02-20T10:00:00Z"),  # before the week
        deployment(2, "2026-02-27T10:00:00Z"),  # before the week
        deployment(3, "2026-03-01T10:00:00Z"),  # before the week
        deployment(4, "2026-03-03T05:00:00Z"),  # at `since`: in
        deployment(5, "2026-03-05T14:29:00Z"),
        deployment(6, "2026-03-05T14:31:00Z", environment="staging"),
        deployment(7, "2026-03-08T09:15:00Z"),
        deployment(8, "2026-03-12T08:00:00Z"),  # after the week
    ]
    found = read_github(github, http, include=("deployments",), environment="production")

    assert [(a.ts, a.title, a.detail) for a in found] == [
        (pd.Timestamp("2026-03-03T05:00:00Z"), "main@44f2a9c to production", "deploy #4"),
        (pd.Timestamp("2026-03-05T14:29:00Z"), "main@54f2a9c to production", "deploy #5"),
        (pd.Timestamp("2026-03-08T09:15:00Z"), "main@74f2a9c to production", "deploy #7"),
    ]
    assert {(a.kind, a.source, a.service) for a in found} == {("deploy", "github", "checkout")}
    # Production has 7 deployments (GitHub filters out staging's), newest first, 2 a page:
    # [#8, #7], [#5, #4], [#3, #2] — the third is wholly before the week, so [#1] is not read.
    sent = [query for _, query, _ in github.requests]
    assert [q.get("page", "1") for q in sent] == ["1", "2", "3"]
    assert {(q["environment"], q["per_page"]) for q in sent} == {("production", "100")}
    assert all(h["authorization"] == f"Bearer {TOKEN}" for _, _, h in github.requests)


def test_paging_stops_once_a_whole_page_is_older_than_the_window(github, http):
    github.deployments = [deployment(5, "2026-03-05T14:29:00Z")] + [
        deployment(n, f"2026-02-{n:02d}T10:00:00Z") for n in range(1, 21)
    ]
    found = read_github(github, http, include=("deployments",))
    assert [a.detail for a in found] == ["deploy #5"]
    assert len(github.requests) == 2  # of 11 pages: the second is all February


def test_releases_at_their_publication_without_drafts(github, http):
    github.releases = [
        release("v1.0.1", "2026-02-24T12:00:00Z", "2026-02-24T12:05:00Z"),
        release("v1.0.2", "2026-03-02T16:00:00Z", "2026-03-03T14:00:00Z", name="Spring"),
        release("v1.0.3-rc1", "2026-03-06T10:00:00Z", "2026-03-06T10:30:00Z", prerelease=True),
        release("v1.1.0", "2026-03-09T10:00:00Z", None),  # a draft
    ]
    found = read_github(github, http, include=("releases",))
    assert [(a.ts, a.title, a.kind, a.detail) for a in found] == [
        (pd.Timestamp("2026-03-03T14:00:00Z"), "v1.0.2 (Spring)", "release", None),
        (pd.Timestamp("2026-03-06T10:30:00Z"), "v1.0.3-rc1", "release", "pre-release"),
    ]
    assert found[0].url == f"https://github.example/{REPO}/releases/tag/v1.0.2"


def test_both_feeds_merge_in_time_order_and_name_the_deploy_on_a_finding(github, http):
    github.deployments = [deployment(5, "2026-03-05T14:29:00Z")]
    github.releases = [release("v1.0.2", "2026-03-03T13:00:00Z", "2026-03-03T14:00:00Z")]
    found = read_github(github, http)
    assert [a.kind for a in found] == ["release", "deploy"]
    matches = annotations_before(found, pd.Timestamp("2026-03-05T14:32:00Z"), service="checkout")
    assert [m.sentence for m in matches] == ["began 3 min after deploy main@54f2a9c to production"]


def test_a_refused_token_is_a_clear_error_that_never_shows_it(github, http):
    wrong = "ghp_wrong_token_but_still_secret_42"
    with pytest.raises(TarsUserError) as raised:
        read_github(github, http, token=wrong)
    text = str(raised.value)
    assert "HTTP 401" in text and "Bad credentials" in text
    assert wrong not in text and "***" in text  # the echoed header was scrubbed
    assert raised.value.where == "annotations.github"
    assert "token" in (raised.value.remedy or "")
    assert len(github.requests) == 1  # a 401 is not retried


def test_a_token_echoed_into_a_release_name_is_scrubbed(github, http):
    github.releases = [
        release("v1.0.2", "2026-03-03T13:00:00Z", "2026-03-03T14:00:00Z", name=f"hi {TOKEN}")
    ]
    (found,) = read_github(github, http, include=("releases",))
    assert TOKEN not in json.dumps(found.as_record())
    assert found.title == "v1.0.2 (hi ***)"


def test_a_next_link_to_another_host_is_not_followed_with_the_token(github, http):
    github.deployments = [deployment(n, f"2026-03-0{n}T10:00:00Z") for n in range(3, 8)]
    github.next_link_host = "http://127.0.0.2:1"
    with pytest.raises(TarsUserError, match="another host or loops"):
        read_github(github, http, include=("deployments",))
    assert len(github.requests) == 1


def test_an_unknown_repository_is_a_404_with_what_to_check(github, http):
    with pytest.raises(TarsUserError, match="HTTP 404") as raised:
        read_github(github, http, repo="acme/nope")
    assert "acme/nope" in (raised.value.remedy or "")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"include": ("issues",)}, "include"),
        ({"repo": "shop"}, "repository"),
        ({"api_url": "ftp://github.example"}, "api_url"),
        ({"api_url": "https://user:pw@github.example/api"}, "api_url"),
    ],
)
def test_bad_github_settings_send_nothing(github, http, options, field):
    with pytest.raises(TarsUserError) as raised:
        read_github(github, http, **options)
    assert raised.value.where == f"annotations.github.{field}"
    assert github.requests == []
