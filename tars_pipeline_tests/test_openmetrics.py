"""The retrospective as Prometheus metrics: the bundled week's GA_7DAY_RETROSPECTIVE.prom,
read by the real parsers (promtool's text-format linter, Prometheus's OpenMetrics parser)
and pushed to a real Pushgateway, then scraped back.

promtool comes with Debian's `prometheus` (.ci/setup.d/10-prometheus.sh), the Pushgateway
with `prometheus-pushgateway` (15-pushgateway.sh); without them these tests skip, or fail
with TARS_REQUIRE_SERVERS=1 (servers.py).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tars_pipeline.config import ExportsConfig, load_config
from tars_pipeline.errors import TarsUserError
from tars_pipeline.reporting.openmetrics import (
    METRICS_FILE,
    escape_label_value,
    push_metrics,
    push_target,
    render_openmetrics,
)
from tars_pipeline_tests.conftest import DEMO_RELEASE, DemoWeek, week_runner, write_config
from tars_pipeline_tests.servers import free_port, unavailable

pytestmark = pytest.mark.slow

HOSTILE_SERVICES = (
    'we"ird',
    "back\\slash",
    "line\nbreak",
    '} 1\n# EOF\nx{y="',
    'x",evil="1',
    "{{ $labels.service }}",
    "ünïcødé ☃",
    "para\u2028graph",
)
"""Label values a source could hand over: each must stay one valid label value."""


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable(
            "promtool is not installed (apt-get install --no-install-recommends prometheus, "
            "or .ci/setup.d/10-prometheus.sh)"
        )
    return found


def check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` (the 0.0.4 text parser and the naming linter) on `text`."""
    return subprocess.run(
        [promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def openmetrics_blocks(text: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Prometheus's OpenMetrics parser on `text`, through `promtool tsdb
    create-blocks-from openmetrics`: backfilling needs a timestamp on every sample, so
    one is added (the file itself has none, as the textfile collector wants)."""
    # split("\n"), not splitlines(): a label value may hold U+2028, which is no line end.
    stamped = "\n".join(
        line if not line or line.startswith("#") else f"{line} 1773208800"
        for line in text.split("\n")
    )
    source = folder / "stamped.prom"
    source.write_text(stamped, encoding="utf-8")
    return subprocess.run(
        [
            promtool(),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(source),
            str(folder / "tsdb"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def samples(text: str) -> list[str]:
    return [line for line in text.split("\n") if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def metrics(demo_week: DemoWeek) -> str:
    return (demo_week.out / METRICS_FILE).read_text(encoding="utf-8")


# --- What the file says ------------------------------------------------------------------------


def test_the_week_as_metrics_tells_what_the_retrospective_tells(metrics: str) -> None:
    lines = set(samples(metrics))
    release = f'release="{DEMO_RELEASE}"'
    # A warn verdict, as a state set and as one number.
    assert f'tars_verdict{{{release},status="warn"}} 1' in lines
    assert f'tars_verdict{{{release},status="pass"}} 0' in lines
    assert f"tars_verdict_severity{{{release}}} 1" in lines
    # Health per day and on average; day 4 the lowest.
    assert f"tars_health_score_average{{{release}}} 97.5" in lines
    assert f'tars_health_score{{{release},day="4",date="2026-03-07",band="healthy"}} 93.6' in lines
    assert f'tars_health_score_lowest{{{release},day="4"}} 93.6' in lines
    # The seed's story: p99 latency +20 % on day 2, CPU +15.7 % by day 7.
    api = f'{release},service="api-gateway"'
    assert f'tars_kpi_drift_ratio{{{api},kpi="latency_p99",day="2"}} 0.2' in lines
    assert any(
        line.startswith(f'tars_kpi_drift_ratio{{{api},kpi="cpu_utilization",day="7"}} 0.157')
        for line in lines
    )
    assert f'tars_kpi_status{{{api},kpi="latency_p99",status="degraded"}} 1' in lines
    # The p99 spike would have paged over 1h/5m; 87 % of that budget is left.
    slo = f'{api},slo="latency_p99"'
    assert (
        f'tars_slo_burn_rate_alert_episodes{{{slo},severity="page",long_window="1h",'
        'short_window="5m"} 6'
    ) in lines
    assert any(
        line.startswith(f"tars_slo_error_budget_remaining_ratio{{{slo}}} 0.871") for line in lines
    )
    assert f'tars_slo_objective_ratio{{{api},slo="availability"}} 0.999' in lines
    assert f"tars_slo_period_seconds{{{slo}}} 2592000" in lines
    # Never exhausted at the last day's burn of 0: no series rather than a fake number.
    assert not any(
        line.startswith(f"tars_slo_error_budget_exhaustion_seconds{{{slo}}}") for line in lines
    )
    # One high and one medium degradation, both resolved; three incidents, none open.
    assert f'tars_degradations{{{release},severity="high",status="resolved"}} 1' in lines
    assert f'tars_degradations{{{release},severity="medium",status="resolved"}} 1' in lines
    assert f'tars_degradations{{{release},severity="critical",status="ongoing"}} 0' in lines
    incidents = [line for line in lines if line.startswith("tars_incidents{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in incidents) == 3
    assert all(line.endswith(" 0") for line in lines if line.startswith("tars_open_incidents{"))
    assert f'tars_recommendations{{{release},priority="P1"}} 1' in lines


def test_every_family_has_help_and_type_and_the_file_ends_with_eof(metrics: str) -> None:
    assert metrics.endswith("\n# EOF\n")
    types = re.findall(r"^# TYPE (\S+) gauge$", metrics, flags=re.MULTILINE)
    helps = re.findall(r"^# HELP (\S+) ", metrics, flags=re.MULTILINE)
    assert types == helps and len(types) == len(set(types)) >= 30
    assert all(name.startswith("tars_") for name in types)
    for line in samples(metrics):
        name = line.split("{", 1)[0]
        assert name in types, line
        assert 'release="v1.0.1"' in line, line
        assert not re.search(r"\b(nan|inf)\b", line.rsplit(" ", 1)[1], re.IGNORECASE), line


# --- The real parsers --------------------------------------------------------------------------


def test_promtool_check_metrics_passes_on_the_week(metrics: str) -> None:
    result = check_metrics(metrics)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_prometheus_openmetrics_parser_reads_every_series(metrics: str, tmp_path: Path) -> None:
    result = openmetrics_blocks(metrics, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The summary table's NUM SERIES: every sample line became one series.
    # (BLOCK ULID, MIN TIME, MAX TIME, DURATION, NUM SAMPLES, NUM CHUNKS, NUM SERIES, SIZE)
    row = result.stdout.strip().splitlines()[1].split()
    assert int(row[-2]) == len(samples(metrics)), result.stdout


def test_the_openmetrics_check_fails_without_eof(metrics: str, tmp_path: Path) -> None:
    """The parser above is strict, so its passing means something."""
    result = openmetrics_blocks(metrics.replace("# EOF\n", ""), tmp_path)
    assert "EOF" in result.stdout + result.stderr


def hostile_model(model: dict[str, Any]) -> dict[str, Any]:
    """The bundled week with its three services renamed to hostile label values."""
    names = dict(zip(("api-gateway", "checkout", "search"), HOSTILE_SERVICES, strict=False))
    text = json.dumps(model)
    for plain, hostile in names.items():
        text = text.replace(json.dumps(plain), json.dumps(hostile))
    renamed = json.loads(text)
    renamed["kpi_daily"].extend(
        {**copy.deepcopy(renamed["kpi_daily"][0]), "service": name} for name in HOSTILE_SERVICES[3:]
    )
    return renamed


def test_hostile_label_values_stay_valid_for_promtool(demo_week: DemoWeek, tmp_path: Path) -> None:
    text = render_openmetrics(hostile_model(demo_week.retrospective))
    for name in HOSTILE_SERVICES:
        assert f'service="{escape_label_value(name)}"' in text
    assert text.split("\n").count("# EOF") == 1 and text.endswith("\n# EOF\n")
    result = check_metrics(text)
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = openmetrics_blocks(text, tmp_path)
    assert blocks.returncode == 0, blocks.stdout + blocks.stderr


def test_label_values_are_escaped_as_both_formats_want() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert escape_label_value("lone \udc80 surrogate") == "lone \ufffd surrogate"
    assert escape_label_value("{} ,=") == "{} ,="


# --- The Pushgateway ---------------------------------------------------------------------------


def pushgateway_binary() -> str:
    found = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if found is None:
        unavailable(
            "the Pushgateway is not installed (apt-get install --no-install-recommends "
            "prometheus-pushgateway, or .ci/setup.d/15-pushgateway.sh)"
        )
    return found


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away Pushgateway on a free 127.0.0.1 port, in memory only."""
    binary = pushgateway_binary()
    log_path = tmp_path_factory.mktemp("pushgateway") / "pushgateway.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "pushgateway not ready after 30 s"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return response.read().decode("utf-8")


def pushed_groups(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/metrics", timeout=10) as response:
        return json.loads(response.read())["data"]


def test_retro_pushes_the_week_to_a_real_pushgateway(
    demo_week: DemoWeek, pushgateway: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retrospective asset, configured with exports.pushgateway_url_env, pushes the
    file it wrote; a scrape of the Pushgateway serves it back under job and release."""
    monkeypatch.setenv("TARS_TEST_PUSHGATEWAY", pushgateway)
    config = load_config(
        write_config(
            tmp_path,
            data_dir=str(demo_week.folder / "data"),
            exports={"pushgateway_url_env": "TARS_TEST_PUSHGATEWAY", "pushgateway_job": "tars"},
        )
    )
    with week_runner(tmp_path, config) as (runner, _instance):
        result = runner.release_level(config.release(DEMO_RELEASE), ("retrospective",))
        meta = runner.metadata(result, "retrospective")
    assert meta["pushed_to"] == (
        f"Pushgateway {pushgateway}/metrics/job/tars/release/{DEMO_RELEASE} "
        "(from exports.pushgateway_url_env)"
    )
    written = (tmp_path / "out" / DEMO_RELEASE / METRICS_FILE).read_text(encoding="utf-8")
    # The Pushgateway serves the group with its key (job, release) and instance="".
    served = [
        line
        for line in samples(scrape(pushgateway))
        if line.startswith("tars_") and 'job="tars"' in line
    ]
    assert 'tars_health_score_average{instance="",job="tars",release="v1.0.1"} 97.5' in served
    assert 'tars_verdict{instance="",job="tars",release="v1.0.1",status="warn"} 1' in served
    # Every sample of the file is served back (beside the Pushgateway's push_time metrics).
    assert len(served) == len(samples(written))


def test_hostile_label_values_survive_a_push_exactly(demo_week: DemoWeek, pushgateway: str) -> None:
    text = render_openmetrics(hostile_model(demo_week.retrospective))
    target = push_target(
        ExportsConfig(pushgateway_url=pushgateway, pushgateway_job="hostile"), "v9"
    )
    push_metrics(target, text)
    services: set[str] = set()
    for group in pushed_groups(pushgateway):
        if group["labels"].get("job") != "hostile":
            continue
        for family in group.values():
            if isinstance(family, dict) and family.get("metrics"):
                services |= {m["labels"].get("service") for m in family["metrics"]}
    assert set(HOSTILE_SERVICES) <= services


def test_a_pushgateway_that_is_down_fails_with_the_setting_and_no_secret(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {"PGW": f"http://robot:s3cr3t-pa55@127.0.0.1:{port}"}
    target = push_target(ExportsConfig(pushgateway_url_env="PGW"), DEMO_RELEASE, env)
    assert target is not None
    with pytest.raises(TarsUserError) as caught:
        push_metrics(target, "# EOF\n")
    message = str(caught.value)
    assert "exports.pushgateway_url_env" in message
    assert "connection failed" in message
    assert f"http://127.0.0.1:{port}/metrics/job/tars/release/{DEMO_RELEASE}" in message
    assert "s3cr3t" not in message and "robot" not in message


def test_an_unset_variable_fails_before_anything_is_written(
    demo_week: DemoWeek, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TARS_TEST_UNSET_PUSHGATEWAY", raising=False)
    config = load_config(
        write_config(
            tmp_path,
            data_dir=str(demo_week.folder / "data"),
            exports={"pushgateway_url_env": "TARS_TEST_UNSET_PUSHGATEWAY"},
        )
    )
    with (
        week_runner(tmp_path, config) as (runner, _instance),
        pytest.raises(TarsUserError) as caught,
    ):
        runner.release_level(config.release(DEMO_RELEASE), ("retrospective",))
    message = str(caught.value)
    assert "TARS_TEST_UNSET_PUSHGATEWAY is not set" in message
    assert "exports.pushgateway_url_env" in message
    assert not (tmp_path / "out").exists()


def test_credentials_in_the_config_are_refused_without_echoing_them(tmp_path: Path) -> None:
    path = write_config(tmp_path, exports={"pushgateway_url": "http://bot:hunter2-xyz@pgw:9091"})
    with pytest.raises(TarsUserError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "exports.pushgateway_url" in message and "pushgateway_url_env" in message
    assert "hunter2" not in message
