"""The why-and-when lines and chart markers of a finding, as the reports render them."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from tars_pipeline.config import Release, default_kpis
from tars_pipeline.reporting.charts import kpi_chart
from tars_pipeline.reporting.retrospective import _mark_charts, day_position, kpi_daily_series
from tars_pipeline.reporting.why import why_lines
from tars_pipeline_tests.reporting.test_chart_data import _drift_rows

RELEASE = Release(name="v1", ga_date=dt.date(2026, 3, 3), timezone="America/New_York")
KPIS = {kpi.name: kpi for kpi in default_kpis()}
NO_ANOMALIES = pd.DataFrame(columns=["service", "kpi", "day"])

DEGRADATION = {
    "service": "checkout",
    "kpi": "latency_p99",
    "unit": "ms",
    "onset": {
        "onset": "2026-03-05T19:32:00+00:00",  # 14:32 in New York, day 2
        "onset_low": "2026-03-05T19:29:00+00:00",
        "onset_high": "2026-03-05T19:35:00+00:00",
        "onset_minus_minutes": 3.0,
        "onset_plus_minutes": 3.0,
        "before": 150.0,
        "after": 180.0,
        "direction": "up",
        "day": 2,
        "local_time": "14:32",
    },
    "annotations": [
        {
            "ts": "2026-03-05T19:29:00+00:00",
            "kind": "deploy",
            "title": "checkout@4f2a",
            "sentence": "began 3 min after deploy checkout@4f2a",
        }
    ],
    "contributors": {"headline": "82 % of the latency p99 increase is uri=/pay (…)"},
    "effect": {"estimate": 29.5, "low": 27.0, "high": 32.25, "confidence": 0.95},
    "q_value": 0.0004,
    "feedback": {"mark": "expected", "reason": "load test", "excluded_from_verdict": True},
}


def test_the_lines_say_when_after_what_driven_by_what_how_large_and_the_mark() -> None:
    assert why_lines(DEGRADATION, "ms") == [
        "began at 14:32 ± 3 min on day 2 (150.00 → 180.00 ms)",
        "began 3 min after deploy checkout@4f2a",
        "82 % of the latency p99 increase is uri=/pay (…)",
        "shift +29.50 ms (95 % CI +27.00 to +32.25), q = 0.0004 after false-discovery control",
        "marked expected: load test (left out of the verdict)",
    ]
    assert why_lines({"service": "s", "kpi": "k"}) == []


def test_the_onset_and_the_deploy_are_placed_on_the_day_axis_and_drawn() -> None:
    # Day 2 is drawn at 2 and spans 1.5 .. 2.5: 14:32 is 0.606 of the way through it.
    assert day_position(RELEASE, "2026-03-05T19:32:00+00:00") == round(1.5 + 872 / 1440, 4)
    assert day_position(RELEASE, "2026-03-01T00:00:00+00:00") is None  # before GA day
    drift = pd.DataFrame(_drift_rows("checkout", "latency_p99", 150.0, [150, 151, 180, 181]))
    series = kpi_daily_series(drift, KPIS, NO_ANOMALIES, degradations=[DEGRADATION])
    _mark_charts(series, [DEGRADATION], RELEASE)
    markers = series[0]["markers"]
    assert markers["onset"] == day_position(RELEASE, DEGRADATION["onset"]["onset"])
    assert [a["title"] for a in markers["annotations"]] == ["checkout@4f2a"]
    assert markers["annotations"][0]["x"] < markers["onset"]
    with_markers = str(kpi_chart(series[0], "k1"))
    without = str(kpi_chart({**series[0], "markers": None}, "k1"))
    assert "onset 14:32" in with_markers and "onset" not in without


def test_an_expected_mark_leaves_the_verdict_with_its_reason_and_its_action(tmp_path) -> None:
    """The feedback file beside tars.yaml, read by the retrospective: the marked
    degradation carries its mark, the verdict is recomputed without it, the recommendation
    for it is dropped, and the other findings are untouched."""
    import json
    from pathlib import Path

    import yaml

    from tars_pipeline.config import load_config
    from tars_pipeline.judge.recommendations import recommend
    from tars_pipeline.reporting.week import _without_expected, with_feedback
    from tars_pipeline_tests.conftest import write_config

    golden = Path(__file__).resolve().parents[1] / "golden" / "v1.0.1"
    regression = json.loads((golden / "regression_summary.json").read_text(encoding="utf-8"))
    marked = next(d for d in regression["degradations"] if d["kpi"] == "error_rate")
    (tmp_path / "tars.feedback.yaml").write_text(
        yaml.safe_dump(
            {
                "marks": [
                    {
                        "finding": "degradation",
                        "service": marked["service"],
                        "kpi": "error_rate",
                        "mark": "expected",
                        "reason": "payment provider load test",
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    config = load_config(write_config(tmp_path))
    assert config.feedback_file == tmp_path / "tars.feedback.yaml"
    release = config.releases[0]
    result = with_feedback(config, release, regression)
    by_kpi = {d["kpi"]: d for d in result["degradations"]}
    assert by_kpi["error_rate"]["feedback"]["mark"] == "expected"
    assert by_kpi["error_rate"]["feedback"]["excluded_from_verdict"] is True
    assert by_kpi["latency_p99"]["feedback"] is None
    excluded = result["feedback"]["excluded_from_verdict"]
    assert [e["kpi"] for e in excluded] == ["error_rate"]
    assert excluded[0]["reason"] == "payment provider load test"
    texts = " ".join(r["text"] for r in result["verdict"]["reasons"])
    before = " ".join(r["text"] for r in regression["verdict"]["reasons"])
    assert "error_rate" in before and "error_rate" not in texts
    kept, _ = recommend(_without_expected(result), cost_growth_pct=config.cost.growth_hint_pct)
    everything, _ = recommend(regression, cost_growth_pct=config.cost.growth_hint_pct)

    def about_it(recs: list[dict]) -> list[dict]:
        return [
            r
            for r in recs
            if (r.get("evidence") or {}).get("kpi") == "error_rate"
            and (r.get("evidence") or {}).get("service") == marked["service"]
        ]

    assert about_it(everything) and not about_it(kept)
    # Without a file nothing changes.
    (tmp_path / "tars.feedback.yaml").unlink()
    assert with_feedback(load_config(tmp_path / "tars.yaml"), release, regression) is regression
