"""What every asset shares: the group, owners, the store pool and partition resolution."""

import dagster as dg

from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.partitions import split_key

# Every asset writes the store and most read the metric source: they share one concurrency
# pool, whose limit (dagster.yaml) bounds the steps running at once across runs (the
# Parquet layout takes many writers; the DuckDB layout needs a limit of 1).
STORE_POOL = "tars_store"
GROUP = "post_ga"
OWNERS = ["team:sre"]


def settings(scope: str, *kinds: str) -> dict:
    """What every TARS asset declares: its group, owner, the store pool, its kinds, and a
    `tars/scope` tag ("day" or "release") to filter the UI's asset list by."""
    return {
        "group_name": GROUP,
        "pool": STORE_POOL,
        "owners": OWNERS,
        "kinds": {"duckdb", *kinds},
        "tags": {"tars/scope": scope},
    }


def release_day(context: dg.AssetExecutionContext, config: TarsConfig) -> tuple[Release, int]:
    """The release and day of a release x day partition, checked against the window."""
    release_name, day = split_key(context.partition_key)
    release = config.release(release_name)
    if day > release.window_days:
        raise TarsUserError(
            f"day {day} is outside release {release.name}'s {release.window_days}-day window",
            where=f"partition {context.partition_key}",
            remedy=f"materialize days 0..{release.window_days} only (window_days in tars.yaml)",
        )
    return release, day


def release_of(context: dg.AssetExecutionContext, config: TarsConfig) -> Release:
    return config.release(context.partition_key)
