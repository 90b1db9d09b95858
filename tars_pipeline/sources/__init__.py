"""Metric sources: adapters that turn a backend's data into KPI samples (see base.py)."""

from __future__ import annotations

from tars_pipeline.config import PrometheusSourceConfig, SnapshotSourceConfig, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources.base import MetricSource
from tars_pipeline.sources.prometheus import (
    Progress,
    PrometheusResource,
    PrometheusSource,
    Warn,
    terminal_progress,
)
from tars_pipeline.sources.snapshot import SnapshotSource


def prometheus_resource(config: TarsConfig) -> PrometheusResource:
    """The Prometheus connection the config describes; an empty one for other sources."""
    if isinstance(config.source, PrometheusSourceConfig):
        base_dir = config.config_path.parent if config.config_path else None
        return PrometheusResource.from_source_config(config.source, base_dir=base_dir)
    return PrometheusResource()


def build_source(
    config: TarsConfig,
    *,
    prometheus: PrometheusResource | None = None,
    progress: Progress | None = None,
    warn: Warn | None = None,
) -> MetricSource:
    """The metric source to read.

    A configured `prometheus` resource wins over the config's source: that is how the
    CLIs' --prometheus-url reaches the assets, which load the config from its file.
    """
    if prometheus is not None and prometheus.enabled:
        return PrometheusSource(prometheus, progress=progress, warn=warn)
    if isinstance(config.source, PrometheusSourceConfig):
        return PrometheusSource(prometheus_resource(config), progress=progress, warn=warn)
    if isinstance(config.source, SnapshotSourceConfig):
        return SnapshotSource(config.source.path)
    raise TarsUserError(
        f"metric source type {config.source.type!r} is not available in this build",
        where=f"{config.config_path}: source.type",
        remedy="use 'snapshot' (offline files) or 'prometheus'",
    )


__all__ = [
    "MetricSource",
    "PrometheusResource",
    "PrometheusSource",
    "SnapshotSource",
    "build_source",
    "prometheus_resource",
    "terminal_progress",
]
