"""How the TARS graph is assembled: every asset, resource, schedule and sensor.

The graph (one file per asset under assets/):

    kpi_samples (release x day) -> baseline (release; reads Day 0)
    kpi_samples -> anomaly_events (release x day)
    kpi_samples + baseline + anomaly_events -> daily_summary (release x day)
    daily_summary + anomaly_events (all days) -> regression_summary (release)
    regression_summary + ... -> retrospective (release)
    retrospective -> release_notifications (release; Slack, GitHub issues, webhook)

Asset checks (assets/checks.py): data completeness on kpi_samples; SLO compliance and one
drift-within-threshold check per KPI on daily_summary.
"""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from tars_pipeline.assets import (
    anomaly_events,
    baseline,
    checks,
    daily_summary,
    kpi_samples,
    notifications,
    regression_summary,
    retrospective,
)
from tars_pipeline.config import TarsConfig
from tars_pipeline.partitions import release_day_partitions
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.schedules import build_jobs, build_schedules
from tars_pipeline.sensors import build_release_sensor
from tars_pipeline.sensors_continuous import build_continuous_anomaly_sensor
from tars_pipeline.sources import prometheus_resource


def build_assets(config: TarsConfig) -> list[dg.AssetsDefinition]:
    samples = kpi_samples.build(release_day_partitions(config.max_window_days))
    base = baseline.build(samples)
    anomalies = anomaly_events.build(samples)
    daily = daily_summary.build(samples, base, anomalies)
    regression = regression_summary.build(daily, anomalies)
    retro = retrospective.build(regression, daily, base, anomalies)
    notify = notifications.build(retro)
    return [samples, base, anomalies, daily, regression, retro, notify]


def build_checks(
    config: TarsConfig, assets: list[dg.AssetsDefinition]
) -> list[dg.AssetChecksDefinition]:
    by_name = {asset.key.path[-1]: asset for asset in assets}
    return checks.build(by_name["kpi_samples"], by_name["daily_summary"], config.kpis)


def build_resources(
    config: TarsConfig, *, output_dir: str | None = None, per_release: bool = True
) -> dict[str, dg.ConfigurableResource]:
    return {
        "tars_config": TarsConfigResource(config_path=str(config.config_path)),
        "duckdb": DuckDBResource(database=str(config.store_file)),
        "reports": ReportsResource(
            output_dir=output_dir or str(config.output_dir), per_release=per_release
        ),
        # Empty (url "") unless the source is Prometheus or a CLI passed --prometheus-url.
        "prometheus": prometheus_resource(config),
    }


def build_definitions(config: TarsConfig) -> dg.Definitions:
    assets = build_assets(config)
    daily_job, release_job = build_jobs(assets)
    return dg.Definitions(
        assets=assets,
        asset_checks=build_checks(config, assets),
        jobs=[daily_job, release_job],
        schedules=build_schedules(config.releases, daily_job, release_job),
        sensors=[
            build_release_sensor([release.name for release in config.releases]),
            build_continuous_anomaly_sensor(),
        ],
        resources=build_resources(config),
        # Steps are small and all write one DuckDB file: run them in the run's process.
        executor=dg.in_process_executor,
    )
