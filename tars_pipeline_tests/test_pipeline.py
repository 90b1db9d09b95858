"""The whole graph on a real Dagster instance and a real DuckDB file: the bundled week.

Reads like the SRE's week: GA day, seven nightly summaries, then the Day-7 regression
analysis and retrospective — and checks what they would read in it (SPEC §5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tars_pipeline.cli.runner import Runner
from tars_pipeline.config import TarsConfig
from tars_pipeline.partitions import release_day_key
from tars_pipeline.reporting.retrospective import SECTIONS
from tars_pipeline.store import partition_row_counts
from tars_pipeline_tests.conftest import DAILY, DEMO_RELEASE, DemoWeek

pytestmark = pytest.mark.slow


@dataclass
class Week:
    config: TarsConfig
    runner: Runner
    instance: dg.DagsterInstance
    out: Path

    def read_json(self, name: str) -> dict:
        return json.loads((self.out / DEMO_RELEASE / name).read_text(encoding="utf-8"))

    def row_counts(self) -> dict[str, int]:
        with duckdb.connect(str(self.config.store_file), read_only=True) as conn:
            return partition_row_counts(conn, DEMO_RELEASE)


@pytest.fixture
def week(demo_week: DemoWeek) -> Week:
    """The session's demo week (re-running its days here must leave every output as it was:
    the golden-output test may read them afterwards)."""
    return Week(demo_week.config, demo_week.runner, demo_week.instance, demo_week.folder / "out")


def test_every_partition_is_materialized_in_the_instance(week: Week) -> None:
    days = {str(release_day_key(DEMO_RELEASE, day)) for day in range(8)}
    for asset in DAILY:
        assert week.instance.get_materialized_partitions(dg.AssetKey(asset)) == days
    baseline = week.instance.get_materialized_partitions(dg.AssetKey("baseline"))
    assert baseline == {str(release_day_key(DEMO_RELEASE, 0))}
    for asset in ("regression_summary", "retrospective"):
        assert week.instance.get_materialized_partitions(dg.AssetKey(asset)) == {DEMO_RELEASE}


def test_every_cli_run_is_a_named_job_the_ui_can_re_execute(week: Week) -> None:
    runs = list(reversed(week.instance.get_runs()))[:9]  # the week's, before any re-run
    jobs = [run.job_name for run in runs]
    # GA day (samples, anomalies, baseline, summary) is one run; then one run per night.
    assert jobs == ["__ASSET_JOB", *["tars_day"] * 7, "tars_close"]
    assert {run.remote_job_origin.location_name for run in runs} == {"tars"}


def test_the_seed_outputs_are_written(week: Week) -> None:
    names = {path.name for path in (week.out / DEMO_RELEASE).iterdir()}
    expected = {
        "ga_kpi_summary.json",
        "anomaly_events.json",
        "regression_summary.json",
        "GA_7DAY_RETROSPECTIVE.md",
        "GA_7DAY_RETROSPECTIVE.json",
        *(f"day_{day:02d}_summary.json" for day in range(8)),
    }
    assert expected <= names
    assert not [name for name in names if name.endswith(".tmp")]


def test_rematerializing_a_day_neither_duplicates_nor_loses_rows(week: Week) -> None:
    before = week.row_counts()
    assert before["samples"] > 0 and before["drift"] > 0
    release = week.config.release(DEMO_RELEASE)
    week.runner.day(release, 3, DAILY)
    week.runner.release_level(release, ("baseline",))
    assert week.row_counts() == before


def test_the_baseline_is_the_ga_day(week: Week) -> None:
    summary = week.read_json("ga_kpi_summary.json")
    assert summary["day"] == 0
    rows = {(r["service"], r["kpi"]): r for r in summary["baseline"]}
    assert rows[("api-gateway", "latency_p99")]["mean"] == pytest.approx(150.0, abs=0.05)
    assert rows[("api-gateway", "cpu_utilization")]["mean"] == pytest.approx(45.2, abs=0.05)
    assert rows[("checkout", "error_rate")]["mean"] == pytest.approx(0.05, abs=0.0005)
    assert rows[("api-gateway", "latency_p99")]["sample_count"] == 1440


def test_day_two_shows_the_latency_regression_in_its_drift_and_health(week: Week) -> None:
    day2 = week.read_json("day_02_summary.json")
    drift = {(r["service"], r["kpi"]): r for r in day2["drift"]}
    p99 = drift[("api-gateway", "latency_p99")]
    assert p99["drift_pct"] == pytest.approx(20.0, abs=0.1)
    assert p99["flagged"] is True
    assert day2["health"]["score"] < week.read_json("day_01_summary.json")["health"]["score"]
    assert 0 <= day2["health"]["score"] <= 100


def test_the_retrospective_has_the_seven_sections_in_order(week: Week) -> None:
    text = (week.out / DEMO_RELEASE / "GA_7DAY_RETROSPECTIVE.md").read_text(encoding="utf-8")
    positions = [text.find(f"## {n}. {title}") for n, title in enumerate(SECTIONS, start=1)]
    assert -1 not in positions, positions
    assert positions == sorted(positions)


def test_the_retrospective_json_carries_the_contract_keys(week: Week) -> None:
    retro = week.read_json("GA_7DAY_RETROSPECTIVE.json")
    for key in (
        "schema_version", "release", "window", "health_scores", "successes", "degradations",
        "unexpected_drifts", "anomalies", "cost_analysis", "slo_compliance",
        "recommendations", "action_items",
    ):  # fmt: skip
        assert key in retro, key
    assert [h["day"] for h in retro["health_scores"]] == list(range(8))
    assert {"day", "score", "band", "contributions"} <= set(retro["health_scores"][0])
    for item in retro["action_items"]:
        assert item["priority"] in {"P0", "P1", "P2", "P3"}
        assert item["description"] and item["done"] is False
    cost = retro["cost_analysis"]
    assert {
        "ga_day_cost",
        "daily_average",
        "change_pct",
        "by_resource",
        "projected_monthly",
    } <= set(cost)


def test_the_week_tells_the_seed_story(week: Week) -> None:
    retro = week.read_json("GA_7DAY_RETROSPECTIVE.json")
    degradations = {(d["service"], d["kpi"]): d for d in retro["degradations"]}
    p99 = degradations[("api-gateway", "latency_p99")]
    assert (p99["severity"], p99["day_first"]) == ("high", 2)
    assert p99["baseline"] == pytest.approx(150.0, abs=0.1)
    assert p99["observed"] == pytest.approx(180.0, abs=0.1)
    errors = degradations[("checkout", "error_rate")]
    assert (errors["severity"], errors["day_first"]) == ("medium", 4)
    assert errors["observed"] == pytest.approx(0.08, abs=0.001)

    drifts = {(u["service"], u["kpi"]): u for u in retro["unexpected_drifts"]}
    cpu = drifts[("api-gateway", "cpu_utilization")]
    assert cpu["change_pct"] == pytest.approx(15.7, abs=0.1)
    assert cpu["trend"] == "increasing"
    assert drifts[("search", "memory_utilization")]["trend"] == "volatile"

    successes = {(s["service"], s["kpi"]): s for s in retro["successes"]}
    availability = successes[("api-gateway", "availability")]
    assert availability["achievement_pct"] == pytest.approx(100.05, abs=0.01)

    cost = retro["cost_analysis"]
    assert cost["daily_average"] == pytest.approx(336.0, abs=0.5)
    assert cost["change_pct"] == pytest.approx(12.0, abs=0.2)

    priorities = [rec["priority"] for rec in retro["recommendations"]]
    assert "P1" in priorities and "P3" in priorities
    assert len(retro["recommendations"]) <= 10


def test_day_two_checks_warn_on_p99_drift_and_error_on_the_breached_slo(week: Week) -> None:
    release = week.config.release(DEMO_RELEASE)
    result = week.runner.day(release, 2, DAILY)
    failed = {check.check_name: check for check in week.runner.failed_checks(result)}
    assert failed["slo_compliance"].severity == dg.AssetCheckSeverity.ERROR
    assert "latency_p99 on api-gateway" in failed["slo_compliance"].description
    drift = failed["drift_within_threshold"]
    assert drift.severity == dg.AssetCheckSeverity.WARN
    assert "Latency p99 on api-gateway" in drift.description
    assert "data_completeness" not in failed
    # Day 1: only search's volatile memory (+12 %) is out of its band.
    day_one = week.runner.day(release, 1, DAILY)
    (check,) = week.runner.failed_checks(day_one)
    assert check.check_name == "drift_within_threshold"
    assert check.description == "drifted beyond threshold: Memory utilisation on search"
