"""Partitions: release (dynamic: one per configured release) x day (day_00 .. day_NN)."""

from __future__ import annotations

import warnings

import dagster as dg

RELEASE_DIMENSION = "release"
DAY_DIMENSION = "day"

release_partitions = dg.DynamicPartitionsDefinition(name="releases")


def day_key(day: int) -> str:
    return f"day_{day:02d}"


def parse_day_key(key: str) -> int:
    prefix, _, number = key.partition("_")
    if prefix != "day" or not number.isdigit():
        raise ValueError(f"not a day partition key: {key!r} (expected day_NN)")
    return int(number)


def release_day_partitions(max_window_days: int) -> dg.MultiPartitionsDefinition:
    """release x day, with days 0..max_window_days (the longest configured window)."""
    days = dg.StaticPartitionsDefinition([day_key(d) for d in range(max_window_days + 1)])
    return dg.MultiPartitionsDefinition(
        {RELEASE_DIMENSION: release_partitions, DAY_DIMENSION: days}
    )


def release_day_key(release: str, day: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({RELEASE_DIMENSION: release, DAY_DIMENSION: day_key(day)})


def split_key(partition_key: str | dg.MultiPartitionKey) -> tuple[str, int]:
    """(release, day) of a release x day partition key."""
    if not isinstance(partition_key, dg.MultiPartitionKey):
        raise TypeError(f"expected a release x day partition key, got {partition_key!r}")
    dims = partition_key.keys_by_dimension
    return dims[RELEASE_DIMENSION], parse_day_key(dims[DAY_DIMENSION])


# Downstream release-partitioned assets read every day of their release. The mapping is
# marked beta in Dagster 1.13; it is pinned and covered by the whole-graph tests.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    all_days_of_release = dg.MultiToSingleDimensionPartitionMapping(
        partition_dimension_name=RELEASE_DIMENSION
    )
