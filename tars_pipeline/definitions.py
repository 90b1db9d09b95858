"""The Dagster code location `tars` (workspace.yaml, `dg dev`, `make dev`).

The graph (one file per asset under assets/), partitioned by release x day:

    kpi_samples (release x day) -> baseline (release x day_00: reads Day 0 only)
    kpi_samples (the day and the day before) -> anomaly_events (release x day)
    kpi_samples (the day and Day 0) + anomaly_events + baseline -> daily_summary (release x day)
    kpi_samples, daily_summary, anomaly_events (every day) -> regression_summary (release)
    regression_summary + the week -> retrospective (release) -> release_notifications

Assets, jobs, checks and resources do not depend on tars.yaml: a run reads the config when
it starts (the `tars_config` resource). Only the schedules do, one set per release timezone
found in the config when the location loads.
"""

import dagster as dg

from tars_pipeline.assets.anomaly_events import anomaly_events
from tars_pipeline.assets.baseline import baseline
from tars_pipeline.assets.daily_summary import daily_summary
from tars_pipeline.assets.kpi_samples import kpi_samples
from tars_pipeline.assets.notifications import release_notifications
from tars_pipeline.assets.regression_summary import regression_summary
from tars_pipeline.assets.retrospective import retrospective
from tars_pipeline.config import load_config
from tars_pipeline.resources import ReportsResource, StoreResource, TarsConfigResource
from tars_pipeline.schedules import JOBS, build_schedules
from tars_pipeline.sensors import register_configured_releases
from tars_pipeline.sensors_continuous import tars_continuous_anomalies

ASSETS = [
    kpi_samples,
    baseline,
    anomaly_events,
    daily_summary,
    regression_summary,
    retrospective,
    release_notifications,
]
RESOURCES = {
    "tars_config": TarsConfigResource(),
    "duckdb": StoreResource(),
    "reports": ReportsResource(),
}

defs = dg.Definitions(
    assets=ASSETS,
    jobs=list(JOBS),
    schedules=build_schedules(load_config().releases),
    sensors=[register_configured_releases, tars_continuous_anomalies],
    resources=RESOURCES,
    # Steps are small and all write one DuckDB file: run them in the run's process.
    executor=dg.in_process_executor,
)
