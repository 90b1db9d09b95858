"""What the window judge needs from outside the KPI samples: change annotations and label
breakdowns, read from the sources tars.yaml names (docs/methods/annotations.md and
contributors.md). The regression_summary asset calls these; the judge stays pure."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from tars_pipeline.config import (
    KpiDefinition,
    PrometheusSourceConfig,
    Release,
    SnapshotSourceConfig,
    TarsConfig,
)
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.annotations import Annotation, merge_annotations
from tars_pipeline.judge.why import BreakdownFetch
from tars_pipeline.notify.http import HttpClient
from tars_pipeline.sources.annotations import (
    annotations_from_github,
    annotations_from_prometheus,
    load_annotation_file,
)
from tars_pipeline.sources.breakdown import (
    BreakdownQuery,
    breakdown_query_for,
    fetch_breakdown,
    snapshot_breakdown,
)
from tars_pipeline.sources.prometheus import PrometheusClient

Warn = Callable[[str], None]


def annotation_span(config: TarsConfig, release: Release) -> tuple[dt.datetime, dt.datetime]:
    """From the lookback before GA day to the end of the window: every onset's lookback."""
    start, _ = release.day_bounds(0)
    _, end = release.day_bounds(release.window_days)
    return start - dt.timedelta(minutes=config.annotations.lookback_minutes), end


def load_annotations(
    config: TarsConfig,
    release: Release,
    *,
    env: Mapping[str, str] = os.environ,
    warn: Warn | None = None,
) -> list[Annotation]:
    """Every configured annotation source's changes over the release's window, merged."""
    settings = config.annotations
    start, end = annotation_span(config, release)
    groups: list[list[Annotation]] = []
    if settings.file is not None:
        groups.append(load_annotation_file(settings.file))
    if settings.prometheus:
        if not isinstance(config.source, PrometheusSourceConfig):
            raise TarsUserError(
                "annotations.prometheus needs a Prometheus source",
                where=f"{config.config_path}: annotations.prometheus",
                remedy="set source.type: prometheus, or list the changes in annotations.file",
            )
        base_dir = config.config_path.parent if config.config_path else None
        with PrometheusClient(config.source, base_dir=base_dir) as client:
            for number, query in enumerate(settings.prometheus):
                groups.append(
                    annotations_from_prometheus(
                        client,
                        query=query.query.replace("{service_label}", config.source.service_label),
                        mode=query.mode,
                        kind=query.kind,
                        title=query.title,
                        service_label=query.service_label,
                        start=start,
                        end=end,
                        step_seconds=config.step_seconds,
                        where=f"annotations.prometheus[{number}]",
                    )
                )
    github = settings.github
    if github is not None:
        token = (env.get(github.token_env) or "").strip() or None
        http = HttpClient(
            timeout_seconds=config.notifications.timeout_seconds,
            retries=config.notifications.retries,
        )
        feeds = tuple(
            feed
            for feed, wanted in (("deployments", github.deployments), ("releases", github.releases))
            if wanted
        )
        groups.append(
            annotations_from_github(
                http,
                api_url=github.api_url,
                repo=github.repository,
                token=token,
                since=start,
                until=end,
                environment=github.environment,
                include=feeds,
                service=github.service,
                warn=warn,
            )
        )
    merged = merge_annotations(*groups)
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    return [a for a in merged if first <= a.ts <= last or (a.end is not None and a.end >= first)]


def breakdown_fetcher(config: TarsConfig, release: Release) -> BreakdownFetch | None:
    """The callback the window judge asks for a degraded KPI's label breakdown: from
    Prometheus (one query per label, numerator and denominator, each window), or from the
    snapshot's `breakdown/` files. None when the source can give none."""
    source = config.source
    if isinstance(source, PrometheusSourceConfig):
        base_dir = config.config_path.parent if config.config_path else None

        def from_prometheus(
            service: str,
            kpi: KpiDefinition,
            baseline: tuple[dt.datetime, dt.datetime],
            observed: tuple[dt.datetime, dt.datetime],
        ) -> tuple[pd.DataFrame, bool, str | None, float] | None:
            query = breakdown_query_for(kpi)
            if query is None:
                return None
            with PrometheusClient(source, base_dir=base_dir) as client:
                frame = fetch_breakdown(
                    client,
                    query,
                    kpi=kpi,
                    service=service,
                    service_label=source.service_label,
                    rate_window=source.rate_window,
                    baseline=baseline,
                    observed=observed,
                    step_seconds=config.step_seconds,
                )
            return frame, _rank_options(query)

        return from_prometheus
    if isinstance(source, SnapshotSourceConfig):
        release_dir = source.path / release.name

        def from_snapshot(
            service: str,
            kpi: KpiDefinition,
            baseline: tuple[dt.datetime, dt.datetime],
            observed: tuple[dt.datetime, dt.datetime],
        ) -> tuple[pd.DataFrame, bool, str | None, float] | None:
            frame = snapshot_breakdown(
                release_dir, service=service, kpi=kpi.name, baseline=baseline, observed=observed
            )
            if frame is None or frame.empty:
                return None
            query = breakdown_query_for(kpi)
            if query is not None:
                return frame, _rank_options(query)
            ratio = bool(frame["baseline_den"].notna().any() or frame["observed_den"].notna().any())
            return frame, {"ratio": ratio}

        return from_snapshot
    return None


def _rank_options(query: BreakdownQuery) -> dict[str, Any]:
    return {
        "scale": query.scale,
        "ratio": query.ratio,
        "complement": query.complement,
        "measure": query.measure,
    }


__all__ = ["annotation_span", "breakdown_fetcher", "load_annotations"]
