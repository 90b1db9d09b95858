"""Bad input, table-driven: every case a clear message naming the file, field or flag and
the fix, exit 2 (the user's to fix) or 1 (operational), no traceback, and the store,
the reports and the snapshot byte for byte as they were.

Each case starts from a copy of one finished GA day (store, reports, a writable copy of the
bundled snapshot), breaks one thing (a setting in tars.yaml, a flag, a data file) and runs
the command as its console script does (`entry(argv)`), in-process for speed: argparse's
own exit is caught as the status it is.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from tars_pipeline.cli import commands, snapshot, store
from tars_pipeline.config import CONFIG_ENV_VAR, load_config
from tars_pipeline.store_parquet import ParquetStore
from tars_pipeline_tests.conftest import DEMO_RELEASE, GA_DAY, SNAPSHOT, week_runner

pytestmark = pytest.mark.slow

RELEASE = {
    "name": DEMO_RELEASE,
    "ga_date": "2026-03-03",
    "timezone": "America/New_York",
    "window_days": 2,
}
TOOLS: dict[str, Callable[[list[str]], int]] = {
    "tars-ga-kpi": commands.ga_kpi.run,
    "tars-stability-monitor": commands.stability_monitor.run,
    "tars-anomaly-detector": commands.anomaly_detector.run,
    "tars-regression-analyzer": commands.regression_analyzer.run,
    "tars-retro": commands.retro.run,
    "tars-snapshot": snapshot.main,
    "tars-store": store.main,
}


@dataclass
class Folder:
    """One case's copy of the finished GA day."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "tars.yaml"

    @property
    def data(self) -> Path:
        return self.root / "snapshot" / DEMO_RELEASE

    def settings(self) -> dict[str, Any]:
        return yaml.safe_load(self.config.read_text(encoding="utf-8"))

    def write(self, settings: Any) -> None:
        self.config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")

    def edit(self, change: Callable[[dict[str, Any]], Any]) -> None:
        settings = self.settings()
        change(settings)
        self.write(settings)

    def frame(self, day: str) -> Any:
        with duckdb.connect() as conn:
            return conn.execute("SELECT * FROM read_parquet(?)", [str(self.data / day)]).df()

    def write_frame(self, day: str, frame: Any, select: str = "*") -> None:
        with duckdb.connect() as conn:
            conn.register("frame", frame)
            target = str(self.data / day)
            conn.execute(f"COPY (SELECT {select} FROM frame) TO '{target}' (FORMAT parquet)")


@dataclass
class Case:
    id: str
    argv: list[str]  # the tool, then its arguments; {config} and {root} are filled in
    expect_exit: int
    says: tuple[str, ...]  # fragments the message must hold (the where, and the what)
    breaks: Callable[[Folder], None] = field(default=lambda folder: None)


def setting(path: str, value: Any) -> Callable[[Folder], None]:
    """Set `path` (dotted; `releases.0.x` indexes a list) in tars.yaml."""

    def change(settings: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = settings
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return lambda folder: folder.edit(change)


def raw_config(text: str) -> Callable[[Folder], None]:
    return lambda folder: folder.config.write_text(text, encoding="utf-8")


def manifest(change: Callable[[dict[str, Any]], Any]) -> Callable[[Folder], None]:
    def apply(folder: Folder) -> None:
        path = folder.data / "manifest.json"
        body = json.loads(path.read_text(encoding="utf-8"))
        change(body)
        path.write_text(json.dumps(body), encoding="utf-8")

    return apply


def truncate(day: str) -> Callable[[Folder], None]:
    def apply(folder: Folder) -> None:
        path = folder.data / day
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return apply


def rewrite(day: str, select: str) -> Callable[[Folder], None]:
    return lambda folder: folder.write_frame(day, folder.frame(day), select)


def duplicated(day: str) -> Callable[[Folder], None]:
    """Five rows of `day` written twice (a file exported twice over)."""

    def apply(folder: Folder) -> None:
        frame = folder.frame(day)
        folder.write_frame(day, pd.concat([frame, frame.head(5)], ignore_index=True))

    return apply


def csv(text: str) -> Callable[[Folder], None]:
    return lambda folder: (folder.root / "series.csv").write_text(text, encoding="utf-8")


def series_csv(folder: Folder) -> None:
    stamps = pd.date_range("2026-01-01", periods=200, freq="min", tz="UTC")
    values = np.random.default_rng(0).random(200)
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": values}).to_csv(
        folder.root / "series.csv", index=False
    )


def both(*changes: Callable[[Folder], None]) -> Callable[[Folder], None]:
    def apply(folder: Folder) -> None:
        for change in changes:
            change(folder)

    return apply


GA = ["tars-ga-kpi", "--config", "{config}"]
DAY1 = ["tars-stability-monitor", "--config", "{config}", "--day-number", "1"]
ANOMALY = ["tars-anomaly-detector", "--config", "{config}"]
CSV = ["tars-anomaly-detector", "--input", "{root}/series.csv"]
PROMETHEUS = {"type": "prometheus", "url": "http://127.0.0.1:1", "retries": 0}

# fmt: off
CASES = [
    # --- tars.yaml: the file itself ------------------------------------------------------
    Case("config-missing", ["tars-ga-kpi", "--config", "{root}/nope.yaml"], 2,
         ("nope.yaml",)),
    Case("config-not-yaml", GA, 2, ("tars.yaml", "YAML"), raw_config("releases: [\n  - {")),
    Case("config-a-list", GA, 2, ("tars.yaml", "mapping"), raw_config("- 1\n- 2\n")),
    Case("config-empty", GA, 2, ("tars.yaml",), raw_config("")),
    Case("unknown-top-level-key", GA, 2, ("threshold",), setting("threshold", {"z": 3})),
    Case("unknown-threshold-key", GA, 2, ("z_treshold",), setting("thresholds.z_treshold", 3)),
    Case("releases-missing", GA, 2, ("releases",),
         lambda f: f.edit(lambda s: s.pop("releases"))),
    Case("releases-empty", GA, 2, ("releases",), setting("releases", [])),
    Case("release-name-path", GA, 2, ("name",), setting("releases.0.name", "../v1")),
    Case("ga-date-invalid", GA, 2, ("ga_date",), setting("releases.0.ga_date", "2026-13-01")),
    Case("timezone-unknown", GA, 2, ("timezone", "Mars/Olympus"),
         setting("releases.0.timezone", "Mars/Olympus")),
    Case("window-days-zero", GA, 2, ("window_days",), setting("releases.0.window_days", 0)),
    Case("window-days-too-long", GA, 2, ("window_days",),
         setting("releases.0.window_days", 31)),
    Case("release-duplicate", GA, 2, ("duplicate release",),
         lambda f: f.edit(lambda s: s["releases"].append(dict(s["releases"][0])))),
    Case("reference-after-ga", GA, 2, ("reference_date",),
         setting("releases.0.reference_date", "2026-03-05")),
    Case("step-zero", GA, 2, ("step_seconds",), setting("step_seconds", 0)),
    Case("step-not-a-number", GA, 2, ("step_seconds",), setting("step_seconds", "fast")),
    Case("z-threshold-nan", GA, 2, ("z_threshold", "finite"),
         setting("thresholds.z_threshold", float("nan"))),
    Case("z-threshold-inf", GA, 2, ("z_threshold", "finite"),
         setting("thresholds.z_threshold", float("inf"))),
    Case("z-threshold-negative", GA, 2, ("z_threshold",), setting("thresholds.z_threshold", -3)),
    Case("drift-pct-inf", GA, 2, ("drift_pct",), setting("thresholds.drift_pct", float("inf"))),
    Case("severity-z-negative", GA, 2, ("anomaly_severity_z",),
         setting("thresholds.anomaly_severity_z", {"medium": -4})),
    Case("severity-z-out-of-order", GA, 2, ("anomaly_severity_z", "medium ≤ high"),
         setting("thresholds.anomaly_severity_z", {"medium": 8, "high": 6})),
    Case("severity-z-unknown", GA, 2, ("anomaly_severity_z", "severe"),
         setting("thresholds.anomaly_severity_z", {"severe": 8})),
    Case("bands-negative", GA, 2, ("bands",), setting("health.bands", {"healthy": -1})),
    Case("bands-over-100", GA, 2, ("bands",), setting("health.bands", {"great": 120})),
    Case("bands-empty", GA, 2, ("bands", "at least one"), setting("health.bands", {})),
    Case("penalty-negative", GA, 2, ("incident_penalty",),
         setting("health.incident_penalty", {"high": -3})),
    Case("penalty-cap-over-100", GA, 2, ("anomaly_penalty_cap",),
         setting("health.anomaly_penalty_cap", 250)),
    Case("kind-weight-unknown", GA, 2, ("incident_kind_weight", "users"),
         setting("health.incident_kind_weight", {"users": 1})),
    Case("cost-days-per-month-zero", GA, 2, ("days_per_month",),
         setting("cost.days_per_month", 0)),
    Case("slo-unknown-kpi", GA, 2, ("slos", "latency_p42"),
         setting("slos", [{"name": "x", "kpi": "latency_p42", "target_pct": 99}])),
    Case("slo-target-100", GA, 2, ("target_pct",),
         setting("slos", [{"name": "x", "kpi": "availability", "target_pct": 100}])),
    Case("slo-threshold-without-objective", GA, 2, ("objective",),
         setting("slos", [{"name": "x", "kpi": "latency_p99", "sli": "threshold",
                           "target_pct": 99}])),
    Case("kpi-name-invalid", GA, 2, ("kpis", "name"),
         setting("kpis", [{"name": "P99 latency", "title": "x", "query": "up"}])),
    Case("kpi-direction-unknown", GA, 2, ("direction",),
         setting("kpis", [{"name": "latency_p99", "direction": "up_is_good"}])),
    Case("maintenance-naive", GA, 2, ("maintenance_windows", "UTC offset"),
         setting("maintenance_windows",
                 [{"start": "2026-03-03T02:00:00", "end": "2026-03-03T03:00:00"}])),
    Case("maintenance-backwards", GA, 2, ("maintenance_windows", "after start"),
         setting("maintenance_windows",
                 [{"start": "2026-03-03T03:00:00Z", "end": "2026-03-03T02:00:00Z"}])),
    Case("github-repository-invalid", GA, 2, ("repository",),
         setting("notifications", {"github": {"repository": "not a repo"}})),
    Case("source-type-unknown", GA, 2, ("source",), setting("source", {"type": "graphite"})),
    Case("source-url-no-scheme", GA, 2, ("url", "http"),
         setting("source", {**PROMETHEUS, "url": "prometheus:9090"})),
    Case("source-url-credentials", GA, 2, ("url", "credentials"),
         setting("source", {**PROMETHEUS, "url": "http://u:hunter22@127.0.0.1:1"})),
    Case("source-header-authorization", GA, 2, ("headers", "Authorization"),
         setting("source", {**PROMETHEUS, "headers": {"Authorization": "Bearer x"}})),
    Case("source-retries-negative", GA, 2, ("retries",),
         setting("source", {**PROMETHEUS, "retries": -1})),
    Case("snapshot-folder-missing", GA, 2, ("manifest.json", "source.path"),
         setting("source.path", "/nonexistent/snapshot")),
    Case("data-dir-a-file", GA, 2, ("data_dir", "cannot write"),
         lambda f: (f.edit(lambda s: s.update(data_dir=str(f.root / "afile"))),
                    (f.root / "afile").write_text("x"))),
    Case("output-dir-a-file", GA, 2, ("output_dir", "cannot write"),
         lambda f: (f.edit(lambda s: s.update(output_dir=str(f.root / "afile" / "out"))),
                    (f.root / "afile").write_text("x"))),
    # --- flags ---------------------------------------------------------------------------
    Case("flag-z-nan", [*ANOMALY, "--z-threshold", "nan"], 2, ("--z-threshold", "finite")),
    Case("flag-z-inf", [*ANOMALY, "--z-threshold", "inf"], 2, ("--z-threshold", "finite")),
    Case("flag-z-negative", [*ANOMALY, "--z-threshold", "-3"], 2, ("--z-threshold", "> 0")),
    Case("flag-z-text", [*ANOMALY, "--z-threshold", "high"], 2, ("--z-threshold", "'high'")),
    Case("flag-day-negative", [*DAY1[:-1], "-1"], 2, ("--day-number", "≥ 0")),
    Case("flag-day-outside-window", [*DAY1[:-1], "9"], 2, ("--day-number", "0 and 2")),
    Case("flag-day-text", [*DAY1[:-1], "one"], 2, ("--day-number",)),
    Case("flag-release-unknown", [*GA, "--release", "v9"], 2, ("v9",)),
    Case("flag-output-dir-a-file", [*GA, "--output-dir", "{root}/afile/out"], 2,
         ("--output-dir", "cannot write"), lambda f: (f.root / "afile").write_text("x")),
    Case("flag-prometheus-url-ftp", [*GA, "--prometheus-url", "ftp://x"], 2,
         ("--prometheus-url", "http")),
    Case("flag-prometheus-url-password", [*GA, "--prometheus-url", "http://u:hunter22@h:1"], 2,
         ("--prometheus-url", "credentials")),
    Case("flag-fail-on-unknown", [*GA, "--fail-on", "sometimes"], 2, ("--fail-on",)),
    Case("flag-unknown", [*GA, "--z-treshold", "3"], 2, ("--z-treshold",)),
    Case("csv-span-one", [*CSV, "--span", "1"], 2, ("--span", "≥ 2"), series_csv),
    Case("csv-warmup-negative", [*CSV, "--warmup", "-1"], 2, ("--warmup",), series_csv),
    Case("csv-min-change-negative", [*CSV, "--min-change-pct", "-5"], 2, ("--min-change-pct",),
         series_csv),
    Case("csv-input-missing", CSV, 2, ("series.csv", "not found")),
    Case("csv-no-columns", CSV, 2, ("series.csv", "timestamp, value"), csv("a,b\n1,2\n")),
    Case("csv-bad-timestamp", CSV, 2, ("series.csv", "ISO 8601", "line 2"),
         csv("timestamp,value\nyesterday,1\n")),
    Case("csv-text-value", CSV, 2, ("series.csv", "finite", "line 2"),
         csv("timestamp,value\n2026-01-01T00:00:00Z,abc\n")),
    Case("csv-inf-value", CSV, 2, ("series.csv", "finite", "line 2"),
         csv("timestamp,value\n2026-01-01T00:00:00Z,inf\n")),
    Case("csv-output-unwritable", [*CSV, "--output", "{root}/afile/events.json"], 2,
         ("--output", "cannot write"),
         both(series_csv, lambda f: (f.root / "afile").write_text("x"))),
    Case("store-migrate-missing", ["tars-store", "migrate", "--config", "{config}", "--from",
                                   "{root}/old.duckdb"], 2, ("--from", "old.duckdb")),
    Case("snapshot-day-negative", ["tars-snapshot", "--config", "{config}", "--day", "-1"], 2,
         ("--day",)),
    # --- data files ----------------------------------------------------------------------
    Case("manifest-missing", GA, 2, ("manifest.json",),
         lambda f: (f.data / "manifest.json").unlink()),
    Case("manifest-not-json", GA, 2, ("manifest.json", "JSON"),
         lambda f: (f.data / "manifest.json").write_text("{")),
    Case("manifest-wrong-format", GA, 2, ("manifest.json", "format"),
         manifest(lambda m: m.update(format="csv-dump"))),
    Case("manifest-other-step", GA, 2, ("manifest.json", "step_seconds: 30"),
         manifest(lambda m: m.update(step_seconds=30))),
    Case("parquet-truncated", GA, 2, ("2026-03-03.parquet", "truncated"),
         truncate("2026-03-03.parquet")),
    Case("parquet-not-parquet", GA, 2, ("2026-03-03.parquet",),
         lambda f: (f.data / "2026-03-03.parquet").write_text("service,kpi\n")),
    Case("ts-without-timezone", GA, 2, ("2026-03-03.parquet", "time zone"),
         rewrite("2026-03-03.parquet", "service, kpi, CAST(ts AS TIMESTAMP) AS ts, value")),
    Case("value-column-missing", GA, 2, ("2026-03-03.parquet", "value"),
         rewrite("2026-03-03.parquet", "service, kpi, ts")),
    Case("value-column-text", GA, 2, ("2026-03-03.parquet", "not a number"),
         rewrite("2026-03-03.parquet", "service, kpi, ts, CAST(value AS VARCHAR) AS value")),
    Case("duplicate-timestamps", GA, 2, ("5 duplicate sample", "one row per"),
         duplicated("2026-03-03.parquet")),
    Case("no-samples-for-the-day", GA, 2, ("no samples",),
         lambda f: f.write_frame("2026-03-03.parquet", f.frame("2026-03-03.parquet").head(0))),
    # --- the source ----------------------------------------------------------------------
    Case("prometheus-refused", GA, 2, ("connection refused", "source.url"),
         setting("source", PROMETHEUS)),
    Case("prometheus-dns", GA, 2, ("cannot resolve", "no-such-host.invalid"),
         setting("source", {**PROMETHEUS, "url": "http://no-such-host.invalid:9090"})),
]
# fmt: on


def _fingerprint(root: Path) -> dict[str, str]:
    """Every file of the store, the reports and the snapshot, by content."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for part in ("data", "out", "snapshot")
        for path in sorted((root / part).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def finished_ga_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """GA day of the bundled week, run on a copy of its snapshot."""
    root = tmp_path_factory.mktemp("bad_input")
    shutil.copytree(SNAPSHOT, root / "snapshot")
    settings = {
        "data_dir": "data",
        "output_dir": "out",
        "source": {"type": "snapshot", "path": "snapshot"},
        "releases": [RELEASE],
    }
    Folder(root).write(settings)
    config = load_config(root / "tars.yaml")
    with week_runner(root, config) as (runner, _instance):
        runner.day(config.release(DEMO_RELEASE), 0, GA_DAY)
    yield root


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_clearly_and_changes_nothing(
    case: Case,
    finished_ga_day: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "case"
    shutil.copytree(finished_ga_day, root, ignore=shutil.ignore_patterns("dagster_home"))
    with ParquetStore(root / "data" / "store") as moved:  # a moved store: what a run does
        moved.refresh_catalog(root / "data" / "tars.duckdb")
    monkeypatch.setenv("DAGSTER_HOME", str(finished_ga_day / "dagster_home"))
    monkeypatch.setenv(CONFIG_ENV_VAR, str(root / "tars.yaml"))  # restored after the case
    monkeypatch.chdir(root)
    folder = Folder(root)
    case.breaks(folder)
    before = _fingerprint(root)

    tool, *args = (part.format(config=folder.config, root=root) for part in case.argv)
    try:
        status = TOOLS[tool](args)
    except SystemExit as exit_:  # argparse refuses a flag by exiting
        status = exit_.code
    out, err = capsys.readouterr()

    assert status == case.expect_exit, err
    assert "Traceback" not in out + err
    message = err.lower()
    missing = [fragment for fragment in case.says if fragment.lower() not in message]
    assert not missing, f"{missing} not in: {err}"
    assert _fingerprint(root) == before


def test_the_table_covers_every_class() -> None:
    """At least 60 cases: config, flags, data files and the source."""
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)
