"""Step "classify" for degradations: pre-filter, rank test, severity, explanation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.config import default_kpis
from tars_pipeline.judge.compare import compare_samples
from tars_pipeline.judge.degradations import (
    _weighted_move_counts,
    find_degradations,
    held_by_counts,
)
from tars_pipeline.judge.severity import SloImpact, severity_of
from tars_pipeline.judge.traffic import traffic_counts
from tars_pipeline_tests.judge.release_week import (
    CONFIG,
    GA,
    KPIS,
    SAMPLES_PER_DAY,
    by_kpi,
    drift_frame,
    drift_from_samples,
    judge,
    release_week_degradations,
    slo_status_of,
    week,
)


def test_the_seed_story_p99_latency_is_a_high_ongoing_degradation_from_day_2():
    latency = by_kpi(release_week_degradations())[("api-gateway", "latency_p99")]
    assert latency["severity"] == "high"
    assert latency["day_first"] == 2 and latency["worst_day"] == 2
    assert latency["baseline"] == pytest.approx(150.0)
    assert latency["observed"] == pytest.approx(180.0)
    assert latency["change_pct"] == pytest.approx(20.0)
    assert latency["threshold_multiple"] == pytest.approx(2.0)
    assert latency["p_value"] < 0.01 and latency["effect_magnitude"] == "large"
    assert latency["days_degraded"] == [2, 3, 4, 5, 6, 7]  # day 1 (+0.7 %) is noise
    assert latency["status"] == "ongoing"
    assert latency["slo"] == "latency_p99"
    assert latency["slo_utilisation"] == pytest.approx(0.9)  # 180 of a 200 ms objective
    assert "150 ms to 180 ms" in latency["explanation"]
    assert "+20 %" in latency["explanation"] and "Mann-Whitney" in latency["explanation"]


def test_the_seed_story_error_rate_is_critical_by_drift_but_medium_inside_its_slo():
    errors = by_kpi(release_week_degradations())[("api-gateway", "error_rate")]
    assert errors["adverse_drift_pct"] == pytest.approx(60.0)
    assert errors["threshold_multiple"] == pytest.approx(6.0)
    assert errors["slo_utilisation"] == pytest.approx(0.08)  # burn 0.08 of a 99 % SLO
    assert errors["severity"] == "medium"
    assert errors["severity_reasons"][0] == "adverse drift 6.0× threshold → critical"
    assert "at most medium" in errors["severity_reasons"][-1]
    assert errors["day_first"] == 4 and errors["days_degraded"] == [4]
    assert errors["status"] == "resolved"


def test_degradations_come_most_severe_first_and_are_json_safe():
    degradations = release_week_degradations()
    assert [(d["kpi"], d["severity"]) for d in degradations] == [
        ("latency_p99", "high"),
        ("error_rate", "medium"),
    ]
    json.dumps(degradations, allow_nan=False)


def test_a_kpi_with_no_significant_change_is_no_finding():
    assert ("api-gateway", "latency_p50") not in by_kpi(release_week_degradations())


def test_one_spike_that_lifts_the_mean_is_not_a_regression():
    rng = np.random.default_rng(3)
    samples = week("search", "latency_p95", [100.0, 100.0], 2, rng)
    day_one = samples["day"] == 1
    spike = samples.index[day_one][700]
    samples.loc[spike, "value"] += 0.15 * 100.0 * SAMPLES_PER_DAY  # mean +15 %, one minute
    drift = drift_from_samples(samples)
    assert drift["adverse_drift_pct"].iloc[0] == pytest.approx(15.0, abs=0.1)
    assert judge(samples) == []


def test_errors_from_an_all_zero_baseline_are_judged_not_passed_over():
    rng = np.random.default_rng(5)
    samples = week("search", "error_rate", [0.0] * 8, 0, rng)
    day_three = samples.index[samples["day"] == 3]
    samples.loc[day_three[600:620], "value"] = 0.5  # 20 minutes at 0.5 % errors
    (finding,) = judge(samples)
    assert finding["kpi"] == "error_rate" and finding["day_first"] == 3
    assert finding["baseline"] == 0.0 and finding["change_pct"] is None
    assert finding["adverse_drift_pct"] is None and finding["threshold_multiple"] is None
    assert finding["p_value"] < 0.01
    # 20 of 1440 minutes: Cliff's delta is tiny because 0 = 0 ties dominate, but among the
    # pairs that differ every one says "worse": a zero-heavy series reads that dominance.
    assert finding["effect_size"] == pytest.approx(20 / 1440)
    assert finding["zero_heavy"] is True and finding["effect_magnitude"] == "large"
    assert finding["nonzero_baseline_pct"] == 0.0
    assert finding["nonzero_observed_pct"] == pytest.approx(100 * 20 / 1440)
    assert finding["severity"] == "medium"  # no percentage exists: medium, inside its SLO
    assert finding["status"] == "resolved"
    assert "baseline ~0" in finding["explanation"]
    assert "non-zero in 1.4 % of samples vs 0 % on GA day" in finding["explanation"]
    json.dumps(finding, allow_nan=False)


def test_a_single_minute_of_errors_after_an_all_zero_baseline_is_not_significant():
    rng = np.random.default_rng(5)
    samples = week("search", "error_rate", [0.0] * 8, 0, rng)
    samples.loc[samples.index[samples["day"] == 3][600], "value"] = 0.5
    assert judge(samples) == []


def test_hour_matched_rank_test_ignores_the_hours_a_partial_day_lacks():
    # Throughput follows the clock; day 1 only has its night hours (00:00-07:59).
    ts0 = pd.date_range(GA, periods=1440, freq="60s")
    ts1 = pd.date_range(GA + pd.Timedelta(days=1), periods=480, freq="60s")
    rng = np.random.default_rng(2)

    def load(ts: pd.DatetimeIndex) -> np.ndarray:
        hours = ts.hour + ts.minute / 60
        return 800 * (1 + 0.35 * np.cos(2 * np.pi * (hours - 14) / 24)) + rng.normal(0, 5, len(ts))

    kpis = {"latency_p99": KPIS["latency_p99"]}
    base = pd.DataFrame({"service": "a", "kpi": "latency_p99", "ts": ts0, "value": load(ts0)})
    day = pd.DataFrame(
        {"service": "a", "kpi": "latency_p99", "ts": ts1, "value": load(ts1) * 1.0, "day": 1}
    )
    # A drift row claiming +20 % (as a whole-day comparison of night vs day would not,
    # but the test only needs the rank test to run on the candidate).
    drift = drift_frame([("a", "latency_p99", 1, 800.0, 960.0)], kpis)
    common = {
        "p_value": 0.01,
        "degradation_threshold_pct": CONFIG.degradation_threshold_pct,
        "well_inside_utilisation": 0.5,
        "last_day": 1,
    }
    night_vs_day = find_degradations(drift, base, day, pd.DataFrame(), kpis, **common)
    night_vs_night = find_degradations(
        drift, base, day, pd.DataFrame(), kpis, timezone="UTC", **common
    )
    assert night_vs_day == []  # the night is *lower* than a whole day: not adverse
    assert night_vs_night == []
    worse = day.assign(value=day["value"] * 1.2)
    (finding,) = find_degradations(
        drift, base, worse, pd.DataFrame(), kpis, timezone="UTC", **common
    )
    assert finding.comparison.p_value < 1e-10
    assert finding.comparison.effect_magnitude == "large"
    assert find_degradations(drift, base, worse, pd.DataFrame(), kpis, **common) == []


def test_a_breached_slo_makes_a_degradation_at_least_high_and_exhaustion_critical():
    rng = np.random.default_rng(11)
    samples = week("api-gateway", "latency_p99", [150.0] + [170.0] * 7, 6, rng)  # m = 1.3
    status = slo_status_of(samples)
    assert judge(samples, status)[0]["severity"] == "medium"
    breached = status.assign(breached=True)
    assert judge(samples, breached)[0]["severity"] == "high"
    exhausted = status.assign(exhausted=True)
    (finding,) = judge(samples, exhausted)
    assert finding["severity"] == "critical" and finding["slo_exhausted"] is True


def test_an_improvement_is_never_a_degradation():
    rng = np.random.default_rng(13)
    samples = week("api-gateway", "latency_p99", [150.0] + [120.0] * 7, 6, rng)
    assert judge(samples) == []


def test_the_record_keeps_its_keys_in_the_contract_order():
    (latency, _) = release_week_degradations()
    assert list(latency) == [
        "kpi", "kpi_title", "service", "kind", "unit", "direction", "statistic", "severity",
        "severity_reasons", "day_first", "worst_day", "baseline", "observed", "change_pct",
        "abs_change", "adverse_drift_pct", "threshold_pct", "threshold_multiple", "p_value",
        "u_statistic", "effect_size", "effect_magnitude", "days_degraded", "zero_heavy",
        "nonzero_baseline_pct", "nonzero_observed_pct", "baseline_method", "weekday_factor",
        "status", "slo", "slo_utilisation", "slo_breached", "slo_exhausted", "explanation",
        "test", "traffic",
    ]  # fmt: skip


def test_severity_lists_each_rule_with_the_number_that_fired_it():
    inside = SloImpact("errors", 0.08, breached=False, exhausted=False)
    severity = severity_of(
        threshold_multiple=6.0,
        effect_magnitude="large",
        impacts=[inside],
        well_inside_utilisation=0.5,
    )
    assert severity.level == "medium"
    assert [(rule.rule, rule.severity, rule.value) for rule in severity.rules] == [
        ("drift_multiple", "critical", 6.0),
        ("well_inside_slo", "medium", 0.5),
    ]


def test_a_kpi_day_without_samples_is_not_judged_a_degradation():
    samples = week("api-gateway", "latency_p99", [150.0, 180.0], 6, np.random.default_rng(1))
    no_day_samples = samples[samples["day"] == 0]
    assert judge(samples) != []
    assert (
        find_degradations(
            drift_from_samples(samples),
            no_day_samples,
            no_day_samples.iloc[0:0],
            pd.DataFrame(),
            KPIS,
            p_value=CONFIG.thresholds.p_value,
            degradation_threshold_pct=CONFIG.degradation_threshold_pct,
            well_inside_utilisation=0.5,
            last_day=1,
        )
        == []
    )


def test_a_percentage_whose_request_weighted_rate_held_is_not_a_degradation():
    """Busy minutes at 100 req/s, quiet ones at 1 req/s. The day's quiet minutes read
    0.06 % instead of 0.04 %: the mean of per-minute percentages rises by a quarter and
    the rank test is sure of it, but the day's errors / requests moved 0.5 %."""
    kpi = next(k for k in default_kpis() if k.name == "error_rate")
    rps = np.r_[np.full(720, 100.0), np.full(720, 1.0)]
    baseline = np.full(1440, 0.04)
    quieter = np.r_[np.full(720, 0.04), np.full(720, 0.06)]
    worse = np.full(1440, 0.06)

    def judged(observed: np.ndarray):
        return compare_samples(
            baseline + np.random.default_rng(1).normal(0, 1e-4, 1440),
            observed + np.random.default_rng(2).normal(0, 1e-4, 1440),
            kpi=kpi,
            baseline_traffic=traffic_counts(rps, baseline, 60, "bad"),
            observed_traffic=traffic_counts(rps, observed, 60, "bad"),
        )

    shifted = judged(quieter)
    assert shifted.is_adverse(0.01, kpi.direction)  # the ranks alone call it worse
    assert not _weighted_move_counts(kpi, shifted, 10.0)
    assert _weighted_move_counts(kpi, judged(worse), 10.0)  # +50 % of errors / requests


def test_an_error_rate_whose_errors_per_request_held_is_held_by_counts():
    kpis = {k.name: k for k in default_kpis()}
    ts = pd.date_range("2026-03-03", periods=1440, freq="60s", tz="UTC")
    rps = np.r_[np.full(720, 100.0), np.full(720, 1.0)]

    def frame(error_pct: np.ndarray, day: int | None) -> pd.DataFrame:
        shift = pd.Timedelta(days=day or 0)
        rows = pd.concat(
            [
                pd.DataFrame({"kpi": "throughput", "ts": ts + shift, "value": rps}),
                pd.DataFrame({"kpi": "error_rate", "ts": ts + shift, "value": error_pct}),
            ]
        ).assign(service="api")
        return rows if day is None else rows.assign(day=day)

    baseline = frame(np.full(1440, 0.04), None)
    quiet_minutes = np.r_[np.full(720, 0.04), np.full(720, 0.06)]
    drift = pd.DataFrame({"service": ["api"], "kpi": ["error_rate"], "day": [1]})
    held = held_by_counts(drift, baseline, frame(quiet_minutes, 1), kpis, 60)
    assert held == {("api", "error_rate")}
    worse = held_by_counts(drift, baseline, frame(np.full(1440, 0.06), 1), kpis, 60)
    assert worse == set()
