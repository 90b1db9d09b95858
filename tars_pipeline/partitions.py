"""Partitions, and the mappings that say which upstream partitions each asset really reads.

- `release_day_partitions`: release (dynamic: one per configured release) x day (day_00 ..
  day_NN, NN the longest window_days of the tars.yaml the code location serves, read when
  it loads: reload the location after lengthening a window). The day assets: kpi_samples,
  anomaly_events, daily_summary.
- `ga_day_partitions`: release x day_00 only. The baseline: it exists for GA day alone, so
  a backfill of "every partition" never asks for a Day-3 baseline.
- `release_partitions`: release. The window assets: regression_summary, retrospective,
  release_notifications.

The mappings state what each asset reads, so the UI's staleness and a backfill's ordering
tell the truth: the baseline reads Day 0's samples only; a day's summary reads its own day
and Day 0 (the baseline samples its rank tests compare with); a day's anomaly detector warms
up on the previous day's tail.
"""

from __future__ import annotations

import warnings

import dagster as dg

from tars_pipeline.config import MAX_WINDOW_DAYS, load_config
from tars_pipeline.errors import TarsUserError

RELEASE_DIMENSION = "release"
DAY_DIMENSION = "day"


def day_key(day: int) -> str:
    return f"day_{day:02d}"


def parse_day_key(key: str) -> int:
    prefix, _, number = key.partition("_")
    if prefix != "day" or not number.isdigit():
        raise ValueError(f"not a day partition key: {key!r} (expected day_NN)")
    return int(number)


def configured_window_days() -> int:
    """The longest window_days of $TARS_CONFIG (or ./tars.yaml): the days the UI shows. The
    longest window the config allows when there is no readable config (the code location
    then reports the config's own error when it loads)."""
    try:
        return load_config().max_window_days
    except TarsUserError:
        return MAX_WINDOW_DAYS


DAY_KEYS: tuple[str, ...] = tuple(day_key(day) for day in range(configured_window_days() + 1))
GA_DAY = DAY_KEYS[0]

release_partitions = dg.DynamicPartitionsDefinition(name="releases")
release_day_partitions = dg.MultiPartitionsDefinition(
    {RELEASE_DIMENSION: release_partitions, DAY_DIMENSION: dg.StaticPartitionsDefinition(DAY_KEYS)}
)
ga_day_partitions = dg.MultiPartitionsDefinition(
    {RELEASE_DIMENSION: release_partitions, DAY_DIMENSION: dg.StaticPartitionsDefinition([GA_DAY])}
)


def release_day_key(release: str, day: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({RELEASE_DIMENSION: release, DAY_DIMENSION: day_key(day)})


def split_key(partition_key: str | dg.MultiPartitionKey) -> tuple[str, int]:
    """(release, day) of a release x day partition key."""
    if not isinstance(partition_key, dg.MultiPartitionKey):
        raise TypeError(f"expected a release x day partition key, got {partition_key!r}")
    dims = partition_key.keys_by_dimension
    return dims[RELEASE_DIMENSION], parse_day_key(dims[DAY_DIMENSION])


def _same_release(days: dict[str, str | list[str]]) -> dg.MultiPartitionMapping:
    """Same release; upstream day key -> the downstream day keys that read it."""
    with warnings.catch_warnings():  # beta in 1.13, like the mapping below
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _multi_mapping(days)


def _multi_mapping(days: dict[str, str | list[str]]) -> dg.MultiPartitionMapping:
    return dg.MultiPartitionMapping(
        {
            RELEASE_DIMENSION: dg.DimensionPartitionMapping(
                RELEASE_DIMENSION, dg.IdentityPartitionMapping()
            ),
            DAY_DIMENSION: dg.DimensionPartitionMapping(
                DAY_DIMENSION, dg.StaticPartitionMapping(days)
            ),
        }
    )


# kpi_samples -> baseline: Day 0's samples only.
ga_day_samples = _same_release({GA_DAY: GA_DAY})
# baseline -> daily_summary: every later day is judged against it (Day 0 against itself).
baseline_for_later_days = _same_release({GA_DAY: list(DAY_KEYS[1:])})
# kpi_samples -> daily_summary: the day itself, and Day 0 for every day.
day_and_ga_day_samples = _same_release(
    {GA_DAY: list(DAY_KEYS), **{key: key for key in DAY_KEYS[1:]}}
)
# kpi_samples -> anomaly_events: the day itself, the previous day's tail as warm-up, and
# Day 0 for every day (its time-of-day profile is what a day's samples are scored against).
day_and_previous_day_samples = _same_release(
    {
        key: sorted(
            {key, *DAY_KEYS[index + 1 : index + 2], *(DAY_KEYS if index == 0 else ())},
            key=DAY_KEYS.index,
        )
        for index, key in enumerate(DAY_KEYS)
    }
)

# Release-level assets read every day of their release. The mapping is marked beta in
# Dagster 1.13; it is pinned and covered by the graph snapshot and whole-week tests.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    all_days_of_release = dg.MultiToSingleDimensionPartitionMapping(
        partition_dimension_name=RELEASE_DIMENSION
    )
