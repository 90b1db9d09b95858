"""The release's verdict: the worst of its reasons, each naming its finding."""

from __future__ import annotations

from tars_pipeline.judge.verdict import release_verdict


def _degradation(severity: str, status: str = "resolved") -> dict:
    return {"kpi": "latency_p99", "service": "checkout", "severity": severity,
            "status": status, "day_first": 2}  # fmt: skip


def _slo(**overrides: object) -> dict:
    slo = {"slo": "availability", "kpi": "availability", "service": "checkout", "target": 99.9,
           "days_observed": 7, "met": True, "exhausted": False,
           "by_day": [{"day": d, "compliant": True} for d in range(1, 8)]}  # fmt: skip
    return {**slo, **overrides}


def test_a_clean_window_passes_with_no_reasons() -> None:
    verdict = release_verdict([], [_slo()])
    assert (verdict.status, verdict.reasons) == ("pass", ())
    assert not verdict.reaches("warn")


def test_resolved_and_medium_degradations_warn() -> None:
    verdict = release_verdict([_degradation("high"), _degradation("medium", "ongoing")], [_slo()])
    assert verdict.status == "warn"
    assert [r.rule for r in verdict.reasons] == ["high_degradation", "medium_degradation"]
    assert verdict.reaches("warn") and not verdict.reaches("fail")


def test_critical_or_ongoing_high_degradations_and_broken_slos_fail() -> None:
    assert release_verdict([_degradation("critical")], []).status == "fail"
    assert release_verdict([_degradation("high", "ongoing")], []).status == "fail"
    assert release_verdict([], [_slo(exhausted=True)]).reasons[0].rule == "slo_budget_exhausted"
    assert release_verdict([], [_slo(met=False)]).status == "fail"


def test_an_slo_breached_on_one_day_but_met_over_the_window_warns_and_says_when() -> None:
    by_day = [{"day": d, "compliant": d != 2} for d in range(1, 8)]
    (reason,) = release_verdict([], [_slo(by_day=by_day)]).reasons
    assert (reason.status, reason.rule) == ("warn", "slo_breached_on_a_day")
    assert "day(s) 2" in reason.text


def test_failing_reasons_come_first() -> None:
    verdict = release_verdict([_degradation("low"), _degradation("critical")], [])
    assert [r.status for r in verdict.reasons] == ["fail", "warn"]
