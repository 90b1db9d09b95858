"""The POST-with-retries client against a real loopback server: what is retried, how long
it waits, and that no secret reaches an error message."""

from __future__ import annotations

import socket
import time

import pytest

from tars_pipeline.notify.http import HttpClient, HttpError, RetryCancelledError, redact_url
from tars_pipeline_tests.notify.conftest import SLACK_PATH, Sleeps
from tars_pipeline_tests.notify.server import Answer, FakeServer


def post(http: HttpClient, server: FakeServer, path: str = SLACK_PATH) -> None:
    url = server.url + path
    http.request("POST", url, target="Slack webhook", json_body={"text": "hi"}, secrets=[url, path])


def test_a_500_is_retried_and_the_second_attempt_delivers(http, server, sleeps):
    server.script(SLACK_PATH, Answer(500, "boom"), Answer(200, "ok"))
    post(http, server)
    sent = server.requests_to(SLACK_PATH, "POST")
    assert [r.body for r in sent] == [{"text": "hi"}, {"text": "hi"}]
    assert sent[0].headers["content-type"].startswith("application/json")
    assert sleeps == [0.5]


def test_backoff_doubles_and_the_last_failure_is_reported(http, server, sleeps):
    server.script(SLACK_PATH, *[Answer(503, "unavailable")] * 4)
    with pytest.raises(HttpError) as caught:
        post(http, server)
    assert len(server.requests_to(SLACK_PATH)) == 4  # 1 + retries
    assert sleeps == [0.5, 1.0, 2.0]
    assert caught.value.status == 503 and caught.value.attempts == 4
    assert "HTTP 503" in str(caught.value) and "4 attempt(s)" in str(caught.value)


def test_429_waits_as_long_as_retry_after_says(http, server, sleeps):
    server.script(SLACK_PATH, Answer(429, "rate_limited", {"Retry-After": "7"}), Answer(200))
    post(http, server)
    assert sleeps == [7.0]
    assert len(server.requests_to(SLACK_PATH)) == 2


def test_a_retry_after_beyond_the_limit_fails_at_once(http, server, sleeps):
    server.script(SLACK_PATH, Answer(429, "rate_limited", {"Retry-After": "3600"}))
    with pytest.raises(HttpError, match="longer than 120 s"):
        post(http, server)
    assert sleeps == [] and len(server.requests_to(SLACK_PATH)) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_client_errors_are_not_retried(http, server, sleeps, status):
    server.script(SLACK_PATH, Answer(status, "invalid_token"))
    with pytest.raises(HttpError, match="not retried") as caught:
        post(http, server)
    assert caught.value.status == status
    assert len(server.requests_to(SLACK_PATH)) == 1 and sleeps == []


def test_no_error_message_carries_the_secret_url(http, server):
    # The server echoes the URL back, as some proxies do in their error pages.
    echo = f"no such hook {server.url}{SLACK_PATH}"
    server.script(SLACK_PATH, *[Answer(500, echo)] * 4)
    with pytest.raises(HttpError) as caught:
        post(http, server)
    message = str(caught.value)
    assert "XXXXsecretXXXX" not in message and SLACK_PATH not in message
    assert "***" in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_connection_refused_is_retried_then_reported_without_the_url(http, sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SLACK_PATH}"
    with pytest.raises(HttpError, match="connection failed") as caught:
        http.request("POST", url, target="Slack webhook", json_body={}, secrets=[url, SLACK_PATH])
    assert len(sleeps) == 3
    assert "secret" not in str(caught.value)


def test_a_slow_server_times_out_and_is_retried(server):
    sleeps = Sleeps()
    http = HttpClient(timeout_seconds=0.3, retries=1, backoff_seconds=0.0, sleep=sleeps)
    server.script(SLACK_PATH, Answer(200, delay_seconds=1.0), Answer(200))
    post(http, server)
    assert len(server.requests_to(SLACK_PATH)) == 2 and sleeps == [0.0]


def test_redirects_are_not_followed(http, server):
    # urllib would follow with the Authorization header to wherever Location points.
    server.script(SLACK_PATH, Answer(302, "", {"Location": server.url + "/elsewhere"}))
    with pytest.raises(HttpError, match="HTTP 302 \\(a redirect, not followed"):
        post(http, server)
    assert server.requests_to("/elsewhere") == []


def test_github_secondary_rate_limit_403_is_retried(http, server, sleeps):
    limited = Answer(403, {"message": "secondary rate limit"}, {"Retry-After": "2"})
    server.script(SLACK_PATH, limited, Answer(200))
    post(http, server)
    assert sleeps == [2.0]


def test_github_primary_rate_limit_403_waits_for_the_reset(http, server, sleeps):
    exhausted = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 5)}
    server.script(SLACK_PATH, Answer(403, {"message": "API rate limit exceeded"}, exhausted))
    post(http, server)
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 5
    assert len(server.requests_to(SLACK_PATH)) == 2


def test_a_timed_out_post_asks_before_retrying_and_a_landed_one_is_not_resent(server):
    http = HttpClient(timeout_seconds=0.3, retries=2, backoff_seconds=0.0, sleep=Sleeps())
    server.script(SLACK_PATH, Answer(200, delay_seconds=1.0))
    asked = []

    def still_missing() -> bool:
        asked.append(True)
        return False  # it landed after all

    with pytest.raises(RetryCancelledError):
        http.request("POST", server.url + SLACK_PATH, target="T", before_retry=still_missing)
    assert asked == [True] and len(server.requests_to(SLACK_PATH)) == 1


def test_a_rate_limited_retry_does_not_ask_whether_the_request_landed(http, server):
    server.script(SLACK_PATH, Answer(429, "slow down", {"Retry-After": "1"}), Answer(200))
    url = server.url + SLACK_PATH
    http.request("POST", url, target="T", before_retry=lambda: pytest.fail("asked"))
    assert len(server.requests_to(SLACK_PATH)) == 2


def test_redact_url_keeps_host_and_drops_credentials_and_tokens():
    url = "https://user:pw@hooks.slack.com:8443/services/T0/B0/secret?token=abc"
    assert redact_url(url) == "https://hooks.slack.com:8443/…"
    assert redact_url("https://api.github.com/repos/a/b/issues?x=1", keep_path=True) == (
        "https://api.github.com/repos/a/b/issues"
    )


def test_a_malformed_url_fails_without_quoting_it(http):
    with pytest.raises(HttpError) as caught:
        http.request("POST", "hooks.slack.com/services/T0/B0/secret", target="Slack webhook")
    assert "secret" not in str(caught.value)
