"""The DuckDB store: this module owns the schema and the replace-a-partition transaction.

Every table carries `release` and `day`. Materializing a partition replaces exactly that
partition's rows in every table the asset writes, inside one transaction, so re-running a
day never duplicates or loses rows and a failed run leaves the previous rows intact.
Values are always bound as parameters; table and column names come only from `TABLES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource

from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.anomaly import EVENT_COLUMNS
from tars_pipeline.judge.day import SLO_COLUMNS
from tars_pipeline.judge.drift import DAY_COMPARISON_COLUMNS, DRIFT_COLUMNS
from tars_pipeline.judge.health import CONTRIBUTION_COLUMNS
from tars_pipeline.judge.live import LIVE_COLUMNS, reconcile
from tars_pipeline.judge.stats import HOURLY_PROFILE_COLUMNS, SUMMARY_COLUMNS

if TYPE_CHECKING:
    from tars_pipeline.config import TarsConfig
    from tars_pipeline.store_parquet import ParquetStore

Store: TypeAlias = "duckdb.DuckDBPyConnection | ParquetStore"
"""What `open_store` yields: a DuckDB connection, or the Parquet store (same functions)."""


@dataclass(frozen=True)
class ParquetLocation:
    """Where a `store_layout: parquet` store lives: its folder (or s3:// prefix), its
    catalog file, and the S3 endpoint for an s3:// root."""

    root: Path | str
    catalog: Path
    endpoint_url: str | None = None


def is_parquet_catalog(path: Path) -> bool:
    """Whether the DuckDB file at `path` is a Parquet store's catalog (not a DuckDB-layout
    store). A file another process holds for writing is a DuckDB-layout store: a catalog is
    only ever written aside and renamed."""
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            row = conn.execute("SELECT value FROM tars_meta WHERE key = 'layout'").fetchone()
    except duckdb.Error:
        return False
    return bool(row) and row[0] == "parquet"


def store_layout(config: TarsConfig) -> str:
    """The layout a run uses: the configured one, or for `auto` parquet unless `store_path`
    already holds a DuckDB-layout store (which keeps working until `tars-store migrate`)."""
    if config.store_layout != "auto":
        return config.store_layout
    if config.store_url:
        return "parquet"
    from tars_pipeline.store_parquet import META_FILE

    if (config.store_root / META_FILE).exists() or not config.store_file.exists():
        return "parquet"
    return "parquet" if is_parquet_catalog(config.store_file) else "duckdb"


def store_location(config: TarsConfig, database: str = "") -> DuckDBResource | ParquetLocation:
    """Where `config`'s runs keep their tables: a DuckDB file (`database` overrides the
    config's), or the Parquet folder and its catalog."""
    if not database and store_layout(config) == "parquet":
        root = config.store_url.rstrip("/") if config.store_url else config.store_root
        return ParquetLocation(root, config.store_file, config.store_endpoint_url)
    return DuckDBResource(database=database or str(config.store_file))


def _parquet(conn: object) -> ParquetStore | None:
    from tars_pipeline.store_parquet import ParquetStore

    return conn if isinstance(conn, ParquetStore) else None


# 2: drift gained the seasonal comparison columns, health_contributions their reasons.
SCHEMA_VERSION = 3

# Every column's DuckDB type, by name: a name means the same thing in every table.
COLUMN_TYPES: dict[str, str] = {
    **dict.fromkeys(
        ("service", "kpi", "slo", "statistic", "baseline_method", "resource_type", "band",
         "reason", "direction", "severity", "kind"),
        "VARCHAR",
    ),
    **dict.fromkeys(("ts", "start", "end", "peak_ts", "alarm_ts", "detected_at"), "TIMESTAMPTZ"),
    **dict.fromkeys(
        ("sample_count", "expected_points", "points", "event_count"), "BIGINT"
    ),
    **dict.fromkeys(("hour", "hours_compared", "max_hourly_drift_hour"), "INTEGER"),
    **dict.fromkeys(
        ("relative", "flagged", "compliant", "breached", "slo_breached", "insufficient_traffic"),
        "BOOLEAN",
    ),
    "body": "JSON",
}  # fmt: skip

# table name -> its columns after the leading `release, day`. The judge owns what its steps
# produce (drift, SLO status, contributions, events, statistics); the store keeps them.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "samples": ("service", "kpi", "ts", "value"),
    "coverage": ("service", "kpi", "expected_points", "points"),
    "baseline_stats": SUMMARY_COLUMNS,
    "baseline_profile": HOURLY_PROFILE_COLUMNS,
    "daily_stats": SUMMARY_COLUMNS,
    # The KPI's catalog attributes (direction, kind, unit) are not stored: tars.yaml has them.
    "drift": tuple(
        name
        for name in (*DRIFT_COLUMNS, *DAY_COMPARISON_COLUMNS)
        if name not in ("direction", "kind", "unit")
    ),
    "slo_daily": tuple(SLO_COLUMNS),
    "cost_daily": ("service", "resource_type", "cost_usd"),
    "health": ("score", "band", "weighted_kpi_score", "anomaly_penalty"),
    "health_contributions": CONTRIBUTION_COLUMNS,
    "anomaly_events": EVENT_COLUMNS,
    # One row per release-day the nightly anomaly_events asset has processed (a day can
    # have no event): from then on its events are the record, not the live ones.
    "anomaly_days": ("z_threshold", "event_count"),
    # Events the continuous sensor (or --follow) found, by the day of their peak; merged
    # into anomaly_events.json until the nightly run processes that day (judge/live.py).
    "live_anomaly_events": LIVE_COLUMNS,
    # Whole analysis documents (regression summary, retrospective) as JSON, one per
    # release-day-kind; `day` is the last day of the window they cover.
    "documents": ("kind", "body"),
}


def _definition(name: str) -> str:
    quoted = f'"{name}"' if name == "end" else name  # END is an SQL keyword
    return f"{quoted} {COLUMN_TYPES.get(name, 'DOUBLE')}"


# table name -> column definitions (after the leading `release VARCHAR, day INTEGER`).
TABLES: dict[str, str] = {
    table: ", ".join(_definition(name) for name in columns) for table, columns in _COLUMNS.items()
}


def _column_names(table: str) -> list[str]:
    return ["release", "day", *_COLUMNS[table]]


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def ensure_schema(conn: Store) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS tars_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    row = conn.execute("SELECT value FROM tars_meta WHERE key = 'schema_version'").fetchone()
    if row is not None and int(row[0]) != SCHEMA_VERSION:
        raise RuntimeError(
            f"store schema version {row[0]} does not match this TARS ({SCHEMA_VERSION}); "
            "move the old DuckDB file aside or re-run the week into a new store_path"
        )
    for table, columns in TABLES.items():
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (release VARCHAR NOT NULL, "
            f"day INTEGER NOT NULL, {columns})"
        )
    conn.execute(
        "INSERT OR REPLACE INTO tars_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
    )


@contextmanager
def open_store(resource: DuckDBResource | ParquetLocation) -> Iterator[Store]:
    """A connection through dagster-duckdb's resource, with the schema in place; or, for a
    `ParquetLocation`, the Parquet store, whose catalog file is refreshed (when its views
    no longer fit) on the way out of a block that succeeded.

    DuckDB allows one writing process per file: runs are serialised by the Dagster
    instance's concurrency settings (dagster.yaml), and the resource retries with backoff
    while another process (a CLI run overlapping a UI run) holds the lock.
    """
    if isinstance(resource, ParquetLocation):
        from tars_pipeline.store_parquet import ParquetStore

        with ParquetStore(resource.root, endpoint_url=resource.endpoint_url) as store:
            yield store
            # Not after a failure (nothing changed), nor after a block that only read
            # (a write refreshes it), unless there is none yet.
            if store.wrote or not Path(resource.catalog).exists():
                store.refresh_catalog(resource.catalog)
        return
    if resource.database != ":memory:":
        Path(resource.database).parent.mkdir(parents=True, exist_ok=True)
    with resource.get_connection() as conn:
        try:
            ensure_schema(conn)
            yield conn
        finally:
            conn.close()


def replace_partition(
    conn: Store,
    release: str,
    day: int,
    frames: Mapping[str, pd.DataFrame],
) -> dict[str, int]:
    """Replace one (release, day) partition's rows in each table, all in one transaction."""
    if (parquet := _parquet(conn)) is not None:
        return parquet.replace_partition(release, day, frames)
    written: dict[str, int] = {}
    conn.execute("BEGIN TRANSACTION")
    try:
        for table, frame in frames.items():
            columns = _column_names(table)
            conn.execute(f"DELETE FROM {table} WHERE release = ? AND day = ?", [release, day])
            if len(frame):
                incoming = frame.assign(release=release, day=day)[columns]
                conn.register("incoming", incoming)
                try:
                    conn.execute(
                        f"INSERT INTO {table} ({_quoted(columns)}) "
                        f"SELECT {_quoted(columns)} FROM incoming"
                    )
                finally:
                    conn.unregister("incoming")
            written[table] = len(frame)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return written


def replace_document(conn: Store, release: str, day: int, kind: str, body: Any) -> None:
    if (parquet := _parquet(conn)) is not None:
        parquet.replace_document(release, day, kind, body)
        return
    frame = pd.DataFrame({"kind": [kind], "body": [json.dumps(body, allow_nan=False)]})
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM documents WHERE release = ? AND kind = ?", [release, kind])
        conn.execute(
            "INSERT INTO documents (release, day, kind, body) VALUES (?, ?, ?, ?)",
            [release, day, kind, frame.loc[0, "body"]],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def read_document(conn: Store, release: str, kind: str) -> Any | None:
    if (parquet := _parquet(conn)) is not None:
        return parquet.read_document(release, kind)
    row = conn.execute(
        "SELECT body FROM documents WHERE release = ? AND kind = ?", [release, kind]
    ).fetchone()
    return None if row is None else json.loads(row[0])


def read_table(
    conn: Store,
    table: str,
    release: str,
    days: list[int] | None = None,
    *,
    services: Sequence[str] | None = None,
    kpis: Sequence[str] | None = None,
    last: int | None = None,
) -> pd.DataFrame:
    """Rows of one release (optionally some days), ordered by day; with `services` or
    `kpis`, only the rows of those services and of those KPIs of every service; with
    `last` (samples only), each series' `last` latest rows, by day, series and time (the
    detector's warm-up from the day before: a few thousand rows, not the day)."""
    if table not in TABLES:
        raise KeyError(table)
    if last is not None and table != "samples":
        raise ValueError("last applies to the samples table")
    if (parquet := _parquet(conn)) is not None:
        return parquet.read_table(table, release, days, services=services, kpis=kpis, last=last)
    # store_parquet imports this module
    from tars_pipeline.store_parquet import label_filter, latest_per_series

    columns = _quoted(_column_names(table))
    labels = label_filter(services, kpis).replace(" WHERE ", " AND (", 1)
    labels = f"{labels})" if labels else ""
    order = " ORDER BY day"
    if last is not None:
        order = f"{latest_per_series(last)} ORDER BY day, service, kpi, ts"
    if days is None:
        query = f"SELECT {columns} FROM {table} WHERE release = ?{labels}{order}"
        return conn.execute(query, [release]).df()
    query = (
        f"SELECT {columns} FROM {table} WHERE release = ? AND list_contains(?, day){labels}{order}"
    )
    return conn.execute(query, [release, days]).df()


def days_present(conn: Store, table: str, release: str) -> list[int]:
    if table not in TABLES:
        raise KeyError(table)
    if (parquet := _parquet(conn)) is not None:
        return parquet.days_present(table, release)
    rows = conn.execute(
        f"SELECT DISTINCT day FROM {table} WHERE release = ? ORDER BY day", [release]
    ).fetchall()
    return [int(row[0]) for row in rows]


def partition_row_counts(conn: Store, release: str) -> dict[str, int]:
    """Rows per table for one release: what tests compare before and after a re-run."""
    if (parquet := _parquet(conn)) is not None:
        return parquet.partition_row_counts(release)
    return {
        table: int(
            conn.execute(f"SELECT count(*) FROM {table} WHERE release = ?", [release]).fetchone()[0]
        )
        for table in TABLES
    }


def read_day_inputs(conn: Store, release: str, day: int) -> dict[str, pd.DataFrame]:
    """What a day's judgement reads: its samples, Day 0's samples (the baseline the rank and
    hour-of-day comparisons use) and its anomaly events, as `judge.day.analyse_day` takes
    them. Day 0 is its own baseline; a later day needs the baseline materialized first."""
    samples = read_table(conn, "samples", release, [day])
    if samples.empty:
        raise TarsUserError(
            f"no samples stored for {release} day {day}",
            where="daily_summary",
            remedy=f"materialize kpi_samples for day_{day:02d} first",
        )
    if day and read_table(conn, "baseline_stats", release, [0]).empty:
        raise TarsUserError(
            f"no baseline for release {release}",
            where="daily_summary",
            remedy="materialize the baseline (tars-ga-kpi) before the daily summaries",
        )
    return {
        "samples": samples,
        "baseline_samples": read_table(conn, "samples", release, [0]) if day else samples,
        "anomalies": read_table(conn, "anomaly_events", release, [day]),
    }


def read_window_inputs(
    conn: Store, release: str, window_days: int
) -> tuple[list[int], dict[str, pd.DataFrame]]:
    """The days summarised so far (1..window_days) and the per-day tables
    `judge.window.judge_window` reads of them (the samples are read in pieces, through
    `StoredSamples`); refuses a window without its GA-day summary or any later day."""
    summarised = days_present(conn, "daily_stats", release)
    days = [day for day in summarised if 1 <= day <= window_days]
    if 0 not in summarised or not days:
        raise TarsUserError(
            f"release {release} needs the GA-day summary and at least one later "
            f"day (summarised so far: {summarised or 'none'})",
            where="regression_summary",
            remedy="run tars-ga-kpi and tars-stability-monitor, or tars-retro --auto",
        )
    return days, {
        "drift": read_table(conn, "drift", release, days),
        "slo_daily": read_table(conn, "slo_daily", release, days),
        "daily_stats": read_table(conn, "daily_stats", release, [0, *days]),
        "cost_daily": read_table(conn, "cost_daily", release, [0, *days]),
        "anomalies": read_table(conn, "anomaly_events", release, days),
    }


@dataclass(frozen=True)
class StoredSamples:
    """A release's stored samples of GA day and `days`, read a few services at a time
    (`judge.window.WindowSamples`): the store is opened for each read, so a window of
    thousands of series is never in memory at once and no lock is held in between."""

    connect: Callable[[], AbstractContextManager[Store]]
    release: str
    days: list[int]
    daily_stats: pd.DataFrame

    def rows_by_service(self) -> Mapping[str, int]:
        """From the daily summaries' sample counts: what sizes the pieces."""
        stats = self.daily_stats
        if not len(stats):
            return {}
        counts = stats.groupby(stats["service"].astype(str))["sample_count"].sum()
        return {str(service): int(count) for service, count in counts.items()}

    def read(
        self, services: Sequence[str] | None = None, kpis: Sequence[str] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        with self.connect() as conn:
            return (
                read_table(conn, "samples", self.release, [0], services=services, kpis=kpis),
                read_table(conn, "samples", self.release, self.days, services=services, kpis=kpis),
            )


def read_anomaly_record(conn: Store, release: str) -> pd.DataFrame:
    """Every anomaly event of `release` as anomaly_events.json lists it: the nightly
    events, and the live ones of the days the nightly run has not processed yet, each with
    its `source` (`judge.live.reconcile`). The nightly asset and the live sensor both
    write the file from this, so whichever writes last writes the union."""
    nightly = read_table(conn, "anomaly_events", release)
    processed = set(days_present(conn, "anomaly_days", release))
    processed |= {int(day) for day in nightly["day"]}  # stores from before anomaly_days
    return reconcile(nightly, processed, read_table(conn, "live_anomaly_events", release))


def write_settled_record(
    read: Callable[[], pd.DataFrame],
    write: Callable[[pd.DataFrame], Path],
    record: pd.DataFrame | None = None,
    attempts: int = 5,
) -> Path:
    """Write the release's anomaly record (`read()`, then `write(record)`), then read it
    again, and write again while it has changed in between.

    Runs of several days of a release, and the live sensor, each rewrite
    anomaly_events.json from the store. Without the second read, a run that read the record
    before another committed its day, but wrote after that one, would leave that day out
    of the file. With it, the last writer has seen every day committed before its final
    read: any later commit is followed by its own run's read and write. No lock is needed,
    so it holds on any file system and with the store on object storage. `record`, when
    given, is the first read."""
    record = read() if record is None else record
    path = write(record)
    for _ in range(attempts):
        latest = read()
        if latest.equals(record):
            break
        record = latest
        path = write(record)
    return path


WEEK_TABLES = ("health", "health_contributions", "anomaly_events", "drift", "cost_daily",
               "daily_stats", "coverage")  # fmt: skip


def read_week(conn: Store, release: str) -> dict[str, pd.DataFrame]:
    """Every day of a release's stored week, by table: what the retrospective renders (and,
    for a previous release, what the comparison reads: the store, not an old report)."""
    return {table: read_table(conn, table, release) for table in WEEK_TABLES}
