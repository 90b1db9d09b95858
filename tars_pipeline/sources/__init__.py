"""Metric sources: adapters that turn a backend's data into KPI samples (see base.py)."""

from __future__ import annotations

from tars_pipeline.config import SnapshotSourceConfig, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources.base import MetricSource
from tars_pipeline.sources.snapshot import SnapshotSource


def build_source(config: TarsConfig) -> MetricSource:
    """The metric source the config names."""
    if isinstance(config.source, SnapshotSourceConfig):
        return SnapshotSource(config.source.path)
    raise TarsUserError(
        f"metric source type {config.source.type!r} is not available in this build",
        where=f"{config.config_path}: source.type",
        remedy="use 'snapshot' (offline files) until the Prometheus adapter lands",
    )
