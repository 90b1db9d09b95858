"""Metric sources: adapters that turn a backend's data into KPI samples (see base.py)."""

from __future__ import annotations

from tars_pipeline.config import PrometheusSourceConfig, SnapshotSourceConfig, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources.base import MetricSource
from tars_pipeline.sources.prometheus import (
    Progress,
    PrometheusClient,
    PrometheusSource,
    Warn,
    terminal_progress,
)
from tars_pipeline.sources.snapshot import SnapshotSource


def build_source(
    config: TarsConfig,
    *,
    progress: Progress | None = None,
    warn: Warn | None = None,
) -> MetricSource:
    """The metric source the config's `source:` block describes.

    The config already carries the effective source: a CLI's --prometheus-url is applied
    with `with_prometheus_url` before the config reaches here (the `tars_config` resource
    does that for the assets). A relative `source.ca_bundle` is taken from tars.yaml's folder.
    """
    if isinstance(config.source, PrometheusSourceConfig):
        base_dir = config.config_path.parent if config.config_path else None
        return PrometheusSource(config.source, base_dir=base_dir, progress=progress, warn=warn)
    if isinstance(config.source, SnapshotSourceConfig):
        return SnapshotSource(config.source.path)
    raise TarsUserError(
        f"metric source type {config.source.type!r} is not available in this build",
        where=f"{config.config_path}: source.type",
        remedy="use 'snapshot' (offline files) or 'prometheus'",
    )


__all__ = [
    "MetricSource",
    "PrometheusClient",
    "PrometheusSource",
    "SnapshotSource",
    "build_source",
    "terminal_progress",
]
