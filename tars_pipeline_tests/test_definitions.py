"""The code location: what the Dagster UI loads. A change to the graph shows up here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tars_pipeline.config import load_config
from tars_pipeline.graph import build_definitions
from tars_pipeline_tests.conftest import REPO, write_config

# The graph every later feature plugs into: asset -> (partitioning, upstream assets).
EXPECTED_GRAPH = {
    "kpi_samples": ("release x day", []),
    "baseline": ("release", ["kpi_samples"]),
    "anomaly_events": ("release x day", ["kpi_samples"]),
    "daily_summary": ("release x day", ["anomaly_events", "baseline", "kpi_samples"]),
    "regression_summary": ("release", ["anomaly_events", "daily_summary"]),
    "retrospective": (
        "release",
        ["anomaly_events", "baseline", "daily_summary", "regression_summary"],
    ),
    "release_notifications": ("release", ["retrospective"]),
}


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions(load_config(REPO / "tars.yaml"))


def _partitioning(partitions_def: dg.PartitionsDefinition | None) -> str:
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return " x ".join(dim.name for dim in reversed(partitions_def.partitions_defs))
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return partitions_def.name.removesuffix("s")
    return repr(partitions_def)


def test_the_asset_graph_is_the_one_documented(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    actual = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        upstream = sorted(parent.path[-1] for parent in node.parent_keys)
        actual[key.path[-1]] = (_partitioning(node.partitions_def), upstream)
    assert actual == EXPECTED_GRAPH


def test_every_asset_explains_itself_and_shares_the_store_pool(defs: dg.Definitions) -> None:
    for spec in defs.resolve_all_asset_specs():
        assert spec.description and len(spec.description) > 80, spec.key
        assert spec.group_name == "post_ga"
    for asset in defs.assets:
        assert asset.op.pool == "tars_duckdb", asset.key


def test_days_cover_the_longest_configured_window(tmp_path: Path) -> None:
    releases = [
        {"name": "v1", "ga_date": "2026-03-03"},
        {"name": "v2", "ga_date": "2026-04-01", "window_days": 14},
    ]
    defs = build_definitions(load_config(write_config(tmp_path, releases=releases)))
    samples = defs.resolve_assets_def("kpi_samples")
    days = samples.partitions_def.get_partitions_def_for_dimension("day")
    assert days.get_partition_keys()[-1] == "day_14"
    assert len(days.get_partition_keys()) == 15


def test_jobs_resolve(defs: dg.Definitions) -> None:
    assert {job.name for job in defs.resolve_all_job_defs()} >= {"tars_daily", "tars_release"}


def test_dagster_validates_the_workspace(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path), "TARS_CONFIG": str(REPO / "tars.yaml")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
