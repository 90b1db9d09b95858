"""The shipped test data tells the SPEC §5 story, exactly, and regenerates to the same data.

These tests read the committed snapshot (`test_data/snapshot/v1.0.1`) the way the offline
metric source will: with DuckDB. The expected numbers are written out here from the SPEC, not
imported from the generator, so a change to `test_data/generate.py` that breaks the story
fails here.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import duckdb
import numpy as np
import pandas as pd
import pytest

from tars_pipeline.config import Release, default_kpis

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "test_data" / "generate.py"
SNAPSHOT = REPO / "test_data" / "snapshot" / "v1.0.1"

RELEASE = Release(
    name="v1.0.1", ga_date=dt.date(2026, 3, 3), timezone="America/New_York", window_days=7
)
DAYS = list(RELEASE.days)
DST_DAY = 5  # Sunday 2026-03-08: clocks go forward, the local day has 23 hours
SERVICES = ["api-gateway", "checkout", "search"]
KPI_NAMES = [kpi.name for kpi in default_kpis()]
COST_KPIS = [name for name in KPI_NAMES if name.startswith("cost_")]

MEAN_REL_TOLERANCE = 5e-4  # 0.05 %

# SPEC §5, as daily means of the per-minute samples, Day 0 .. Day 7.
STORY_DAY_MEANS: dict[tuple[str, str], list[float]] = {
    ("api-gateway", "availability"): [99.95] * 8,
    ("api-gateway", "error_rate"): [0.05] * 8,
    ("api-gateway", "latency_p99"): [150.0, 151.0, 180.0, 154.0, 152.0, 151.0, 150.5, 151.5],
    ("api-gateway", "cpu_utilization"): [45.2, 46.3, 47.5, 48.5, 49.6, 50.6, 51.4, 52.3],
    ("api-gateway", "throughput"): [
        850.0 * (1 + pct / 100) for pct in (0.0, 2.0, 4.0, 5.5, 7.0, 8.5, 10.0, 12.0)
    ],
    ("checkout", "error_rate"): [0.05, 0.05, 0.051, 0.049, 0.08, 0.06, 0.05, 0.05],
    ("checkout", "availability"): [
        100 - rate for rate in (0.05, 0.05, 0.051, 0.049, 0.08, 0.06, 0.05, 0.05)
    ],
    ("search", "memory_utilization"): [
        58.0 * (1 + pct / 100) for pct in (0.0, 12.0, -14.0, 18.0, -16.0, 15.0, -17.0, 11.0)
    ],
    ("search", "error_rate"): [0.02] * 8,
    ("search", "availability"): [99.98] * 8,
}
# Day 0 means of the series that only need to stay flat (and the Day 2 moves of p95/p50).
DAY0_MEANS: dict[tuple[str, str], float] = {
    ("api-gateway", "latency_p95"): 110.0,
    ("api-gateway", "latency_p50"): 45.0,
    ("api-gateway", "memory_utilization"): 62.0,
    ("checkout", "latency_p99"): 120.0,
    ("checkout", "cpu_utilization"): 38.0,
    ("checkout", "memory_utilization"): 55.0,
    ("checkout", "throughput"): 300.0,
    ("search", "cpu_utilization"): 30.0,
    ("search", "latency_p99"): 95.0,
    ("search", "throughput"): 400.0,
}
DAILY_COST_USD = [300.0, 318.0, 326.0, 332.0, 338.0, 342.0, 346.0, 350.0]
COST_SHARE_BY_RESOURCE_PCT = {"compute": 60, "memory": 20, "storage": 12, "network": 8}
COST_SHARE_BY_SERVICE_PCT = {"api-gateway": 50, "checkout": 30, "search": 20}

# The injected incidents: (service, KPIs, day, local window start, local window end).
INCIDENT_WINDOWS = [
    ("api-gateway", ("latency_p99", "latency_p95", "latency_p50"), 2, "13:45", "14:30"),
    ("checkout", ("error_rate", "availability"), 4, "11:05", "11:45"),
    ("api-gateway", ("cpu_utilization",), 5, "16:20", "16:50"),
]
EWMA_SPAN = 60
EWMA_WARMUP = 60
Z_THRESHOLD = 3.0
MAX_FALSE_FLAGS = 2  # over 36 series × 8 days of bounded noise; the committed data has 0


def _day_of_file(path: str) -> int:
    return (dt.date.fromisoformat(Path(path).stem) - RELEASE.ga_date).days


def read_snapshot(files: Path) -> pd.DataFrame:
    """Samples with their day number, as the offline source will see them, in file order.

    `files` is one Parquet file or a directory of them.
    """
    pattern = files / "*.parquet" if files.is_dir() else files
    with duckdb.connect() as con:
        frame = con.execute(
            "SELECT service, kpi, epoch_ms(ts) AS ts_ms, value, filename"
            " FROM read_parquet(?, filename = true)",
            [str(pattern)],
        ).df()
    frame["day"] = frame.pop("filename").map(_day_of_file)
    return frame


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    return read_snapshot(SNAPSHOT)


@pytest.fixture(scope="module")
def day_means(samples: pd.DataFrame) -> pd.Series:
    return samples.groupby(["service", "kpi", "day"])["value"].mean()


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tars_test_data_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


# --- Format -------------------------------------------------------------------------------------


def test_manifest_describes_the_release() -> None:
    manifest = json.loads((SNAPSHOT / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == {
        "format": "tars-snapshot",
        "format_version": 1,
        "release": "v1.0.1",
        "ga_date": "2026-03-03",
        "timezone": "America/New_York",
        "step_seconds": 60,
        "services": SERVICES,
        "kpis": KPI_NAMES,
        "generated_by": "test_data/generate.py",
        "window_days": 7,
    }


def test_one_parquet_file_per_local_day() -> None:
    expected = {f"{RELEASE.day_date(day).isoformat()}.parquet" for day in DAYS}
    assert {path.name for path in SNAPSHOT.glob("*.parquet")} == expected


def test_columns_and_types() -> None:
    with duckdb.connect() as con:
        for path in sorted(SNAPSHOT.glob("*.parquet")):
            columns = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
            assert [(name, kind) for name, kind, *_ in columns] == [
                ("service", "VARCHAR"),
                ("kpi", "VARCHAR"),
                ("ts", "TIMESTAMP WITH TIME ZONE"),
                ("value", "DOUBLE"),
            ], path.name


def test_rows_sorted_by_service_kpi_ts() -> None:
    with duckdb.connect() as con:
        for path in sorted(SNAPSHOT.glob("*.parquet")):
            frame = con.execute(
                "SELECT service, kpi, epoch_ms(ts) AS ts_ms FROM read_parquet(?)", [str(path)]
            ).df()
            keys = list(frame.itertuples(index=False, name=None))
            assert keys == sorted(keys), path.name


def test_every_series_every_day_complete(samples: pd.DataFrame) -> None:
    counts = samples.groupby(["service", "kpi", "day"]).size()
    assert len(counts) == len(SERVICES) * len(KPI_NAMES) * len(DAYS)
    for (service, kpi, day), count in counts.items():
        expected = 1380 if day == DST_DAY else 1440
        assert count == expected, (service, kpi, day)


def test_timestamps_on_the_60s_grid_inside_their_day(samples: pd.DataFrame) -> None:
    assert (samples["ts_ms"] % 60_000 == 0).all()
    for (service, kpi, day), series in samples.groupby(["service", "kpi", "day"])["ts_ms"]:
        start, end = RELEASE.day_bounds(day)
        ts_ms = np.sort(series.to_numpy())
        assert ts_ms[0] == start.timestamp() * 1000, (service, kpi, day)
        assert ts_ms[-1] == end.timestamp() * 1000 - 60_000, (service, kpi, day)
        assert (np.diff(ts_ms) == 60_000).all(), (service, kpi, day)


def test_values_finite_and_in_range(samples: pd.DataFrame) -> None:
    values = samples["value"].to_numpy()
    assert np.isfinite(values).all()
    assert (values >= 0).all()
    percent = samples[samples["kpi"].isin(["availability", "cpu_utilization", "error_rate"])]
    assert (percent["value"] <= 100).all()


def test_availability_is_100_minus_error_rate_sample_by_sample(samples: pd.DataFrame) -> None:
    wide = samples.pivot_table(index=["service", "ts_ms"], columns="kpi", values="value")
    assert np.abs(wide["availability"] + wide["error_rate"] - 100).max() < 1e-9


def test_latency_percentiles_ordered_sample_by_sample(samples: pd.DataFrame) -> None:
    wide = samples.pivot_table(index=["service", "ts_ms"], columns="kpi", values="value")
    assert (wide["latency_p50"] < wide["latency_p95"]).all()
    assert (wide["latency_p95"] < wide["latency_p99"]).all()


# --- The story ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "kpi"), list(STORY_DAY_MEANS))
def test_story_day_means(day_means: pd.Series, service: str, kpi: str) -> None:
    observed = [day_means[service, kpi, day] for day in DAYS]
    assert observed == pytest.approx(STORY_DAY_MEANS[service, kpi], rel=MEAN_REL_TOLERANCE)


def test_story_drifts_read_like_the_seed(day_means: pd.Series) -> None:
    def drift_pct(service: str, kpi: str, day: int) -> float:
        base = day_means[service, kpi, 0]
        return (day_means[service, kpi, day] - base) / abs(base) * 100

    assert drift_pct("api-gateway", "latency_p99", 2) == pytest.approx(20.0, abs=0.01)
    assert drift_pct("api-gateway", "latency_p95", 2) == pytest.approx(8.0, abs=0.01)
    assert drift_pct("api-gateway", "latency_p50", 2) == pytest.approx(3.0, abs=0.01)
    assert drift_pct("api-gateway", "cpu_utilization", 7) == pytest.approx(15.7, abs=0.01)
    assert drift_pct("api-gateway", "throughput", 7) == pytest.approx(12.0, abs=0.01)
    assert drift_pct("checkout", "error_rate", 4) == pytest.approx(60.0, abs=0.01)
    memory_drifts = [drift_pct("search", "memory_utilization", day) for day in DAYS[1:]]
    assert max(abs(drift) for drift in memory_drifts) == pytest.approx(18.0, abs=0.01)


def test_api_gateway_p95_p50_move_only_on_day_2(day_means: pd.Series) -> None:
    for kpi in ("latency_p95", "latency_p50"):
        base = day_means["api-gateway", kpi, 0]
        assert base == pytest.approx(DAY0_MEANS["api-gateway", kpi], rel=MEAN_REL_TOLERANCE)
        for day in DAYS[1:]:
            if day != 2:
                assert abs(day_means["api-gateway", kpi, day] / base - 1) <= 0.02, (kpi, day)


def test_every_other_series_stays_within_2pct_of_day_0(day_means: pd.Series) -> None:
    moving = set(STORY_DAY_MEANS) | {("api-gateway", "latency_p95"), ("api-gateway", "latency_p50")}
    for service in SERVICES:
        for kpi in KPI_NAMES:
            if (service, kpi) in moving or kpi in COST_KPIS:
                continue
            base = day_means[service, kpi, 0]
            if (service, kpi) in DAY0_MEANS:
                assert base == pytest.approx(DAY0_MEANS[service, kpi], rel=MEAN_REL_TOLERANCE)
            for day in DAYS[1:]:
                assert abs(day_means[service, kpi, day] / base - 1) <= 0.02, (service, kpi, day)


def _hours_in_day(day: int) -> float:
    start, end = RELEASE.day_bounds(day)
    return (end - start).total_seconds() / 3600


def _daily_cost_usd(samples: pd.DataFrame) -> pd.DataFrame:
    """Dollars per series and day: mean hourly rate × the hours in that local day."""
    cost = samples[samples["kpi"].isin(COST_KPIS)]
    means = cost.groupby(["service", "kpi", "day"])["value"].mean().rename("usd_per_hour")
    frame = means.reset_index()
    frame["usd"] = frame["usd_per_hour"] * frame["day"].map(_hours_in_day)
    return frame


def test_daily_cost_totals(samples: pd.DataFrame) -> None:
    cost = _daily_cost_usd(samples)
    totals = cost.groupby("day")["usd"].sum()
    assert [totals[day] for day in DAYS] == pytest.approx(DAILY_COST_USD, abs=0.005)
    window_average = totals.loc[1:].mean()
    assert window_average == pytest.approx(336.0, abs=0.005)
    assert (window_average - totals[0]) / totals[0] * 100 == pytest.approx(12.0, abs=0.01)


def test_cost_split_by_resource_and_service(samples: pd.DataFrame) -> None:
    cost = _daily_cost_usd(samples)
    total = cost["usd"].sum()
    by_resource = cost.groupby("kpi")["usd"].sum() / total * 100
    for resource, share in COST_SHARE_BY_RESOURCE_PCT.items():
        assert by_resource[f"cost_{resource}"] == pytest.approx(share, abs=1.0)
    by_service = cost.groupby("service")["usd"].sum() / total * 100
    for service, share in COST_SHARE_BY_SERVICE_PCT.items():
        assert by_service[service] == pytest.approx(share, abs=1.0)


def _local(ts_ms: pd.Series) -> pd.Series:
    return pd.to_datetime(ts_ms, unit="ms", utc=True).dt.tz_convert(RELEASE.tz)


def test_p99_spike_peaks_near_420ms_at_14h_on_day_2(samples: pd.DataFrame) -> None:
    p99 = samples[
        (samples["service"] == "api-gateway")
        & (samples["kpi"] == "latency_p99")
        & (samples["day"] == 2)
    ]
    peak = p99.loc[p99["value"].idxmax()]
    assert peak["value"] == pytest.approx(420.0, abs=10.0)
    peak_local = _local(pd.Series([peak["ts_ms"]])).iloc[0]
    assert dt.time(13, 50) <= peak_local.time() <= dt.time(14, 10)
    above_250 = p99[p99["value"] > 250]
    assert 5 <= len(above_250) <= 25  # a ~20-minute spike, not a plateau


def test_checkout_error_burst_on_day_4(samples: pd.DataFrame) -> None:
    errors = samples[(samples["service"] == "checkout") & (samples["kpi"] == "error_rate")]
    assert errors[errors["day"] == 4]["value"].max() == pytest.approx(0.5, abs=0.02)
    assert errors[errors["day"] != 4]["value"].max() < 0.1


# --- Anomaly detection sees the incidents and (almost) nothing else ------------------------------


def ewma_z_scores(values: np.ndarray) -> np.ndarray:
    """z of each sample against the EWMA mean/variance *before* it (SPEC §3), per column.

    `values` is (samples × series). The state starts at the first sample with variance 0;
    the first `EWMA_WARMUP` samples score 0.
    """
    alpha = 2.0 / (EWMA_SPAN + 1)
    mean = values[0].astype(float)
    variance = np.zeros(values.shape[1])
    z = np.zeros(values.shape)
    for i in range(1, len(values)):
        deviation = values[i] - mean
        std = np.sqrt(variance)
        z[i] = np.divide(deviation, std, out=np.zeros_like(deviation), where=std > 0)
        increment = alpha * deviation
        mean = mean + increment
        variance = (1 - alpha) * (variance + deviation * increment)
    z[:EWMA_WARMUP] = 0.0
    return z


def _in_incident(service: str, kpi: str, day: int, local: pd.Series) -> np.ndarray:
    inside = np.zeros(len(local), dtype=bool)
    clock = local.dt.strftime("%H:%M").to_numpy()
    for incident_service, kpis, incident_day, start, end in INCIDENT_WINDOWS:
        if (incident_service, incident_day) == (service, day) and kpi in kpis:
            inside |= (clock >= start) & (clock <= end)
    return inside


def test_ewma_detector_flags_the_incidents_and_little_else(samples: pd.DataFrame) -> None:
    false_flags: list[tuple[str, str, int, str, float]] = []
    incident_peaks: dict[tuple[str, str, int], float] = {}
    for day, day_samples in samples.groupby("day"):
        wide = day_samples.pivot_table(index="ts_ms", columns=["service", "kpi"], values="value")
        z = np.abs(ewma_z_scores(wide.to_numpy()))
        local = _local(pd.Series(wide.index))
        for column, (service, kpi) in enumerate(wide.columns):
            incident = _in_incident(service, kpi, day, local)
            if incident.any():
                incident_peaks[service, kpi, day] = float(z[incident, column].max())
            for row in np.flatnonzero((z[:, column] >= Z_THRESHOLD) & ~incident):
                clock = local.iloc[row].strftime("%H:%M")
                false_flags.append((service, kpi, day, clock, float(z[row, column])))

    assert len(incident_peaks) == 6
    for key, peak_z in incident_peaks.items():
        assert peak_z >= 6.0, key  # each incident is a clear, at least high-severity, event
    assert len(false_flags) <= MAX_FALSE_FLAGS, false_flags
    assert all(z < 3.5 for *_, z in false_flags), false_flags


# --- Determinism --------------------------------------------------------------------------------


def _created_by(path: Path) -> str:
    with duckdb.connect() as con:
        return con.execute(
            "SELECT created_by FROM parquet_file_metadata(?)", [str(path)]
        ).fetchone()[0]


def test_regenerating_gives_the_committed_data(tmp_path: Path) -> None:
    load_generator().main(["--out", str(tmp_path)])
    regenerated = tmp_path / "v1.0.1"
    committed_manifest = (SNAPSHOT / "manifest.json").read_bytes()
    assert (regenerated / "manifest.json").read_bytes() == committed_manifest
    assert sorted(p.name for p in regenerated.iterdir()) == sorted(
        p.name for p in SNAPSHOT.iterdir()
    )
    for committed_file in sorted(SNAPSHOT.glob("*.parquet")):
        fresh_file = regenerated / committed_file.name
        if _created_by(fresh_file) == _created_by(committed_file):
            # Same DuckDB version: the very same bytes.
            assert fresh_file.read_bytes() == committed_file.read_bytes(), committed_file.name
        # Any DuckDB version: the very same rows, in the same order, with the same values.
        pd.testing.assert_frame_equal(
            read_snapshot(fresh_file), read_snapshot(committed_file), check_exact=True
        )


# --- The same week as raw Prometheus series (OpenMetrics) ---------------------------------------
#
# The real-server tests (tars_pipeline_tests/prometheus/) load this output into Prometheus;
# these check the text itself and, offline, that PromQL's semantics over the raw series give
# the snapshot back: rate() over one 60 s step is the increment / 60, histogram_quantile
# interpolates linearly inside the bucket that holds the rank.

SECONDS_GUARD = 10**11  # Unix seconds stay below this until the year 5138; milliseconds do not


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def raw_series(generator: ModuleType) -> dict:
    return generator.openmetrics_families(generator.generate_samples())


def _one_day(generator: ModuleType, day: int) -> pd.DataFrame:
    samples = generator.generate_samples()
    start, end = RELEASE.day_bounds(day)
    return samples[(samples["ts"] >= start) & (samples["ts"] < end)]


def test_openmetrics_text_is_well_formed(generator: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "day0.om"
    lines_written = generator.write_openmetrics(_one_day(generator, 0), path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == lines_written and lines[-1] == "# EOF"
    assert lines.count("# EOF") == 1

    families_seen: list[str] = []
    last_ts: dict[str, int] = {}
    for line in lines[:-1]:
        if line.startswith("# TYPE "):
            family, kind = line.split()[2:4]
            assert family not in families_seen, f"family {family} interleaved"
            assert kind in {"counter", "gauge", "histogram"}
            families_seen.append(family)
            continue
        if line.startswith("#"):
            continue
        series, value, stamp = line.rsplit(" ", 2)
        assert series.split("{")[0].startswith(families_seen[-1]), line
        assert stamp.isdigit() and int(stamp) < SECONDS_GUARD, f"not Unix seconds: {line}"
        assert int(stamp) % 60 == 0
        assert int(stamp) > last_ts.get(series, -1), f"{series} not in time order"
        last_ts[series] = int(stamp)
        assert np.isfinite(float(value))
    assert families_seen[:3] == [
        "http_requests",
        "http_request_duration_seconds",
        "process_cpu_seconds",
    ]
    start, end = RELEASE.day_bounds(0)
    assert min(last_ts.values()) == int(end.timestamp()) - 60
    first_counter = next(line for line in lines if line.startswith("http_requests_total"))
    assert first_counter.endswith(f" 0.0 {int(start.timestamp()) - 60}")  # one step before


def test_millisecond_timestamps_are_refused(generator: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="milliseconds"):
        generator.write_openmetrics(
            _one_day(generator, 0), tmp_path / "ms.om", shift_seconds=SECONDS_GUARD
        )


def test_counters_never_decrease_and_buckets_are_cumulative(raw_series: dict) -> None:
    for family, (kind, _, series) in raw_series.items():
        if kind == "gauge":
            continue
        for name, (_, values) in series.items():
            assert (np.diff(values) >= 0).all(), f"{family}: {name} decreases"
    histogram = raw_series["http_request_duration_seconds"][2]
    for service in SERVICES:
        buckets = [
            values
            for name, (_, values) in histogram.items()
            if f'service="{service}"' in name and "_bucket" in name
        ]  # in le order, +Inf last
        stacked = np.vstack(buckets)
        assert (np.diff(stacked, axis=0) >= -1e-6).all(), service
        count = histogram[f'http_request_duration_seconds_count{{service="{service}"}}'][1]
        assert np.allclose(stacked[-1], count)


def _rate(values: np.ndarray) -> np.ndarray:
    """rate(x[1m]) at each sample of a counter scraped every 60 s (two points per window)."""
    return np.diff(values) / 60.0


def _histogram_quantile(q: float, bounds: list[float], cumulative: np.ndarray) -> np.ndarray:
    """Prometheus's histogram_quantile for each row of cumulative bucket rates (+Inf last)."""
    rank = q * cumulative[:, -1]
    index = np.argmax(cumulative[:, :-1] >= rank[:, None], axis=1)
    upper = np.asarray(bounds)[index]
    lower = np.where(index > 0, np.asarray([0.0, *bounds])[index], 0.0)
    below = np.where(index > 0, cumulative[np.arange(len(rank)), index - 1], 0.0)
    inside = cumulative[np.arange(len(rank)), index] - below
    return lower + (upper - lower) * (rank - below) / inside


def test_promql_over_the_raw_series_gives_back_the_snapshot(
    generator: ModuleType, raw_series: dict, samples: pd.DataFrame
) -> None:
    wide = samples.pivot_table(index="ts_ms", columns=["service", "kpi"], values="value")
    requests = raw_series["http_requests"][2]
    histogram = raw_series["http_request_duration_seconds"][2]
    bounds = list(generator.HISTOGRAM_BUCKETS_SECONDS)
    worst: dict[str, float] = {}

    def check(service: str, kpi: str, got: np.ndarray) -> None:
        want = wide[service, kpi].to_numpy()
        worst[kpi] = max(worst.get(kpi, 0.0), float(np.max(np.abs(got - want) / np.abs(want))))

    for service in SERVICES:
        label = f'service="{service}"'
        by_code = {
            code: _rate(requests[f'http_requests_total{{{label},code="{code}"}}'][1])
            for code in ("200", "404", "500")
        }
        total = sum(by_code.values())
        check(service, "throughput", total)
        check(service, "error_rate", 100 * by_code["500"] / total)
        check(service, "availability", 100 * (1 - by_code["500"] / total))
        cumulative = np.column_stack(
            [
                _rate(values)
                for name, (_, values) in histogram.items()
                if label in name and "_bucket" in name
            ]
        )
        for kpi, q in generator.QUANTILE_ANCHORS:
            check(service, kpi, 1000 * _histogram_quantile(q, bounds, cumulative))
        cpu = raw_series["process_cpu_seconds"][2][f"process_cpu_seconds_total{{{label}}}"][1]
        check(service, "cpu_utilization", 100 * _rate(cpu))
        used = raw_series["container_memory_working_set_bytes"][2]
        limit = raw_series["container_spec_memory_limit_bytes"][2]
        check(
            service,
            "memory_utilization",
            100
            * used[f"container_memory_working_set_bytes{{{label}}}"][1]
            / limit[f"container_spec_memory_limit_bytes{{{label}}}"][1],
        )
        for kpi, metric in generator.COST_METRICS.items():
            check(service, kpi, raw_series[metric][2][f"{metric}{{{label}}}"][1])

    assert set(worst) == set(KPI_NAMES)
    assert max(worst.values()) < 1e-9, worst
