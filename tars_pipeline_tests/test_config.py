"""tars.yaml: defaults, overrides and the errors a user sees for bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tars_pipeline.config import MAX_WINDOW_DAYS, default_kpis, load_config
from tars_pipeline.errors import TarsUserError
from tars_pipeline_tests.conftest import REPO, write_config


def test_the_bundled_demo_config_loads_with_the_default_catalog() -> None:
    config = load_config(REPO / "tars.yaml")
    assert [release.name for release in config.releases] == ["v1.0.1"]
    assert {kpi.name for kpi in config.kpis} == {kpi.name for kpi in default_kpis()}
    assert config.source.path == REPO / "test_data" / "snapshot"
    assert config.store_file == REPO / ".tars" / "tars.duckdb"


def test_a_kpi_override_changes_only_the_named_fields(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        kpis=[
            {"name": "latency_p99", "threshold_pct": 15},
            {
                "name": "queue_depth",
                "title": "Queue depth",
                "unit": "jobs",
                "direction": "lower_is_better",
                "kind": "resource",
                "query": 'sum(queue_depth{service="{service}"})',
            },
        ],
    )
    config = load_config(path)
    p99 = config.kpi("latency_p99")
    assert p99.threshold_pct == 15
    assert p99.unit == "ms" and p99.direction == "lower_is_better"
    assert config.kpi("queue_depth").threshold_pct == 10
    assert len(config.kpis) == len(default_kpis()) + 1


def test_the_global_drift_threshold_applies_where_a_kpi_sets_none(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, thresholds={"drift_pct": 12.5}))
    assert config.kpi("error_rate").threshold_pct == 12.5
    # availability carries its own (tighter) threshold in the default catalog
    assert config.kpi("availability").threshold_pct == 0.1


def test_release_days_follow_the_release_timezone_across_dst() -> None:
    config = load_config(REPO / "tars.yaml")
    release = config.release("v1.0.1")
    start, end = release.day_bounds(5)  # Sunday 2026-03-08, clocks go forward in New York
    assert start == dt.datetime(2026, 3, 8, 5, 0, tzinfo=dt.UTC)
    assert (end - start) == dt.timedelta(hours=23)


@pytest.mark.parametrize(
    ("release", "field"),
    [
        ({"name": "v1", "ga_date": "2026-03-03", "timezone": "Mars/Base"}, "timezone"),
        (
            {"name": "v1", "ga_date": "2026-03-03", "window_days": MAX_WINDOW_DAYS + 1},
            "window_days",
        ),
        ({"name": "v 1", "ga_date": "2026-03-03"}, "name"),
        ({"name": "v1"}, "ga_date"),
    ],
)
def test_an_invalid_release_names_the_field(tmp_path: Path, release: dict, field: str) -> None:
    path = write_config(tmp_path, releases=[release])
    with pytest.raises(TarsUserError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message
    assert f"releases.0.{field}" in message


def test_a_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(TarsUserError, match="--config PATH or set TARS_CONFIG"):
        load_config(tmp_path / "nope.yaml")


def test_broken_yaml_and_impossible_dates_are_user_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("releases: [\n", encoding="utf-8")
    with pytest.raises(TarsUserError, match="not valid YAML"):
        load_config(broken)
    impossible = tmp_path / "date.yaml"
    impossible.write_text(
        "source: {type: snapshot, path: x}\nreleases: [{name: v1, ga_date: 2026-13-01}]\n",
        encoding="utf-8",
    )
    with pytest.raises(TarsUserError, match="dates are YYYY-MM-DD"):
        load_config(impossible)


def test_duplicate_releases_and_unknown_slo_kpis_are_rejected(tmp_path: Path) -> None:
    twice = {"name": "v1", "ga_date": "2026-03-03"}
    with pytest.raises(TarsUserError, match="duplicate release"):
        load_config(write_config(tmp_path, releases=[twice, twice]))
    with pytest.raises(TarsUserError, match="unknown KPI 'nope'"):
        load_config(write_config(tmp_path, slos=[{"name": "x", "kpi": "nope", "target_pct": 99}]))


def test_unknown_settings_are_typos_not_silently_ignored(tmp_path: Path) -> None:
    with pytest.raises(TarsUserError, match=r"thresholds\.z_treshold"):
        load_config(write_config(tmp_path, thresholds={"z_treshold": 2}))


def test_a_bad_kpi_override_is_named_by_kpi_not_by_position(tmp_path: Path) -> None:
    path = write_config(tmp_path, kpis=[{"name": "latency_p99", "weight": -1}])
    with pytest.raises(TarsUserError, match=r"kpis\[latency_p99\]\.weight"):
        load_config(path)


def test_an_slo_needs_a_kpi_with_a_bad_direction(tmp_path: Path) -> None:
    slos = [{"name": "load", "kpi": "throughput", "target_pct": 99}]
    with pytest.raises(TarsUserError, match="direction is neutral"):
        load_config(write_config(tmp_path, slos=slos))


def test_keptn_style_relative_criteria_set_the_threshold(tmp_path: Path) -> None:
    """'<=+10%' (may rise by 10 %) and '>=-5%' (may fall by 5 %), as Keptn writes them."""
    path = write_config(
        tmp_path,
        kpis=[
            {"name": "latency_p99", "threshold_pct": "<=+12.5%"},
            {"name": "availability", "threshold_pct": ">= -5 %"},
            {"name": "throughput", "threshold_pct": "<=+20%"},  # neutral stays neutral
        ],
    )
    config = load_config(path)
    assert (config.kpi("latency_p99").threshold_pct, config.kpi("latency_p99").direction) == (
        12.5,
        "lower_is_better",
    )
    assert config.kpi("availability").threshold_pct == 5.0
    assert config.kpi("throughput").direction == "neutral"


@pytest.mark.parametrize(
    ("criterion", "fragment"),
    [
        ("<=-5%", "bounds a move the good way"),
        (">=-5%", "means higher_is_better, but direction is lower_is_better"),
        ("about 10", "expected a number, or a relative criterion"),
    ],
)
def test_a_criterion_tars_cannot_follow_names_the_kpi(
    tmp_path: Path, criterion: str, fragment: str
) -> None:
    path = write_config(tmp_path, kpis=[{"name": "latency_p99", "threshold_pct": criterion}])
    with pytest.raises(TarsUserError) as error:
        load_config(path)
    assert "kpis[latency_p99]" in str(error.value) and fragment in str(error.value)
