"""Data quality in the report: what each day's verdicts rest on, said in the retrospective."""

from __future__ import annotations

import json

import pandas as pd

from tars_pipeline.judge.data_quality import week_data_quality
from tars_pipeline.reporting.retrospective import render_markdown
from tars_pipeline_tests.test_golden_outputs import GOLDEN


def _coverage(points: list[int], expected: int = 1440) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": [1] * len(points),
            "service": [f"svc{i}" for i in range(len(points))],
            "kpi": "latency_p99",
            "expected_points": expected,
            "points": points,
        }
    )


def test_a_complete_week_says_so() -> None:
    quality = week_data_quality(_coverage([1440, 1440]))
    assert quality["complete"] and quality["below_complete"] == []
    assert quality["completeness_pct"] == 100.0


def test_each_short_series_day_says_what_it_means_for_the_verdict() -> None:
    quality = week_data_quality(_coverage([1440, 0, 500, 1400]))
    states = {(gap["service"], gap["state"]) for gap in quality["below_complete"]}
    assert states == {("svc1", "missing"), ("svc2", "too_little_data"), ("svc3", "gaps")}
    assert not quality["complete"]
    assert quality["note"] == "3 series-day(s) below 99 % coverage"


def test_the_markdown_lists_the_gaps_under_the_verdict() -> None:
    model = json.loads((GOLDEN / "GA_7DAY_RETROSPECTIVE.json").read_text(encoding="utf-8"))
    model["data_quality"] = week_data_quality(_coverage([1440, 576]))
    text = render_markdown(model)
    assert "**Data quality:** 1 series-day(s) below 99 % coverage" in text
    assert "- day 1, svc1 / latency_p99: 40.0 % of its points — judged on under 50 %" in text
