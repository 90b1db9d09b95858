"""Why and when, wired into the window judge: onsets, annotations, contributors, the
false-discovery control, the detectable effects and the feedback marks, on generated weeks
whose truth is known (the change's minute, the label value it was injected into)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.judge.annotations import Annotation
from tars_pipeline.judge.contributors import BREAKDOWN_COLUMNS
from tars_pipeline.sources.base import empty_samples
from tars_pipeline_tests.scenarios.generator import generate_week
from tars_pipeline_tests.scenarios.harness import judge_days, scenario_config

SERVICE = "shop"


def _stepped(kpi: str, day: int, at: str, factor: float, seed: int = 5):
    """The quiet week with `kpi` × `factor` from local `at` on `day` on."""
    week = generate_week(seed=seed)
    release = week.release
    start, _ = release.day_bounds(day)
    hour, minute = (int(part) for part in at.split(":"))
    local_start = pd.Timestamp(start).tz_convert(release.timezone)
    onset = (local_start + pd.Timedelta(hours=hour, minutes=minute)).tz_convert("UTC")
    days = {}
    for number, frame in week.days.items():
        frame = frame.copy()
        hit = (frame["kpi"] == kpi) & (frame["ts"] >= onset)
        frame.loc[hit, "value"] = frame.loc[hit, "value"] * factor
        days[number] = frame
    return week, release, days, onset


def _judge(week, release, days, **kwargs):
    config = scenario_config(release)
    fetch = lambda date: week.reference.get(date, empty_samples())  # noqa: E731
    return judge_days(days, config, release, fetch, **kwargs)[1]


def test_a_step_at_a_minute_is_dated_to_that_minute_with_its_levels() -> None:
    week, release, days, onset = _stepped("latency_p99", 3, "14:37", 1.3)
    judgement = _judge(week, release, days)
    found = {d["kpi"]: d for d in judgement["degradations"]}
    assert "latency_p99" in found
    change = found["latency_p99"]["onset"]
    error = (pd.Timestamp(change["onset"]) - onset).total_seconds() / 60
    assert abs(error) <= 10, change
    assert change["day"] == 3 and change["direction"] == "up"
    assert pd.Timestamp(change["onset_low"]) <= onset <= pd.Timestamp(change["onset_high"])
    assert change["after"] / change["before"] == pytest.approx(1.3, rel=0.08)


def test_annotations_before_the_onset_are_named_and_after_it_are_not() -> None:
    week, release, days, onset = _stepped("latency_p99", 2, "10:12", 1.35, seed=7)
    notes = [
        Annotation(onset - pd.Timedelta(minutes=12), "deploy", "shop@4f2a", SERVICE, "file"),
        Annotation(onset - pd.Timedelta(minutes=5), "config", "pool size", None, "file"),
        Annotation(onset + pd.Timedelta(minutes=20), "deploy", "shop@after", SERVICE, "file"),
        Annotation(onset - pd.Timedelta(minutes=3), "deploy", "other@1", "other", "file"),
        Annotation(onset - pd.Timedelta(minutes=45), "deploy", "shop@old", SERVICE, "file"),
    ]
    judgement = _judge(week, release, days, annotations=notes)
    record = next(d for d in judgement["degradations"] if d["kpi"] == "latency_p99")
    named = [a["title"] for a in record["annotations"]]
    assert named == ["pool size", "shop@4f2a"]  # nearest first; every-service counts
    assert record["annotations"][1]["sentence"].startswith("began 12 min after deploy")
    assert len(judgement["annotations"]) == len(notes)


def test_contributors_rank_the_label_value_the_change_was_put_in() -> None:
    week, release, days, onset = _stepped("error_rate", 4, "16:05", 3.0, seed=11)
    asked = []

    def breakdown(service, kpi, baseline, observed):
        asked.append((service, kpi.name, baseline, observed))
        rows = [
            # errors / requests per uri: /pay's errors triple, the rest hold
            ("uri", "/pay", 20.0, 10_000.0, 60.0, 10_000.0),
            ("uri", "/search", 30.0, 40_000.0, 31.0, 40_000.0),
            ("uri", "/home", 10.0, 50_000.0, 10.0, 50_000.0),
            ("instance", "a", 30.0, 50_000.0, 51.0, 50_000.0),
            ("instance", "b", 30.0, 50_000.0, 50.0, 50_000.0),
        ]
        return pd.DataFrame(rows, columns=list(BREAKDOWN_COLUMNS)), {"ratio": True, "scale": 100.0}

    judgement = _judge(week, release, days, breakdown=breakdown)
    record = next(d for d in judgement["degradations"] if d["kpi"] == "error_rate")
    contributors = record["contributors"]
    assert contributors["top"][0]["element"] == "/pay", contributors["headline"]
    assert "uri=/pay" in contributors["headline"]
    # The degraded window starts at the onset, the baseline is GA day.
    (_, _, baseline, observed), *_ = asked
    assert baseline == release.day_bounds(0)
    assert abs((pd.Timestamp(observed[0]) - onset).total_seconds()) <= 600
    assert observed[1] == release.day_bounds(4)[1]


def test_honest_figures_on_each_degradation_and_the_sensitivity_table() -> None:
    week, release, days, _ = _stepped("latency_p95", 2, "09:00", 1.25, seed=13)
    judgement = _judge(week, release, days)
    record = next(d for d in judgement["degradations"] if d["kpi"] == "latency_p95")
    assert 0 <= record["p_value"] <= record["p_value_autocorrelated"] <= record["q_value"] <= 0.05
    assert record["fdr"]["method"] == "bh" and record["fdr"]["tests"] >= 7
    effect = record["effect"]
    assert effect["low"] < effect["estimate"] < effect["high"]
    assert 15 < effect["pct"] < 35  # a ×1.25 shift of most of the day's samples
    table = {row["kpi"]: row for row in judgement["sensitivity"]}
    assert "throughput" not in table  # neutral: nothing to detect the bad way
    p95 = table["latency_p95"]
    assert 0 < p95["mde_pct_max"] < p95["threshold_pct"], p95
    assert "could not have been reliably seen" in p95["sentence"]


def test_without_the_false_discovery_control_a_stress_setting_reports_more() -> None:
    """At 1 % drift thresholds the statistics alone decide: the family-wise adjustment keeps
    out what a per-test p < 0.01 lets in (benchmarks/why_score.py measures it on 20 weeks)."""
    week = generate_week(seed=21)
    stress = {"drift_pct": 0.5, "unexpected_drift_max_pct": 1.0}
    fetch = lambda date: week.reference.get(date, empty_samples())  # noqa: E731
    counts = {}
    for method in ("bh", "none"):
        config = scenario_config(week.release, fdr_method=method, **stress)
        counts[method] = len(judge_days(week.days, config, week.release, fetch)[1]["degradations"])
    assert counts["bh"] <= counts["none"]


@pytest.mark.slow
def test_null_weeks_of_realistic_noise_report_no_degradation() -> None:
    from tars_pipeline_tests.realistic.null_weeks import null_week

    found = []
    for seed in (101, 102):
        week = null_week(seed, services=3)
        config = scenario_config(week.release)
        fetch = lambda date, week=week: week.reference.get(date, empty_samples())  # noqa: E731
        judgement = judge_days(week.days, config, week.release, fetch)[1]
        found += [(d["service"], d["kpi"], d["day_first"]) for d in judgement["degradations"]]
    assert found == []


def test_a_cost_step_carries_its_onset() -> None:
    from tars_pipeline_tests.scenarios.generator import Step

    week = generate_week([Step("cost_compute", 3, 40.0)], seed=17)
    judgement = _judge(week, week.release, {d: week.samples(d) for d in range(8)})
    change = judgement["cost_analysis"]["level_change"]
    assert change is not None and change["onset"] is not None
    assert change["onset"]["day"] == 3
    assert change["onset"]["local_time"] == "00:00"


def test_records_stay_json_clean_without_any_change() -> None:
    week = generate_week(seed=2)
    judgement = _judge(week, week.release, {d: week.samples(d) for d in range(8)})
    assert judgement["degradations"] == []
    assert judgement["annotations"] == []
    assert all(np.isfinite(r["mde_pct_max"]) for r in judgement["sensitivity"] if r["mde_pct_max"])
