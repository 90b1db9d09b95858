"""Property-based tests: whatever the series, the judgement holds together.

Hypothesis draws random series — short and long, flat and wild, zeros, negative counter
artefacts, NaN and Infinity, gaps, huge values — and checks what must always be true:

- nothing raises;
- no output carries NaN or Infinity where JSON would need a number (records are dumped
  with `allow_nan=False`; frame columns that may be undefined hold NaN, never ±Inf);
- every score is within 0-100 and the contributions add up to it;
- results are idempotent: the same input twice, or its rows in another order, gives the
  same verdict.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tars_pipeline.config import (
    HealthConfig,
    Release,
    SnapshotSourceConfig,
    TarsConfig,
    default_kpis,
)
from tars_pipeline.judge.compare import compare_samples
from tars_pipeline.judge.drift import compare_day
from tars_pipeline.judge.drifts import classify_trend
from tars_pipeline.judge.health import score_day
from tars_pipeline.judge.seasonality import date_bounds
from tars_pipeline_tests.scenarios.harness import judge_days

KPIS = {kpi.name: kpi for kpi in default_kpis()}
RELEASE = Release(name="prop", ga_date=dt.date(2025, 6, 3), timezone="Europe/Berlin", window_days=2)
CONFIG = TarsConfig(source=SnapshotSourceConfig(path=Path("unused")), releases=(RELEASE,))
NO_ANOMALIES = pd.DataFrame(
    {
        "service": pd.Series(dtype=object),
        "kpi": pd.Series(dtype=object),
        "start": pd.Series(dtype="datetime64[us, UTC]"),
        "end": pd.Series(dtype="datetime64[us, UTC]"),
        "severity": pd.Series(dtype=object),
    }
)
# A whole week per example: few examples, and the same ones on every run (derandomize),
# so CI stays fast and a failure reproduces; the cheap unit properties below explore more.
PROPERTY_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

nasty_values = st.one_of(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-12, -1.0, math.nan, math.inf, -math.inf, 1e300]),
)


@st.composite
def series_values(draw: st.DrawFn) -> list[float]:
    """A series: flat, a level with noise, zero-heavy, or arbitrary values."""
    size = draw(st.integers(min_value=0, max_value=90))
    kind = draw(st.sampled_from(["flat", "level", "zeros", "wild"]))
    if kind == "wild":
        return draw(st.lists(nasty_values, min_size=size, max_size=size))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    level = draw(st.floats(min_value=0.0, max_value=1e4))
    if kind == "flat":
        values = np.full(size, level)
    elif kind == "level":
        values = level * (1 + rng.normal(0, 0.1, size))
    else:
        values = np.where(rng.random(size) < 0.1, level, 0.0)
    return values.tolist()


@st.composite
def day_samples(draw: st.DrawFn, day: int) -> pd.DataFrame:
    """Samples of one local day: a few (service, KPI) series at random minutes."""
    start, _ = date_bounds(RELEASE, RELEASE.day_date(day))
    frames = []
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(["a", "b|x"]), st.sampled_from(sorted(KPIS))),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    for service, kpi in keys:
        values = draw(series_values())
        minutes = draw(
            st.lists(
                st.integers(min_value=0, max_value=1439),
                min_size=len(values),
                max_size=len(values),
                unique=True,
            )
        )
        ts = pd.Timestamp(start).tz_convert("UTC") + pd.to_timedelta(sorted(minutes), unit="min")
        frames.append(pd.DataFrame({"service": service, "kpi": kpi, "ts": ts, "value": values}))
    return pd.concat(frames, ignore_index=True)


@st.composite
def weeks(draw: st.DrawFn) -> dict[int, pd.DataFrame]:
    return {day: draw(day_samples(day)) for day in RELEASE.days}


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value)!r}")


def _non_finite_paths(value: Any, path: str = "$") -> list[str]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _non_finite_paths(item, f"{path}.{key}")]
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in _non_finite_paths(item, f"{path}[{i}]")]
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return [f"{path} = {value}"]
    return []


def assert_json_clean(value: Any) -> None:
    """Serialisable without NaN or Infinity (numpy scalars are unwrapped, not forgiven)."""
    paths = _non_finite_paths(value)
    assert not paths, paths
    json.dumps(value, allow_nan=False, default=_finite_or_none)


def assert_no_infinity(frame: pd.DataFrame) -> None:
    numbers = frame.select_dtypes(include=["number"]).to_numpy(dtype="float64")
    assert not np.isinf(numbers).any(), frame


def run(week: dict[int, pd.DataFrame]) -> dict[str, Any]:
    days, judgement, recommendations, action_items = judge_days(week, CONFIG, RELEASE)
    return {
        "days": days,
        "judgement": judgement,
        "recommendations": recommendations,
        "action_items": action_items,
    }


def verdict_of(result: dict[str, Any]) -> str:
    """The part of a run an SRE reads, as canonical JSON (for equality)."""
    health = {
        day: [analysis.health.score, analysis.health.band]
        for day, analysis in result["days"].items()
    }
    body = {
        "health": health,
        "judgement": result["judgement"],
        "recommendations": result["recommendations"],
    }
    return json.dumps(body, sort_keys=True, allow_nan=False, default=_finite_or_none)


@PROPERTY_SETTINGS
@pytest.mark.slow
@given(week=weeks())
def test_a_random_week_never_breaks_the_judgement(week: dict[int, pd.DataFrame]) -> None:
    result = run(week)

    for analysis in result["days"].values():
        assert 0.0 <= analysis.health.score <= 100.0
        assert 0.0 <= analysis.health.weighted_kpi_score <= 100.0
        contributions = analysis.health.contributions
        scores = contributions["kpi_score"].to_numpy(dtype="float64")
        assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 100)).all()
        if len(contributions) and contributions["weight"].sum() > 0:
            assert contributions["weighted_points"].sum() == np.float64(
                analysis.health.weighted_kpi_score
            ) or math.isclose(
                contributions["weighted_points"].sum(),
                analysis.health.weighted_kpi_score,
                rel_tol=1e-9,
                abs_tol=1e-9,
            )
        for frame in (analysis.drift, analysis.stats, analysis.slo, analysis.cost, contributions):
            assert_no_infinity(frame)
    assert_json_clean(result["judgement"])
    assert_json_clean(result["recommendations"])
    assert_json_clean(result["action_items"])
    assert len(result["recommendations"]) <= 10


@PROPERTY_SETTINGS
@pytest.mark.slow
@given(week=weeks(), seed=st.integers(min_value=0, max_value=2**16))
def test_the_verdict_is_idempotent_and_ignores_row_order(
    week: dict[int, pd.DataFrame], seed: int
) -> None:
    first = verdict_of(run(week))
    again = verdict_of(run({day: frame.copy() for day, frame in week.items()}))
    shuffled = verdict_of(
        run({day: frame.sample(frac=1.0, random_state=seed) for day, frame in week.items()})
    )

    assert first == again
    assert first == shuffled


@settings(max_examples=200, deadline=None)
@given(
    baseline=st.lists(nasty_values, max_size=60),
    observed=st.lists(nasty_values, max_size=60),
    zero_heavy_share=st.floats(min_value=0.01, max_value=1.0),
)
def test_the_rank_comparison_is_always_a_valid_test(baseline, observed, zero_heavy_share):
    comparison = compare_samples(
        np.array(baseline, dtype="float64"),
        np.array(observed, dtype="float64"),
        zero_heavy_share=zero_heavy_share,
    )

    assert 0.0 <= comparison.p_value <= 1.0
    assert -1.0 <= comparison.effect_size <= 1.0
    assert 0.0 <= comparison.tie_share <= 1.0
    assert -1.0 - 1e-9 <= comparison.untied_effect_size <= 1.0 + 1e-9
    assert comparison.effect_magnitude in {"negligible", "small", "medium", "large"}
    swapped = compare_samples(
        np.array(observed, dtype="float64"),
        np.array(baseline, dtype="float64"),
        zero_heavy_share=zero_heavy_share,
    )
    assert swapped.effect_size == -comparison.effect_size or math.isclose(
        swapped.effect_size, -comparison.effect_size, abs_tol=1e-12
    )


@settings(max_examples=200, deadline=None)
@given(
    series=st.lists(
        st.one_of(st.floats(min_value=-1e6, max_value=1e6), st.just(math.nan)),
        min_size=0,
        max_size=30,
    ),
    threshold=st.floats(min_value=0.01, max_value=100.0),
)
def test_every_trend_has_a_word_and_finite_numbers(series, threshold):
    trend = classify_trend(range(1, len(series) + 1), series, threshold_pct=threshold)

    assert trend.trend in {"increasing", "decreasing", "volatile", "stable"}
    for number in (trend.slope_pct_per_day, trend.kendall_tau, trend.p_value, trend.spread_pct):
        assert number is None or math.isfinite(number)


@settings(max_examples=30, deadline=None)
@given(day=day_samples(1), base=day_samples(0))
def test_a_day_comparison_has_one_row_per_common_series_and_no_infinity(day, base):
    drift = compare_day(day, base, KPIS, timezone=RELEASE.timezone)

    assert not drift.duplicated(["service", "kpi"]).any()
    assert_no_infinity(drift)
    assert (drift["hours_compared"] >= 0).all() and (drift["hours_compared"] <= 24).all()
    relative = drift["relative"].astype(bool)
    assert drift.loc[~relative, "drift_pct"].isna().all()
    assert (drift["adverse_change"] >= 0).all()
    health = score_day(drift, set(), NO_ANOMALIES, KPIS, HealthConfig())
    assert 0.0 <= health.score <= 100.0
