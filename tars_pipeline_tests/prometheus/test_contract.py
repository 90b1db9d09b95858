"""The contract (SPEC §5): the week read from a real Prometheus gives the same answers as the
week read from the snapshot files.

Both weeks run the real graph the way test_pipeline.py does (Runner on a temporary Dagster
instance and a temporary DuckDB file): GA day, the baseline, seven nightly summaries, then
the Day-7 regression analysis and retrospective. The Prometheus week is the snapshot's week
backfilled as raw series (counters, a latency histogram, gauges) and read back through the
default KPI catalog's PromQL, with rate windows of one scrape interval (1m).

Tolerances, stated once (docs/prometheus.md repeats them):
- samples: relative difference <= 1e-9. The counters and histogram buckets are built so
  that rate() and histogram_quantile's interpolation land on the snapshot's values; what
  remains is float64 rounding (146.69999999999985 for 146.7), worst on latency_p99.
- statistics derived from them (baseline, daily statistics, drifts, health scores, SLO
  and cost figures, anomaly z-scores, every number in the retrospective): relative
  difference <= 1e-6 (absolute 1e-9 near zero); a standard deviation of nearly constant
  values magnifies the samples' 1e-9.
- rank statistics (Mann-Whitney U, its effect size): relative difference <= 1e-4. The
  snapshot's values are rounded to dashboard precision, so many baseline and day samples
  tie exactly; the same values out of PromQL differ in the last bits, which splits a few
  of those ties. The p-values, and every decision taken on them, are the same.
- everything discrete (which KPI-days are degradations, severity, first day, status,
  unexpected drifts and trends, anomaly events, bands, recommendations, action items):
  identical.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from tars_pipeline.config import TarsConfig, load_config
from tars_pipeline_tests.conftest import (
    DEMO_RELEASE,
    DemoWeek,
    run_the_week,
    week_runner,
    write_config,
)
from tars_pipeline_tests.prometheus.conftest import TIMEZONE, PrometheusServer

pytestmark = pytest.mark.slow

SAMPLE_REL_TOLERANCE = 1e-9
DERIVED_REL_TOLERANCE = 1e-6
RANK_REL_TOLERANCE = 1e-4
RANK_STATISTICS = {"u_statistic", "effect_size"}
ABS_TOLERANCE = 1e-9
MEASURED: dict[str, float] = {}  # worst relative difference per table / document, for -s
NOT_COMPARED = {"generated_at", "exported_at"}  # wall-clock times of the run itself
SOURCE_SPECIFIC = {"contributors", "why"}
"""A degradation's label breakdown is re-queried from Prometheus; the snapshot has no
breakdown files, so it has none (and its why-lines lack the headline): checked apart."""


@dataclass
class Week:
    config: TarsConfig
    out: Path
    shift: dt.timedelta

    def retrospective(self) -> dict:
        path = self.out / DEMO_RELEASE / "GA_7DAY_RETROSPECTIVE.json"
        return json.loads(path.read_text(encoding="utf-8"))

    def table(self, name: str, order: list[str]) -> pd.DataFrame:
        with duckdb.connect(str(self.config.store_file), read_only=True) as conn:
            frame = conn.execute(
                f"SELECT * EXCLUDE (release) FROM {name} ORDER BY {', '.join(order)}"
            ).df()
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column] - self.shift
        return frame


def run_week(folder: Path, config_path: Path, shift: dt.timedelta) -> Week:
    config = load_config(config_path)
    with week_runner(folder, config) as (runner, _instance):
        run_the_week(runner)
    return Week(config, folder / "out", shift)


@pytest.fixture(scope="module")
def weeks(
    prometheus_server: PrometheusServer,
    tmp_path_factory: pytest.TempPathFactory,
    demo_week: DemoWeek,
) -> Iterator[tuple[Week, Week]]:
    # The snapshot side is the session's demo week: the same graph on the bundled files.
    snapshot = Week(demo_week.config, demo_week.folder / "out", dt.timedelta(0))
    prometheus_folder = tmp_path_factory.mktemp("prometheus_week")
    config_path = write_config(
        prometheus_folder,
        source={
            "type": "prometheus",
            "url": prometheus_server.url,
            "rate_window": "1m",  # the week was scraped every 60 s
            "retries": 1,
            "retry_backoff_seconds": 0.05,
        },
        releases=[
            {
                "name": DEMO_RELEASE,
                "ga_date": prometheus_server.ga_date.isoformat(),
                "timezone": TIMEZONE,
                "window_days": 7,
                # no services: they are discovered from http_requests_total
            }
        ],
    )
    prometheus = run_week(prometheus_folder, config_path, prometheus_server.shift)
    yield snapshot, prometheus


def relative_difference(ours: pd.Series, theirs: pd.Series) -> float:
    gap = (ours - theirs).abs()
    scale = theirs.abs().where(theirs.abs() > ABS_TOLERANCE, 1.0)
    worst = (gap.where(gap > ABS_TOLERANCE, 0.0) / scale).max()
    return 0.0 if pd.isna(worst) else float(worst)


def assert_frames_close(name: str, ours: pd.DataFrame, theirs: pd.DataFrame, rtol: float) -> None:
    """Same rows and columns; floats within `rtol` (and ABS_TOLERANCE), the rest equal."""
    assert list(ours.columns) == list(theirs.columns), name
    assert len(ours) == len(theirs), name
    worst = 0.0
    for column in ours.columns:
        left, right = ours[column], theirs[column]
        if pd.api.types.is_float_dtype(left):
            assert (left.isna() == right.isna()).all(), f"{name}.{column}: NaN pattern"
            worst = max(worst, relative_difference(left, right))
        else:
            pd.testing.assert_series_equal(left, right, check_dtype=False, obj=f"{name}.{column}")
    MEASURED[name] = worst
    assert worst <= rtol, f"{name}: worst relative difference {worst:.3g} > {rtol:g}"


# --- The store ----------------------------------------------------------------------


def test_every_sample_of_the_week_is_the_same(weeks: tuple[Week, Week]) -> None:
    snapshot, prometheus = weeks
    order = ["day", "service", "kpi", "ts"]
    ours, theirs = prometheus.table("samples", order), snapshot.table("samples", order)
    assert len(ours) == 8 * 3 * 12 * 1440 - 3 * 12 * 60  # the DST day is 23 hours
    assert_frames_close("samples", ours, theirs, SAMPLE_REL_TOLERANCE)
    coverage = prometheus.table("coverage", ["day", "service", "kpi"])
    assert (coverage["points"] == coverage["expected_points"]).all()


def test_the_baseline_is_the_same(weeks: tuple[Week, Week]) -> None:
    snapshot, prometheus = weeks
    for table, order in (
        ("baseline_stats", ["service", "kpi"]),
        ("baseline_profile", ["service", "kpi", "hour"]),
    ):
        assert_frames_close(
            table,
            prometheus.table(table, order),
            snapshot.table(table, order),
            DERIVED_REL_TOLERANCE,
        )


def test_the_drifts_health_slo_and_cost_of_every_day_are_the_same(
    weeks: tuple[Week, Week],
) -> None:
    snapshot, prometheus = weeks
    for table, order in (
        ("daily_stats", ["day", "service", "kpi"]),
        ("drift", ["day", "service", "kpi", "statistic"]),
        ("health", ["day"]),
        ("health_contributions", ["day", "service", "kpi"]),
        ("slo_daily", ["day", "service", "slo"]),
        ("cost_daily", ["day", "service", "resource_type"]),
        ("anomaly_events", ["day", "service", "kpi", "start"]),
    ):
        assert_frames_close(
            table,
            prometheus.table(table, order),
            snapshot.table(table, order),
            DERIVED_REL_TOLERANCE,
        )


# --- The retrospective --------------------------------------------------------------

DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[+-]\d{2}:\d{2}|Z)?)?")


def unshift_text(text: str, shift: dt.timedelta) -> str:
    """Dates and timestamps in `text` moved back by `shift` (the Prometheus week's move)."""

    def back(match: re.Match[str]) -> str:
        stamp = match.group(0)
        if "T" not in stamp:
            return (dt.date.fromisoformat(stamp) - shift).isoformat()
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) - shift
        shown = moment.isoformat()
        return shown.replace("+00:00", "Z") if stamp.endswith("Z") else shown

    return DATE.sub(back, text) if shift else text


def differences(ours: Any, theirs: Any, shift: dt.timedelta, path: str = "") -> list[str]:
    """Where two JSON documents differ, beyond float rounding and the date shift."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if set(ours) != set(theirs):
            return [f"{path}: keys {sorted(set(ours) ^ set(theirs))}"]
        return [
            problem
            for key in ours
            if key not in NOT_COMPARED and key not in SOURCE_SPECIFIC
            for problem in differences(ours[key], theirs[key], shift, f"{path}.{key}")
        ]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{path}: {len(ours)} items vs {len(theirs)}"]
        return [
            problem
            for index, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for problem in differences(a, b, shift, f"{path}[{index}]")
        ]
    if isinstance(ours, float | int) and isinstance(theirs, float | int):
        if isinstance(ours, bool) or isinstance(theirs, bool):
            return [] if ours == theirs else [f"{path}: {ours!r} vs {theirs!r}"]
        key = path.rsplit(".", 1)[-1]
        kind = "retrospective (rank statistics)" if key in RANK_STATISTICS else "retrospective"
        if abs(ours - theirs) > ABS_TOLERANCE:
            gap = abs(ours - theirs) / (abs(theirs) or 1.0)
            MEASURED[kind] = max(MEASURED.get(kind, 0.0), gap)
        rtol = RANK_REL_TOLERANCE if key in RANK_STATISTICS else DERIVED_REL_TOLERANCE
        if math.isclose(ours, theirs, rel_tol=rtol, abs_tol=ABS_TOLERANCE):
            return []
        return [f"{path}: {ours!r} vs {theirs!r}"]
    if isinstance(ours, str) and isinstance(theirs, str):
        return [] if unshift_text(ours, shift) == theirs else [f"{path}: {ours!r} vs {theirs!r}"]
    return [] if ours == theirs else [f"{path}: {ours!r} vs {theirs!r}"]


def test_the_retrospective_is_the_same_document(weeks: tuple[Week, Week]) -> None:
    snapshot, prometheus = weeks
    problems = differences(
        prometheus.retrospective(), snapshot.retrospective(), prometheus.shift, "retro"
    )
    assert not problems, "\n".join(problems[:20])
    # The Prometheus week breaks each degradation down by the labels its series carry.
    # (The bundled week's error series carry `code`; its latency histograms only `le`.)
    ours = {d["kpi"]: d["contributors"] for d in prometheus.retrospective()["degradations"]}
    assert ours["error_rate"] is not None
    assert ours["error_rate"]["dimensions"][0]["dimension"] == "code"
    assert all(d["contributors"] is None for d in snapshot.retrospective()["degradations"])
    print("\nworst relative differences, Prometheus vs snapshot:")
    for name, worst in sorted(MEASURED.items()):
        print(f"  {name:34} {worst:.2e}")


def test_the_seed_story_comes_out_of_prometheus(weeks: tuple[Week, Week]) -> None:
    _, prometheus = weeks
    retro = prometheus.retrospective()
    degradations = {(d["service"], d["kpi"]): d for d in retro["degradations"]}
    p99 = degradations[("api-gateway", "latency_p99")]
    assert (p99["severity"], p99["day_first"]) == ("high", 2)
    assert p99["baseline"] == pytest.approx(150.0, abs=0.01)
    assert p99["observed"] == pytest.approx(180.0, abs=0.01)
    errors = degradations[("checkout", "error_rate")]
    assert (errors["severity"], errors["day_first"]) == ("medium", 4)
    assert errors["baseline"] == pytest.approx(0.05, abs=1e-4)
    assert errors["observed"] == pytest.approx(0.08, abs=1e-4)

    drifts = {(u["service"], u["kpi"]): u for u in retro["unexpected_drifts"]}
    cpu = drifts[("api-gateway", "cpu_utilization")]
    assert cpu["change_pct"] == pytest.approx(15.7, abs=0.05)
    assert cpu["trend"] == "increasing"
    assert drifts[("search", "memory_utilization")]["trend"] == "volatile"

    successes = {(s["service"], s["kpi"]): s for s in retro["successes"]}
    assert successes[("api-gateway", "availability")]["value"] == pytest.approx(99.95, abs=1e-6)

    cost = retro["cost_analysis"]
    assert cost["daily_average"] == pytest.approx(336.0, abs=0.01)
    assert cost["change_pct"] == pytest.approx(12.0, abs=0.01)
    priorities = [rec["priority"] for rec in retro["recommendations"]]
    assert "P1" in priorities and "P3" in priorities
