"""tars-store: move a project's store from the one DuckDB file to the Parquet layout.

    tars-store migrate [--config PATH] [--from FILE] [--dry-run]

Reads every table of the DuckDB store (`store_path`, or --from) and writes each (release,
day) partition as the Parquet layout's files under <data_dir>/store, then the catalog
file at `store_path`. When the migrated file is `store_path` itself it is renamed to
<name>.pre-parquet first (kept, never deleted) and the catalog takes its place, so queries
that opened `tars.duckdb` keep working; with `store_layout: auto` (the default) the next run
uses the new store. Nothing is written when the source store's schema version is not this
TARS's, when the Parquet folder already holds a store, or with --dry-run (which prints what
would move).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tars_pipeline.cli.output import EXIT_EPILOG, EXIT_OK, Output, Parser, add_conventions, run
from tars_pipeline.errors import TarsUserError

if TYPE_CHECKING:  # DuckDB and the store load when a migration runs, not for --help
    import duckdb

BACKUP_SUFFIX = ".pre-parquet"
CONFIG_ENV_VAR = "TARS_CONFIG"  # tars_pipeline.config's (a test holds them equal)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tars-store",
        description="Manage the TARS store: migrate the DuckDB file to the Parquet layout.",
        epilog="See docs/deployment.md. " + EXIT_EPILOG,
    )
    add_conventions(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser(
        "migrate", help="DuckDB file → Parquet layout + catalog", epilog=EXIT_EPILOG
    )
    add_conventions(migrate, subcommand=True)
    migrate.add_argument(
        "--config", metavar="PATH", help=f"tars.yaml (default ${CONFIG_ENV_VAR} or ./tars.yaml)"
    )
    migrate.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        help="the DuckDB store to read (default: the config's store_path)",
    )
    migrate.add_argument("--dry-run", action="store_true", help="count, write nothing")
    return parser


def _source_version(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    import duckdb

    try:
        row = conn.execute("SELECT value FROM tars_meta WHERE key = 'schema_version'").fetchone()
    except duckdb.CatalogException as error:
        raise TarsUserError(
            f"{path} is not a TARS store (no tars_meta table)",
            where="--from",
            remedy="point --from at the DuckDB file a TARS run wrote",
        ) from error
    return int(row[0]) if row else 0


def _releases(conn: duckdb.DuckDBPyConnection) -> list[str]:
    from tars_pipeline.store import TABLES

    names: set[str] = set()
    for table in TABLES:
        names |= {
            row[0] for row in conn.execute(f"SELECT DISTINCT release FROM {table}").fetchall()
        }
    return sorted(names)


def migrate(
    config_path: str | None, source: str | None, dry_run: bool, out: Output | None = None
) -> int:
    """Move the store; `out` (default: plain output) gets the result lines and the JSON."""
    import duckdb

    from tars_pipeline.config import load_config
    from tars_pipeline.store import SCHEMA_VERSION, TABLES, read_table
    from tars_pipeline.store_files import files_for
    from tars_pipeline.store_parquet import META_FILE, ParquetStore

    out = out or Output("tars-store")
    config = load_config(config_path)
    path = Path(source) if source else config.store_file
    if not path.is_file():
        raise TarsUserError(
            f"no DuckDB store at {path}",
            where="--from" if source else "store_path",
            remedy="run the week once, or pass --from FILE",
        )
    root = config.store_uri
    endpoint = config.store_endpoint_url
    catalog = config.store_file
    if path.resolve() != catalog.resolve() and catalog.exists():
        raise TarsUserError(
            f"{catalog} exists and is not the store being migrated ({path})",
            where="store_path",
            remedy="point store_path at a new file for the catalog, or migrate that file",
        )
    if files_for(root, endpoint).exists(files_for(root, endpoint).join(META_FILE)):
        raise TarsUserError(
            f"{root} already holds a Parquet store",
            where="store_url" if config.store_url else "data_dir",
            remedy="move it aside first; the migration never merges into a store",
        )
    with duckdb.connect(str(path), read_only=True) as conn:
        found = _source_version(conn, path)
        if found != SCHEMA_VERSION:
            raise TarsUserError(
                f"{path} has store schema version {found}, this TARS migrates {SCHEMA_VERSION}",
                where="--from",
                remedy="re-run the week into a new store_path with this TARS, then migrate",
            )
        releases = _releases(conn)
        counts = {table: 0 for table in TABLES}
        partitions = 0
        store = None if dry_run else ParquetStore(root, endpoint_url=endpoint)
        try:
            for release in releases:
                by_day: dict[int, dict] = {}
                for table in TABLES:
                    rows = read_table(conn, table, release)
                    counts[table] += len(rows)
                    if table == "documents":
                        for record in rows.itertuples():
                            if store is not None:
                                store.replace_document(
                                    release, int(record.day), record.kind, json.loads(record.body)
                                )
                        continue
                    for day, part in rows.groupby("day"):
                        by_day.setdefault(int(day), {})[table] = part.drop(
                            columns=["release", "day"]
                        )
                for day, frames in sorted(by_day.items()):
                    partitions += 1
                    if store is not None:
                        store.replace_partition(release, day, frames)
        finally:
            if store is not None:
                store.close()
    total = sum(counts.values())
    verb = "Would move" if dry_run else "Moved"
    out.say(
        f"{verb} {total} rows of {len(releases)} release(s), {partitions} partition(s), "
        f"from {path} to {root}"
    )
    out.record(
        dry_run=dry_run,
        source=str(path),
        destination=str(root),
        releases=releases,
        partitions=partitions,
        rows=total,
        rows_by_table=counts,
    )
    if dry_run:
        return EXIT_OK
    kept = path
    if path.resolve() == catalog.resolve():
        kept = path.with_name(path.name + BACKUP_SUFFIX)
        path.replace(kept)
    with ParquetStore(root, endpoint_url=endpoint) as store:
        store.write_catalog(catalog)
    out.say(f"  the DuckDB file is kept as {kept}; {catalog} is now the catalog")
    if config.store_layout == "duckdb":
        out.say("  set `store_layout: parquet` (or auto) in tars.yaml to use the new store")
    else:
        out.say(f"  runs now use the new store (store_layout: {config.store_layout})")
    out.record(kept=str(kept), catalog=str(catalog), store_layout=config.store_layout)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (the console script exits with it)."""

    def body(args: argparse.Namespace, out: Output) -> int:
        return migrate(args.config, args.source, args.dry_run, out)

    return run(_parser(), body, argv)


def console_script() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_script()
