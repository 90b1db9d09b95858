"""The Grafana dashboard in docs/grafana/: its JSON model holds together, it charts only
metrics the bundled week's OpenMetrics file really emits, every query is valid PromQL
(promtool), and every panel finds data in a real Prometheus loaded with that file.

promtool and prometheus come with Debian's `prometheus` (.ci/setup.d/10-prometheus.sh);
without them the last two tests skip, or fail with TARS_REQUIRE_SERVERS=1 (servers.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tars_pipeline.reporting.openmetrics import METRICS_FILE, metric_names
from tars_pipeline_tests.conftest import DEMO_RELEASE, REPO, DemoWeek
from tars_pipeline_tests.servers import free_port, unavailable

DASHBOARD = REPO / "docs" / "grafana" / "tars-retrospective.json"
PANEL_TYPES = {"row", "stat", "bargauge", "table", "timeseries"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24
METRIC = re.compile(r"\btars_[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: the panels' targets and the query variables."""
    found = [target["expr"] for panel in panels(dashboard) for target in panel["targets"]]
    found += [
        variable["query"]["query"]
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    ]
    return found


def concrete(expr: str) -> str:
    """A panel query as Grafana sends it for the bundled release and every service/KPI."""
    return expr.replace("$release", DEMO_RELEASE).replace("$service", ".*").replace("$kpi", ".*")


def test_the_dashboard_model_holds_together(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "tars-ga-retrospective" and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    release = variables["release"]
    assert release["type"] == "query" and release["datasource"] == DATASOURCE
    assert release["query"]["query"] == "label_values(tars_release_info, release)"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("x", "y", "w", "h")), panel["title"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["description"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert '$release"' in target["expr"], f"{panel['title']} ignores the release"


@pytest.mark.slow
def test_the_dashboard_charts_only_metrics_the_week_emits(
    dashboard: dict[str, Any], demo_week: DemoWeek
) -> None:
    emitted = metric_names((demo_week.out / METRICS_FILE).read_text(encoding="utf-8"))
    charted = {name for expr in queries(dashboard) for name in METRIC.findall(expr)}
    assert charted, "no tars_ metric in the dashboard"
    assert charted <= emitted, f"not in {METRICS_FILE}: {sorted(charted - emitted)}"
    # What the issue asks the dashboard to show.
    for family in (
        "tars_health_score",
        "tars_verdict_severity",
        "tars_kpi_drift_ratio",
        "tars_slo_burn_rate_ratio",
        "tars_slo_error_budget_remaining_ratio",
        "tars_incidents",
        "tars_open_incidents",
    ):
        assert family in charted, family


def test_every_dashboard_query_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses rule expressions: each panel query becomes one recording rule."""
    promtool = shutil.which("promtool") or unavailable(
        "promtool is not installed (apt-get install --no-install-recommends prometheus)"
    )
    rules = [
        {"record": f"dashboard:query:{index}", "expr": concrete(expr)}
        for index, expr in enumerate(queries(dashboard))
        if not expr.startswith("label_values(")
    ]
    path = tmp_path / "dashboard_queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def prometheus_with_the_week(
    demo_week: DemoWeek, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """A real Prometheus over a TSDB backfilled from the week's OpenMetrics file (every
    sample stamped an hour ago): (its URL, that time)."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not (prometheus and promtool):
        unavailable(
            "prometheus/promtool not installed (apt-get install --no-install-recommends "
            "prometheus, or .ci/setup.d/10-prometheus.sh)"
        )
    folder = tmp_path_factory.mktemp("dashboard_prometheus")
    stamp = int(time.time()) - 3600
    text = (demo_week.out / METRICS_FILE).read_text(encoding="utf-8")
    stamped = "\n".join(
        line if not line or line.startswith("#") else f"{line} {stamp}" for line in text.split("\n")
    )
    (folder / "week.om").write_text(stamped, encoding="utf-8")
    backfill = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "week.om", "data"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (folder / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=3650d",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (folder / "prometheus.log").read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready after 60 s"
            time.sleep(0.2)
        yield url, stamp
    finally:
        process.terminate()
        process.wait(timeout=30)


def instant_query(url: str, expr: str, at: int) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr, "time": str(at)})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.mark.slow
def test_every_panel_finds_the_week_in_a_real_prometheus(
    dashboard: dict[str, Any], prometheus_with_the_week: tuple[str, int]
) -> None:
    url, stamp = prometheus_with_the_week
    empty = []
    for panel in panels(dashboard):
        for target in panel["targets"]:
            if not instant_query(url, concrete(target["expr"]), stamp):
                empty.append(panel["title"])
    assert not empty, f"panels without data on the bundled week: {empty}"
    # The verdict stat reads warn (1); the health bars hold the eight days.
    (verdict,) = instant_query(url, f'tars_verdict_severity{{release="{DEMO_RELEASE}"}}', stamp)
    assert verdict["value"][1] == "1"
    days = instant_query(url, f'tars_health_score{{release="{DEMO_RELEASE}"}}', stamp)
    assert sorted(int(series["metric"]["day"]) for series in days) == list(range(8))
