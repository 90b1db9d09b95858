"""anomaly_events: EWMA + z-score anomaly events for one release-day."""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from tars_pipeline.assets.common import GROUP, STORE_POOL, release_day
from tars_pipeline.judge.anomaly import detect_anomalies
from tars_pipeline.judge.day import clean_samples
from tars_pipeline.reporting import outputs
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.store import open_store, read_table, replace_partition


class AnomalyConfig(dg.Config):
    """Run-time overrides (the CLI's --z-threshold; the UI launchpad)."""

    z_threshold: float | None = None


def build(kpi_samples: dg.AssetsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=kpi_samples.partitions_def,
        deps=[kpi_samples],
        group_name=GROUP,
        pool=STORE_POOL,
        kinds={"duckdb"},
    )
    def anomaly_events(
        context: dg.AssetExecutionContext,
        config: AnomalyConfig,
        tars_config: TarsConfigResource,
        duckdb: DuckDBResource,
        reports: ReportsResource,
    ) -> dg.MaterializeResult:
        """Anomaly events of one release-day: EWMA mean and variance per series, the
        z-score of each sample against the state *before* it, |z| >= z_threshold flagged,
        consecutive flagged samples merged into one event (start, end, peak z, expected
        value, spike/dip, severity).

        The detector warms up on the previous day's last samples when they are stored,
        so midnight does not restart it cold. Also refreshes `anomaly_events.json` with
        every event of the release so far.
        """
        tars = tars_config.load()
        release, day = release_day(context, tars)
        thresholds = tars.thresholds
        z_threshold = config.z_threshold or thresholds.z_threshold
        start, _ = release.day_bounds(day)
        warmup_tail = thresholds.warmup_samples + thresholds.ewma_span
        with open_store(duckdb) as conn:
            samples = read_table(conn, "samples", release.name, [day])
            previous = (
                read_table(conn, "samples", release.name, [day - 1]) if day > 0 else samples[:0]
            )
            if len(previous):
                previous = previous.sort_values("ts").groupby(["service", "kpi"]).tail(warmup_tail)
            # The samples the judgement sees: pre-filtered, maintenance windows left out.
            history = clean_samples(pd.concat([previous, samples], ignore_index=True), tars)
            events = detect_anomalies(
                history[["service", "kpi", "ts", "value"]],
                **{**thresholds.detector_settings(), "z_threshold": z_threshold},
            )
            if len(events):
                events = events[pd.to_datetime(events["peak_ts"], utc=True) >= start]
            replace_partition(conn, release.name, day, {"anomaly_events": events})
            every_day = read_table(conn, "anomaly_events", release.name)
        path = reports.write_json(
            release.name,
            "anomaly_events.json",
            outputs.anomaly_events_doc(release, every_day, z_threshold),
        )
        by_severity = events["severity"].value_counts().to_dict() if len(events) else {}
        return dg.MaterializeResult(
            metadata={
                "release": release.name,
                "day": day,
                "events": dg.MetadataValue.int(len(events)),
                "z_threshold": dg.MetadataValue.float(float(z_threshold)),
                "warm_start_from_previous_day": not previous.empty,
                "by_severity": dg.MetadataValue.json({k: int(v) for k, v in by_severity.items()}),
                "anomaly_events": dg.MetadataValue.path(str(path)),
            }
        )

    return anomaly_events
