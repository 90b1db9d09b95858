"""What the detector knows beyond the series itself (docs/methods/anomalies.md, "Context"):
the reference week's profile, the range the GA day showed, the requests behind a
percentage or a quantile, and how long a held gauge holds."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.config import (
    KpiDefinition,
    PrometheusSourceConfig,
    Release,
    SnapshotSourceConfig,
    TarsConfig,
)
from tars_pipeline.judge.anomaly import binomial_spread, detect_anomalies
from tars_pipeline.judge.day import day_anomalies
from tars_pipeline.judge.seasonality import ReferenceDays

GA = dt.date(2026, 3, 3)  # a Tuesday
SNAPSHOT = TarsConfig(
    source=SnapshotSourceConfig(path="unused"), releases=[Release(name="v1", ga_date=GA)]
)
PROMETHEUS = TarsConfig(
    source=PrometheusSourceConfig(url="http://127.0.0.1:9"),
    releases=[Release(name="v1", ga_date=GA)],
)


def _minutes(start: str, days: float = 1.0) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=int(1440 * days), freq="60s", tz="UTC")


def _frame(kpi: str, ts: pd.DatetimeIndex, values: np.ndarray, service: str = "shop"):
    return pd.DataFrame({"service": service, "kpi": kpi, "ts": ts, "value": values})


def _hourly_cost(start: str, jitter_seed: int) -> pd.DataFrame:
    """An OpenCost-style gauge: constant within each hour, following the daily cycle."""
    ts = _minutes(start)
    hour = ts.hour.to_numpy()
    cycle = 0.1 * (2 - np.cos(2 * np.pi * hour / 24))
    rng = np.random.default_rng(jitter_seed)
    cycle = cycle * rng.normal(1.0, 0.01, 24)[hour]
    return _frame("cost_compute", ts, np.round(cycle, 4))


def test_ga_day_is_scored_against_its_weekday_a_week_before() -> None:
    ga_day = _hourly_cost("2026-03-03", jitter_seed=1)
    reference = _hourly_cost("2026-02-24", jitter_seed=2)  # the Tuesday before
    judged_from = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)

    blind = day_anomalies(ga_day, SNAPSHOT, judged_from=judged_from)
    assert not blind.empty  # the daily cycle, read as a spike or a dip

    seeing = day_anomalies(
        ga_day,
        SNAPSHOT,
        judged_from=judged_from,
        references={GA: ReferenceDays(reference, reference)},
    )
    assert seeing.empty


def _cpu_with_a_batch_job(start: str, seed: int, job_at: tuple[int, ...]) -> pd.DataFrame:
    """CPU %: 40 ± 1 all day, a batch job adding 30 points for 20 minutes from each minute
    of the day in `job_at`, and an idle dip to 20 % at 06:00 on the GA day."""
    ts = _minutes(start)
    values = np.random.default_rng(seed).normal(40.0, 1.0, len(ts))
    for at in job_at:
        values[at : at + 20] += 30.0
    return _frame("cpu_utilization", ts, values)


def test_what_the_ga_day_showed_at_that_time_is_not_an_anomaly_beyond_it_is() -> None:
    ga_day = _cpu_with_a_batch_job("2026-03-03", seed=1, job_at=(120,))  # 02:00 nightly
    ga_day.loc[360:379, "value"] = 20.0  # idle for 20 minutes at 06:00
    day_one = _cpu_with_a_batch_job("2026-03-04", seed=2, job_at=(125, 840))  # and 14:00
    day_one.loc[1200:1219, "value"] = 21.0  # idle at 20:00: a move the good way
    judged_from = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
    no_band = SNAPSHOT.model_copy(
        update={"thresholds": SNAPSHOT.thresholds.model_copy(update={"anomaly_band_minutes": 0})}
    )

    blind = day_anomalies(day_one, no_band, judged_from=judged_from, baseline=ga_day)
    starts = set(zip(blind["start"].dt.hour, blind["direction"], strict=True))
    assert {(2, "spike"), (14, "spike"), (20, "dip")} <= starts

    events = day_anomalies(day_one, SNAPSHOT, judged_from=judged_from, baseline=ga_day)
    # The nightly job ran at 02:00 on GA day too, and 21 % is within the day's range.
    assert list(zip(events["start"].dt.hour, events["direction"], strict=True)) == [(14, "spike")]


def test_the_binomial_spread_of_a_percentage_needs_the_request_count() -> None:
    spread = binomial_spread(np.array([1.0, 1.0, 0.0]), np.array([10_000.0, 100.0, 1000.0]))
    assert spread[0] == pytest.approx(100 * np.sqrt(0.01 * 0.99 / 10_000))
    assert spread[1] == pytest.approx(100 * np.sqrt(0.01 * 0.99 / 100))
    assert spread[2] == pytest.approx(100 * np.sqrt(0.001 * 0.999 / 1000))  # ≥ one in n
    assert binomial_spread(np.array([1.0]), np.array([np.nan]))[0] == 0.0


def _low_traffic_errors(seed: int, step_at: int | None = None) -> pd.DataFrame:
    """2 req/s, 0.05 % failing, as rate()[5m] reads it: Poisson counts over 5 minutes."""
    rng = np.random.default_rng(seed)
    ts = _minutes("2026-03-04")
    share = np.full(len(ts), 0.0005)
    if step_at is not None:
        share[step_at:] = 0.05
    requests = rng.poisson(2.0 * 60, len(ts)).astype(float)
    errors = rng.binomial(requests.astype(int), share).astype(float)
    window = np.ones(5)
    req5 = np.convolve(requests, window)[: len(ts)]
    err5 = np.convolve(errors, window)[: len(ts)]
    return pd.concat(
        [
            _frame("throughput", ts, req5 / 300.0),
            _frame("error_rate", ts, 100.0 * err5 / np.maximum(req5, 1.0)),
        ],
        ignore_index=True,
    )


def test_an_error_rate_on_few_requests_is_judged_on_its_sampling_noise() -> None:
    judged_from = dt.datetime(2026, 3, 4, 1, tzinfo=dt.UTC)
    settings = PROMETHEUS.detector_settings()
    naive = floored = 0
    for seed in range(20):  # twenty quiet days
        quiet = _low_traffic_errors(seed=seed)
        errors = quiet[quiet["kpi"] == "error_rate"]
        naive += len(detect_anomalies(errors, **settings))
        events = day_anomalies(quiet, PROMETHEUS, judged_from=judged_from)
        floored += int((events["kpi"] == "error_rate").sum())
    # One failed request among 600 is a 0.17-point "spike" to a series that sat at 0.
    assert naive >= 3 and floored == 0

    broken = _low_traffic_errors(seed=5, step_at=800)
    events = day_anomalies(broken, PROMETHEUS, judged_from=judged_from)
    errors = events[events["kpi"] == "error_rate"]
    assert set(errors["direction"]) == {"spike"}
    assert broken["ts"][800] <= errors["start"].min() <= broken["ts"][810]


def test_a_latency_quantile_of_too_few_requests_is_not_judged() -> None:
    ts = _minutes("2026-03-04")
    rng = np.random.default_rng(2)
    p99 = rng.lognormal(np.log(250.0), 0.02, len(ts))
    p99[900:903] = 900.0  # three slow requests
    quiet_hours = np.asarray(ts.hour < 6)
    throughput = np.where(quiet_hours, 1.0, 20.0)  # 300 vs 6000 requests per 5 minutes
    p99[200:203] = 900.0  # at night: the 3 slowest of 300 requests
    samples = pd.concat(
        [_frame("throughput", ts, throughput), _frame("latency_p99", ts, p99)],
        ignore_index=True,
    )
    events = day_anomalies(
        samples, PROMETHEUS, judged_from=dt.datetime(2026, 3, 4, 1, tzinfo=dt.UTC)
    )
    latency = events[events["kpi"] == "latency_p99"]
    assert list(latency["start"]) == [ts[900]]  # the night's thin tail is not judged


def test_a_held_gauge_is_anomalous_when_its_level_holds_not_for_one_update() -> None:
    ts = _minutes("2026-03-04", days=2)
    hours = np.arange(len(ts)) // 60
    base = np.where(hours % 2 == 0, 0.092, 0.0966)  # a small hourly wobble
    one_hour = base.copy()
    one_hour[(hours == 30)] = 0.138  # one hour at 3 replicas, then back
    step = base.copy()
    step[hours >= 30] = 0.138  # a price step that stays
    settings = SNAPSHOT.detector_settings()
    assert detect_anomalies(_frame("cost_compute", ts, one_hour), **settings).empty
    events = detect_anomalies(_frame("cost_compute", ts, step), **settings)
    assert len(events) == 1 and events.iloc[0]["start"] == ts[30 * 60]


def test_range_lags_and_quantiles_are_read_from_the_kpi_queries() -> None:
    config = PROMETHEUS.model_copy(
        update={
            "kpis": [
                KpiDefinition(
                    name="a",
                    title="A",
                    direction="neutral",
                    kind="resource",
                    query="sum(rate(x[{rate_window}]))",
                    unit="req/s",
                ),
                KpiDefinition(
                    name="b",
                    title="B",
                    direction="neutral",
                    kind="resource",
                    query="avg(process_cpu_usage)",
                    unit="%",
                ),
                KpiDefinition(
                    name="c",
                    title="C",
                    direction="lower_is_better",
                    kind="user_facing",
                    query="histogram_quantile(0.95, sum by (le) (rate(h[1h:1m])))",
                    unit="ms",
                ),
            ]
        }
    )
    assert config.range_lag_seconds() == {"a": 300.0, "b": 0.0, "c": 3600.0}
    assert config.quantile_of_kpi() == {"c": 0.95}
    assert SNAPSHOT.range_lag_seconds()["latency_p99"] == SNAPSHOT.step_seconds  # one rate
    assert SNAPSHOT.quantile_of_kpi() == {}


def test_a_move_the_good_way_is_never_more_than_low() -> None:
    ts = _minutes("2026-03-04")
    values = np.random.default_rng(4).normal(60.0, 0.5, len(ts))
    values[600:630] = 30.0  # memory halves for half an hour
    values[900:930] = 90.0  # and later climbs by half
    events = detect_anomalies(
        _frame("memory_utilization", ts, values), **SNAPSHOT.detector_settings()
    )
    assert list(zip(events["direction"], events["severity"], strict=True)) == [
        ("dip", "low"),
        ("spike", "critical"),
    ]
