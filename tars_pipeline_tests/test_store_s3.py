"""The Parquet store in object storage (`store_url: s3://…`): the same partitions and
guarantees as on disk, each file one PUT.

Against moto's S3 server on loopback, which is an EMULATOR of the S3 API (servers.py says
what that does and does not prove): real signed HTTP requests through s3fs, real writer
processes, the whole bundled week through the Dagster graph.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tars_pipeline.config import load_config
from tars_pipeline.store_parquet import META_FILE, ParquetStore
from tars_pipeline_tests.servers import S3_CREDENTIALS, S3Server, s3_server
from tars_pipeline_tests.test_store_parquet import _samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in S3_CREDENTIALS.items():
            patch.setenv(name, value)
        with s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
            yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.create_bucket(f"tars-{uuid.uuid4().hex[:12]}") + "/store"


def _open(bucket: str, s3: S3Server) -> ParquetStore:
    return ParquetStore(bucket, endpoint_url=s3.endpoint_url)


def test_partitions_round_trip_and_replace_in_the_bucket(bucket: str, s3: S3Server) -> None:
    with _open(bucket, s3) as store:
        for day in (2, 0, 1):
            store.replace_partition("v1", day, {"samples": _samples(day)})
        store.replace_partition("v1", 1, {"samples": _samples(1, n=3, level=9.0)})
        store.replace_document("v1", 7, "retrospective", {"verdict": "warn"})
        rows = store.read_table("samples", "v1")
        assert store.days_present("samples", "v1") == [0, 1, 2]
        assert list(rows.groupby("day").size()) == [5, 3, 5]
        assert rows[rows["day"] == 1]["value"].tolist() == [9.0, 10.0, 11.0]
        assert str(rows["ts"].dtype) == "datetime64[us, UTC]"
        assert store.read_document("v1", "retrospective") == {"verdict": "warn"}
        assert store.partition_path("samples", "v1", 1).startswith("s3://")
        keys = store._files.fs.find(bucket.removeprefix("s3://"))
    assert any(key.endswith(META_FILE) for key in keys)
    assert not [key for key in keys if key.endswith(".tmp")]  # nothing aside left behind


def test_a_failed_write_leaves_the_previous_object(bucket: str, s3: S3Server) -> None:
    with _open(bucket, s3) as store:
        store.replace_partition("v1", 1, {"samples": _samples(1)})
        with pytest.raises(KeyError):
            store.replace_partition("v1", 1, {"samples": _samples(1).drop(columns=["value"])})
        assert len(store.read_table("samples", "v1", [1])) == 5


def _write_days(bucket: str, endpoint: str, days: list[int]) -> None:
    with ParquetStore(bucket, endpoint_url=endpoint) as store:
        for day in days:
            store.replace_partition("v1", day, {"samples": _samples(day, n=200)})


def test_writers_in_several_processes_share_the_bucket(bucket: str, s3: S3Server) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_days, args=(bucket, s3.endpoint_url, list(range(k, 12, 4))))
        for k in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with _open(bucket, s3) as store:
        assert store.days_present("samples", "v1") == list(range(12))
        assert len(store.read_table("samples", "v1")) == 12 * 200


def test_a_reader_sees_one_whole_version_of_each_object(bucket: str, s3: S3Server) -> None:
    with _open(bucket, s3) as store:
        store.replace_partition("v1", 1, {"samples": _samples(1, n=100)})
    sizes: set[int] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        with _open(bucket, s3) as reader:
            while not done.is_set():
                try:
                    sizes.add(len(reader.read_table("samples", "v1", [1])))
                except BaseException as error:  # collected for the assert
                    errors.append(error)
                    return

    thread = threading.Thread(target=read)
    thread.start()
    with _open(bucket, s3) as writer:
        for round_ in range(15):
            writer.replace_partition("v1", 1, {"samples": _samples(1, n=100 + round_ % 2)})
    done.set()
    thread.join(60)
    assert not errors
    assert sizes <= {100, 101} and sizes


def test_the_bundled_week_on_object_storage_writes_the_golden_outputs(
    tmp_path: Path, bucket: str, s3: S3Server
) -> None:
    """The whole graph (the CLIs' code path, a real Dagster instance) with
    `store_url: s3://…`: every output byte for byte the golden copy; nothing of the store
    on local disk but the catalog, whose views read the bucket."""
    from tars_pipeline_tests.conftest import run_the_week, week_runner, write_config
    from tars_pipeline_tests.test_golden_outputs import GOLDEN, OUTPUTS, normalise

    config = load_config(
        write_config(tmp_path, store_url=bucket, store_endpoint_url=s3.endpoint_url)
    )
    with week_runner(tmp_path, config) as (runner, _instance):
        run_the_week(runner)
    out = tmp_path / "out" / "v1.0.1"
    for name in OUTPUTS:
        produced = normalise((out / name).read_text(encoding="utf-8"))
        assert produced == (GOLDEN / name).read_text(encoding="utf-8"), name
    assert not (tmp_path / "data" / "store").exists()
    with _open(bucket, s3) as store, duckdb.connect(str(config.store_file)) as catalog:
        catalog.register_filesystem(store._files.fs)
        days = catalog.execute("SELECT DISTINCT day FROM daily_stats ORDER BY day").fetchall()
        assert [day for (day,) in days] == list(range(8))
        assert isinstance(store.read_table("health", "v1.0.1"), pd.DataFrame)
