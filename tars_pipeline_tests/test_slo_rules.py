"""SLO specs out: the bundled week's Sloth spec and burn-rate rules, checked by the real
`promtool check rules` and exercised by `promtool test rules`: series that burn the budget
fast page, a slow burn opens a ticket, a healthy service stays quiet, on 30-day and 7-day
SLOs, and with hostile service names.

promtool comes with Debian's `prometheus` (.ci/setup.d/10-prometheus.sh); without it the
promtool tests skip, or fail with TARS_REQUIRE_SERVERS=1 (servers.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from tars_pipeline.config import TarsConfig, load_config
from tars_pipeline.reporting.slo_rules import (
    ALERT_NAME,
    RULES_FILE,
    SLOTH_FILE,
    alert_windows,
    event_ratio,
    prometheus_duration,
    render_rules,
    render_sloth,
)
from tars_pipeline.sources.prometheus import promql_string
from tars_pipeline_tests.conftest import DemoWeek, write_config
from tars_pipeline_tests.servers import unavailable

pytestmark = pytest.mark.slow

HOSTILE = 'we"ird{{ $x }}\\svc\nx'
"""A service name with a quote, Go-template braces, a backslash and a line break."""


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        unavailable(
            "promtool is not installed (apt-get install --no-install-recommends prometheus, "
            "or .ci/setup.d/10-prometheus.sh)"
        )
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=300, cwd=cwd, check=False
    )


# --- Series for `promtool test rules` ---------------------------------------------------------


def traffic(service: str, error_share: float, slow: bool, minutes: int) -> list[dict[str, str]]:
    """The default KPIs' raw series for one service: 60 requests a minute, `error_share` of
    them 5xx; every request slower than 250 ms when `slow`, else faster than 100 ms."""
    label = f'service="{promql_string(service)}"'
    errors = round(60 * error_share, 3)
    fast = 0 if slow else 60

    def counter(name: str, extra: str, per_minute: float) -> dict[str, str]:
        return {"series": f"{name}{{{label},{extra}}}", "values": f"0+{per_minute}x{minutes}"}

    return [
        counter("http_requests_total", 'code="200"', round(60 - errors, 3)),
        counter("http_requests_total", 'code="500"', errors),
        counter("http_request_duration_seconds_bucket", 'le="0.1"', fast),
        counter("http_request_duration_seconds_bucket", 'le="0.25"', fast),
        counter("http_request_duration_seconds_bucket", 'le="+Inf"', 60),
    ]


def expected_alert(
    rules: Mapping[str, Any], service: str, slo: str, severity: str
) -> dict[str, Any]:
    """The alert promtool must see: its labels, and its annotations as Prometheus expands
    them (the rule's templates with the two labels they name filled in)."""
    labels = {"severity": severity, "service": service, "slo": slo}
    for group in rules["groups"]:
        for rule in group["rules"]:
            selected = rule.get("alert") and _selects(rule["expr"], service, slo)
            if selected and rule["labels"]["severity"] == severity:
                annotations = {
                    key: text.replace("{{ $labels.service }}", service).replace(
                        "{{ $labels.slo }}", slo
                    )
                    for key, text in rule["annotations"].items()
                }
                return {"exp_labels": dict(labels), "exp_annotations": annotations}
    raise AssertionError(f"no {severity} alert for {service}/{slo} in the rules")


def _selects(expr: str, service: str, slo: str) -> bool:
    return f'{{service="{promql_string(service)}",slo="{promql_string(slo)}"}}' in expr


def run_rule_tests(
    rules_text: str,
    folder: Path,
    series: Sequence[dict[str, str]],
    expected: Sequence[tuple[str, str, str]],
    eval_time: str,
) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` on `rules_text` with `series`: at `eval_time` exactly the
    (service, slo, severity) alerts of `expected` fire."""
    rules_path = folder / RULES_FILE
    rules_path.write_text(rules_text, encoding="utf-8")
    rules = yaml.safe_load(rules_text)
    test = {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": list(series),
                "alert_rule_test": [
                    {
                        "eval_time": eval_time,
                        "alertname": ALERT_NAME,
                        "exp_alerts": [expected_alert(rules, *alert) for alert in expected],
                    }
                ],
            }
        ],
    }
    test_path = folder / "slo_rules_test.yaml"
    test_path.write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    return promtool("test", "rules", test_path.name, cwd=folder)


def renamed(model: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    text = json.dumps(model)
    for plain, other in names.items():
        text = text.replace(json.dumps(plain), json.dumps(other))
    return json.loads(text)


def seven_day_config(folder: Path) -> TarsConfig:
    return load_config(
        write_config(
            folder,
            slos=[
                {
                    "name": "availability",
                    "kpi": "availability",
                    "target_pct": 99.9,
                    "period_days": 7,
                },
                {"name": "error_rate", "kpi": "error_rate", "target_pct": 99.0, "period_days": 7},
                {
                    "name": "latency_p99",
                    "kpi": "latency_p99",
                    "sli": "threshold",
                    "objective": 200,
                    "target_pct": 99.0,
                    "period_days": 7,
                },
            ],
        )
    )


# --- The bundled week --------------------------------------------------------------------------


def test_the_slo_the_week_burned_gets_its_alerts(demo_week: DemoWeek) -> None:
    """The p99 spike on day 2 would have paged (1h/5m and 6h/30m): that SLO, and only it,
    gets rules and a Sloth spec; the others spent under their share of the budget."""
    rules = yaml.safe_load((demo_week.out / RULES_FILE).read_text(encoding="utf-8"))
    assert [group["name"] for group in rules["groups"]] == ["tars-slo-api-gateway-latency_p99"]
    alerts = [rule for rule in rules["groups"][0]["rules"] if "alert" in rule]
    assert [alert["labels"]["severity"] for alert in alerts] == ["page", "ticket"]
    page = alerts[0]["expr"]
    assert "tars_slo:error_ratio:rate1h{" in page and "> (14.4 * 0.01)" in page
    assert "tars_slo:error_ratio:rate6h{" in page and "> (6 * 0.01)" in page
    header = (demo_week.out / RULES_FILE).read_text(encoding="utf-8").split("groups:")[0]
    assert '"api-gateway / latency_p99": burn rate above 1 on day(s) 2' in header
    assert "the 1h/5m page alert would have fired" in header

    documents = [d for d in yaml.safe_load_all((demo_week.out / SLOTH_FILE).read_text()) if d]
    assert len(documents) == 1
    spec = documents[0]
    assert spec["version"] == "prometheus/v1" and spec["service"] == "api-gateway"
    (slo,) = spec["slos"]
    assert slo["name"] == "latency_p99" and slo["objective"] == 99.0
    query = slo["sli"]["raw"]["error_ratio_query"]
    assert query.startswith("avg_over_time(((1000 * histogram_quantile(0.99,")
    assert query.endswith("> bool 200)[{{.window}}:1m])")
    assert slo["alerting"]["page_alert"]["labels"] == {"severity": "page"}
    # A 30-day SLO needs no windows file: Sloth's own catalog has the Workbook's.
    assert not list(demo_week.out.glob("GA_7DAY_SLOTH_WINDOWS_*"))


def test_the_retrospective_lists_the_new_files_in_its_metadata(demo_week: DemoWeek) -> None:
    result = demo_week.instance.get_latest_materialization_event(dg.AssetKey("retrospective"))
    assert result is not None
    metadata = result.asset_materialization.metadata
    for key in ("openmetrics", "slo_rules", "sloth_spec", "retrospective_json"):
        assert Path(metadata[key].value).is_file(), key
    assert metadata["slo_rules_slos"].value[0]["slo"] == "latency_p99"


def test_promtool_check_rules_passes_on_the_week(demo_week: DemoWeek) -> None:
    result = promtool("check", "rules", str(demo_week.out / RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_a_fast_burn_pages_and_a_healthy_service_stays_quiet(
    demo_week: DemoWeek, tmp_path: Path
) -> None:
    """The week's own rule file: p99 above 200 ms for every minute pages (and tickets: the
    longer windows see the same burn); p99 under 100 ms fires nothing."""
    rules_text = (demo_week.out / RULES_FILE).read_text(encoding="utf-8")
    series = traffic("api-gateway", 0.0, slow=True, minutes=180) + traffic(
        "checkout", 0.0, slow=False, minutes=180
    )
    expected = [("api-gateway", "latency_p99", "page"), ("api-gateway", "latency_p99", "ticket")]
    result = run_rule_tests(rules_text, tmp_path, series, expected, eval_time="2h")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_healthy_traffic_fires_nothing(demo_week: DemoWeek, tmp_path: Path) -> None:
    rules_text = (demo_week.out / RULES_FILE).read_text(encoding="utf-8")
    series = traffic("api-gateway", 0.0, slow=False, minutes=180)
    result = run_rule_tests(rules_text, tmp_path, series, [], eval_time="2h")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_slo_as_rules_page_ticket_or_stay_quiet(demo_week: DemoWeek, tmp_path: Path) -> None:
    """`exports.slo_rules: all` on the week: the events SLIs (availability, error rate from
    http_requests_total) and the time-slice one, on three services: api-gateway burns
    everything fast (half its requests fail, all slow), search burns availability at 2×
    (a ticket: 10 % of the budget in 3 days, no page), checkout is healthy."""
    rules_text = render_rules(demo_week.retrospective, demo_week.config, "all")
    rules_path = tmp_path / "all.yaml"
    rules_path.write_text(rules_text, encoding="utf-8")
    result = promtool("check", "rules", str(rules_path))
    assert result.returncode == 0, result.stdout + result.stderr
    series = (
        traffic("api-gateway", 0.5, slow=True, minutes=480)
        + traffic("search", 0.002, slow=False, minutes=480)
        + traffic("checkout", 0.0, slow=False, minutes=480)
    )
    expected = [
        ("api-gateway", slo, severity)
        for slo in ("availability", "error_rate", "latency_p99")
        for severity in ("page", "ticket")
    ] + [("search", "availability", "ticket")]
    result = run_rule_tests(rules_text, tmp_path, series, expected, eval_time="7h")
    assert result.returncode == 0, result.stdout + result.stderr


# --- Other periods, other names ----------------------------------------------------------------


def test_windows_scale_with_the_slo_period() -> None:
    thirty = [(p.severity, p.long, p.short, p.burn_rate_threshold) for p in alert_windows(30)]
    assert thirty == [
        ("page", "1h", "5m", 14.4),
        ("page", "6h", "30m", 6.0),
        ("ticket", "1d", "2h", 3.0),
        ("ticket", "3d", "6h", 1.0),
    ]
    seven = [(p.severity, p.long, p.short, p.burn_rate_threshold) for p in alert_windows(7)]
    # The windows shrink by 7/30, the factors stay; the 1m10s short window is floored at the
    # 5m rate window, the shortest range whose rate() holds two scrapes.
    assert seven == [
        ("page", "14m", "5m", 14.4),
        ("page", "1h24m", "7m", 6.0),
        ("ticket", "5h36m", "28m", 3.0),
        ("ticket", "16h48m", "1h24m", 1.0),
    ]
    assert prometheus_duration(90_061) == "1d1h1m1s"


def test_a_seven_day_slo_gets_scaled_windows_that_fire(demo_week: DemoWeek, tmp_path: Path) -> None:
    """sloth#96: a 7-day SLO. Rules and a Sloth AlertWindows spec with the scaled windows;
    a fast burn pages within the 14m/5m pair, a healthy service stays quiet."""
    config = seven_day_config(tmp_path)
    model = demo_week.retrospective
    for entry in model["slo_compliance"]:
        entry["period_days"] = 7
    rules_text = render_rules(model, config, "all")
    rules_path = tmp_path / "seven.yaml"
    rules_path.write_text(rules_text, encoding="utf-8")
    checked = promtool("check", "rules", str(rules_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "tars_slo:error_ratio:rate14m{" in rules_text
    assert "tars_slo:error_ratio:rate3d" not in rules_text

    series = traffic("api-gateway", 0.5, slow=True, minutes=120) + traffic(
        "checkout", 0.0, slow=False, minutes=120
    )
    expected = [
        ("api-gateway", slo, severity)
        for slo in ("availability", "error_rate", "latency_p99")
        for severity in ("page", "ticket")
    ]
    result = run_rule_tests(rules_text, tmp_path, series, expected, eval_time="30m")
    assert result.returncode == 0, result.stdout + result.stderr

    files = render_sloth(model, config, "all")
    windows = yaml.safe_load(files["GA_7DAY_SLOTH_WINDOWS_7d.yaml"])
    assert windows["kind"] == "AlertWindows" and windows["spec"]["sloPeriod"] == "7d"
    assert windows["spec"]["page"]["quick"] == {
        "errorBudgetPercent": 2.0,
        "shortWindow": "5m",
        "longWindow": "14m",
    }
    assert "--default-slo-period=7d" in files[SLOTH_FILE]


def test_hostile_service_names_stay_valid_rules_that_fire(
    demo_week: DemoWeek, tmp_path: Path
) -> None:
    model = renamed(demo_week.retrospective, {"api-gateway": HOSTILE})
    rules_text = render_rules(model, demo_week.config, "all")
    rules_path = tmp_path / "hostile.yaml"
    rules_path.write_text(rules_text, encoding="utf-8")
    checked = promtool("check", "rules", str(rules_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    groups = yaml.safe_load(rules_text)["groups"]
    assert {rule["labels"]["service"] for g in groups for rule in g["rules"]} >= {HOSTILE}

    series = traffic(HOSTILE, 0.5, slow=True, minutes=120)
    expected = [
        (HOSTILE, slo, severity)
        for slo in ("availability", "error_rate", "latency_p99")
        for severity in ("page", "ticket")
    ]
    result = run_rule_tests(rules_text, tmp_path, series, expected, eval_time="1h")
    assert result.returncode == 0, result.stdout + result.stderr

    sloth = render_sloth(model, demo_week.config, "all")[SLOTH_FILE]
    documents = [d for d in yaml.safe_load_all(sloth) if d]
    (hostile,) = [d for d in documents if d["labels"]["service"] == HOSTILE]
    assert hostile["service"].startswith("we-ird")  # a name Sloth accepts, made unique
    for slo in hostile["slos"]:
        queries = " ".join(value for sli in slo["sli"].values() for value in sli.values())
        # Sloth's Go template sees no brace of the name: only its own {{.window}}.
        assert queries.replace("{{.window}}", "").count("{{") == 0
        assert "\\x7b\\x7b $x \\x7d\\x7d" in queries
    # Comment lines stay comments: the name is JSON-escaped in the header.
    assert all(line.startswith("#") for line in sloth.split("---")[0].splitlines())


def test_the_default_kpis_that_are_ratios_of_counters_become_events_slis() -> None:
    availability = "100 * (1 - sum(rate(e[{rate_window}])) / sum(rate(t[{rate_window}])))"
    assert event_ratio(availability) == (
        "sum(rate(e[{rate_window}]))",
        "sum(rate(t[{rate_window}]))",
        True,
    )
    assert event_ratio(
        '100 * sum(rate(e{path="/a-b"}[{rate_window}])) / sum(rate(t[{rate_window}]))'
    ) == (
        'sum(rate(e{path="/a-b"}[{rate_window}]))',
        "sum(rate(t[{rate_window}]))",
        False,
    )
    # Not a ratio of counters over the rate window: judged step by step instead.
    assert event_ratio("100 * avg(up)") is None
    assert event_ratio("100 * a[5m] / b[5m]") is None
    assert (
        event_ratio("1000 * histogram_quantile(0.99, sum by (le) (rate(x[{rate_window}])))") is None
    )
