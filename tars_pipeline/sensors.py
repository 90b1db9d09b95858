"""Releases in tars.yaml become partitions of the instance, without a manual step."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from tars_pipeline.partitions import release_partitions
from tars_pipeline.resources import TarsConfigResource


def register_releases(instance: dg.DagsterInstance, names: Sequence[str]) -> list[str]:
    """Add the configured releases that the instance does not know yet; returns them."""
    known = set(instance.get_dynamic_partitions(release_partitions.name))
    new = [name for name in names if name not in known]
    if new:
        instance.add_dynamic_partitions(release_partitions.name, new)
    return new


@dg.sensor(
    name="tars_register_releases",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds every release in tars.yaml as a partition of the release dimension.",
)
def register_configured_releases(
    context: dg.SensorEvaluationContext, tars_config: TarsConfigResource
) -> dg.SensorResult | dg.SkipReason:
    configured = [release.name for release in tars_config.load().releases]
    known = set(context.instance.get_dynamic_partitions(release_partitions.name))
    new = [name for name in configured if name not in known]
    if not new:
        return dg.SkipReason("every configured release is registered")
    return dg.SensorResult(dynamic_partitions_requests=[release_partitions.build_add_request(new)])
