"""A real Prometheus, loaded with the bundled week, for the whole test session.

Debian's `prometheus` and `promtool` (2.x) are used as they are: the generator writes the
week as OpenMetrics text, `promtool tsdb create-blocks-from openmetrics` backfills it into
a temporary TSDB, and a server on 127.0.0.1 (a free port, no scrape targets) serves it.
Starting it costs ~15 s (most of it promtool), so it happens once per session.

The week is moved to the most recent US daylight-saving week that ended before now (the
newest block sets the retention horizon, and a week in the future is not what a user
has). It moves by whole weeks to a week where the clocks change on the same day (Day 5):
any other shift would change the 23-hour day and so every Day 5..7 window in New York time.

Without the binaries the tests that need the server skip with a one-line reason, except
with TARS_REQUIRE_SERVERS=1 (.ci/run sets it), where a missing Prometheus fails the suite:
.ci/setup.d/10-prometheus.sh is meant to have installed it (servers.py).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tars_pipeline.config import Release
from tars_pipeline_tests.conftest import REPO
from tars_pipeline_tests.servers import unavailable

GENERATOR = REPO / "test_data" / "generate.py"
BUNDLED_GA = dt.date(2026, 3, 3)  # Tuesday; US DST starts on Day 5, Sunday 2026-03-08
TIMEZONE = "America/New_York"
SERVICES = ("api-gateway", "checkout", "search")
ESCAPE_PROBE_SERVICE = 'we"ird\\svc\nx'
"""A label value with a quote, a backslash and a line break, backfilled beside the week."""
READY_TIMEOUT_SECONDS = 60
SECONDS_IN_MS_GUARD = 10**11  # a Unix time in seconds is below this until the year 5138
CREDENTIAL_VARIABLES = (
    "TARS_PROMETHEUS_TOKEN",
    "TARS_PROMETHEUS_USERNAME",
    "TARS_PROMETHEUS_PASSWORD",
)
"""The variables a default `source:` block reads credentials from, at connection time."""


@pytest.fixture(autouse=True)
def _no_prometheus_credentials_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's exported token must not reach the test servers; a test sets its own."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def require_binaries() -> tuple[str, str]:
    """Paths of prometheus and promtool; skip (or fail in CI) when they are missing."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus and promtool:
        return prometheus, promtool
    reason = (
        "prometheus/promtool not installed (apt-get install --no-install-recommends "
        "prometheus, or .ci/setup.d/10-prometheus.sh)"
    )
    unavailable(reason)


def load_generator() -> ModuleType:
    name = "tars_test_data_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def second_sunday_of_march(year: int) -> dt.date:
    first = dt.date(year, 3, 1)
    return first + dt.timedelta(days=(6 - first.weekday()) % 7 + 7)


def shifted_ga_date(now: dt.datetime) -> dt.date:
    """GA date of the latest week shaped like the bundled one that ended a day before now."""
    for year in range(now.year, now.year - 3, -1):
        ga = second_sunday_of_march(year) - dt.timedelta(days=5)
        release = Release(name="probe", ga_date=ga, timezone=TIMEZONE, window_days=7)
        if release.day_bounds(7)[1] <= now - dt.timedelta(days=1):
            return ga
    raise AssertionError("no daylight-saving week in the last three years")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sample_timestamps(path: Path) -> list[float]:
    """The timestamps of the first and last sample lines of an OpenMetrics file."""
    first = last = None
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.startswith(b"#"):
                first = raw
                break
        handle.seek(max(0, path.stat().st_size - 4096))
        for raw in handle.read().splitlines():
            if raw and not raw.startswith(b"#"):
                last = raw
    assert first is not None and last is not None, f"{path} has no samples"
    return [float(line.split()[-1]) for line in (first, last)]


def assert_seconds_before_now(path: Path, now: dt.datetime) -> None:
    """Guard: timestamps in seconds, inside the last three years.

    A file in milliseconds would be read as seconds ~50,000 years ahead; retention, counted
    from the newest block, would then delete the real week without an error.
    """
    for stamp in _sample_timestamps(path):
        assert stamp < SECONDS_IN_MS_GUARD, f"{path}: timestamp {stamp} looks like milliseconds"
        moment = dt.datetime.fromtimestamp(stamp, dt.UTC)
        assert now - dt.timedelta(days=3 * 366) < moment <= now, f"{path}: {moment} not recent"


def write_escape_probe(path: Path, start_s: int, minutes: int) -> None:
    """A tiny second backfill: one gauge for a service whose name needs escaping."""
    escaped = ESCAPE_PROBE_SERVICE.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    lines = ["# TYPE tars_escape_probe gauge\n"]
    for service, value in ((escaped, 7.0), ("checkout", 1.0)):
        lines += [
            f'tars_escape_probe{{service="{service}"}} {value} {start_s + 60 * i}\n'
            for i in range(minutes)
        ]
    path.write_text("".join(lines) + "# EOF\n", encoding="utf-8")


def backfill(promtool: str, source: Path, data_dir: Path) -> None:
    result = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=24h",
            str(source),
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"promtool failed:\n{result.stdout[-2000:]}{result.stderr}"


def assert_blocks_not_in_future(data_dir: Path, now: dt.datetime) -> None:
    now_ms = now.timestamp() * 1000
    metas = list(data_dir.glob("*/meta.json"))
    assert metas, f"promtool wrote no blocks to {data_dir}"
    for meta in metas:
        max_time = json.loads(meta.read_text(encoding="utf-8"))["maxTime"]
        assert max_time <= now_ms, f"{meta.parent.name} ends in the future ({max_time} ms)"


@dataclass
class PrometheusServer:
    """A running server and what it holds."""

    url: str
    port: int
    pid: int
    ga_date: dt.date
    shift_days: int
    data_dir: Path
    log_path: Path

    @property
    def release(self) -> Release:
        return Release(name="v1.0.1", ga_date=self.ga_date, timezone=TIMEZONE, window_days=7)

    @property
    def shift(self) -> dt.timedelta:
        return dt.timedelta(days=self.shift_days)


def _wait_ready(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"prometheus exited with {process.returncode}:\n"
                + log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            )
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"prometheus not ready after {READY_TIMEOUT_SECONDS} s")


@contextmanager
def serving(prometheus: str, data_dir: Path, folder: Path) -> Iterator[tuple[str, int, int]]:
    """A server on a free 127.0.0.1 port over a backfilled TSDB: (url, port, pid); no
    scrape targets, ten years' retention, its log in folder/prometheus.log."""
    config = folder / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n", encoding="utf-8")
    log_path = folder / "prometheus.log"
    for _attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data_dir}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=3650d",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_ready(process, url, log_path)
            break
        except AssertionError:
            if process.poll() is None:
                raise
            if "address already in use" not in log_path.read_text(errors="replace"):
                raise
    try:
        yield url, port, process.pid
    finally:
        process.terminate()  # by PID: this server only
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    prometheus, promtool = require_binaries()
    folder = tmp_path_factory.mktemp("prometheus")
    now = dt.datetime.now(dt.UTC)
    ga_date = shifted_ga_date(now)
    shift_days = (ga_date - BUNDLED_GA).days
    assert shift_days % 7 == 0

    generator = load_generator()
    week = folder / "week.om"
    generator.write_openmetrics(
        generator.generate_samples(), week, shift_seconds=shift_days * 86_400
    )
    assert week.read_bytes()[-6:] == b"# EOF\n"
    assert_seconds_before_now(week, now)

    # The probe sits in the hour after the week, outside every Day 0..7 window.
    probe = folder / "probe.om"
    week_end = Release(name="p", ga_date=ga_date, timezone=TIMEZONE).day_bounds(7)[1]
    write_escape_probe(probe, int(week_end.timestamp()), 60)
    assert_seconds_before_now(probe, now)

    data_dir = folder / "tsdb"
    data_dir.mkdir()
    backfill(promtool, week, data_dir)
    backfill(promtool, probe, data_dir)
    assert_blocks_not_in_future(data_dir, now)
    week.unlink()  # ~85 MB, no longer needed

    with serving(prometheus, data_dir, folder) as (url, port, pid):
        yield PrometheusServer(
            url=url,
            port=port,
            pid=pid,
            ga_date=ga_date,
            shift_days=shift_days,
            data_dir=data_dir,
            log_path=folder / "prometheus.log",
        )
