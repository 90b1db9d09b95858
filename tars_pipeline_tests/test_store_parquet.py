"""The Parquet store (issue 11, step 1): partitions as files, replaced atomically, read by
DuckDB, with several writers at once. Real files, a real DuckDB, real processes."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from tars_pipeline.store import SCHEMA_VERSION
from tars_pipeline.store_parquet import META_FILE, ParquetStore, StoreVersionError


def _samples(day: int, n: int = 5, level: float = 1.0) -> pd.DataFrame:
    ts = pd.date_range("2026-03-03", periods=n, freq="60s", tz="UTC") + pd.Timedelta(days=day)
    return pd.DataFrame(
        {"service": "checkout", "kpi": "latency_p99", "ts": ts, "value": level + np.arange(n)}
    )


def test_a_partition_round_trips_with_its_types_and_days(tmp_path: Path) -> None:
    with ParquetStore(tmp_path / "store") as store:
        for day in (2, 0, 1):
            assert store.replace_partition("v1", day, {"samples": _samples(day)}) == {"samples": 5}
        every = store.read_table("samples", "v1")
        some = store.read_table("samples", "v1", [2, 0, 7])
        assert list(every["day"].drop_duplicates()) == [0, 1, 2]
        assert list(some["day"].drop_duplicates()) == [0, 2]
        assert every["release"].eq("v1").all()
        assert str(every["ts"].dt.tz) == "UTC"
        assert every["value"].dtype == np.float64
        assert store.days_present("samples", "v1") == [0, 1, 2]
        assert store.read_table("samples", "other").empty


def test_rows_come_back_by_day_then_in_the_order_they_were_written(tmp_path: Path) -> None:
    # Day 10 after day 9 (not after day 1, as the folder names sort), and within a day the
    # rows as written, not sorted: a large shuffled day keeps its order through the reader's
    # threads. No ORDER BY: the files are read one after another (UNION ALL keeps order).
    rng = np.random.default_rng(11)
    written = {}
    with ParquetStore(tmp_path) as store:
        for day in rng.permutation(12):
            frame = _samples(int(day), n=300_000 if day == 10 else 50)
            frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
            written[int(day)] = frame["value"].to_numpy()
            store.replace_partition("v1", int(day), {"samples": frame})
        every = store.read_table("samples", "v1")
        some = store.read_table("samples", "v1", [11, 10, 2])
    assert list(every["day"].drop_duplicates()) == list(range(12))
    assert np.array_equal(
        every["value"].to_numpy(), np.concatenate([written[d] for d in range(12)])
    )
    assert np.array_equal(
        some["value"].to_numpy(), np.concatenate([written[d] for d in (2, 10, 11)])
    )


def test_replacing_a_partition_replaces_exactly_it(tmp_path: Path) -> None:
    with ParquetStore(tmp_path) as store:
        store.replace_partition("v1", 1, {"samples": _samples(1, n=5)})
        store.replace_partition("v1", 2, {"samples": _samples(2, n=5)})
        store.replace_partition("v1", 1, {"samples": _samples(1, n=3, level=9.0)})
        again = store.read_table("samples", "v1", [1])
        assert list(again["value"]) == [9.0, 10.0, 11.0]
        assert len(store.read_table("samples", "v1", [2])) == 5
        store.replace_partition("v1", 1, {"samples": _samples(1)[:0]})  # now empty
        assert store.read_table("samples", "v1", [1]).empty
        assert store.days_present("samples", "v1") == [2]


def test_a_failed_write_leaves_the_previous_rows_and_no_stray_file(tmp_path: Path) -> None:
    with ParquetStore(tmp_path) as store:
        store.replace_partition("v1", 1, {"samples": _samples(1)})
        broken = _samples(1).drop(columns=["value"])
        with pytest.raises(KeyError):
            store.replace_partition("v1", 1, {"samples": broken})
        assert len(store.read_table("samples", "v1", [1])) == 5
        folder = Path(store.partition_path("samples", "v1", 1)).parent
        assert sorted(p.name for p in folder.iterdir()) == ["part.parquet"]


def test_names_cannot_leave_their_folder(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with ParquetStore(root) as store:
        name = "../../etc/'; DROP TABLE samples; --"
        store.replace_partition(name, 0, {"samples": _samples(0)})
        store.replace_document(name, 7, "retrospective", {"verdict": "pass"})
        assert store.read_table("samples", name)["release"].eq(name).all()
        assert store.read_document(name, "retrospective") == {"verdict": "pass"}
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(root in p.parents for p in written)


def test_documents_are_one_per_release_and_kind(tmp_path: Path) -> None:
    with ParquetStore(tmp_path) as store:
        assert store.read_document("v1", "retrospective") is None
        store.replace_document("v1", 6, "retrospective", {"day": 6})
        store.replace_document("v1", 7, "retrospective", {"day": 7})
        assert store.read_document("v1", "retrospective") == {"day": 7}
        assert store.read_table("documents", "v1")["day"].tolist() == [7]


def _write_days(root: str, days: list[int]) -> None:
    with ParquetStore(root) as store:
        for day in days:
            store.replace_partition("v1", day, {"samples": _samples(day, n=200)})


def test_writers_in_several_processes_do_not_wait_for_each_other(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_days, args=(str(tmp_path), list(range(k, 16, 4))))
        for k in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with ParquetStore(tmp_path) as store:
        assert store.days_present("samples", "v1") == list(range(16))
        assert len(store.read_table("samples", "v1")) == 16 * 200


def test_a_reader_never_sees_half_a_partition(tmp_path: Path) -> None:
    with ParquetStore(tmp_path) as store:
        store.replace_partition("v1", 1, {"samples": _samples(1, n=100)})
    sizes: set[int] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        with ParquetStore(tmp_path) as reader:
            while not done.is_set():
                try:
                    sizes.add(len(reader.read_table("samples", "v1", [1])))
                except BaseException as error:  # collected for the assert
                    errors.append(error)
                    return

    thread = threading.Thread(target=read)
    thread.start()
    with ParquetStore(tmp_path) as writer:
        for round_ in range(30):
            writer.replace_partition("v1", 1, {"samples": _samples(1, n=100 + round_ % 2)})
    done.set()
    thread.join(30)
    assert not errors
    assert sizes <= {100, 101} and sizes


def test_the_catalog_is_one_duckdb_file_of_views(tmp_path: Path) -> None:
    with ParquetStore(tmp_path / "store") as store:
        store.replace_partition("v1", 0, {"samples": _samples(0), "anomaly_events": pd.DataFrame()})
        store.replace_partition("v1", 1, {"samples": _samples(1)})
        catalog = store.write_catalog(tmp_path / "tars.duckdb")
        store.replace_partition("v1", 2, {"samples": _samples(2)})  # after the catalog
    with duckdb.connect(str(catalog), read_only=True) as conn:
        rows = conn.execute("SELECT day, count(*) FROM samples GROUP BY day ORDER BY day")
        assert rows.fetchall() == [(0, 5), (1, 5), (2, 5)]
        assert conn.execute("SELECT count(*) FROM drift").fetchone() == (0,)
        columns = [row[0] for row in conn.execute("DESCRIBE anomaly_events").fetchall()]
        assert columns[:4] == ["release", "day", "service", "kpi"] and "alarm_ts" in columns
        version = conn.execute("SELECT value FROM tars_meta WHERE key = 'schema_version'")
        assert version.fetchone() == (str(SCHEMA_VERSION),)


def test_a_store_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / META_FILE).write_text(json.dumps({"schema_version": SCHEMA_VERSION - 1}))
    with pytest.raises(StoreVersionError, match="schema version"):
        ParquetStore(tmp_path)


def _config(tmp_path: Path, **overrides: object):
    from tars_pipeline.config import load_config
    from tars_pipeline_tests.conftest import write_config

    tmp_path.mkdir(parents=True)
    return load_config(write_config(tmp_path, **overrides))


def test_auto_layout_is_parquet_unless_an_earlier_duckdb_store_is_there(tmp_path: Path) -> None:
    from dagster_duckdb import DuckDBResource

    from tars_pipeline.store import ParquetLocation, open_store, store_location

    fresh = _config(tmp_path / "fresh")
    assert isinstance(store_location(fresh), ParquetLocation)

    earlier = _config(tmp_path / "earlier")
    with open_store(DuckDBResource(database=str(earlier.store_file))):
        pass  # the file an earlier TARS wrote: every table inside it
    assert isinstance(store_location(earlier), DuckDBResource)
    assert isinstance(
        store_location(earlier.model_copy(update={"store_layout": "parquet"})), ParquetLocation
    )

    with open_store(store_location(fresh)):
        pass  # writes the catalog, and nothing else
    assert fresh.store_file.is_file()
    assert isinstance(store_location(fresh), ParquetLocation)
    pinned = fresh.model_copy(update={"store_layout": "duckdb"})
    assert isinstance(store_location(pinned), DuckDBResource)


def test_the_catalog_is_rewritten_when_its_views_change_and_only_then(tmp_path: Path) -> None:
    from tars_pipeline.store import ParquetLocation, open_store

    location = ParquetLocation(root=tmp_path / "store", catalog=tmp_path / "tars.duckdb")

    def tables() -> str:
        with duckdb.connect(str(location.catalog), read_only=True) as conn:
            return conn.execute("SELECT value FROM tars_meta WHERE key = 'tables'").fetchone()[0]

    with open_store(location):
        pass  # none yet: written
    first = location.catalog.stat()
    with open_store(location) as store:
        store.replace_partition("v1", 0, {"samples": _samples(0)})  # a table's first file
    assert tables() == "samples"
    after_write = location.catalog.stat()
    assert after_write.st_ino != first.st_ino
    with open_store(location) as store:
        assert len(store.read_table("samples", "v1")) == 5  # a read: not rewritten
        store.replace_partition("v1", 1, {"samples": _samples(1)})  # the views still fit
    assert location.catalog.stat().st_ino == after_write.st_ino
    # Another process writes a catalog that lacks the table: this process's memory of the
    # file it checked does not hide the change.
    with ParquetStore(tmp_path / "elsewhere") as other:
        other.write_catalog(location.catalog)
    assert tables() == ""
    with open_store(location) as store:
        store.replace_partition("v1", 2, {"samples": _samples(2)})
    assert tables() == "samples"
