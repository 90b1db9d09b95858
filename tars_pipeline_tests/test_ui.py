"""The UI's side of the week, on a real webserver and daemon: 'Materialize all' runs a
backfill of the whole graph, and a run a CLI launched is re-executed from the UI.

The instance settings are dagster.yaml's: up to 4 runs at once, on the Parquet store that
takes concurrent writers. The daemon is Dagster's own, with its clocks driven: the queue
is read every second (`dequeue_interval_seconds`) and the backfill daemon, whose 30 s loop
interval is a constant in Dagster 1.13, is started with that constant set to 1 s (see
`DAEMON`). Everything else is as `make dev` runs it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG, Progress, Runner
from tars_pipeline.config import load_config
from tars_pipeline.sensors import register_releases
from tars_pipeline.store import read_document
from tars_pipeline_tests.conftest import DAILY, DEMO_RELEASE, GA_DAY, REPO, write_config

pytestmark = pytest.mark.slow

ASSETS = [
    "kpi_samples",
    "baseline",
    "anomaly_events",
    "daily_summary",
    "regression_summary",
    "retrospective",
]
LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


# `dagster-daemon run`, with the backfill daemon's loop interval (a module constant in 1.13,
# 30 s) at 1 s: the test then waits for work, not for ticks.
DAEMON = (
    "import dagster._daemon.controller as c; c.DEFAULT_DAEMON_INTERVAL_SECONDS = 1; "
    "from dagster._daemon.cli import main; main()"
)
FAST_QUEUE = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


class DagsterUI:
    """dagster-webserver and dagster-daemon on loopback, on a fresh DAGSTER_HOME."""

    def __init__(
        self, folder: Path, config: Path, extra_settings: str = "", *, fast_daemon: bool = True
    ):
        # fast_daemon: every daemon ticks each second (DAEMON), as the tests want; False
        # runs the stock `dagster-daemon run` (a backfill tick every 30 s), as users do.
        self.fast_daemon = fast_daemon
        self.port = _free_port()
        self.home = folder / "dagster_home"
        self.home.mkdir()
        settings = PACKAGED_INSTANCE_CONFIG.read_text(encoding="utf-8") + extra_settings
        (self.home / "dagster.yaml").write_text(settings + FAST_QUEUE, encoding="utf-8")
        self.log = folder / "dagster-ui.log"
        self.env = {**os.environ, "DAGSTER_HOME": str(self.home), "TARS_CONFIG": str(config)}
        self.processes: list[subprocess.Popen] = []

    def _spawn(self, command: list[str]) -> None:
        with self.log.open("a") as log:
            self.processes.append(
                subprocess.Popen(
                    command,
                    cwd=REPO,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def start(self) -> None:
        bin_dir = Path(sys.executable).parent
        webserver = [str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml"]
        self._spawn([*webserver, "-h", "127.0.0.1", "-p", str(self.port)])
        if self.fast_daemon:
            self._spawn([sys.executable, "-c", DAEMON, "run", "-w", "workspace.yaml"])
        else:
            self._spawn([str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for process in self.processes:
                assert process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=5):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(1)
        raise AssertionError("the webserver did not come up:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def launch_backfill(self, params: dict) -> str:
        """A backfill through GraphQL, as the UI's "Materialize all" launches one; retried
        while the code location is still loading."""
        deadline = time.monotonic() + 90
        while True:
            launched = _graphql(self.port, LAUNCH, {"params": params})["launchPartitionBackfill"]
            if launched["__typename"] == "LaunchBackfillSuccess" or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout: float = 480) -> str | None:
        """The backfill's final status (None if it did not finish within `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = _graphql(self.port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
            if status.get("status") in {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED",
                                        "FAILED", "CANCELED"}:  # fmt: skip
                return status["status"]
            time.sleep(2)
        return None

    def wait_for_run(self, run_id: str, timeout: float = 180) -> dg.DagsterRunStatus:
        deadline = time.monotonic() + timeout
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            while time.monotonic() < deadline:
                run = instance.get_run_by_id(run_id)
                if run is not None and run.is_finished:
                    return run.status
                time.sleep(1)
        raise AssertionError(f"run {run_id} did not finish:\n" + self.log.read_text()[-3000:])


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DagsterUI, Path]]:
    tmp_path = tmp_path_factory.mktemp("ui")
    releases = [
        {
            "name": DEMO_RELEASE,
            "ga_date": "2026-03-03",
            "timezone": "America/New_York",
            "window_days": 1,
        }
    ]
    config = write_config(tmp_path, releases=releases)
    server = DagsterUI(tmp_path, config)
    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        register_releases(instance, [DEMO_RELEASE])
    server.start()
    try:
        yield server, tmp_path
    finally:
        server.stop()


def test_materialize_all_from_the_ui_completes_without_lock_failures(dagster_ui) -> None:
    server, folder = dagster_ui
    params = {"assetSelection": [{"path": [name]} for name in ASSETS], "allPartitions": True}
    status = server.wait_for_backfill(server.launch_backfill(params))
    log_tail = server.log.read_text()[-4000:]
    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}, (status, log_tail)

    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        runs = instance.get_run_records()
        assert runs, "the backfill launched no runs"
        failed = [
            r.dagster_run.run_id
            for r in runs
            if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS
        ]
        assert not failed, (failed, log_tail)
    with duckdb.connect(str(folder / "data" / "tars.duckdb"), read_only=True) as conn:
        retrospective = read_document(conn, DEMO_RELEASE, "retrospective")
    assert retrospective is not None
    assert [h["day"] for h in retrospective["health_scores"]] == [0, 1]
    assert (folder / "out" / DEMO_RELEASE / "GA_7DAY_RETROSPECTIVE.md").is_file()


REEXECUTE = """
mutation($params: ReexecutionParams!) {
  launchPipelineReexecution(reexecutionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId jobName } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


def test_a_run_the_cli_launched_is_re_executed_from_the_ui(dagster_ui, monkeypatch) -> None:
    server, folder = dagster_ui
    monkeypatch.chdir(REPO)
    config = load_config(folder / "tars.yaml")
    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        runner = Runner(config, instance=instance, progress=Progress(enabled=False))
        parent = runner.day(config.release(DEMO_RELEASE), 1, DAILY)
    assert instance_run_job(server, parent.run_id) == "tars_day"

    params = {"parentRunId": parent.run_id, "strategy": "ALL_STEPS"}
    launched = _graphql(server.port, REEXECUTE, {"params": params})["launchPipelineReexecution"]

    assert launched["__typename"] == "LaunchRunSuccess", launched
    assert launched["run"]["jobName"] == "tars_day"
    assert server.wait_for_run(launched["run"]["runId"]) == dg.DagsterRunStatus.SUCCESS


def instance_run_job(server: DagsterUI, run_id: str) -> str:
    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.remote_job_origin is not None
        assert run.remote_job_origin.location_name == "tars"
        return run.job_name


# --- The UI itself, in a real headless Chromium ------------------------------------------------

UI_PAGES = {
    # The asset graph of the code location: every TARS asset is drawn.
    "/asset-groups/post_ga": ASSETS,
    # The partitions of the day-level summary: the release's row and its day columns.
    "/assets/daily_summary?view=partitions": ["day_00", "day_01", DEMO_RELEASE],
}


@pytest.mark.parametrize("page", list(UI_PAGES))
def test_the_ui_draws_the_asset_graph_and_the_partitions(dagster_ui, page: str, tmp_path) -> None:
    """The Dagster UI is a JavaScript application: Chromium loads it from the webserver,
    runs it for up to 30 s of virtual time, and the rendered DOM must name what the page
    is for (no console is scraped; the names come from the GraphQL answers it drew)."""
    from tars_pipeline_tests.reporting.test_browser import chromium_dom

    server, _folder = dagster_ui
    dom = chromium_dom(tmp_path / "profile", f"http://127.0.0.1:{server.port}{page}")
    missing = [name for name in UI_PAGES[page] if name not in dom]
    assert not missing, (missing, dom[-2000:])


# --- The asset checks tab: full check names, the severity written out ----------------------

NUX_SEEN = "mutation { setNuxSeen }"  # the "Join the Dagster community" dialog, dismissed
# Dagster draws a name in a box too narrow for it middle-truncated: the visible <span> holds
# "drift_within_t…d_cost_compute" and the container's title the full name.
TRUNCATABLE = re.compile(
    r'<div class="MiddleTruncate_container[^"]*" title="(?P<name>[^"]*)">'
    r"<span>(?P<shown>[^<]*)</span>"
)
CHECKS_TAB = {
    # asset: {check: (what its definition says, the severity entry of its latest evaluation)}
    "daily_summary": {
        "drift_within_threshold": ("WARN when a KPI drifted beyond its threshold", "WARN"),
        "slo_compliance": ("ERROR when an SLO was breached on the day", "passed"),
    },
    "kpi_samples": {
        "data_completeness": ("ERROR when a service x KPI series is missing", "passed"),
    },
}


def shown_names(dom: str) -> dict[str, str]:
    """Each middle-truncatable name in a rendered page, with the text actually shown."""
    return {match["name"]: html.unescape(match["shown"]) for match in TRUNCATABLE.finditer(dom)}


def test_shown_names_catch_a_name_cut_in_the_middle() -> None:
    dom = (
        '<div class="MiddleTruncate_container__Bt7HB" title="drift_within_threshold_cost_compute">'
        "<span>drift_within_t…d_cost_compute</span><div>drift_within_threshold_cost_compute</div>"
    )
    shown = shown_names(dom)
    assert shown == {"drift_within_threshold_cost_compute": "drift_within_t…d_cost_compute"}
    assert shown["drift_within_threshold_cost_compute"] != "drift_within_threshold_cost_compute"


def _metadata_entry(dom: str, key: str) -> str | None:
    match = re.search(rf">{re.escape(key)}</td><td[^>]*>([^<]*)<", dom)
    return html.unescape(match.group(1)) if match else None


def test_the_checks_tab_shows_full_check_names_and_their_severity(
    dagster_ui, monkeypatch, tmp_path: Path
) -> None:
    """Chromium renders each asset's Checks tab after a real day: every check name is shown
    whole (not middle-truncated), the definition says what fails as ERROR or WARN, and the
    latest evaluation carries its severity. The screenshot is kept in the test's folder."""
    from tars_pipeline_tests.reporting.test_browser import chromium_dom, run_chromium

    server, folder = dagster_ui
    monkeypatch.chdir(REPO)
    config = load_config(folder / "tars.yaml")
    release = config.release(DEMO_RELEASE)
    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        runner = Runner(config, instance=instance, progress=Progress(enabled=False))
        runner.day(release, 0, GA_DAY)
        day_one = runner.day(release, 1, DAILY)
    assert {c.check_name for c in runner.failed_checks(day_one)} == {"drift_within_threshold"}
    _graphql(server.port, NUX_SEEN, {})

    base = f"http://127.0.0.1:{server.port}"
    for asset, checks in CHECKS_TAB.items():
        for check, (definition, severity) in checks.items():
            page = f"{base}/assets/{asset}?view=checks&checkDetail={check}"
            dom = chromium_dom(tmp_path / f"profile-{check}", page)
            shown = shown_names(dom)
            for name in checks:
                assert shown.get(name) == name, (page, name, shown)
            assert definition in html.unescape(dom), (page, definition)
            assert _metadata_entry(dom, "severity") == severity, page

    screenshot = tmp_path / "asset-checks.png"
    run_chromium(
        tmp_path / "profile-shot",
        "--virtual-time-budget=30000",
        "--window-size=1280,900",
        f"--screenshot={screenshot}",
        f"{base}/assets/daily_summary?view=checks",
    )
    header = screenshot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")) == (
        1280,
        900,
    )
    assert screenshot.stat().st_size > 30_000, screenshot  # a drawn page, not a blank one
    if keep := os.environ.get("TARS_SCREENSHOT_DIR"):  # e.g. a CI artifact folder
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, Path(keep) / screenshot.name)


# --- make dev: the port it is given, and a daemon that does not chatter ---------------------


def test_make_dev_serves_on_its_port_with_a_quiet_daemon(tmp_path: Path) -> None:
    """`make dev PORT=…` serves the UI on that port; the daemon's sensor ticks (the release
    sensor runs every minute) leave no line in its output unless LOG_LEVEL=info."""
    port = _free_port()
    config = write_config(tmp_path)
    home = tmp_path / "dagster_home"
    log = tmp_path / "make-dev.log"
    stamp = REPO / ".venv" / ".installed-stamp"
    command = ["make", "-o", str(stamp.relative_to(REPO)), "dev", f"PORT={port}",
               f"CONFIG={config}", f"DAGSTER_HOME={home}"]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        ticked = False
        while time.monotonic() < deadline and not ticked:
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    pass
            except (urllib.error.URLError, ConnectionError):
                continue
            if (home / "dagster.yaml").exists():
                with dg.DagsterInstance.from_config(str(home)) as instance:
                    # The release sensor's first tick registers the release.
                    ticked = DEMO_RELEASE in instance.get_dynamic_partitions("releases")
        assert ticked, log.read_text()[-3000:]
        time.sleep(3)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    output = log.read_text()
    assert f"Dagster UI on http://127.0.0.1:{port}" in output
    assert f"-p {port} --log-level warning" in output
    assert "SensorDaemon" not in output and "Checking for new runs" not in output, output[-3000:]
