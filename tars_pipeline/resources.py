"""Dagster resources: the validated config, the DuckDB store and the report folder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg

from tars_pipeline.config import TarsConfig, load_config
from tars_pipeline.reporting.jsonio import write_json, write_text_atomic


@lru_cache(maxsize=8)
def _cached_config(path: str, mtime_ns: int) -> TarsConfig:
    return load_config(path)


class TarsConfigResource(dg.ConfigurableResource):
    """The `tars.yaml` the run uses (re-read when the file changes)."""

    config_path: str

    def load(self) -> TarsConfig:
        path = Path(self.config_path)
        mtime = path.stat().st_mtime_ns if path.exists() else 0
        return _cached_config(str(path), mtime)


class ReportsResource(dg.ConfigurableResource):
    """Where the seed-named JSON/Markdown outputs go.

    With `per_release` (the default) each release gets its own sub-folder, so several
    releases can share one output folder; the CLIs' --output-dir writes flat, as the seed.
    """

    output_dir: str
    per_release: bool = True

    def folder(self, release: str) -> Path:
        base = Path(self.output_dir)
        return base / release if self.per_release else base

    def write_json(self, release: str, filename: str, body: Any) -> Path:
        return write_json(self.folder(release) / filename, body)

    def write_text(self, release: str, filename: str, text: str) -> Path:
        return write_text_atomic(self.folder(release) / filename, text)
