"""Drift: the seed's release week in numbers, one KPI at a time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tars_pipeline.config import KpiDefinition, default_kpis
from tars_pipeline.judge.drift import (
    DRIFT_COLUMNS,
    compute_drift,
    drift_table_markdown,
)
from tars_pipeline.reporting.escape import markdown

KPIS = {kpi.name: kpi for kpi in default_kpis()}


def _stats(rows: list[tuple[str, str, float]], statistic: str = "mean") -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["service", "kpi", statistic])


def _drift_of(kpi: str, baseline: float, observed: float, kpis=KPIS) -> pd.Series:
    statistic = kpis[kpi].statistic
    drift = compute_drift(
        _stats([("checkout", kpi, observed)], statistic),
        _stats([("checkout", kpi, baseline)], statistic),
        kpis,
    )
    assert len(drift) == 1
    return drift.iloc[0]


def test_p99_latency_150_to_180_ms_is_20_pct_adverse_and_flagged():
    row = _drift_of("latency_p99", 150.0, 180.0)

    assert row["drift_pct"] == pytest.approx(20.0)
    assert row["adverse_drift_pct"] == pytest.approx(20.0)
    assert row["abs_change"] == pytest.approx(30.0)
    assert row["adverse_change"] == pytest.approx(30.0)
    assert row["relative"]
    assert row["flagged"]
    assert (row["direction"], row["kind"], row["unit"]) == ("lower_is_better", "user_facing", "ms")


def test_latency_improving_is_flagged_but_not_adverse():
    row = _drift_of("latency_p99", 150.0, 120.0)

    assert row["drift_pct"] == pytest.approx(-20.0)
    assert row["adverse_drift_pct"] == 0.0
    assert row["adverse_change"] == 0.0
    assert row["flagged"]


def test_availability_falling_is_adverse_for_a_higher_is_better_kpi():
    row = _drift_of("availability", 99.95, 99.5)

    assert row["drift_pct"] == pytest.approx((99.5 - 99.95) / 99.95 * 100)
    assert row["adverse_drift_pct"] == pytest.approx(-row["drift_pct"])
    assert row["adverse_change"] == pytest.approx(0.45)
    assert row["flagged"]  # availability's threshold is 0.1 %


def test_cpu_45_2_to_52_3_pct_drifts_15_7_pct():
    row = _drift_of("cpu_utilization", 45.2, 52.3)

    assert row["drift_pct"] == pytest.approx(15.7, abs=0.01)
    assert row["flagged"]


def test_a_neutral_kpi_is_never_adverse():
    row = _drift_of("throughput", 1000.0, 1500.0)

    assert row["drift_pct"] == pytest.approx(50.0)
    assert row["adverse_drift_pct"] == 0.0
    assert row["adverse_change"] == 0.0
    assert row["flagged"]  # a large move is still worth a look


def test_drift_of_exactly_the_threshold_is_flagged_despite_float_rounding():
    assert (0.055 - 0.05) / 0.05 * 100.0 < 10.0  # 9.999999999999995 in binary floating point
    assert _drift_of("error_rate", 0.05, 0.055)["flagged"]
    assert not _drift_of("error_rate", 0.05, 0.0549)["flagged"]


def test_error_rate_from_a_zero_baseline_is_reported_as_an_absolute_change_and_flagged():
    row = _drift_of("error_rate", 0.0, 0.3)

    assert not row["relative"]
    assert math.isnan(row["drift_pct"])
    assert math.isnan(row["adverse_drift_pct"])
    assert row["abs_change"] == pytest.approx(0.3)
    assert row["adverse_change"] == pytest.approx(0.3)
    assert row["flagged"]


def test_a_baseline_below_near_zero_is_not_relative_and_zero_to_zero_is_a_pass():
    tiny = _drift_of("error_rate", 1e-8, 1e-8)  # error_rate.near_zero is 1e-6
    assert not tiny["relative"]
    assert not tiny["flagged"]
    assert not _drift_of("error_rate", 0.0, 0.0)["flagged"]


def test_each_kpi_compares_its_own_statistic():
    kpis = {"latency_p99": KPIS["latency_p99"].model_copy(update={"statistic": "p99"})}
    day = pd.DataFrame(
        [("api", "latency_p99", 100.0, 180.0)], columns=["service", "kpi", "mean", "p99"]
    )
    base = pd.DataFrame(
        [("api", "latency_p99", 100.0, 150.0)], columns=["service", "kpi", "mean", "p99"]
    )

    row = compute_drift(day, base, kpis).iloc[0]

    assert row["statistic"] == "p99"
    assert (row["baseline_value"], row["observed_value"]) == (150.0, 180.0)


def test_only_pairs_present_on_both_days_and_in_the_catalog_are_compared():
    day = _stats([("a", "latency_p99", 1.0), ("b", "latency_p99", 1.0), ("a", "mystery", 1.0)])
    base = _stats([("a", "latency_p99", 1.0), ("c", "latency_p99", 1.0), ("a", "mystery", 1.0)])

    drift = compute_drift(day, base, KPIS)

    assert list(drift.columns) == list(DRIFT_COLUMNS)
    assert drift[["service", "kpi"]].values.tolist() == [["a", "latency_p99"]]


def test_empty_inputs_give_an_empty_frame_with_the_columns():
    drift = compute_drift(_stats([]), _stats([]), KPIS)

    assert drift.empty
    assert list(drift.columns) == list(DRIFT_COLUMNS)


@settings(max_examples=50)
@given(
    baseline=st.floats(-1e12, 1e12, allow_nan=False),
    observed=st.floats(-1e12, 1e12, allow_nan=False),
    kpi=st.sampled_from(sorted(KPIS)),
)
def test_drift_is_never_infinite_and_adverse_is_never_negative(baseline, observed, kpi):
    row = _drift_of(kpi, baseline, observed)

    numbers = row[["baseline_value", "observed_value", "abs_change", "adverse_change"]]
    assert np.isfinite(numbers.astype(float)).all()
    assert row["adverse_change"] >= 0
    if row["relative"]:
        assert math.isfinite(row["drift_pct"])
        assert row["adverse_drift_pct"] >= 0
    else:
        assert math.isnan(row["drift_pct"])


def test_markdown_table_lists_flagged_rows_first_then_by_size_of_drift():
    day = _stats(
        [
            ("checkout", "latency_p99", 151.0),
            ("checkout", "cpu_utilization", 52.3),
            ("checkout", "error_rate", 0.3),
            ("checkout", "latency_p50", 60.0),
        ]
    )
    base = _stats(
        [
            ("checkout", "latency_p99", 150.0),
            ("checkout", "cpu_utilization", 45.2),
            ("checkout", "error_rate", 0.0),
            ("checkout", "latency_p50", 50.0),
        ]
    )

    table = drift_table_markdown(compute_drift(day, base, KPIS)).splitlines()

    assert table[0] == "| Service | KPI | Baseline | Observed | Drift | Flag |"
    assert (
        table[2]
        == "| checkout | error\\_rate | 0 % | 0.3 % | n/a (abs +0.3 %) | flagged (adverse) |"
    )
    assert table[3].startswith("| checkout | latency\\_p50 | 50 ms | 60 ms | +20.0 % |")
    assert table[4].startswith("| checkout | cpu\\_utilization | 45.2 % | 52.3 % | +15.7 % |")
    assert table[5].endswith("| +0.7 % |  |")


def test_markdown_table_escapes_labels_and_respects_the_limit():
    services = ["a|b", "<img src=x>", "[x](http://evil)"]
    day = _stats([(name, "latency_p99", 200.0) for name in services])
    base = _stats([(name, "latency_p99", 100.0) for name in services])
    drift = compute_drift(day, base, KPIS)

    table = drift_table_markdown(drift)
    shortened = drift_table_markdown(drift, limit=2)

    assert "| a\\|b |" in table
    assert "| \\<img src=x\\> |" in table
    assert "| \\[x\\](http://evil) |" in table
    assert "1 more row(s) not shown" in shortened
    assert sum(line.startswith("| ") for line in shortened.splitlines()) == 2 + 2  # header, rule


@given(st.text())
def test_escaped_labels_never_break_out_of_a_table_cell(label):
    escaped = markdown(label)

    assert "\n" not in escaped
    unescaped_pipes = escaped.replace("\\\\", "").replace("\\|", "")
    assert "|" not in unescaped_pipes


def test_custom_kpi_threshold_is_respected():
    strict = KpiDefinition(
        name="queue_depth",
        title="Queue depth",
        unit="msgs",
        direction="lower_is_better",
        kind="resource",
        threshold_pct=50.0,
    )
    kpis = {"queue_depth": strict}

    assert not _drift_of("queue_depth", 100.0, 140.0, kpis)["flagged"]
    assert _drift_of("queue_depth", 100.0, 150.0, kpis)["flagged"]
