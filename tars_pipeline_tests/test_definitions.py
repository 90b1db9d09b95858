"""The code location: what the Dagster UI loads. A change to the graph shows up here.

`EXPECTED_GRAPH` is the snapshot of the asset graph (keys, partitioning, upstream assets and
the partitions of each that a partition reads): a change to it is a change to review.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.partitions.context import partition_loading_context

from tars_pipeline.definitions import defs as location
from tars_pipeline.partitions import release_day_key
from tars_pipeline_tests.conftest import REPO

# asset -> (partitioning, {upstream asset: the upstream partitions that day_03|v1 (or v1,
# for a release-level asset) reads})
EXPECTED_GRAPH = {
    "kpi_samples": ("release x day", {}),
    "baseline": ("release x day_00", {"kpi_samples": ["day_00|v1"]}),
    "anomaly_events": ("release x day", {"kpi_samples": ["day_00|v1", "day_02|v1", "day_03|v1"]}),
    "daily_summary": (
        "release x day",
        {
            "anomaly_events": ["day_03|v1"],
            "baseline": ["day_00|v1"],
            "kpi_samples": ["day_00|v1", "day_03|v1"],
        },
    ),
    "regression_summary": (
        "release",
        {"anomaly_events": "every day", "daily_summary": "every day", "kpi_samples": "every day"},
    ),
    "retrospective": (
        "release",
        {
            "anomaly_events": "every day",
            "baseline": ["day_00|v1"],
            "daily_summary": "every day",
            "regression_summary": ["v1"],
        },
    ),
    "release_notifications": ("release", {"retrospective": ["v1"]}),
}
DAYS = 8  # day_00 .. day_07: the longest window of the repository's tars.yaml


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return location


def _partitioning(partitions_def: dg.PartitionsDefinition | None) -> str:
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        names = []
        for dim in reversed(partitions_def.partitions_defs):
            keys = dim.partitions_def
            single = isinstance(keys, dg.StaticPartitionsDefinition) and len(
                keys.get_partition_keys()
            )
            names.append(keys.get_partition_keys()[0] if single == 1 else dim.name)
        return " x ".join(names)
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return partitions_def.name.removesuffix("s")
    return repr(partitions_def)


def _reads(graph, child: dg.AssetKey, parent: dg.AssetKey, instance) -> list[str] | str:
    node = graph.get(child)
    key = release_day_key("v1", 3) if "day" in _partitioning(node.partitions_def) else "v1"
    if child.path[-1] == "baseline":
        key = release_day_key("v1", 0)
    with partition_loading_context(dynamic_partitions_store=instance):
        result = graph.get_parent_partition_keys_for_child(str(key), parent, child)
    keys = sorted(str(k) for k in result.partitions_subset.get_partition_keys())
    return "every day" if len(keys) == DAYS else keys


def test_the_asset_graph_is_the_one_documented(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    actual = {}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("releases", ["v1"])
        for key in graph.get_all_asset_keys():
            node = graph.get(key)
            reads = {
                parent.path[-1]: _reads(graph, key, parent, instance)
                for parent in sorted(node.parent_keys)
            }
            actual[key.path[-1]] = (_partitioning(node.partitions_def), reads)
    assert actual == EXPECTED_GRAPH


def test_every_asset_explains_itself_shares_the_store_pool_and_has_an_owner(
    defs: dg.Definitions,
) -> None:
    for spec in defs.resolve_all_asset_specs():
        assert spec.description and len(spec.description) > 80, spec.key
        assert spec.group_name == "post_ga"
        assert spec.owners == ["team:sre"], spec.key
    for asset in defs.assets:
        assert asset.op.pool == "tars_store", asset.key


def test_checks_run_inside_the_step_of_the_asset_they_check(defs: dg.Definitions) -> None:
    checks = {
        (key.asset_key.path[-1], key.name) for asset in defs.assets for key in asset.check_keys
    }
    assert checks == {
        ("kpi_samples", "data_completeness"),
        ("daily_summary", "slo_compliance"),
        ("daily_summary", "drift_within_threshold"),
    }


def test_one_job_per_need(defs: dg.Definitions) -> None:
    jobs = {job.name: job for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    selected = {
        name: sorted(key.path[-1] for key in job.asset_layer.executable_asset_keys)
        for name, job in jobs.items()
    }
    assert selected == {
        "tars_day": ["anomaly_events", "daily_summary", "kpi_samples"],
        "tars_baseline": ["baseline"],
        "tars_close": ["regression_summary", "release_notifications", "retrospective"],
    }


def _dagster_cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / args[0]), *args[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "DAGSTER_HOME": str(tmp_path),
            "TARS_CONFIG": str(REPO / "tars.yaml"),
            "VIRTUAL_ENV": sys.prefix,
        },
    )


def test_dagster_validates_the_workspace(tmp_path: Path) -> None:
    command = ("dagster", "definitions", "validate", "-w", "workspace.yaml")
    result = _dagster_cli(*command, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_dg_checks_the_project_definitions(tmp_path: Path) -> None:
    result = _dagster_cli("dg", "check", "defs", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_loading_the_code_location_leaves_the_statistics_and_the_charts_for_later() -> None:
    """Every run worker and CLI process loads the definitions: SciPy's stats and optimize
    packages and matplotlib (~0.9 s of the 2.2 s it took) load when a test or a chart runs."""
    import subprocess
    import sys

    code = (
        "import sys, tars_pipeline.definitions; "
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] in ('scipy', 'matplotlib')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(result.stdout.split())
    assert not {m for m in loaded if m.startswith(("scipy.stats", "scipy.optimize"))}, loaded
    assert not {m for m in loaded if m.startswith("matplotlib")}, loaded
