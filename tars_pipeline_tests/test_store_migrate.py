"""tars-store migrate: the DuckDB file of a finished week into the Parquet layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from tars_pipeline.cli.store import BACKUP_SUFFIX, main
from tars_pipeline.config import load_config
from tars_pipeline.store import (
    TABLES,
    open_store,
    partition_row_counts,
    read_table,
    replace_document,
    replace_partition,
)
from tars_pipeline.store_parquet import ParquetStore
from tars_pipeline_tests.conftest import DEMO_RELEASE, DemoWeek, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def copied_week(tmp_path: Path, demo_week: DemoWeek) -> Path:
    """A config whose store_path is a DuckDB-layout store (an earlier TARS's) holding the
    session week's rows, partition by partition."""
    database = DuckDBResource(database=str(tmp_path / "data" / "tars.duckdb"))
    with ParquetStore(demo_week.config.store_root) as source, open_store(database) as conn:
        for table in TABLES:
            rows = source.read_table(table, DEMO_RELEASE)
            if table == "documents":
                for record in rows.itertuples():
                    body = json.loads(record.body)
                    replace_document(conn, DEMO_RELEASE, int(record.day), record.kind, body)
                continue
            for day, part in rows.groupby("day"):
                frame = part.drop(columns=["release", "day"])
                replace_partition(conn, DEMO_RELEASE, int(day), {table: frame})
    return write_config(tmp_path)


def test_migrate_moves_every_row_and_keeps_the_old_file(
    copied_week: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(copied_week)
    with duckdb.connect(str(config.store_file), read_only=True) as conn:
        before = partition_row_counts(conn, DEMO_RELEASE)
        drift = read_table(conn, "drift", DEMO_RELEASE)
        retro = conn.execute("SELECT body FROM documents WHERE kind = 'retrospective'").fetchone()

    assert main(["migrate", "--config", str(copied_week), "--dry-run"]) == 0
    assert not config.store_root.exists()
    assert main(["migrate", "--config", str(copied_week)]) == 0
    out = capsys.readouterr().out
    assert f"Moved {sum(before.values())} rows of 1 release(s)" in out

    kept = config.store_file.with_name(config.store_file.name + BACKUP_SUFFIX)
    assert kept.is_file()
    with ParquetStore(config.store_root) as store:
        assert store.partition_row_counts(DEMO_RELEASE) == before
        pd.testing.assert_frame_equal(store.read_table("drift", DEMO_RELEASE), drift)
        assert store.read_document(DEMO_RELEASE, "retrospective") is not None
    with duckdb.connect(str(config.store_file), read_only=True) as catalog:
        for table in TABLES:
            count = catalog.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert count == before[table], table
        assert retro is not None


def test_migrate_refuses_what_it_cannot_do_cleanly(
    copied_week: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(copied_week)
    assert main(["migrate", "--config", str(copied_week), "--from", str(tmp_path / "no")]) == 2
    assert "no DuckDB store at" in capsys.readouterr().err

    with duckdb.connect(str(tmp_path / "other.duckdb")) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    assert (
        main(["migrate", "--config", str(copied_week), "--from", str(tmp_path / "other.duckdb")])
        == 2
    )
    assert "exists and is not the store being migrated" in capsys.readouterr().err

    old = tmp_path / "old"
    (old / "data").mkdir(parents=True)
    shutil.copyfile(config.store_file, old / "data" / "tars.duckdb")
    with duckdb.connect(str(old / "data" / "tars.duckdb")) as conn:
        conn.execute("UPDATE tars_meta SET value = '2' WHERE key = 'schema_version'")
    before = (old / "data" / "tars.duckdb").read_bytes()
    assert main(["migrate", "--config", str(write_config(old))]) == 2
    assert "schema version 2" in capsys.readouterr().err
    assert (old / "data" / "tars.duckdb").read_bytes() == before
    assert not (old / "data" / "store").exists()

    assert main(["migrate", "--config", str(copied_week)]) == 0
    capsys.readouterr()
    kept = config.store_file.with_name(config.store_file.name + BACKUP_SUFFIX)
    assert main(["migrate", "--config", str(copied_week), "--from", str(kept)]) == 2
    assert "exists and is not the store being migrated" in capsys.readouterr().err
