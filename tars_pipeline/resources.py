"""Dagster resources: the validated config, the DuckDB store and the report folder.

Each has defaults that work for `make dev` (the tars.yaml of $TARS_CONFIG or ./tars.yaml);
a CLI run sets them in its run config (its --config, --output-dir and --prometheus-url), so a
run re-executed from the UI reads the same config and writes to the same folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from tars_pipeline.config import TarsConfig, load_config, resolve_config_path
from tars_pipeline.reporting.jsonio import write_json, write_text_atomic
from tars_pipeline.store import ParquetLocation, store_location


@lru_cache(maxsize=8)
def _cached_config(path: str, mtime_ns: int, prometheus_url: str) -> TarsConfig:
    config = load_config(path)
    if prometheus_url:
        from tars_pipeline.sources.prometheus import with_prometheus_url

        config = with_prometheus_url(config, prometheus_url)
    return config


class TarsConfigResource(dg.ConfigurableResource):
    """The `tars.yaml` a run uses, read when the run starts (again whenever the file changes),
    so the UI and the CLI judge with the same settings."""

    config_path: str = Field(
        default="", description="tars.yaml to read; empty: $TARS_CONFIG, else ./tars.yaml."
    )
    prometheus_url: str = Field(
        default="",
        description="Read metrics from this Prometheus API instead of the config's source "
        "(the CLIs' --prometheus-url); empty: the config's source.",
    )

    def load(self) -> TarsConfig:
        path = resolve_config_path(self.config_path or None)
        mtime = path.stat().st_mtime_ns if path.exists() else 0
        return _cached_config(str(path), mtime, self.prometheus_url)


class StoreResource(DuckDBResource):
    """The store: empty `database` means the config's (store_layout, store_path); a path
    there pins one DuckDB-layout file."""

    database: str = Field(default="", description="DuckDB file; empty: from tars.yaml.")

    def for_config(self, config: TarsConfig) -> DuckDBResource | ParquetLocation:
        return store_location(config, self.database)


class ReportsResource(dg.ConfigurableResource):
    """Where the seed-named JSON/Markdown outputs go.

    With `per_release` (the default) each release gets its own sub-folder, so several
    releases can share one output folder; the CLIs' --output-dir writes flat, as the seed.
    An empty `output_dir` is the config's output_dir.
    """

    output_dir: str = ""
    per_release: bool = True

    def folder(self, release: str, config: TarsConfig) -> Path:
        base = Path(self.output_dir) if self.output_dir else config.output_dir
        return base / release if self.per_release else base

    def write_json(self, config: TarsConfig, release: str, filename: str, body: Any) -> Path:
        return write_json(self.folder(release, config) / filename, body)

    def write_text(self, config: TarsConfig, release: str, filename: str, text: str) -> Path:
        return write_text_atomic(self.folder(release, config) / filename, text)
