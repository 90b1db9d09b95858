"""Anomaly events: what the EWMA z-score sees in a KPI series, and what it must not see."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tars_pipeline.config import Thresholds, default_kpis
from tars_pipeline.judge import anomaly as anomaly_module
from tars_pipeline.judge import clock
from tars_pipeline.judge.anomaly import (
    DEFAULT_MERGE_GAP,
    DEFAULT_MIN_POINTS,
    DEFAULT_SINGLE_SAMPLE_Z,
    EVENT_COLUMNS,
    RELATIVE_STDDEV_FLOOR,
    EventRows,
    detect_anomalies,
    ewma_zscores,
    find_events,
    first_order_filter,
    robust_zscores,
    severity_for,
)
from tars_pipeline.sources.base import empty_samples

SEVERITY_Z = {"medium": 4.0, "high": 6.0, "critical": 10.0}
# The SPEC's plain rule: every run of consecutive anomalous samples is an event.
EVERY_RUN = {"min_points": 1, "single_sample_z": None, "merge_gap": 0}


def _reference_ewma(values: np.ndarray, span: int, warmup: int):
    """The West/Finch recurrence, one sample at a time, exactly as the docstring states it."""
    alpha = 2.0 / (span + 1.0)
    mean, var = values[0], 0.0
    expected, stddev, z = [], [], []
    for index, value in enumerate(values):
        expected.append(mean)
        stddev.append(np.sqrt(var))
        diff = value - mean
        spread = max(np.sqrt(var), RELATIVE_STDDEV_FLOOR * max(abs(mean), abs(value)))
        judged = index >= max(warmup, 1) and spread > 0
        z.append(diff / spread if judged else 0.0)
        increment = alpha * diff
        mean += increment
        var = (1.0 - alpha) * (var + diff * increment)
    return np.array(expected), np.array(stddev), np.array(z)


def _series(values, service: str = "checkout", kpi: str = "latency_p99") -> pd.DataFrame:
    ts = pd.date_range("2025-03-02", periods=len(values), freq="60s", tz="UTC")
    return pd.DataFrame({"service": service, "kpi": kpi, "ts": ts, "value": values})


def _detect(samples: pd.DataFrame, **overrides) -> pd.DataFrame:
    # min_change ~0: these tests are about the EWMA and the event rules, not the spread
    # floor (test_anomaly_real_series.py).
    settings_ = {
        "span": 30,
        "warmup": 30,
        "z_threshold": 3.0,
        "severity_z": SEVERITY_Z,
        "min_change": 1e-9,
    }
    return detect_anomalies(samples, **{**settings_, **overrides})


@pytest.mark.parametrize("span, warmup", [(2, 0), (10, 5), (60, 60)])
def test_vectorised_ewma_matches_the_textbook_loop(span, warmup):
    values = np.random.default_rng(7).normal(150.0, 12.0, 500)

    result = ewma_zscores(values, span=span, warmup=warmup)
    expected, stddev, z = _reference_ewma(values, span, warmup)

    np.testing.assert_allclose(result.expected, expected, rtol=1e-10)
    np.testing.assert_allclose(result.stddev, stddev, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.z, z, rtol=1e-8, atol=1e-10)


def test_z_is_measured_against_the_state_before_the_sample_no_look_ahead():
    values = np.random.default_rng(3).normal(100.0, 5.0, 300)
    changed = values.copy()
    changed[200:] += 1e6

    before = ewma_zscores(values, span=20, warmup=10)
    after = ewma_zscores(changed, span=20, warmup=10)

    np.testing.assert_array_equal(before.z[:200], after.z[:200])
    np.testing.assert_array_equal(before.expected[:201], after.expected[:201])
    assert after.z[200] > 100  # the jump itself is judged against the past only


def test_warm_up_samples_have_zero_z_and_emit_no_events():
    values = [100.0] * 10 + [500.0] + [100.0] * 5

    assert np.all(ewma_zscores(np.array(values), span=5, warmup=12).z[:12] == 0.0)
    assert _detect(_series(values), span=5, warmup=12).empty


def test_a_flat_line_followed_by_a_step_is_one_spike_event_not_a_division_by_zero():
    values = [150.0] * 60 + [180.0] * 3 + [150.0] * 60

    events = _detect(_series(values), span=30, warmup=30)

    assert len(events) == 1
    event = events.iloc[0]
    ts = _series(values)["ts"]
    assert event["start"] == ts[60]
    assert event["peak_ts"] == ts[60]  # the first sample of the step surprises most
    assert event["direction"] == "spike"
    assert event["severity"] == "critical"
    assert event["peak_value"] == 180.0
    assert event["expected_value"] == pytest.approx(150.0)
    assert np.isfinite(event["peak_z"])
    # The EWMA learns the new level within a few samples; the event ends when it has.
    assert ts[60] <= event["end"] < ts[63]
    assert event["points"] >= 1


def test_a_step_in_noisy_data_is_one_merged_event_with_start_end_and_peak():
    rng = np.random.default_rng(11)
    values = np.r_[
        rng.normal(150.0, 1.0, 200), rng.normal(180.0, 1.0, 10), rng.normal(150.0, 1.0, 5)
    ]
    samples = _series(values)

    events = _detect(samples, span=60, warmup=60)
    spikes = events[events["direction"] == "spike"]

    assert len(spikes) == 1
    spike = spikes.iloc[0]
    assert spike["start"] == samples["ts"][200]
    assert spike["end"] >= samples["ts"][201]
    assert spike["points"] == (spike["end"] - spike["start"]) // pd.Timedelta("60s") + 1
    assert spike["peak_z"] >= 10.0 and spike["severity"] == "critical"
    assert spike["start"] <= spike["peak_ts"] <= spike["end"]
    assert spike["expected_value"] == pytest.approx(150.0, abs=2.0)


def test_a_dip_is_reported_with_a_negative_peak_z():
    values = [99.95] * 40 + [99.95 - 0.5] + [99.95] * 10

    event = _detect(_series(values, kpi="availability")).iloc[0]

    assert event["direction"] == "dip"
    assert event["peak_z"] < 0
    assert event["points"] == 1


def test_white_noise_around_a_constant_raises_at_most_a_handful_of_events():
    values = np.random.default_rng(5).normal(45.0, 2.0, 1440)

    events = _detect(_series(values, kpi="cpu_utilization"), span=60, warmup=60)

    assert len(events) <= 0.01 * len(values)
    assert (events["severity"].isin(["low", "medium"])).all()


def test_a_constant_series_raises_nothing():
    assert _detect(_series([0.0] * 200)).empty
    assert _detect(_series([42.0] * 200)).empty


def test_series_are_judged_separately_and_unsorted_input_is_sorted_by_ts():
    calm = _series([10.0] * 100, service="search")
    step = _series([10.0] * 50 + [20.0] + [10.0] * 49, service="checkout")
    shuffled = pd.concat([calm, step]).sample(frac=1.0, random_state=1)

    events = _detect(shuffled)

    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events["service"].tolist() == ["checkout"]
    assert events.iloc[0]["peak_ts"] == step["ts"][50]


def test_opposite_directions_back_to_back_are_separate_events():
    values = [100.0] * 50 + [200.0, 0.0] + [100.0] * 10

    events = _detect(_series(values), z_threshold=3.0, **EVERY_RUN)

    assert events["direction"].tolist()[:2] == ["spike", "dip"]


def _runs_reference(z, series, z_threshold, min_points, single_sample_z, merge_gap):
    """find_events one row at a time, exactly as the module docstring states the rules."""
    runs = []  # [series, sign, first, last, peak_row, alarm_row or None]
    for row, value in enumerate(z):
        if abs(value) < z_threshold:
            continue
        sign = np.sign(value)
        run = runs[-1] if runs else None
        if run and run[0] == series[row] and run[1] == sign and run[3] == row - 1:
            run[3] = row
            if abs(value) > abs(z[run[4]]):
                run[4] = row
        else:
            runs.append([series[row], sign, row, row, row, None])
            run = runs[-1]
        persistent = run[3] - run[2] + 1 >= min_points
        extreme = single_sample_z is not None and abs(value) >= single_sample_z
        if run[5] is None and (persistent or extreme):
            run[5] = row
    events = []  # [series, sign, first, last, alarm, peak, points]
    for series_, sign, first, last, peak, alarm in runs:
        if alarm is None:
            continue
        previous = events[-1] if events else None
        if (
            previous
            and previous[0] == series_
            and previous[1] == sign
            and first - previous[3] - 1 <= merge_gap
        ):
            previous[3] = last
            if abs(z[peak]) > abs(z[previous[5]]):
                previous[5] = peak
            previous[6] += last - first + 1
        else:
            events.append([series_, sign, first, last, alarm, peak, last - first + 1])
    columns = list(zip(*events, strict=True)) if events else [()] * 7
    return EventRows(*(np.array(column, dtype="int64") for column in columns[2:]))


def test_a_lone_sample_just_over_the_threshold_is_not_an_event():
    z = np.array([0.0, 3.4, 0.0, 0.0])

    assert len(find_events(z, z_threshold=3.0).first) == 0
    assert find_events(z, z_threshold=3.0, min_points=1).first.tolist() == [1]


def test_a_lone_extreme_sample_is_an_event_raised_on_that_sample():
    z = np.array([0.0, 0.0, -DEFAULT_SINGLE_SAMPLE_Z, 0.0])

    events = find_events(z, z_threshold=3.0)

    assert events.first.tolist() == events.alarm.tolist() == events.peak.tolist() == [2]
    assert events.points.tolist() == [1]


def test_a_persistent_run_is_raised_on_its_min_points_th_sample():
    z = np.array([0.0, 3.2, 3.1, 3.3, 0.0])

    events = find_events(z, z_threshold=3.0, min_points=2)

    assert events.first.tolist() == [1]
    assert events.alarm.tolist() == [2]  # a live detector knows at the second sample
    assert events.last.tolist() == [3]
    assert events.peak.tolist() == [3]
    assert events.points.tolist() == [3]


def test_runs_of_one_direction_within_the_merge_gap_are_one_event():
    quiet = [0.0] * DEFAULT_MERGE_GAP
    z = np.array([4.0, 4.0, *quiet, 8.0, *quiet, 0.0, 4.0, 4.0])

    events = find_events(z, z_threshold=3.0, min_points=2)

    assert events.first.tolist() == [0, len(z) - 2]
    assert events.last.tolist() == [DEFAULT_MERGE_GAP + 2, len(z) - 1]
    assert events.peak.tolist() == [DEFAULT_MERGE_GAP + 2, len(z) - 2]
    assert events.points.tolist() == [3, 2]


def test_a_dip_between_two_spikes_keeps_three_events_and_series_never_merge():
    z = np.array([4.0, 4.0, 0.0, -4.0, -4.0, 0.0, 4.0, 4.0, 4.0, 4.0])
    series = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])

    events = find_events(z, series, z_threshold=3.0, min_points=2)

    assert events.first.tolist() == [0, 3, 6, 8]


def test_defaults_drop_the_lone_low_blips_and_keep_the_incident():
    rng = np.random.default_rng(21)
    values = rng.normal(70.0, 0.4, 400)
    values[200] = 70.0 - 1.5  # a lone ~3.5 sigma dip: chance, at this many samples
    values[300:306] = 90.0  # a six-sample incident
    samples = _series(values, kpi="memory_utilization")

    plain = _detect(samples, span=60, warmup=60, **EVERY_RUN)
    events = _detect(samples, span=60, warmup=60)

    assert samples["ts"][200] in set(plain["start"])
    assert events["start"].tolist() == [samples["ts"][300]]
    assert events.iloc[0]["points"] >= DEFAULT_MIN_POINTS


@settings(max_examples=80, deadline=None)
@given(
    z=arrays(np.float64, st.integers(0, 120), elements=st.sampled_from([0.0, 3.5, -3.5, 6.0])),
    split=st.integers(0, 120),
    min_points=st.integers(1, 4),
    single_sample_z=st.sampled_from([None, 5.0]),
    merge_gap=st.integers(0, 5),
)
def test_vectorised_events_match_the_row_by_row_rules(
    z, split, min_points, single_sample_z, merge_gap
):
    series = (np.arange(len(z)) >= split).astype("int64")
    rules = {
        "z_threshold": 3.0,
        "min_points": min_points,
        "single_sample_z": single_sample_z,
        "merge_gap": merge_gap,
    }

    found = find_events(z, series, **rules)
    expected = _runs_reference(z, series, **rules)

    for name, got, want in zip(EventRows._fields, found, expected, strict=True):
        assert got.tolist() == want.tolist(), name


def test_severity_follows_peak_z():
    abs_z = np.array([3.0, 3.99, 4.0, 6.0, 9.9, 10.0, 1e6])

    assert severity_for(abs_z, SEVERITY_Z).tolist() == [
        "low",
        "low",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]


def test_no_samples_no_events():
    events = _detect(empty_samples())

    assert events.empty
    assert list(events.columns) == list(EVENT_COLUMNS)


def test_robust_method_finds_the_same_step():
    values = [150.0 + (i % 3) for i in range(100)] + [190.0] + [150.0] * 10

    events = _detect(_series(values), method="robust", span=30, warmup=30)

    assert events.iloc[0]["peak_value"] == 190.0
    assert events.iloc[0]["direction"] == "spike"
    assert robust_zscores(np.array(values), window=30, warmup=0).z[:30].tolist() == [0.0] * 30


def test_robust_scale_survives_a_window_that_is_mostly_one_value():
    # A quantised CPU series: 0.066 two times in three, else 0.068. Its MAD is 0, which
    # would make the next 0.068 infinitely surprising.
    values = np.where(np.arange(200) % 3 == 0, 0.068, 0.066)

    result = robust_zscores(values, window=60, warmup=60)

    assert np.all(result.stddev[60:] > 0)
    assert np.abs(result.z).max() < 10.0
    assert _detect(_series(values), method="robust", span=60, warmup=60).empty


finite_series = arrays(
    np.float64,
    st.integers(0, 300),
    elements=st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(values=finite_series, span=st.integers(1, 100), warmup=st.integers(0, 50))
def test_ewma_outputs_are_always_finite(values, span, warmup):
    result = ewma_zscores(values, span=span, warmup=warmup)

    for array in result:
        assert array.shape == values.shape
        assert np.isfinite(array).all()
    assert np.all(result.z[: max(warmup, 1)] == 0.0)


@settings(max_examples=30, deadline=None)
@given(values=finite_series, window=st.integers(2, 40))
def test_robust_outputs_are_always_finite(values, window):
    result = robust_zscores(values, window=window, warmup=0)

    for array in result:
        assert np.isfinite(array).all()


@settings(max_examples=30, deadline=None)
@given(values=arrays(np.float64, st.integers(1, 200), elements=st.floats(-1e6, 1e6)))
def test_events_are_finite_and_well_formed_for_any_series(values):
    events = _detect(_series(values), span=10, warmup=5)

    assert np.isfinite(events[["peak_z", "peak_value", "expected_value"]].to_numpy()).all()
    assert (events["start"] <= events["peak_ts"]).all()
    assert (events["peak_ts"] <= events["end"]).all()
    assert (events["peak_z"].abs() >= 3.0).all()
    assert events["points"].sum() <= len(values)
    assert (events["start"].diff().dropna() >= pd.Timedelta(0)).all()


def test_the_bundled_week_yields_exactly_the_injected_incidents_with_the_defaults():
    snapshot = Path(__file__).resolve().parents[2] / "test_data" / "snapshot" / "v1.0.1"
    with duckdb.connect() as con:
        samples = con.execute(
            "SELECT service, kpi, ts, value FROM read_parquet(?)", [str(snapshot / "*.parquet")]
        ).df()
    samples["ts"] = pd.to_datetime(samples["ts"], utc=True)
    defaults = Thresholds()

    events = detect_anomalies(
        samples,
        span=defaults.ewma_span,
        warmup=defaults.warmup_samples,
        z_threshold=defaults.z_threshold,
        severity_z=defaults.anomaly_severity_z,
        min_change={kpi.name: kpi.threshold_pct / 100 for kpi in default_kpis()},
    )

    local = events["start"].dt.tz_convert("America/New_York")
    found = sorted(
        zip(events["service"], events["kpi"], local.dt.strftime("%m-%d %H"), strict=True)
    )
    assert found == [
        ("api-gateway", "cpu_utilization", "03-08 16"),  # Day 5, 16:20-16:50
        ("api-gateway", "latency_p50", "03-05 13"),  # Day 2, 13:45-14:30
        ("api-gateway", "latency_p95", "03-05 13"),
        ("api-gateway", "latency_p99", "03-05 13"),
        ("checkout", "availability", "03-07 11"),  # Day 4, 11:05-11:45
        ("checkout", "error_rate", "03-07 11"),
    ]
    assert "low" not in set(events["severity"])


@settings(max_examples=60, deadline=None)
@given(
    values=arrays(
        np.float64,
        st.integers(1, 400),
        elements=st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
    ),
    span=st.integers(2, 500),
    state=st.floats(-1e6, 1e6, allow_nan=False),
)
def test_the_recursion_loop_gives_lfilters_bits(
    values: np.ndarray, span: int, state: float
) -> None:
    """The loop that spares small jobs the SciPy import is the same arithmetic as lfilter."""
    from scipy.signal import lfilter

    alpha = 2.0 / (span + 1.0)
    decay = -(alpha - 1.0)
    for gain in (alpha, (1.0 - alpha) * alpha):
        loop = first_order_filter(gain, decay, values, state, vectorised=False)
        scipy_out, _ = lfilter([gain], [1.0, alpha - 1.0], values, zi=np.array([state]))
        assert loop.tobytes() == scipy_out.tobytes()
        assert first_order_filter(gain, decay, values, state, vectorised=True).tobytes() == (
            scipy_out.tobytes()
        )


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 300), min_size=1, max_size=40),
    span=st.integers(2, 200),
    seed=st.integers(0, 2**32 - 1),
)
def test_recursions_run_side_by_side_give_each_series_its_own_bits(
    lengths: list[int], span: int, seed: int
) -> None:
    """Series of mixed lengths (groups of like length side by side, the rest one by one):
    every output is the one-series loop's, to the bit."""
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(0, 10, n) * 10.0 ** rng.integers(-3, 9) for n in lengths]
    states = [float(rng.normal(0, 5)) for _ in lengths]
    alpha = 2.0 / (span + 1.0)
    decay = -(alpha - 1.0)
    together = anomaly_module.first_order_filter_many(alpha, decay, arrays, states)
    for array, state, out in zip(arrays, states, together, strict=True):
        alone = first_order_filter(alpha, decay, array, state, vectorised=False)
        assert out.tobytes() == alone.tobytes()


def test_many_series_scored_together_are_scored_as_one_by_one() -> None:
    rng = np.random.default_rng(3)
    jobs = [
        anomaly_module.EwmaJob(100.0 + rng.normal(0, 3, n), warmup=30)
        for n in [1440] * 12 + [7, 0, 1, 3000]
    ]
    together = anomaly_module.ewma_zscores_many(jobs, span=60)
    for job, result in zip(jobs, together, strict=True):
        alone = ewma_zscores(job.values, span=60, warmup=30)
        for mine, theirs in zip(result, alone, strict=True):
            assert mine.tobytes() == theirs.tobytes()


def test_events_are_the_same_whichever_engine_runs_the_recursions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(11)
    ts = pd.date_range("2026-03-03", periods=1440, freq="min", tz="UTC")
    frames = []
    for service in ("a", "b", "c"):
        for kpi in ("latency_p99", "error_rate"):
            values = 100.0 + rng.normal(0, 3, len(ts))
            values[600:640] += 40.0
            values[900] += 90.0
            frames.append(pd.DataFrame({"service": service, "kpi": kpi, "ts": ts, "value": values}))
    samples = pd.concat(frames, ignore_index=True)
    kwargs = {"span": 60, "warmup": 60, "z_threshold": 3.0, "severity_z": SEVERITY_Z}
    monkeypatch.setattr(anomaly_module, "IIR_LOOP_BELOW", 10**12)
    looped = detect_anomalies(samples, **kwargs)
    monkeypatch.setattr(anomaly_module, "IIR_LOOP_BELOW", 0)
    vectorised = detect_anomalies(samples, **kwargs)
    assert len(looped) >= 6
    pd.testing.assert_frame_equal(looped, vectorised)


@pytest.mark.parametrize("case", ["shuffled", "sorted", "ties", "missing", "wide"])
def test_the_series_time_order_is_lexsorts(case: str) -> None:
    rng = np.random.default_rng(len(case))
    n = 5_000
    service = rng.integers(0, 7, n)
    kpi = rng.integers(0, 5, n)
    ticks = rng.choice(10**12, n, replace=False) * 1000
    if case == "sorted":
        first = np.lexsort((ticks, kpi, service))
        service, kpi, ticks = service[first], kpi[first], ticks[first]
    if case == "ties":
        ticks = rng.integers(0, 40, n)  # many rows at the same time in one series
    if case == "missing":
        service[::97] = -1
    if case == "wide":
        ticks = rng.integers(-(2**62), 2**62, n)  # no single int64 key holds the three
    expected = np.lexsort((ticks, kpi, service))
    assert np.array_equal(anomaly_module._series_time_order(service, kpi, ticks), expected)


@pytest.mark.parametrize("seed", range(6))
def test_the_day_profile_from_sorts_is_pandas_groupby_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-03-03 05:00", periods=1440, freq="min", tz="UTC")
    frames = []
    for k in range(9):
        values = 50 + 20 * np.sin(np.arange(1440) / 229.0) + rng.normal(0, 3 + k, 1440)
        if k == 1:
            values = np.round(values / 10) * 10  # coarse: ties in every hour
        if k == 2:
            values = 7 + rng.normal(0, 0.01, 1440)  # flat: no daily shape
        keep = rng.random(1440) > (0.9 if k == 3 else 0.05)  # k 3: sparse, hours missing
        if k == 4:
            keep[300:540] = False  # four hours without samples: interpolated
        if k == 5:
            values = values * 0  # a zero level: left out
        series = {"service": f"s{k % 3}", "kpi": f"k{k}", "ts": ts[keep], "value": values[keep]}
        frames.append(pd.DataFrame(series))
    day = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)
    if seed % 2:
        day = day.astype({"service": "category", "kpi": "category"})
    hour = clock.hour_of_day(clock.local_nanoseconds(day["ts"], "America/New_York"))
    level = day.groupby(["service", "kpi"])["value"].median() * 1.1 if seed % 3 == 0 else None
    fast = anomaly_module._day_profile_sorted(day, hour, level)
    slow = anomaly_module._day_profile_grouped(day, hour, level)
    assert list(fast) == list(slow) and len(fast) >= 6
    for key in slow:
        assert fast[key].tobytes() == slow[key].tobytes(), key
