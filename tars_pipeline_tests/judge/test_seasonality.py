"""Seasonality: the daily traffic cycle and the weekly rhythm are not drift."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.config import Release, default_kpis
from tars_pipeline.judge.drift import (
    DAY_COMPARISON_COLUMNS,
    DRIFT_COLUMNS,
    compare_day,
    compute_drift,
)
from tars_pipeline.judge.seasonality import (
    ReferenceDays,
    date_bounds,
    expectation,
    hour_matched_values,
    hourly_comparison,
    largest_hourly_drift,
    profile_expectation,
    reference_dates,
    reference_week,
    weekday_factors,
)
from tars_pipeline.judge.stats import summarise

KPIS = {kpi.name: kpi for kpi in default_kpis()}
TZ = "Europe/Berlin"
GA = dt.date(2025, 6, 3)  # a Tuesday


def day_of_traffic(
    date: dt.date,
    *,
    level: float = 800.0,
    peak_hour: float = 14.0,
    hours: tuple[float, float] = (0.0, 24.0),
    kpi: str = "throughput",
) -> pd.DataFrame:
    """One local day of minute samples: level × (1 + 0.35 cos(peak)), no noise."""
    start, end = date_bounds(Release(name="x", ga_date=GA, timezone=TZ), date)
    ts = pd.date_range(start, end, freq="60s", inclusive="left")
    local = ts.tz_convert(TZ)
    hour = np.asarray(local.hour + local.minute / 60.0)
    keep = (hour >= hours[0]) & (hour < hours[1])
    values = level * (1 + 0.35 * np.cos(2 * np.pi * (hour - peak_hour) / 24))
    return pd.DataFrame({"service": "shop", "kpi": kpi, "ts": ts[keep], "value": values[keep]})


def test_the_profile_expectation_weights_each_hour_by_the_days_samples():
    profile = pd.DataFrame(
        {"service": "a", "kpi": "k", "hour": [0, 1, 2], "mean": [10.0, 20.0, 40.0]}
    )
    counts = pd.DataFrame({"service": "a", "kpi": "k", "hour": [1, 2], "sample_count": [60, 20]})

    (row,) = profile_expectation(profile, counts).to_dict("records")

    assert row["expected_mean"] == pytest.approx((60 * 20 + 20 * 40) / 80)
    assert row["hours_compared"] == 2


def test_a_whole_day_compares_exactly_as_the_plain_comparison():
    base, day = day_of_traffic(GA), day_of_traffic(GA + dt.timedelta(days=1), level=880.0)

    drift = compare_day(day, base, KPIS, timezone=TZ)
    plain = compute_drift(summarise(day), summarise(base), KPIS)

    assert list(drift.columns) == [*DRIFT_COLUMNS, *DAY_COMPARISON_COLUMNS]
    assert drift["drift_pct"].iloc[0] == pytest.approx(plain["drift_pct"].iloc[0])
    assert drift["drift_pct"].iloc[0] == pytest.approx(10.0)
    assert drift["overall_drift_pct"].iloc[0] == pytest.approx(10.0)
    row = drift.iloc[0]
    assert (row["baseline_method"], row["hours_compared"], row["weekday_factor"]) == (
        "hour_of_day",
        24,
        1.0,
    )


def test_a_morning_is_compared_with_the_baselines_morning():
    base = day_of_traffic(GA)
    morning = day_of_traffic(GA + dt.timedelta(days=1), hours=(0.0, 10.0))

    row = compare_day(morning, base, KPIS, timezone=TZ).iloc[0]

    assert row["hours_compared"] == 10
    assert row["drift_pct"] == pytest.approx(0.0, abs=1e-9)
    assert row["overall_drift_pct"] < -15.0  # night hours against a whole day
    assert not row["flagged"]


def test_a_series_without_common_hours_falls_back_to_the_whole_day():
    base = day_of_traffic(GA, hours=(0.0, 12.0))
    evening = day_of_traffic(GA + dt.timedelta(days=1), hours=(12.0, 24.0))

    row = compare_day(evening, base, KPIS, timezone=TZ).iloc[0]

    assert row["baseline_method"] == "overall"
    assert row["drift_pct"] == pytest.approx(row["overall_drift_pct"])


def test_without_hour_matching_the_comparison_is_the_whole_day():
    base = day_of_traffic(GA)
    morning = day_of_traffic(GA + dt.timedelta(days=1), hours=(0.0, 10.0))

    row = compare_day(morning, base, KPIS, timezone=TZ, hour_of_day=False).iloc[0]

    assert row["baseline_method"] == "overall"
    assert row["drift_pct"] == pytest.approx(row["overall_drift_pct"])


def test_a_shifted_peak_keeps_the_daily_mean_but_shows_in_the_hours():
    base = day_of_traffic(GA)
    shifted = day_of_traffic(GA + dt.timedelta(days=1), peak_hour=20.0)

    row = compare_day(shifted, base, KPIS, timezone=TZ).iloc[0]

    assert row["drift_pct"] == pytest.approx(0.0, abs=1e-6)
    assert row["max_hourly_drift_pct"] > 60.0
    hourly = hourly_comparison(shifted, base, TZ, KPIS)
    assert len(hourly) == 24
    top = largest_hourly_drift(hourly).iloc[0]
    assert top["max_hourly_drift_hour"] == row["max_hourly_drift_hour"]


def test_the_weekday_factor_is_the_reference_weeks_weekday_over_the_ga_weekday():
    saturday_before, tuesday_before = GA - dt.timedelta(days=3), GA - dt.timedelta(days=7)
    reference = ReferenceDays(
        day_weekday=day_of_traffic(saturday_before, level=560.0),
        ga_weekday=day_of_traffic(tuesday_before, level=800.0),
    )
    base = day_of_traffic(GA)
    saturday = day_of_traffic(GA + dt.timedelta(days=4), level=560.0)

    factors = weekday_factors(reference, pd.DataFrame(), TZ)
    assert factors.empty  # no day samples, no hours to match
    row = compare_day(saturday, base, KPIS, timezone=TZ, reference=reference).iloc[0]

    assert row["weekday_factor"] == pytest.approx(0.7)
    assert row["baseline_method"] == "hour_of_day+weekday"
    assert row["baseline_value"] == pytest.approx(560.0)
    assert row["drift_pct"] == pytest.approx(0.0, abs=1e-9)
    assert row["overall_drift_pct"] == pytest.approx(-30.0)


def test_a_weekday_factor_from_a_zero_level_is_not_applied():
    zero = day_of_traffic(GA - dt.timedelta(days=7), level=0.0, kpi="error_rate")
    some = day_of_traffic(GA - dt.timedelta(days=3), level=0.1, kpi="error_rate")
    base = day_of_traffic(GA, level=0.05, kpi="error_rate")
    day = day_of_traffic(GA + dt.timedelta(days=4), level=0.05, kpi="error_rate")

    result = expectation(day, base, TZ, reference=ReferenceDays(some, zero), kpis=KPIS)

    assert result.info["weekday_factor"].tolist() == [1.0]
    assert result.info["baseline_method"].tolist() == ["hour_of_day"]


def test_the_reference_week_ends_before_ga_and_pairs_weekdays():
    release = Release(name="r", ga_date=GA, timezone=TZ, reference_date=GA - dt.timedelta(days=7))
    week = reference_week(release)
    assert week[0] == GA - dt.timedelta(days=7) and week[-1] == GA - dt.timedelta(days=1)
    saturday_ref, tuesday_ref = reference_dates(release, 4)  # Day 4 is a Saturday
    assert (saturday_ref.weekday(), tuesday_ref.weekday()) == (5, 1)
    assert reference_dates(release, 7) == (tuesday_ref, tuesday_ref)

    short = release.model_copy(update={"reference_date": GA - dt.timedelta(days=2)})
    assert reference_dates(short, 4) is None  # the short week has no Tuesday or Saturday
    late = release.model_copy(update={"reference_date": GA})
    assert reference_week(late) == [] and reference_dates(late, 1) is None
    unset = release.model_copy(update={"reference_date": None})
    assert reference_week(unset) == week  # by default the week before GA
    assert reference_week(unset.model_copy(update={"auto_reference": False})) == []


def test_date_bounds_follow_the_local_calendar_day():
    release = Release(name="r", ga_date=GA, timezone=TZ)
    start, end = date_bounds(release, GA)
    assert (start, end) == release.day_bounds(0)
    assert start.isoformat() == "2025-06-02T22:00:00+00:00"


def test_hour_matched_values_keep_common_hours_and_scale_the_baseline():
    baseline = pd.DataFrame({"hour": [0, 1, 2], "value": [1.0, 2.0, 3.0]})
    day = pd.DataFrame({"hour": [1, 2, 5], "value": [10.0, 20.0, 50.0]})

    base_values, day_values = hour_matched_values(baseline, day, weekday_factor=2.0)

    assert base_values.tolist() == [4.0, 6.0]
    assert day_values.tolist() == [10.0, 20.0]
    disjoint = hour_matched_values(baseline, pd.DataFrame({"hour": [9], "value": [1.0]}))
    assert disjoint[0].tolist() == [1.0, 2.0, 3.0]


def _noisy_days(seed: int, *, fall_back: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two whole local days of several series with noise and NaNs, keys as categories; on
    `fall_back` the judged day is the night the clocks go back (hour 2 twice in Berlin)."""
    rng = np.random.default_rng(seed)
    day_date = dt.date(2025, 10, 26) if fall_back else GA + dt.timedelta(days=2)
    frames = {"base": [], "day": []}
    for side, date in (("base", GA), ("day", day_date)):
        for service in ("cart", "shop"):
            for kpi in ("throughput", "latency_p95_ms", "error_rate_pct"):
                frame = day_of_traffic(date, level=rng.uniform(5, 900), kpi=kpi)
                frame["service"] = service
                frame["value"] = frame["value"] * rng.lognormal(0, 0.2, len(frame))
                frame.loc[rng.random(len(frame)) < 0.01, "value"] = np.nan
                frames[side].append(frame)
    base, day = (pd.concat(frames[s], ignore_index=True) for s in ("base", "day"))
    return tuple(f.astype({"service": "category", "kpi": "category"}) for f in (base, day))


@pytest.mark.parametrize("fall_back", [False, True])
def test_two_whole_days_skip_the_hour_matching_merge_with_the_same_results(
    fall_back: bool, monkeypatch: pytest.MonkeyPatch
):
    import tars_pipeline.judge.seasonality as seasonality

    base, day = _noisy_days(7, fall_back=fall_back)
    assert seasonality._every_hour_in_common(
        seasonality.with_local_hour(base, TZ), seasonality.with_local_hour(day, TZ)
    )
    fast = compare_day(day, base, KPIS, timezone=TZ, day_summary=summarise(day))
    fast_expected = expectation(day, base, TZ, kpis=KPIS)
    monkeypatch.setattr(seasonality, "_every_hour_in_common", lambda *_: False)
    slow = compare_day(day, base, KPIS, timezone=TZ)
    slow_expected = expectation(day, base, TZ, kpis=KPIS)

    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    for name in ("day_stats", "baseline_stats", "info"):
        pd.testing.assert_frame_equal(
            getattr(fast_expected, name), getattr(slow_expected, name), check_exact=True
        )


def test_a_day_missing_hours_still_goes_through_the_matching():
    import tars_pipeline.judge.seasonality as seasonality

    base, day = _noisy_days(3, fall_back=False)
    morning = day[seasonality.with_local_hour(day, TZ)["hour"] < 11]
    assert not seasonality._every_hour_in_common(
        seasonality.with_local_hour(base, TZ), seasonality.with_local_hour(morning, TZ)
    )
    drift = compare_day(morning, base, KPIS, timezone=TZ)
    assert (drift["hours_compared"] == 11).all()
