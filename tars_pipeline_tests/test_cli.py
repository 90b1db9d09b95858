"""The seed's commands as a user runs them: outputs, messages and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tars_pipeline.cli import commands
from tars_pipeline.cli.output import Finding, days_text, group_findings
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


def test_the_detector_reuses_the_events_the_monitor_just_detected_and_only_those(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    release = {"name": "v1.0.1", "ga_date": "2026-03-03", "timezone": "America/New_York",
               "window_days": 2}  # fmt: skip
    write_config(tmp_path, releases=[release])
    events = tmp_path / "out" / "v1.0.1" / "anomaly_events.json"
    assert _run(commands.ga_kpi, tmp_path) == 0
    for day in ("1", "2"):
        assert _run(commands.stability_monitor, tmp_path, "--day-number", day) == 0
    detected = json.loads(events.read_text())

    def detector(*args: str) -> tuple[dict, str]:
        capsys.readouterr()
        assert _run(commands.anomaly_detector, tmp_path, "--json", *args) == 0
        captured = capsys.readouterr()
        return json.loads(captured.out), captured.err

    def runs() -> int:
        with dg.DagsterInstance.get() as instance:
            return len(instance.fetch_materializations(dg.AssetKey("anomaly_events"), 100).records)

    made = runs()
    document, err = detector("--z-threshold", "3.0")  # the default, spelled out: the same
    assert set(document["reused_from"]) == {"0", "1", "2"} and document["runs"] == []
    assert "Days 0-2: events up to date" in err and runs() == made
    assert document["events"] == len(detected["events"])
    assert json.loads(events.read_text()) == detected

    # Another threshold is another result: every day runs, and the next default run too.
    document, _ = detector("--z-threshold", "4")
    assert document["reused_from"] == {} and len(document["runs"]) == 3
    document, _ = detector()
    assert document["reused_from"] == {} and runs() == made + 6
    assert json.loads(events.read_text())["events"] == detected["events"]

    # Day 1 monitored again: its samples and events are new, so day 2's events (day 1 is
    # their warm-up) are older than their inputs and run again; GA day and day 1 are reused.
    assert _run(commands.stability_monitor, tmp_path, "--day-number", "1") == 0
    document, _ = detector()
    assert set(document["reused_from"]) == {"0", "1"}
    assert [run["partition"] for run in document["runs"]] == ["day_02|v1.0.1"]
    document, _ = detector("--recompute")
    assert document["reused_from"] == {} and len(document["runs"]) == 3


# --- The conventions every tool shares (docs/cli.md), on the real console scripts ----------

TOOLS = (*COMMANDS, "tars-snapshot", "tars-store")
# A colour SGR sequence (foreground or background); bold and dim are styles, not colour.
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def _json(result: subprocess.CompletedProcess) -> dict:
    """stdout is exactly one JSON object, on one line."""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, (result.stdout[-2000:], result.stderr[-2000:])
    document = json.loads(lines[0])
    assert isinstance(document, dict)
    assert document["exit_code"] == result.returncode
    assert document["ok"] is (result.returncode == 0)
    return document


def _imported(name: str, *args: str, cwd: Path) -> set[str]:
    """The modules a console script imports to answer `args` (python -X importtime)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(SCRIPTS / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


@pytest.mark.parametrize("name", TOOLS)
def test_help_and_version_stay_cheap(name: str, tmp_path: Path) -> None:
    """--help and --version load neither Dagster nor pandas (start-up in tenths of a second)."""
    for args in (("--help",), ("--version",)):
        modules = _imported(name, *args, cwd=tmp_path)
        heavy = sorted(m for m in modules if m.split(".")[0] in {"dagster", "pandas", "duckdb"})
        assert not heavy, (name, args, heavy[:5])


def test_the_csv_mode_loads_neither_dagster_nor_the_report_stack(tmp_path: Path) -> None:
    """The detector on a file: no Dagster, DuckDB, config models, SciPy's signal package
    (a small job runs the recursions as a loop), charts or templates."""
    csv = tmp_path / "series.csv"
    start = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
    rows = [f"{(start + dt.timedelta(minutes=n)).isoformat()},{10 + n % 3}" for n in range(300)]
    csv.write_text("timestamp,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "events.json"
    modules = _imported(
        "tars-anomaly-detector", "--input", str(csv), "--output", str(out), cwd=tmp_path
    )
    assert out.is_file()
    heavy = sorted(
        m
        for m in modules
        if m.split(".")[0] in {"dagster", "duckdb", "pydantic", "jinja2", "matplotlib"}
        or m.startswith("scipy.signal")
    )
    assert not heavy, heavy[:5]


@pytest.mark.parametrize("name", TOOLS)
def test_every_tool_documents_the_output_options_and_exit_codes(name: str, tmp_path: Path) -> None:
    args = ("migrate", "--help") if name == "tars-store" else ("--help",)
    result = _script(name, *args, cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--json", "--quiet", "--verbose", "--no-color", "Exit status: 0 ok"):
        assert option in result.stdout, (name, option)
    version = _json(_script(name, "--version", "--json", cwd=tmp_path))
    assert version["version_line"] == "T.A.R.S. Observability v1.0.2-pre (Phase 14.6)"


def test_names_spelled_in_the_cli_are_the_configs_and_the_judges() -> None:
    from tars_pipeline import config
    from tars_pipeline.cli import snapshot, store
    from tars_pipeline.judge import checks

    assert commands.CONFIG_ENV_VAR == snapshot.CONFIG_ENV_VAR == store.CONFIG_ENV_VAR
    assert commands.CONFIG_ENV_VAR == config.CONFIG_ENV_VAR
    assert (commands.COMPLETENESS_CHECK, commands.SLO_CHECK, commands.DRIFT_CHECK) == (
        checks.COMPLETENESS_CHECK,
        checks.SLO_CHECK,
        checks.DRIFT_CHECK,
    )


def test_days_are_written_as_ranges() -> None:
    assert days_text([2]) == "day 2"
    assert days_text([3, 4, 5, 6, 7]) == "days 3-7"
    assert days_text([1, 3, 5, 7]) == "days 1, 3, 5, 7"
    assert days_text([0, 1, 2, 4, 5]) == "days 0-2, 4-5"


def test_a_repeated_finding_is_grouped_once_with_its_days_errors_first() -> None:
    cost = Finding("WARN", "drift_within_threshold", "Compute cost on api-gateway")
    slo = Finding("ERROR", "slo_compliance", "latency_p99 on api-gateway")
    grouped = group_findings([(3, cost), (4, cost), (2, slo), (5, cost)])
    assert grouped == [(slo, [2]), (cost, [3, 4, 5])]


@pytest.fixture(scope="module")
def one_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A 1-day window (GA day and day 1) on the bundled week, with its own instance and
    GA day's baseline."""
    folder = tmp_path_factory.mktemp("one_day")
    release = {"name": "v1.0.1", "ga_date": "2026-03-03", "timezone": "America/New_York",
               "window_days": 1}  # fmt: skip
    write_config(folder, releases=[release])
    env = {"DAGSTER_HOME": str(folder / "dagster_home"), "TARS_CONFIG": str(folder / "tars.yaml")}
    ga_day = _script("tars-ga-kpi", "-q", cwd=folder, env=env)  # the baseline every test needs
    assert ga_day.returncode == 0, ga_day.stderr[-2000:]
    return folder, env


@pytest.mark.slow
def test_every_command_answers_json_and_keeps_its_human_text_on_stderr(one_day) -> None:
    folder, env = one_day
    steps = [
        ("tars-ga-kpi", ()),
        ("tars-stability-monitor", ("--day-number", "1")),
        ("tars-anomaly-detector", ()),
        ("tars-regression-analyzer", ()),
        ("tars-retro", ("--auto",)),
    ]
    documents = {}
    for name, args in steps:
        result = _script(name, "--json", *args, cwd=folder, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        document = documents[name] = _json(result)
        assert document["command"] == name and document["release"] == "v1.0.1"
        assert document["outputs"] and all(Path(path).is_file() for path in document["outputs"])
        assert document["verdict"]["status"] in {"pass", "warn", "fail"}
        # The runs it made, to look up; the detector reuses the monitor's fresh events.
        made = [run["run_id"] for run in document["runs"]]
        assert made or set(document.get("reused_from") or {}) == {"0", "1"}
        # Not a TTY: progress is plain lines, no colour anywhere.
        assert ("✓ v1.0.1" in result.stderr) is bool(made)
        assert not COLOUR.search(result.stderr + result.stdout)
    ga, day, anomalies = (documents[n] for n in ("tars-ga-kpi", "tars-stability-monitor",
                                                  "tars-anomaly-detector"))  # fmt: skip
    assert ga["series"] == 36 and ga["samples"] > 0
    assert day["day"] == 1 and 0 <= day["health"]["score"] <= 100
    drift = next(check for check in day["checks"] if check["check"] == "drift_within_threshold")
    assert day["kpis_beyond_threshold"] == len(drift["findings"]) == 1
    assert anomalies["days"] == [0, 1] and anomalies["events"] == sum(
        anomalies["by_severity"].values()
    )
    retro = documents["tars-retro"]
    assert {Path(path).name for path in retro["outputs"]} == {
        "GA_7DAY_RETROSPECTIVE.md", "GA_7DAY_RETROSPECTIVE.json", "GA_7DAY_RETROSPECTIVE.html"
    }  # fmt: skip
    assert (
        retro["regression_summary_reused_from"]
        == documents["tars-regression-analyzer"]["runs"][0]["run_id"]
    )


@pytest.mark.slow
def test_quiet_prints_nothing_and_verbose_names_the_runs_and_passed_checks(one_day) -> None:
    folder, env = one_day
    quiet = _script("tars-stability-monitor", "-q", "--day-number", "1", cwd=folder, env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "" and quiet.stderr == ""
    gated = _script("tars-stability-monitor", "-q", "--day-number", "1", "--fail-on", "warn",
                    cwd=folder, env=env)  # fmt: skip
    assert (gated.returncode, gated.stdout, gated.stderr) == (3, "", "")

    verbose = _script("tars-stability-monitor", "-v", "--day-number", "1", cwd=folder, env=env)
    assert verbose.returncode == 0
    assert re.search(
        r"  run [0-9a-f-]{36} \(tars_day, day_01\|v1\.0\.1\): [0-9.]+ s", verbose.stdout
    )
    assert "  pass data_completeness: all 36 series complete" in verbose.stdout
    assert "  pass slo_compliance:" in verbose.stdout


@pytest.mark.slow
def test_errors_are_one_json_object_with_the_documented_exit_status(
    one_day, tmp_path: Path
) -> None:
    folder, env = one_day
    missing = _script("tars-ga-kpi", "--json", cwd=tmp_path, env={"TARS_CONFIG": ""})
    error = _json(missing)["error"]
    assert missing.returncode == 2 and error["kind"] == "user_error"
    assert "configuration file not found" in error["message"] and "error:" in missing.stderr

    usage = _script("tars-stability-monitor", "--json", "--day-number", "x", cwd=folder, env=env)
    assert usage.returncode == 2 and _json(usage)["error"]["kind"] == "usage"
    assert "usage:" in usage.stderr

    snapshot = _script("tars-snapshot", "--json", "--day", "0", cwd=folder, env=env)
    assert snapshot.returncode == 2
    assert "reads from Prometheus" in _json(snapshot)["error"]["message"]
    store = _script("tars-store", "--json", "migrate", cwd=folder, env=env)
    # Nothing to migrate (the store is already Parquet, or there is none yet): refused.
    assert store.returncode == 2 and _json(store)["error"]["kind"] == "user_error"

    gate = _script("tars-stability-monitor", "--json", "--day-number", "1", "--fail-on", "warn",
                   cwd=folder, env=env)  # fmt: skip
    assert gate.returncode == 3
    assert _json(gate)["verdict"] == {
        "status": "warn",
        "reasons": "drift_within_threshold WARN",
        "fail_on": "warn",
        "gate_reached": True,
    }


@pytest.mark.slow
def test_a_failed_run_exits_1_and_ctrl_c_exits_130(one_day, tmp_path: Path) -> None:
    folder, env = one_day
    # A webhook nobody listens on: the notifications fail, so the close run fails.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    notifying = yaml.safe_load((folder / "tars.yaml").read_text(encoding="utf-8"))
    notifying["notifications"] = {"webhook": {}, "retries": 0, "timeout_seconds": 2}
    config = tmp_path / "tars.yaml"
    config.write_text(yaml.safe_dump(notifying), encoding="utf-8")
    hook = {**env, "TARS_CONFIG": str(config), "TARS_WEBHOOK_URL": f"http://127.0.0.1:{closed}/"}
    failed = _script("tars-retro", "--json", "--auto", cwd=folder, env=hook)
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert _json(failed)["error"]["kind"] == "run_failed"
    assert "Traceback" not in failed.stderr

    # Ctrl-C while a run is going (a fresh week): 130, not the 1 of a failed run.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    process = subprocess.Popen(
        [str(SCRIPTS / "tars-retro"), "--json", "--auto"],
        cwd=fresh,
        env={
            **os.environ,
            "DAGSTER_HOME": str(fresh / "home"),
            "TARS_CONFIG": str(write_config(fresh)),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:  # plain progress: "… v1.0.1 day 0/7: ..." as a run starts
        if line.startswith("… v1.0.1 day 1/7"):
            break
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, (stdout[-2000:], stderr[-2000:])
    assert json.loads(stdout)["error"]["kind"] == "interrupted"
    assert "error: interrupted" in stderr and "Traceback" not in stderr


@pytest.mark.slow
def test_a_week_prints_each_warning_once_with_its_days_and_counts_what_it_prints(
    tmp_path: Path,
) -> None:
    """tars-retro --auto on the bundled week: the cost drift of every night from day 3 is
    one line "(days 3-7)", not five; a day's counts are the lines printed under it."""
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "TARS_CONFIG": str(write_config(tmp_path))}
    week = _script("tars-retro", "--auto", "--json", cwd=tmp_path, env=env)
    assert week.returncode == 0, week.stderr[-2000:]
    lines = [line for line in week.stderr.splitlines() if line.startswith("  WARN ")
             or line.startswith("  ERROR ")]  # fmt: skip
    assert len(lines) == len(set(lines))  # each finding once
    assert (
        "  WARN drift_within_threshold: Compute cost on api-gateway, checkout, search (days 3-7)"
        in lines
    )
    assert "  ERROR slo_compliance: latency_p99 on api-gateway (day 2)" in lines
    assert lines[0].startswith("  ERROR ")  # errors first
    document = _json(week)
    assert document["filled"] == {"baseline": True, "days": list(range(8))}
    findings = {(c["check"], line) for c in document["checks"] for line in c["findings"]}
    assert len(lines) == len(findings)  # every distinct finding of the week is printed

    day = _script("tars-stability-monitor", "--day-number", "3", cwd=tmp_path, env=env)
    assert day.returncode == 0, day.stderr[-2000:]
    header, *rest = day.stdout.splitlines()
    drifted = int(re.search(r"(\d+) KPIs? beyond threshold", header).group(1))
    breaches = int(re.search(r"(\d+) SLO breach", header).group(1))
    assert drifted == sum(line.startswith("  WARN drift_within_threshold: ") for line in rest) == 5
    assert breaches == sum(line.startswith("  ERROR slo_compliance: ") for line in rest) == 0


def _on_a_terminal(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run `command` with stdout and stderr on a pseudo-terminal; its exit status and all
    it wrote there."""
    import pty
    import select

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **env}, stdin=follower, stdout=follower,
        stderr=follower, close_fds=True,
    )  # fmt: skip
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=300)
    os.close(leader)
    return process.returncode, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_a_terminal_gets_colour_and_a_spinner_unless_no_color(one_day) -> None:
    folder, env = one_day
    command = [str(SCRIPTS / "tars-stability-monitor"), "--day-number", "1"]
    env = {**env, "NO_COLOR": "", "TERM": "xterm-256color"}  # empty NO_COLOR: colour on
    status, screen = _on_a_terminal(command, folder, env)
    assert status == 0, screen[-2000:]
    assert "\x1b[33mWARN\x1b[0m drift_within_threshold: Memory utilisation on search" in screen
    assert "\x1b[?25l" in screen  # rich hides the cursor for its spinner...
    assert re.search(r"✓\S* v1\.0\.1 day 1/1: kpi_samples, anomaly_events, daily_summary", screen)
    assert "… v1.0.1 day 1/1" not in screen  # ...instead of the plain lines of a log

    for plain in ({**env, "NO_COLOR": "1"}, None):
        args = command if plain else [*command, "--no-color"]
        status, screen = _on_a_terminal(args, folder, plain or env)
        assert status == 0, screen[-2000:]
        assert not COLOUR.search(screen), repr(COLOUR.search(screen))
        assert "  WARN drift_within_threshold: Memory utilisation on search" in screen
