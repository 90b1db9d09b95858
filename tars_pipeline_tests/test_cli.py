"""The seed's commands as a user runs them: outputs, messages and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tars_pipeline.cli import commands
from tars_pipeline_tests.conftest import REPO, write_config

SCRIPTS = Path(sys.executable).parent
COMMANDS = [
    "tars-ga-kpi",
    "tars-stability-monitor",
    "tars-anomaly-detector",
    "tars-regression-analyzer",
    "tars-retro",
]


def _script(
    name: str, *args: str, cwd: Path, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_explains_its_options(name: str, tmp_path: Path) -> None:
    result = _script(name, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--config" in result.stdout and "--output-dir" in result.stdout


@pytest.mark.parametrize("name", (*COMMANDS, "tars-snapshot", "tars-store"))
def test_every_tool_prints_the_seeds_version_line(name: str, tmp_path: Path) -> None:
    result = _script(name, "--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == "T.A.R.S. Observability v1.0.2-pre (Phase 14.6)"


def test_a_missing_config_is_one_line_and_exit_2_not_a_traceback(tmp_path: Path) -> None:
    result = _script("tars-ga-kpi", cwd=tmp_path, env={"TARS_CONFIG": ""})
    assert result.returncode == 2
    assert "configuration file not found" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_an_invalid_config_names_the_field(tmp_path: Path) -> None:
    path = write_config(tmp_path, thresholds={"z_threshold": -3})
    result = _script("tars-ga-kpi", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "thresholds.z_threshold" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    write_config(tmp_path)
    return tmp_path


def _run(command, workspace: Path, *args: str) -> int:
    return command.run(["--config", str(workspace / "tars.yaml"), *args])


def test_a_day_before_the_baseline_says_to_capture_it_first(
    workspace: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _run(commands.stability_monitor, workspace, "--day-number", "2") == 2
    error = capsys.readouterr().err
    assert "no baseline for release v1.0.1" in error
    assert "tars-ga-kpi" in error
    assert not (workspace / "out" / "v1.0.1" / "day_02_summary.json").exists()


def test_days_outside_the_window_are_refused(
    workspace: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _run(commands.stability_monitor, workspace, "--day-number", "9") == 2
    assert "outside release v1.0.1's window (0..7)" in capsys.readouterr().err


def test_an_unknown_release_lists_the_known_ones(
    workspace: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _run(commands.ga_kpi, workspace, "--release", "v9") == 2
    assert "known: v1.0.1" in capsys.readouterr().err


def test_ga_day_then_a_night_then_anomalies_with_a_custom_threshold(
    workspace: Path, capsys: pytest.CaptureFixture
) -> None:
    out = workspace / "seed_out"
    assert _run(commands.ga_kpi, workspace, "--output-dir", str(out)) == 0
    assert (
        _run(commands.stability_monitor, workspace, "--day-number", "2", "--output-dir", str(out))
        == 0
    )
    printed = capsys.readouterr().out
    assert "Baseline captured for v1.0.1" in printed
    assert "v1.0.1 day 2 (2026-03-05): health" in printed
    day = json.loads((out / "day_02_summary.json").read_text())
    assert day["day"] == 2 and 0 <= day["health"]["score"] <= 100

    assert (
        _run(commands.anomaly_detector, workspace, "--z-threshold", "6", "--output-dir", str(out))
        == 0
    )
    events = json.loads((out / "anomaly_events.json").read_text())
    assert events["z_threshold"] == 6.0
    assert events["days"] and set(events["days"]) <= {0, 2}
    assert all(abs(event["peak_z"]) >= 6 for event in events["events"])


def test_fail_on_gates_a_pipeline_with_exit_3(
    workspace: Path, capsys: pytest.CaptureFixture
) -> None:
    out = ("--output-dir", str(workspace / "gate_out"))
    assert _run(commands.ga_kpi, workspace, *out, "--fail-on", "warn") == 0  # GA day passes
    # Day 2 breaches the p99 SLO: its check is an ERROR, so the day's verdict is fail.
    day_two = ("--day-number", "2", *out)
    assert _run(commands.stability_monitor, workspace, *day_two, "--fail-on", "fail") == 3
    assert "verdict: fail (slo_compliance ERROR" in capsys.readouterr().out
    assert _run(commands.stability_monitor, workspace, *day_two) == 0  # no gate, no exit 3


def test_the_detector_runs_on_any_timestamp_value_csv(tmp_path: Path) -> None:
    source = REPO.parent / "shared" / "data" / "nab" / "realAWSCloudwatch"
    source = source / "ec2_cpu_utilization_24ae8d.csv"
    if not source.exists():
        pytest.skip("the NAB data in ../shared is not beside this checkout")
    out = tmp_path / "events.json"
    result = _script(
        "tars-anomaly-detector", "--input", str(source), "--output", str(out), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert document["events"], document
    assert all(abs(event["peak_z"]) >= 3.0 for event in document["events"])


def test_retro_auto_reuses_a_fresh_regression_summary_and_only_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    release = {"name": "v1.0.1", "ga_date": "2026-03-03", "timezone": "America/New_York",
               "window_days": 1}  # fmt: skip
    write_config(tmp_path, releases=[release])
    retro = tmp_path / "out" / "v1.0.1" / "GA_7DAY_RETROSPECTIVE.json"
    assert _run(commands.ga_kpi, tmp_path) == 0
    assert _run(commands.stability_monitor, tmp_path, "--day-number", "1") == 0
    assert _run(commands.regression_analyzer, tmp_path) == 0
    capsys.readouterr()

    assert _run(commands.retro, tmp_path, "--auto") == 0
    assert "regression_summary of run" in capsys.readouterr().err
    first = json.loads(retro.read_text())

    # A day materialized again: the summary is older than its inputs, so it is recomputed.
    assert _run(commands.stability_monitor, tmp_path, "--day-number", "1") == 0
    capsys.readouterr()
    assert _run(commands.retro, tmp_path, "--auto") == 0
    assert "regression_summary of run" not in capsys.readouterr().err
    # Other settings: not reused either.
    write_config(tmp_path, releases=[release], thresholds={"p_value": 0.02})
    assert _run(commands.retro, tmp_path, "--auto") == 0
    assert "regression_summary of run" not in capsys.readouterr().err
    assert _run(commands.retro, tmp_path, "--auto") == 0
    assert "regression_summary of run" in capsys.readouterr().err

    with dg.DagsterInstance.get() as instance:
        summaries = instance.fetch_materializations(
            dg.AssetKey("regression_summary"), limit=10
        ).records
    assert len(summaries) == 3  # the analyzer's, after the re-run day, after the new settings
    assert json.loads(retro.read_text())["health_scores"] == first["health_scores"]
