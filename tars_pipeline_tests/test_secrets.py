"""No secret in any output, log, event or file: the Prometheus credentials, the Slack and
webhook URLs and the GitHub token, sent to a server that echoes every request back.

The server is a FAKE on loopback, and has to be: a real Prometheus has no authentication and
never quotes a request's headers in its answer, which is exactly what a misconfigured proxy
or gateway in front of one does. Every command runs as its own process, as a user runs it,
so stdout, stderr, the Dagster instance (run storage and event logs), the store and every
report are the real ones, and all of them are scanned byte for byte.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tars_pipeline_tests.conftest import DEMO_RELEASE, write_config

pytestmark = pytest.mark.slow

TOKEN = "tok-7f3a9c-SECRET-BEARER-e41d"
USERNAME = "tars-reader"
PASSWORD = "pw-91b2-SECRET-BASIC-0c7e"
SLACK_PATH = "/services/T0000/B0000/slack-SECRET-PATH-5a9f"
WEBHOOK_PATH = "/hooks/webhook-SECRET-PATH-3e8b"
GITHUB_TOKEN = "ghp_SECRETgithubTOKEN0123456789abcdef"

SECRETS = {
    "bearer token": TOKEN,
    "password": PASSWORD,
    "basic auth": base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode(),
    "slack webhook path": SLACK_PATH,
    "webhook path": WEBHOOK_PATH,
    "github token": GITHUB_TOKEN,
}


class EchoServer:
    """Answers every request with `status` and a body quoting the request line, every
    header and the body it received, as a leaky proxy does."""

    def __init__(self, status: int = 401) -> None:
        self.status = status
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _echo(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                server.requests += 1
                headers = "; ".join(f"{name}: {value}" for name, value in self.headers.items())
                echo = f"{self.command} {self.path} with {headers} and body {received}"
                payload = json.dumps(
                    {"status": "error", "errorType": "echo", "error": echo, "message": echo}
                ).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _echo  # noqa: N815

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


def _run(tool: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / tool), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _leaks(text: bytes | str) -> list[str]:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    return [name for name, secret in SECRETS.items() if secret.encode() in data]


def test_no_secret_reaches_any_output_log_event_or_file(tmp_path: Path, echo: EchoServer) -> None:
    home = tmp_path / "dagster_home"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TARS_PROMETHEUS_TOKEN": TOKEN,
        "TARS_SLACK_WEBHOOK_URL": echo.url + SLACK_PATH,
        "TARS_WEBHOOK_URL": echo.url + WEBHOOK_PATH,
        "GITHUB_TOKEN": GITHUB_TOKEN,
    }
    env.pop("TARS_CONFIG", None)
    prometheus = {"type": "prometheus", "url": echo.url, "retries": 1}
    prometheus["retry_backoff_seconds"] = 0.01
    release = {"name": DEMO_RELEASE, "ga_date": "2026-03-03", "window_days": 1}
    release["services"] = ["api-gateway"]
    bearer = write_config(_folder(tmp_path, "bearer"), source=prometheus, releases=[release])
    basic_source = {**prometheus, "bearer_token_env": None}
    basic = write_config(_folder(tmp_path, "basic"), source=basic_source, releases=[release])
    notifications = {
        "slack": {},
        "webhook": {},
        "github": {"repository": "acme/shop", "api_url": echo.url},
        "retries": 0,
        "timeout_seconds": 5,
    }
    week = write_config(
        _folder(tmp_path, "week"),
        releases=[{**release, "timezone": "America/New_York", "services": []}],
        notifications=notifications,
    )
    runs: list[tuple[str, subprocess.CompletedProcess[str]]] = []

    def run(label: str, tool: str, *args: str, environment: dict[str, str] = env) -> None:
        runs.append((label, _run(tool, *args, env=environment)))

    # 1. Prometheus answers 401 quoting the bearer token, then 500 quoting basic auth.
    run("401 with a bearer token", "tars-ga-kpi", "--config", str(bearer))
    echo.status = 500
    basic_env = {**env, "TARS_PROMETHEUS_USERNAME": USERNAME}
    basic_env["TARS_PROMETHEUS_PASSWORD"] = PASSWORD
    basic_env.pop("TARS_PROMETHEUS_TOKEN")
    run("500 with basic auth", "tars-ga-kpi", "--config", str(basic), environment=basic_env)
    # 2. A password written into --prometheus-url (refused, and not echoed).
    with_password = f"http://{USERNAME}:{quote(PASSWORD)}@{echo.url.removeprefix('http://')}"
    run("password in --prometheus-url", "tars-ga-kpi", "--config", str(bearer),
        "--prometheus-url", with_password)  # fmt: skip
    # 3. The bundled week with every notifier configured, each answered 500 with an echo.
    run("GA day", "tars-ga-kpi", "--config", str(week))
    run("day 1", "tars-stability-monitor", "--config", str(week), "--day-number", "1")
    run("retrospective and notifications", "tars-retro", "--auto", "--config", str(week))

    codes = {label: result.returncode for label, result in runs}
    assert codes == {
        "401 with a bearer token": 2,
        "500 with basic auth": 2,
        "password in --prometheus-url": 2,
        "GA day": 0,
        "day 1": 0,
        "retrospective and notifications": 1,  # the deliveries failed (operational)
    }, {label: result.stderr[-800:] for label, result in runs}
    assert echo.requests >= 5  # each secret was sent, and echoed back
    assert "refused the request (HTTP 401" in runs[0][1].stderr
    assert "kept failing" in runs[1][1].stderr
    assert "notification(s) failed" in runs[-1][1].stderr

    hits = {
        f"{label} ({stream})": _leaks(text)
        for label, result in runs
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr))
    }
    # The instance (run storage, event logs, compute logs), the stores, every report.
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".db" for path in files) and any(
        path.name == "GA_7DAY_RETROSPECTIVE.json" for path in files
    )
    hits |= {str(path.relative_to(tmp_path)): _leaks(path.read_bytes()) for path in files}
    assert {where: found for where, found in hits.items() if found} == {}


def _folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder
