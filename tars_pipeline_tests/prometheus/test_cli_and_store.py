"""The seed's `tars-ga-kpi --prometheus-url`, the snapshot exporter, and what a failed
fetch leaves in the store (nothing), against the real Prometheus."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from tars_pipeline.cli import commands
from tars_pipeline.cli import snapshot as exporter
from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG, Progress, Runner
from tars_pipeline.config import load_config
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources.snapshot import SnapshotSource
from tars_pipeline_tests.conftest import DEMO_RELEASE, SNAPSHOT, write_config
from tars_pipeline_tests.prometheus.conftest import TIMEZONE, PrometheusServer, free_port

pytestmark = pytest.mark.slow


def _release(server: PrometheusServer, **extra: object) -> dict:
    return {
        "name": DEMO_RELEASE,
        "ga_date": server.ga_date.isoformat(),
        "timezone": TIMEZONE,
        "window_days": 7,
        **extra,
    }


def _prometheus_source(server: PrometheusServer) -> dict:
    return {
        "type": "prometheus",
        "url": server.url,
        "rate_window": "1m",
        "retries": 1,
        "retry_backoff_seconds": 0.01,
    }


# --- tars-ga-kpi --prometheus-url ---------------------------------------------------


@pytest.fixture
def seed_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prometheus_server: PrometheusServer
) -> Path:
    """./tars.yaml whose source is an (empty) snapshot folder, as a fresh clone has."""
    (tmp_path / "no_snapshot").mkdir()
    write_config(
        tmp_path,
        source={"type": "snapshot", "path": str(tmp_path / "no_snapshot")},
        releases=[_release(prometheus_server)],
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TARS_CONFIG", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return tmp_path


def test_tars_ga_kpi_prometheus_url_works_as_the_seed_shows(
    seed_folder: Path, prometheus_server: PrometheusServer, capsys: pytest.CaptureFixture
) -> None:
    assert commands.ga_kpi.run([]) == 2  # the config's own source has no data
    assert "no snapshot for release" in capsys.readouterr().err

    assert commands.ga_kpi.run(["--prometheus-url", prometheus_server.url]) == 0
    out = capsys.readouterr().out
    assert "Baseline captured for v1.0.1" in out and "36 series, 51840 samples" in out
    summary = json.loads(
        (seed_folder / "out" / DEMO_RELEASE / "ga_kpi_summary.json").read_text(encoding="utf-8")
    )
    rows = {(row["service"], row["kpi"]): row for row in summary["baseline"]}
    # With the default 5m rate window each value pools five minutes of requests (a p99 of
    # pooled histograms is not the mean of per-minute p99s): close to the seed, not exact.
    assert rows[("api-gateway", "latency_p99")]["mean"] == pytest.approx(150.0, rel=0.01)
    assert rows[("checkout", "error_rate")]["mean"] == pytest.approx(0.05, rel=0.01)


def test_an_unreachable_prometheus_url_is_one_message_and_exit_2(
    seed_folder: Path, capsys: pytest.CaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert commands.ga_kpi.run(["-q", "--prometheus-url", url]) == 2  # -q: no progress lines
    err = capsys.readouterr().err
    assert err.startswith("error: source.url / --prometheus-url: cannot connect to Prometheus")
    assert "Traceback" not in err and "Stack Trace" not in err


def test_a_terminal_gets_one_line_per_kpi_fetch(
    seed_folder: Path,
    prometheus_server: PrometheusServer,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    url = ["--prometheus-url", prometheus_server.url]
    assert commands.anomaly_detector.run([*url, "--day-number", "3"]) == 0
    lines = [line.strip() for line in capsys.readouterr().err.splitlines()]
    assert "… day 3: availability (1/12)" in lines
    assert "… day 3: latency_p99 (6/12)" in lines and "… day 3: cost_network (12/12)" in lines

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert commands.anomaly_detector.run([*url, "--day-number", "4"]) == 0
    assert "… day 4:" not in capsys.readouterr().err  # quiet into a pipe or a log file


# --- Nothing is written for a failed fetch ------------------------------------------


def _runner(folder: Path, data_dir: Path, **overrides: object) -> Runner:
    folder.mkdir()
    config = load_config(write_config(folder, data_dir=str(data_dir), **overrides))
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    return Runner(config, instance=instance, progress=Progress(enabled=False))


def _rows(store: Path) -> pd.DataFrame:
    with duckdb.connect(str(store), read_only=True) as conn:
        return conn.execute("SELECT day, service, kpi, ts, value FROM samples ORDER BY ALL").df()


def test_a_failed_fetch_leaves_the_store_as_it_was(
    tmp_path: Path, prometheus_server: PrometheusServer
) -> None:
    data_dir = tmp_path / "shared_data"
    common = {"source": _prometheus_source(prometheus_server)}
    good = _runner(tmp_path / "good", data_dir, releases=[_release(prometheus_server)], **common)
    release = good.config.release(DEMO_RELEASE)
    good.day(release, 0, ("kpi_samples",))
    before = _rows(good.config.store_file)
    assert set(before["day"]) == {0} and len(before) == 3 * 12 * 1440

    broken_kpi = {
        "name": "queue_depth",
        "title": "Queue depth",
        "unit": "jobs",
        "direction": "lower_is_better",
        "kind": "resource",
        "query": 'sum(jobs_queued{service="{service}"}',
    }
    broken = _runner(
        tmp_path / "broken",
        data_dir,
        releases=[_release(prometheus_server)],
        kpis=[broken_kpi],
        **common,
    )
    for day in (0, 1):  # re-running a stored day, and a new day
        with pytest.raises(TarsUserError, match=r"kpis\[queue_depth\]\.query.*parse error"):
            broken.day(release, day, ("kpi_samples",))
    pd.testing.assert_frame_equal(_rows(good.config.store_file), before)


def test_required_kpis_without_data_fail_the_day_others_are_reported(
    tmp_path: Path, prometheus_server: PrometheusServer
) -> None:
    missing = {
        "name": "queue_depth",
        "title": "Queue depth",
        "unit": "jobs",
        "direction": "lower_is_better",
        "kind": "resource",
        "query": 'sum(jobs_queued{service="{service}"})',
    }
    data_dir = tmp_path / "data"
    strict = _runner(
        tmp_path / "strict",
        data_dir,
        source=_prometheus_source(prometheus_server),
        releases=[_release(prometheus_server)],
        kpis=[{**missing, "fail_on_missing_data": True}],
    )
    release = strict.config.release(DEMO_RELEASE)
    with pytest.raises(TarsUserError) as failure:
        strict.day(release, 2, ("kpi_samples",))
    assert "api-gateway/queue_depth (0 %)" in str(failure.value)
    assert "kpis[].fail_on_missing_data" in str(failure.value)
    assert strict.config.store_file.exists() is False or _rows(strict.config.store_file).empty

    lenient = _runner(
        tmp_path / "lenient",
        data_dir,
        source=_prometheus_source(prometheus_server),
        releases=[_release(prometheus_server)],
        kpis=[missing],
    )
    result = lenient.day(release, 2, ("kpi_samples",))
    meta = lenient.metadata(result, "kpi_samples")
    assert meta["missing_series"] == 3 and meta["incomplete_series"] == 0
    rows = _rows(lenient.config.store_file)
    assert "queue_depth" not in set(rows["kpi"])  # reported missing, not filled with zeros


# --- tars-snapshot ------------------------------------------------------------------


def test_tars_snapshot_exports_days_that_replay_as_the_bundled_snapshot(
    tmp_path: Path, prometheus_server: PrometheusServer, capsys: pytest.CaptureFixture
) -> None:
    config_path = write_config(
        tmp_path,
        source=_prometheus_source(prometheus_server),
        releases=[_release(prometheus_server)],
    )
    out = tmp_path / "exported"
    args = ["--config", str(config_path), "--output-dir", str(out), "--day", "0", "--day", "5"]
    assert exporter.main(args) == 0
    assert "Exported v1.0.1 day(s) 0, 5: 101520 samples, 3 service(s)" in capsys.readouterr().out

    folder = out / DEMO_RELEASE
    dates = [prometheus_server.release.day_date(day).isoformat() for day in (0, 5)]
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [*(f"{date}.parquet" for date in dates), "manifest.json"]
    )
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "tars-snapshot" and manifest["format_version"] == 1
    assert manifest["services"] == ["api-gateway", "checkout", "search"]
    assert manifest["exported_from"] == prometheus_server.url
    assert manifest["completeness_pct"] == {"0": 100.0, "5": 100.0}

    # Replayed through the snapshot source, the export is the bundled week (shifted back).
    replay = prometheus_server.release
    bundled = replay.model_copy(update={"ga_date": dt.date(2026, 3, 3)})
    kpis = load_config(config_path).kpis
    for day in (0, 5):
        ours = SnapshotSource(out).fetch_day(replay, *replay.day_bounds(day), kpis, 60).samples
        theirs = SnapshotSource(SNAPSHOT).fetch_day(bundled, *bundled.day_bounds(day), kpis, 60)
        assert len(ours) == len(theirs.samples) == 3 * 12 * (1380 if day == 5 else 1440)
        pd.testing.assert_frame_equal(
            ours.assign(ts=ours["ts"] - prometheus_server.shift),
            theirs.samples,
            check_exact=False,
            rtol=1e-9,
            check_dtype=False,
        )


def test_tars_snapshot_needs_a_prometheus(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config_path = write_config(tmp_path)
    assert exporter.main(["--config", str(config_path), "--day", "0"]) == 2
    assert "tars-snapshot reads from Prometheus" in capsys.readouterr().err


def test_tars_snapshot_refuses_days_outside_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config_path = write_config(tmp_path)
    args = ["--config", str(config_path), "--prometheus-url", "http://p:9090", "--day", "9"]
    assert exporter.main(args) == 2
    assert "--day: day 9 is outside" in capsys.readouterr().err


def test_nothing_is_exported_before_ga_day_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()
    config_path = write_config(tmp_path, releases=[{"name": "v2", "ga_date": tomorrow}])
    assert exporter.main(["--config", str(config_path), "--prometheus-url", "http://p:9090"]) == 2
    assert "no day of release v2 has ended yet" in capsys.readouterr().err
