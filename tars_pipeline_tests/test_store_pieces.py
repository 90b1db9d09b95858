"""The window judge reads the samples a few services at a time (`store.StoredSamples`):
each piece holds exactly the rows of its labels, in the order the whole read lists them,
on both store layouts. Real files, a real DuckDB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from tars_pipeline.store import (
    ParquetLocation,
    StoredSamples,
    open_store,
    read_table,
    replace_partition,
)

SERVICES = ("api", "o'brien", "search")  # a quote: the filter is SQL
KPIS = ("cost_compute", "latency_p99", "throughput")


def _day(day: int) -> pd.DataFrame:
    """Every (service, KPI), interleaved and unsorted: the order written must survive."""
    rng = np.random.default_rng(day)
    rows = [
        (service, kpi, minute)
        for minute in range(20)
        for service in SERVICES
        for kpi in KPIS
        if not (service == "search" and day == 2)  # a service missing on a day
    ]
    frame = pd.DataFrame(rows, columns=["service", "kpi", "minute"]).sample(
        frac=1.0, random_state=day
    )
    start = pd.Timestamp("2026-03-03", tz="UTC") + pd.Timedelta(days=day)
    return pd.DataFrame(
        {
            "service": frame["service"].to_numpy(),
            "kpi": frame["kpi"].to_numpy(),
            "ts": start + pd.to_timedelta(frame["minute"].to_numpy(), unit="min"),
            "value": rng.normal(100.0, 5.0, len(frame)),
        }
    )


@pytest.fixture(params=["parquet", "duckdb"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> ParquetLocation | DuckDBResource:
    if request.param == "parquet":
        return ParquetLocation(root=tmp_path / "store", catalog=tmp_path / "tars.duckdb")
    return DuckDBResource(database=str(tmp_path / "tars.duckdb"))


def _plain(frame: pd.DataFrame, location) -> pd.DataFrame:
    frame = frame.astype({"service": str, "kpi": str})
    if isinstance(location, DuckDBResource):  # its ORDER BY day leaves a day's rows unordered
        frame = frame.sort_values(["day", "service", "kpi", "ts"], kind="stable")
    return frame.reset_index(drop=True)


def test_each_piece_is_the_whole_read_of_its_labels_in_its_order(location) -> None:
    with open_store(location) as conn:
        for day in range(4):
            replace_partition(conn, "v1", day, {"samples": _day(day)})
    samples = StoredSamples(lambda: open_store(location), "v1", [1, 2, 3], pd.DataFrame())
    whole = [_plain(frame, location) for frame in samples.read()]
    assert [len(frame) for frame in whole] == [180, 3 * 180 - 60]

    def expected(services: list[str], kpis: list[str]) -> list[pd.DataFrame]:
        return [
            frame[frame["service"].isin(services) | frame["kpi"].isin(kpis)].reset_index(drop=True)
            for frame in whole
        ]

    for services, kpis in [
        (["o'brien"], None),
        (["api", "search"], None),
        (None, ["cost_compute"]),
        (["search"], ["cost_compute"]),
    ]:
        pieces = [_plain(frame, location) for frame in samples.read(services, kpis)]
        for piece, want in zip(pieces, expected(services or [], kpis or []), strict=True):
            assert len(piece) > 0
            pd.testing.assert_frame_equal(piece, want)
    assert all(frame.empty for frame in samples.read(["nobody"], None))
    assert all(frame.empty for frame in samples.read(None, []))


def test_the_pieces_are_sized_by_the_daily_sample_counts(tmp_path: Path) -> None:
    stats = pd.DataFrame(
        {"service": ["a", "a", "b"], "kpi": ["x", "y", "x"], "sample_count": [10, 5, 7]}
    )
    samples = StoredSamples(lambda: open_store(DuckDBResource()), "v1", [1], stats)
    assert samples.rows_by_service() == {"a": 15, "b": 7}


def test_the_last_rows_of_each_series_are_its_latest_by_time(location) -> None:
    # The detector's warm-up from the day before (assets/anomaly_events.py): each series'
    # latest rows, as sorting the whole day by time and keeping each series' tail gave.
    with open_store(location) as conn:
        for day in range(3):
            replace_partition(conn, "v1", day, {"samples": _day(day)})
        for days, last in (([1], 7), ([2], 1), ([0, 1], 25), ([5], 3)):
            got = read_table(conn, "samples", "v1", days, last=last)
            whole = read_table(conn, "samples", "v1", days)
            want = (
                whole.astype({"service": str, "kpi": str})
                .sort_values("ts", kind="stable")
                .groupby(["service", "kpi"])
                .tail(last)
                .sort_values(["day", "service", "kpi", "ts"], kind="stable")
                .reset_index(drop=True)
            )
            got = got.astype({"service": str, "kpi": str}).reset_index(drop=True)
            assert len(got) == len(want) and (len(want) > 0) == (days != [5])
            pd.testing.assert_frame_equal(got, want, check_dtype=False)
        with pytest.raises(ValueError, match="samples"):
            read_table(conn, "drift", "v1", [1], last=3)
