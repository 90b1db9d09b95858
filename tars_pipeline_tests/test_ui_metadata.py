"""What the Dagster UI shows for a day, from a real run on a real instance: check names that
fit, the severity written out, one finding per failing KPI or SLO, and no flat plots.

The UI plots every numeric metadata entry of an asset across its materializations; a
number that is the same on every day (a setting, a count of configured series) draws a flat
line nobody needs. Those go in as text. The screenshot test of the checks tab is in
test_ui.py.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from tars_pipeline.assets.checks import DAY_CHECKS, SAMPLE_CHECKS
from tars_pipeline.config import load_config
from tars_pipeline.definitions import defs
from tars_pipeline_tests.conftest import DAILY, DEMO_RELEASE, GA_DAY, week_runner, write_config

pytestmark = pytest.mark.slow

# Whole words, short enough for the checks tab's name column (the UI cuts longer names in
# the middle of a word).
LONGEST_CHECK_NAME = 22
NUMERIC = (dg.IntMetadataValue, dg.FloatMetadataValue)


def test_check_names_are_short_whole_words_and_say_their_severity() -> None:
    specs = [spec for asset in defs.assets for spec in asset.check_specs]
    assert {spec.name for spec in specs} == set(SAMPLE_CHECKS) | set(DAY_CHECKS)
    for spec in specs:
        assert len(spec.name) <= LONGEST_CHECK_NAME, spec.name
        assert spec.description.startswith(("ERROR when", "WARN when")), spec.description
        assert spec.metadata["severity_on_failure"] in {"ERROR", "WARN", "ERROR or WARN"}


def test_a_day_shows_severity_findings_and_no_constant_plots(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    release = config.release(DEMO_RELEASE)
    with week_runner(tmp_path, config) as (runner, _instance):
        runner.day(release, 0, GA_DAY)
        days = {day: runner.day(release, day, DAILY) for day in (2, 3)}

    checks = {check.check_name: check for check in runner.checks(days[2])}
    slo, drift = checks["slo_compliance"], checks["drift_within_threshold"]
    assert slo.metadata["severity"].value == "ERROR"
    assert drift.metadata["severity"].value == "WARN"
    assert checks["data_completeness"].metadata["severity"].value == "passed"
    assert slo.metadata["findings"].value == ["latency_p99 on api-gateway"]
    assert drift.metadata["findings"].value == ["Latency p99 on api-gateway"]
    # One finding per KPI beyond its threshold, its services on the line.
    day_three = {check.check_name: check for check in runner.checks(days[3])}
    findings = day_three["drift_within_threshold"].metadata["findings"].value
    assert day_three["drift_within_threshold"].metadata["kpis_beyond_threshold"].value == len(
        findings
    )
    assert "Compute cost on api-gateway, checkout, search" in findings

    # Numbers that would plot flat are text: the same on both days, never a plot.
    for asset in ("kpi_samples", "anomaly_events", "daily_summary"):
        first, second = (runner.metadata(days[day], asset) for day in (2, 3))
        raw = {
            event.event_specific_data.materialization.asset_key.path[-1]: event
            for event in days[2].get_asset_materialization_events()
        }[asset].event_specific_data.materialization.metadata
        for key, value in raw.items():
            if isinstance(value, NUMERIC) and first[key] == second[key]:
                assert key in MOVING, (asset, key, first[key])
    for check in runner.checks(days[2]):
        numbers = [k for k, v in check.metadata.items() if isinstance(v, NUMERIC)]
        assert "series" not in numbers and "day" not in numbers


# Numeric entries that happen to be equal on days 2 and 3 of the demo but move in general.
MOVING = {
    "rows",
    "completeness_pct",
    "missing_series",
    "incomplete_series",
    "slo_breaches",
    "samples_dropped",
    "samples_in_maintenance",
    "events",
    "anomalies",
    "flagged_kpis",
    "cost_usd",
    "health_score",
}
