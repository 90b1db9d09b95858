"""The DuckDB store: a partition is replaced whole, in one transaction, or not at all."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from tars_pipeline.store import (
    open_store,
    partition_row_counts,
    read_document,
    read_table,
    replace_document,
    replace_partition,
)


def _costs(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service": ["api"] * len(values),
            "resource_type": ["compute"] * len(values),
            "cost_usd": values,
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> DuckDBResource:
    return DuckDBResource(database=str(tmp_path / "nested" / "tars.duckdb"))


def test_rewriting_a_partition_replaces_its_rows_and_leaves_others(store: DuckDBResource) -> None:
    with open_store(store) as conn:
        replace_partition(conn, "v1", 1, {"cost_daily": _costs([1.0, 2.0])})
        replace_partition(conn, "v1", 2, {"cost_daily": _costs([5.0])})
        replace_partition(conn, "v1", 1, {"cost_daily": _costs([3.0])})
        rows = read_table(conn, "cost_daily", "v1")
    assert rows[["day", "cost_usd"]].values.tolist() == [[1, 3.0], [2, 5.0]]


def test_a_failed_write_keeps_the_previous_rows(store: DuckDBResource) -> None:
    with open_store(store) as conn:
        replace_partition(conn, "v1", 1, {"cost_daily": _costs([1.0])})
        broken = pd.DataFrame({"service": ["api"], "resource_type": ["compute"]})  # no cost
        with pytest.raises(KeyError):
            replace_partition(conn, "v1", 1, {"cost_daily": _costs([9.0, 9.0]), "drift": broken})
        assert read_table(conn, "cost_daily", "v1")["cost_usd"].tolist() == [1.0]


def test_values_are_bound_not_formatted_into_sql(store: DuckDBResource) -> None:
    hostile = "v1'; DROP TABLE samples; --"
    with open_store(store) as conn:
        replace_partition(conn, hostile, 0, {"cost_daily": _costs([1.0])})
        assert read_table(conn, "cost_daily", hostile)["cost_usd"].tolist() == [1.0]
        assert partition_row_counts(conn, hostile)["samples"] == 0


def test_documents_round_trip_and_reject_nan(store: DuckDBResource) -> None:
    with open_store(store) as conn:
        replace_document(conn, "v1", 7, "regression_summary", {"a": [1, 2]})
        replace_document(conn, "v1", 7, "regression_summary", {"a": [3]})
        assert read_document(conn, "v1", "regression_summary") == {"a": [3]}
        with pytest.raises(ValueError):
            replace_document(conn, "v1", 7, "regression_summary", {"a": float("nan")})
        assert read_document(conn, "v1", "regression_summary") == {"a": [3]}


@pytest.mark.slow
def test_the_bundled_week_on_the_duckdb_layout_writes_the_same_golden_outputs(
    tmp_path: Path,
) -> None:
    """The whole graph (the CLIs' code path, a real Dagster instance) on the one-file
    `store_layout: duckdb` (the default is the Parquet layout): every output byte for byte
    the golden copy, every table inside the file."""
    from tars_pipeline.config import load_config
    from tars_pipeline_tests.conftest import run_the_week, week_runner, write_config
    from tars_pipeline_tests.test_golden_outputs import GOLDEN, OUTPUTS, normalise

    config = load_config(write_config(tmp_path, store_layout="duckdb"))
    with week_runner(tmp_path, config) as (runner, _instance):
        run_the_week(runner)
    out = tmp_path / "out" / "v1.0.1"
    for name in OUTPUTS:
        produced = normalise((out / name).read_text(encoding="utf-8"))
        assert produced == (GOLDEN / name).read_text(encoding="utf-8"), name
    assert not (tmp_path / "data" / "store").exists()
    with duckdb.connect(str(config.store_file), read_only=True) as conn:
        kinds = conn.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_name = 'daily_stats'"
        ).fetchall()
        assert kinds == [("daily_stats", "BASE TABLE")]
        days = conn.execute("SELECT DISTINCT day FROM daily_stats ORDER BY day").fetchall()
        assert [day for (day,) in days] == list(range(8))
