"""SLOs from an OpenSLO (v1) or a Sloth (prometheus/v1) file instead of tars.yaml's list.

The default SLOs (availability 99.9 % and error rate 99 % of requests, p99 <= 200 ms in 99 %
of the minutes, 30 days) written both ways must give the same SLOs, and the same SLO
results on the bundled week, as the tars.yaml list; the Sloth spec TARS writes for burned
SLOs reads back as those SLOs; and a spec TARS cannot follow is refused naming the file
and the SLO.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tars_pipeline.config import default_slos, load_config
from tars_pipeline.errors import TarsUserError
from tars_pipeline_tests.conftest import DemoWeek, run_the_week, week_runner, write_config

OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: availability}
spec:
  service: checkout
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: availability}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(ok[5m]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(all[5m]))'}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  objectives: [{displayName: good requests, target: 0.999}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: error_rate}
spec:
  service: checkout
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: errors}
    spec:
      ratioMetric:
        counter: true
        bad: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(err[5m]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(all[5m]))'}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  objectives: [{target: 0.99}]
---
apiVersion: openslo/v1
kind: SLI
metadata:
  name: p99
  labels: {tars_kpi: [latency_p99]}
spec:
  thresholdMetric:
    metricSource: {type: Prometheus, spec: {query: 'histogram_quantile(0.99, x)'}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: latency_p99}
spec:
  service: checkout
  budgetingMethod: Timeslices
  indicatorRef: p99
  timeWindow: [{duration: 30d, isRolling: true}]
  objectives: [{op: lte, value: 200, target: 0.99, timeSliceTarget: 0.99, timeSliceWindow: 1m}]
"""


def sloth_spec(service: str, *, availability: float = 99.9) -> dict:
    return {
        "version": "prometheus/v1",
        "service": service,
        "slos": [
            {
                "name": "availability",
                "objective": availability,
                "sli": {"events": {"error_query": "e", "total_query": "t"}},
            },
            {
                "name": "requests-errors",
                "objective": 99.0,
                "labels": {"slo": "error_rate", "tars_kpi": "error_rate"},
                "sli": {"raw": {"error_ratio_query": "r"}},
            },
            {
                "name": "latency_p99",
                "objective": 99.0,
                "labels": {"tars_objective": "200"},
                "sli": {"raw": {"error_ratio_query": "p"}},
            },
        ],
    }


def _config_with(folder: Path, name: str, text: str, **overrides: object):
    (folder / name).write_text(text, encoding="utf-8")
    return load_config(write_config(folder, slo_file=name, **overrides))


def test_an_openslo_file_gives_the_default_slos(tmp_path: Path) -> None:
    config = _config_with(tmp_path, "slos.yaml", OPENSLO)
    assert config.slos == tuple(default_slos())
    assert config.slo_file == tmp_path / "slos.yaml"


def test_a_sloth_file_of_three_services_gives_the_default_slos_once(tmp_path: Path) -> None:
    text = yaml.safe_dump_all([sloth_spec(s) for s in ("api-gateway", "checkout", "search")])
    assert _config_with(tmp_path, "sloth.yaml", text).slos == tuple(default_slos())


def test_periods_other_than_30_days_are_read(tmp_path: Path) -> None:
    config = _config_with(tmp_path, "slos.yaml", OPENSLO.replace("duration: 30d", "duration: 1w"))
    assert {slo.period_days for slo in config.slos} == {7}
    spec = sloth_spec("checkout")
    spec["slos"][0]["labels"] = {"tars_period_days": "14"}
    assert _config_with(tmp_path, "sloth.yaml", yaml.safe_dump(spec)).slos[0].period_days == 14


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            yaml.safe_dump_all([sloth_spec("a"), sloth_spec("b", availability=99.5)]),
            ["service b, slos[0]", "defined twice with different settings"],
        ),
        (
            OPENSLO.replace("op: lte", "op: gte"),
            ["SLO latency_p99", "op gte", "latency_p99 is lower_is_better"],
        ),
        (
            OPENSLO.replace("tars_kpi: [latency_p99]", "tars_kpi: [latency_p42]"),
            ["SLO latency_p99", "'latency_p42' is not a KPI of the catalog"],
        ),
        (
            OPENSLO.replace("metadata: {name: error_rate}", "metadata: {name: errs}"),
            ["SLO errs", "which KPI does this SLO judge", "tars_kpi"],
        ),
        (
            OPENSLO.replace("duration: 30d", "duration: 36h", 1),
            ["SLO availability", "'36h' is not whole days"],
        ),
        ("kind: Service\nname: x\n", ["neither OpenSLO", "nor Sloth"]),
        (OPENSLO.replace("target: 0.999", "target: .nan"), ["must be finite"]),
    ],
)
def test_specs_tars_cannot_follow_are_refused_naming_the_slo(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    with pytest.raises(TarsUserError) as error:
        _config_with(tmp_path, "slos.yaml", text)
    message = str(error.value)
    assert str(tmp_path / "slos.yaml") in message
    for fragment in fragments:
        assert fragment in message


def test_a_missing_file_and_both_places_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TarsUserError, match="SLO spec file not found"):
        load_config(write_config(tmp_path, slo_file="nope.yaml"))
    (tmp_path / "slos.yaml").write_text(OPENSLO, encoding="utf-8")
    both = write_config(
        tmp_path,
        slo_file="slos.yaml",
        slos=[{"name": "a", "kpi": "availability", "target_pct": 99.0}],
    )
    with pytest.raises(TarsUserError, match="both slos and slo_file"):
        load_config(both)


def test_the_sloth_spec_tars_writes_reads_back_as_its_slos(
    demo_week: DemoWeek, tmp_path: Path
) -> None:
    written = (demo_week.out / "GA_7DAY_SLOTH.yaml").read_text(encoding="utf-8")
    config = _config_with(tmp_path, "sloth.yaml", written)
    judged = {row["slo"] for row in demo_week.retrospective["slo_compliance"]}
    assert config.slos and {slo.name for slo in config.slos} <= judged
    defaults = {slo.name: slo for slo in default_slos()}
    for slo in config.slos:
        assert slo == defaults[slo.name]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["openslo", "sloth"])
def test_a_spec_file_drives_the_week_to_the_same_slo_results(
    demo_week: DemoWeek, tmp_path: Path, kind: str
) -> None:
    text = (
        OPENSLO
        if kind == "openslo"
        else yaml.safe_dump_all([sloth_spec(s) for s in ("api-gateway", "checkout", "search")])
    )
    config = _config_with(tmp_path, "slos.yaml", text)
    with week_runner(tmp_path, config) as (runner, _instance):
        run_the_week(runner)
    ours = json.loads(
        (tmp_path / "out" / "v1.0.1" / "GA_7DAY_RETROSPECTIVE.json").read_text(encoding="utf-8")
    )
    assert ours["slo_compliance"] == demo_week.retrospective["slo_compliance"]
    assert ours["verdict"] == demo_week.retrospective["verdict"]
