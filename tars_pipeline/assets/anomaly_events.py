"""anomaly_events: EWMA + z-score anomaly events for one release-day."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from tars_pipeline.assets.common import release_day, settings
from tars_pipeline.assets.day_fetch import read_reference
from tars_pipeline.assets.kpi_samples import kpi_samples
from tars_pipeline.config import config_digest
from tars_pipeline.judge.day import day_anomalies
from tars_pipeline.partitions import day_and_previous_day_samples, release_day_partitions
from tars_pipeline.reporting import outputs
from tars_pipeline.resources import ReportsResource, StoreResource, TarsConfigResource
from tars_pipeline.sources import build_source
from tars_pipeline.store import (
    open_store,
    read_anomaly_record,
    read_table,
    replace_partition,
    write_settled_record,
)


class AnomalyConfig(dg.Config):
    """Run-time overrides (the CLI's --z-threshold; the UI launchpad)."""

    z_threshold: float | None = Field(default=None, gt=0, allow_inf_nan=False)


@dg.asset(
    partitions_def=release_day_partitions,
    deps=[dg.AssetDep(kpi_samples, partition_mapping=day_and_previous_day_samples)],
    **settings("day"),
)
def anomaly_events(
    context: dg.AssetExecutionContext,
    config: AnomalyConfig,
    tars_config: TarsConfigResource,
    duckdb: StoreResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """Anomaly events of one release-day: EWMA mean and variance per series, the z-score of
    each sample against the state *before* it, |z| >= z_threshold flagged, flagged samples
    merged into events (start, end, peak z, expected value, spike/dip, severity).

    The detector warms up on the previous day's last samples when they are stored, so
    midnight does not restart it cold; it sees the samples the judgement sees (pre-filtered,
    maintenance left out: `judge.day.day_anomalies`, which the continuous sensor calls too).
    Also refreshes `anomaly_events.json` with every event of the release so far: the
    nightly ones, and the continuous sensor's of the days not processed yet
    (`store.read_anomaly_record`); a live event this run also finds is listed once.
    """
    tars = tars_config.load()
    release, day = release_day(context, tars)
    z_threshold = config.z_threshold or tars.thresholds.z_threshold
    tail = tars.thresholds.warmup_samples + tars.thresholds.ewma_span
    with open_store(duckdb.for_config(tars)) as conn:
        samples = read_table(conn, "samples", release.name, [day])
        previous = (
            read_table(conn, "samples", release.name, [day - 1], last=tail) if day else samples[:0]
        )
        history = pd.concat([previous, samples], ignore_index=True)
        baseline = read_table(conn, "samples", release.name, [0]) if day else None
        start, _ = release.day_bounds(day)
        source = build_source(tars)
        # The pre-GA days of the judged dates (GA day's own on Day 0: its weekday a week
        # before; on later days it is taken from these, judge.day._with_ga_date).
        dates = (0,) if day == 0 else tuple(d for d in (day - 1, day) if d >= 1)
        references = {
            release.day_date(d): read_reference(source, tars, release, d, include_ga_day=True)
            for d in dates
        }
        # A window from ga_at spans two local dates; the second one's weekday has its own
        # reference day (calendar days start and end on one date).
        second = (release.day_bounds(day)[1] - dt.timedelta(microseconds=1)).astimezone(release.tz)
        if second.date() not in references:
            references[second.date()] = read_reference(
                source, tars, release, day, include_ga_day=True, date=second.date()
            )
        events = day_anomalies(
            history,
            tars,
            judged_from=start,
            z_threshold=z_threshold,
            baseline=baseline,
            timezone=release.timezone,
            references=references,
        )
        # The day's marker with its events: from now on they are the day's record, and
        # anomaly_events.json leaves out the live sensor's events of this day.
        processed = pd.DataFrame(
            {"z_threshold": [float(z_threshold)], "event_count": [len(events)]}
        )
        replace_partition(
            conn, release.name, day, {"anomaly_events": events, "anomaly_days": processed}
        )

    def record() -> pd.DataFrame:
        with open_store(duckdb.for_config(tars)) as conn:
            return read_anomaly_record(conn, release.name)

    def write(every_day: pd.DataFrame) -> Path:
        document = outputs.anomaly_events_doc(release, every_day, z_threshold)
        return reports.write_json(tars, release.name, "anomaly_events.json", document)

    # Other days of the release may be committing now (a backfill): see write_settled_record.
    path = write_settled_record(record, write)
    by_severity = events["severity"].value_counts().to_dict() if len(events) else {}
    return dg.MaterializeResult(
        metadata={
            "release": release.name,
            "day": str(day),  # text: settings and labels are no plot
            "events": dg.MetadataValue.int(len(events)),
            "z_threshold": f"{float(z_threshold):g}",
            "warm_start_from_previous_day": not previous.empty,
            "by_severity": dg.MetadataValue.json({k: int(v) for k, v in by_severity.items()}),
            "anomaly_events": dg.MetadataValue.path(str(path)),
            # What a later command checks before it reuses these events (Runner.reusable_day).
            "config_digest": config_digest(tars),
        }
    )
