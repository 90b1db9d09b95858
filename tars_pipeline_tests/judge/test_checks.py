"""Asset check verdicts: which severity an SRE sees for which state of the day."""

from __future__ import annotations

import pandas as pd

from tars_pipeline.config import default_kpis
from tars_pipeline.judge.checks import completeness, drift_within_threshold, slo_compliance

KPIS = {kpi.name: kpi for kpi in default_kpis()}


def _coverage(*points: int, expected: int = 1440) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service": [f"svc{i}" for i in range(len(points))],
            "kpi": "latency_p99",
            "expected_points": expected,
            "points": list(points),
        }
    )


def test_a_complete_day_passes() -> None:
    verdict = completeness(_coverage(1440, 1440))
    assert verdict.passed


def test_small_gaps_warn_and_a_missing_series_is_an_error() -> None:
    gappy = completeness(_coverage(1440, 1400))
    assert (gappy.passed, gappy.severity) == (False, "warn")
    missing = completeness(_coverage(1440, 0))
    assert (missing.passed, missing.severity) == (False, "error")
    assert "1 series missing" in missing.summary


def _drift(kpi: str, drift_pct: float, *, relative: bool = True) -> pd.DataFrame:
    kpi_def = KPIS[kpi]
    adverse = {"lower_is_better": max(drift_pct, 0), "higher_is_better": max(-drift_pct, 0)}
    return pd.DataFrame(
        {
            "service": ["api-gateway"],
            "kpi": [kpi],
            "baseline_value": [150.0],
            "observed_value": [150.0 * (1 + drift_pct / 100)],
            "drift_pct": [drift_pct if relative else float("nan")],
            "relative": [relative],
            "adverse_drift_pct": [adverse.get(kpi_def.direction, 0.0)],
            "flagged": [abs(drift_pct) >= kpi_def.threshold_pct],
        }
    )


def test_adverse_drift_beyond_the_threshold_warns() -> None:
    verdict = drift_within_threshold(_drift("latency_p99", 20.0), [KPIS["latency_p99"]])
    assert (verdict.passed, verdict.severity) == (False, "warn")
    assert "api-gateway" in verdict.summary
    assert verdict.check_name == "drift_within_threshold"


def test_one_drift_check_names_every_kpi_in_its_metadata() -> None:
    drift = pd.concat([_drift("latency_p99", 20.0), _drift("latency_p50", 2.0)])
    verdict = drift_within_threshold(drift, [KPIS["latency_p99"], KPIS["latency_p50"]])
    lines = verdict.details["kpis"].splitlines()
    assert len(lines) == 2
    assert "**beyond** on api-gateway +20.0 %" in lines[0] and lines[1].endswith("within")


def test_a_drift_in_the_good_direction_passes() -> None:
    assert drift_within_threshold(_drift("latency_p99", -20.0), [KPIS["latency_p99"]]).passed
    assert drift_within_threshold(_drift("latency_p99", 5.0), [KPIS["latency_p99"]]).passed


def test_a_breached_slo_is_an_error() -> None:
    slo_daily = pd.DataFrame(
        {
            "service": ["api-gateway", "checkout"],
            "slo": ["latency_p99", "latency_p99"],
            "burn_rate": [1.4, 0.0],
            "breached": [True, False],
        }
    )
    verdict = slo_compliance(slo_daily)
    assert (verdict.passed, verdict.severity) == (False, "error")
    assert verdict.summary == "SLO breached: latency_p99 on api-gateway"
    assert slo_compliance(slo_daily[slo_daily["service"] == "checkout"]).passed
