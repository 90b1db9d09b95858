"""The instrument itself: well-formed truth, Prometheus serving what was generated, and a
scorer that counts right. No TARS quality thresholds here (benchmarks/scenario_score.py
reports those; the detector is being changed)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import urllib.parse
import urllib.request

import numpy as np
import pytest

from tars_pipeline_tests.realistic import generator as gen
from tars_pipeline_tests.realistic import harness
from tars_pipeline_tests.realistic.weeks import WEEKS, placed_weeks

pytestmark = pytest.mark.slow


def query(url: str, promql: str, at: float) -> list[dict]:
    params = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=30) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def scalar(url: str, promql: str, at: float) -> float:
    result = query(url, promql, at)
    assert len(result) == 1, (promql, result)
    return float(result[0]["value"][1])


# --------------------------------------------------------------------------- the truth


def test_weeks_are_placed_in_the_recent_past_without_overlap() -> None:
    now = dt.datetime.now(dt.UTC)
    weeks = placed_weeks(now)
    spans = sorted(gen.week_bounds(w) for w in weeks)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end < start, "two weeks (reference weeks included) overlap"
    for first, end in spans:
        assert end <= (now - dt.timedelta(days=1)).timestamp()
        assert first >= (now - dt.timedelta(days=2 * 366)).timestamp()
    names = [s.name for w in weeks for s in w.services]
    assert len(names) == len(set(names)), "service names must be unique across weeks"
    assert all(s.name.startswith(f"{w.key}-") for w in weeks for s in w.services)
    assert any(gen.has_dst_change(w.ga_date, gen.WINDOW_DAYS, w.tz) for w in weeks if w.ga_date), (
        "no week crosses a DST change"
    )
    assert len({w.ga_weekday for w in weeks}) >= 4
    assert len(weeks) >= 6


def test_the_truth_is_well_formed() -> None:
    weeks = placed_weeks()
    assert any(not w.injections for w in weeks), "no all-quiet week"
    assert any(s.peak_rps < 1 for w in weeks for s in w.services), "no low-traffic service"
    for week in weeks:
        services = {s.name for s in week.services}
        assert len(services) >= 3
        assert all(2 <= s.instances <= 3 for s in week.services)
        for truth in gen.ground_truth(week):
            inj = truth.injection
            assert inj.service in services
            assert 1 <= inj.day <= gen.WINDOW_DAYS, "GA day is the baseline: inject after it"
            lo, hi = gen.day_bounds(week, inj.day)
            assert lo <= truth.start_ts < hi
            assert truth.end_ts is None or truth.end_ts > truth.start_ts
            assert truth.effects or truth.sudden_kpis, f"{inj.label} changes nothing"
            for kpi, service, day in truth.degradations:
                assert kpi in gen.KPI_NAMES and service == inj.service
                assert inj.day <= day <= gen.WINDOW_DAYS
            for effect in truth.effects:
                assert effect.day >= inj.day, "an effect before the injection"
                assert abs(effect.change_pct) >= gen.THRESHOLD_PCT[effect.kpi]
        json.dumps([t.as_dict() for t in gen.ground_truth(week)])  # serialisable


def test_improvements_and_controls_are_not_degradations() -> None:
    by_label = {t.injection.label: t for w in placed_weeks() for t in gen.ground_truth(w)}
    improvement = by_label["latency x0.7 (improvement)"]
    assert improvement.effects and not improvement.degradations
    step = by_label["latency x1.4"]
    assert {k for k, _, _ in step.degradations} <= {"latency_p50", "latency_p95", "latency_p99"}
    assert step.degradations, "a x1.4 latency step moves at least one quantile"
    error = by_label["5xx +2 pt"]
    assert {k for k, _, _ in error.degradations} == {"availability", "error_rate"}


def test_generation_is_deterministic() -> None:
    week = placed_weeks()[1]
    g = gen.grid(week)
    one = gen.service_data(week, g, week.services[0], noise=True, inject=True)
    two = gen.service_data(week, g, week.services[0], noise=True, inject=True)
    for key, (counts, buckets, _) in one.http.items():
        np.testing.assert_array_equal(counts, two.http[key][0])
        np.testing.assert_array_equal(buckets, two.http[key][1])
    np.testing.assert_array_equal(one.heap_used, two.heap_used)


# --------------------------------------------------------------------------- Prometheus


def _busy_series(suite: harness.Suite) -> tuple[gen.WeekSpec, gen.ServiceData, int]:
    week = suite.weeks[0]
    g = gen.grid(week)
    data = gen.service_data(week, g, week.services[0], noise=True, inject=True)
    return week, data, int(np.searchsorted(g.ts, gen.moment(week, 1, "16:00")))


def test_prometheus_counts_what_was_generated(realistic_suite: harness.Suite) -> None:
    week, data, index = _busy_series(realistic_suite)
    g = gen.grid(week)
    (instance, route, outcome), (counts, _, _) = next(iter(data.http.items()))
    svc = week.service(data.name)
    labels = gen.http_labels(data.name, instance, svc.routes[route], outcome)
    selector = f"http_server_requests_seconds_count{{{labels}}}"
    at = float(g.ts[index])
    resets = [m for i, m in data.restarts if i == instance]
    cumulative = gen._cumulative(counts, resets)
    assert scalar(realistic_suite.url, selector, at) == cumulative[index]
    generated = float(counts[index - 59 : index + 1].sum())
    increase = scalar(realistic_suite.url, f"increase({selector}[1h])", at)
    assert increase == pytest.approx(generated, rel=0.01)


def test_a_cost_gauge_is_constant_within_its_hour(realistic_suite: harness.Suite) -> None:
    week, data, index = _busy_series(realistic_suite)
    g = gen.grid(week)
    hour_start = int(g.ts[index]) // 3600 * 3600
    family = gen.COST_FAMILIES["cost_compute"]
    selector = f'{family}{{application="{data.name}"}}'
    spread = scalar(
        realistic_suite.url,
        f"max_over_time({selector}[59m]) - min_over_time({selector}[59m])",
        hour_start + 3540,
    )
    assert spread == 0.0
    value = scalar(realistic_suite.url, selector, hour_start + 1800)
    assert value == pytest.approx(data.cost["cost_compute"][index], rel=1e-6)


def test_restarts_and_gaps_are_in_the_tsdb(realistic_suite: harness.Suite) -> None:
    url = realistic_suite.url
    for week in realistic_suite.weeks:
        for restart in week.restarts:
            at = gen.moment(week, restart.day, restart.at) + 1800
            promql = (
                f'sum(resets(http_server_requests_seconds_count{{application="{restart.service}",'
                f'instance="{restart.service}-{restart.instance}:8080"}}[1h]))'
            )
            assert scalar(url, promql, at) >= 1
        for gap in week.gaps:
            start = gen.moment(week, gap.day, gap.at)
            inside = start + gap.minutes * 60 // 2
            promql = f'process_cpu_usage{{application="{gap.service}"}}'
            assert query(url, promql, inside) == [], "samples inside a scrape gap"
            assert query(url, promql, start + gap.minutes * 60 + 120) != []


def test_a_kpi_query_reads_the_generated_error_share(realistic_suite: harness.Suite) -> None:
    """The catalog's error_rate over an hour agrees with the generated counts."""
    week, data, index = _busy_series(realistic_suite)
    g = gen.grid(week)
    at = float(g.ts[index])
    req = sum(c[index - 59 : index + 1].sum() for c, _, _ in data.http.values())
    err = sum(
        c[index - 59 : index + 1].sum()
        for (_, _, outcome), (c, _, _) in data.http.items()
        if outcome == "SERVER_ERROR"
    )
    sel = f'application="{data.name}"'
    promql = (
        f'100 * sum(increase(http_server_requests_seconds_count{{{sel},outcome="SERVER_ERROR"}}'
        f"[1h])) / sum(increase(http_server_requests_seconds_count{{{sel}}}[1h]))"
    )
    assert scalar(realistic_suite.url, promql, at) == pytest.approx(100 * err / req, abs=0.02)


# --------------------------------------------------------------------------- the scorer


def test_precision_and_recall_on_a_small_example() -> None:
    truth = {("error_rate", "a", 2), ("availability", "a", 2), ("latency_p99", "b", 3)}
    found = {("error_rate", "a", 2), ("latency_p99", "b", 4), ("cpu_utilization", "c", 1)}
    optional = {("cpu_utilization", "c", 1)}
    tp, fp, fn, precision, recall = harness.precision_recall(found, truth, optional)
    assert (tp, fp, fn) == (1, 1, 2)
    assert precision == pytest.approx(0.5)
    assert recall == pytest.approx(1 / 3)
    assert harness.precision_recall(set(), set()) == (0, 0, 0, None, None)


def test_score_week_on_a_hand_made_retrospective() -> None:
    week = next(w for w in placed_weeks() if w.key == "w2")
    truths = gen.ground_truth(week)
    step = truths[0]  # 5xx +2 pt on w2-checkout from day 2
    assert step.injection.label == "5xx +2 pt"
    start = dt.datetime.fromtimestamp(step.start_ts, dt.UTC)
    iso = lambda moment: moment.isoformat()  # noqa: E731
    retro = {
        "degradations": [
            {"kpi": "error_rate", "service": "w2-checkout", "day_first": 2, "severity": "high"},
            {"kpi": "latency_p99", "service": "w2-gateway", "day_first": 4, "severity": "low"},
        ],
        "health_scores": [{"day": d, "score": 90.0 - d, "band": "healthy"} for d in range(8)],
        "verdict": {"status": "warn", "reasons": []},
        "recommendations": [
            {"priority": "P0", "evidence": {"service": "w2-checkout", "kpi": "error_rate"}},
            {"priority": "P2", "evidence": {"service": "w2-gateway", "kpi": "throughput"}},
        ],
        "unexpected_drifts": [],
    }
    events = {
        "events": [
            {
                "service": "w2-checkout",
                "kpi": "error_rate",
                "start": iso(start + dt.timedelta(minutes=3)),
                "end": iso(start + dt.timedelta(minutes=9)),
                "severity": "high",
            },
            {
                "service": "w2-gateway",
                "kpi": "cost_compute",
                "start": iso(start),
                "end": iso(start),
                "severity": "critical",
            },
        ]
    }
    row = harness.score_week(week, truths, harness.WeekRun("w2", 1.0, retro, events))
    assert (row["deg_tp"], row["deg_fp"], row["deg_fn"]) == (1, 1, 1)
    assert row["missed"] == ["w2-checkout/availability@d2"]
    assert row["false_degradations"] == ["w2-gateway/latency_p99@d4"]
    assert (row["sudden_found"], row["sudden_total"]) == (1, 2)
    assert row["control_events"] == 1 and row["control_criticals"] == 1
    assert row["ga_health"] == 90.0
    assert row["clean_days"] == 1 and row["clean_min_health"] == 89.0  # only day 1 is clean
    assert row["verdict_ok"] and row["verdict_expected"] == "fail/warn"
    assert row["rec_noise"] == 1
    assert row["p01_per_injection"] == [1, 0]
    assert row["incidents"] is None
    events["incidents"] = [{"service": "w2-search", "start": iso(start), "end": iso(start)}]
    row = harness.score_week(week, truths, harness.WeekRun("w2", 1.0, retro, events))
    assert row["incidents"] == 1 and row["incidents_matching_injections"] == 0


def test_every_week_has_a_definition() -> None:
    assert {w.key for w in WEEKS} == {w.key for w in placed_weeks()}
