"""The release-vs-previous-release comparison, end to end through the retrospective asset.

The bundled data holds one release, so the previous release's week is planted in a copy of
the demo's store (its own rows, made a little better) and the retrospective re-run with
`previous_release` set.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tars_pipeline.cli.runner import Progress, Runner
from tars_pipeline.config import TarsConfig, load_config
from tars_pipeline.reporting.schema import validate_file
from tars_pipeline.store import open_store, read_table, replace_partition, store_location
from tars_pipeline_tests.conftest import DEMO_RELEASE, DemoWeek, write_config
from tars_pipeline_tests.reporting.test_html import assert_inert

pytestmark = pytest.mark.slow

PREVIOUS = "v1.0.0"


def _plant_previous_week(config: TarsConfig) -> None:
    """v1.0.0 = v1.0.1's stored week with p99 latency 15 % lower and 5 healthier points."""
    with open_store(store_location(config)) as conn:
        tables = {
            table: read_table(conn, table, DEMO_RELEASE).drop(columns=["release"])
            for table in ("health", "daily_stats", "cost_daily")
        }
        p99 = tables["daily_stats"]["kpi"] == "latency_p99"
        for column in ("mean", "p50", "p95", "p99"):
            tables["daily_stats"].loc[p99, column] *= 0.85
        tables["health"]["score"] = (tables["health"]["score"] + 5).clip(upper=100)
        for day in sorted(tables["health"]["day"].unique()):
            replace_partition(
                conn,
                PREVIOUS,
                int(day),
                {
                    name: rows[rows["day"] == day].drop(columns=["day"])
                    for name, rows in tables.items()
                },
            )


@pytest.mark.parametrize("stored", [True, False], ids=["previous-stored", "previous-missing"])
def test_the_report_compares_with_the_previous_release_when_it_is_stored(
    demo_week: DemoWeek, tmp_path: Path, stored: bool
) -> None:
    shutil.copytree(demo_week.config.store_root, tmp_path / "data" / "store")
    release = {
        "name": DEMO_RELEASE,
        "ga_date": "2026-03-03",
        "timezone": "America/New_York",
        "window_days": 7,
        "previous_release": PREVIOUS,
    }
    config = load_config(write_config(tmp_path, releases=[release]))
    if stored:
        _plant_previous_week(config)
    runner = Runner(config, instance=demo_week.instance, progress=Progress(enabled=False))

    runner.release_level(config.release(DEMO_RELEASE), ("retrospective",))

    out = tmp_path / "out" / DEMO_RELEASE
    validate_file(out / "GA_7DAY_RETROSPECTIVE.json")
    html = (out / "GA_7DAY_RETROSPECTIVE.html").read_text(encoding="utf-8")
    assert_inert(html)
    assert 'id="comparison"' in html
    retro = json.loads((out / "GA_7DAY_RETROSPECTIVE.json").read_text(encoding="utf-8"))
    comparison = retro["comparison"]
    assert comparison["previous_release"] == PREVIOUS
    if not stored:
        assert comparison == {"previous_release": PREVIOUS, "available": False}
        assert f"No week of {PREVIOUS} is stored" in html
        assert "This release compared with the previous release" not in html
        return
    assert comparison["available"] is True
    worse = {(row["service"], row["kpi"]) for row in comparison["kpis"] if row["adverse"]}
    assert ("api-gateway", "latency_p99") in worse
    p99 = next(
        row
        for row in comparison["kpis"]
        if (row["service"], row["kpi"]) == ("api-gateway", "latency_p99")
    )
    assert p99["change_pct"] == pytest.approx((1 / 0.85 - 1) * 100, abs=0.01)
    assert comparison["average_health"]["previous"] > comparison["average_health"]["current"]
    assert 'aria-label="This release compared with the previous release"' in html
    assert f"Worse than {PREVIOUS} beyond threshold" in html
