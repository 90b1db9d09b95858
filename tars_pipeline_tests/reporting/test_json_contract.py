"""The JSON contract: every output of a demo run matches the schema shipped in the package.

Automation reads these files by key (SPEC §4), so the schemas are the promise; these tests
hold every output to it, check the schemas themselves, and check that the retrospective
asset refuses to write a model that breaks it.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tars_pipeline.errors import RunFailedError
from tars_pipeline.reporting import schema
from tars_pipeline.reporting.outputs import SCHEMA_VERSION
from tars_pipeline_tests.conftest import DEMO_RELEASE, DemoWeek

OUTPUTS = (
    "ga_kpi_summary.json",
    *(f"day_{day:02d}_summary.json" for day in range(8)),
    "anomaly_events.json",
    "regression_summary.json",
    "GA_7DAY_RETROSPECTIVE.json",
)


# --- the schemas themselves -------------------------------------------------------------


@pytest.mark.parametrize("name", schema.SCHEMA_NAMES)
def test_each_schema_is_draft_2020_12_and_requires_schema_version(name: str) -> None:
    document = schema.load_schema(name)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)
    assert "schema_version" in document["required"]
    assert document["$id"].endswith(f"/{name}.schema.json")


def test_the_schemas_ship_inside_the_package() -> None:
    shipped = {path.name for path in (resources.files("tars_pipeline") / "schemas").iterdir()}
    assert shipped == {f"{name}.schema.json" for name in schema.SCHEMA_NAMES}
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"schemas/*.json"' in pyproject, "package-data must include the schemas"


def test_shared_definitions_are_identical_in_every_schema() -> None:
    """Each schema is self-contained (a consumer needs one file), so shared parts are
    copied; this keeps the copies from drifting apart."""
    seen: dict[str, tuple[str, Any]] = {}
    for name in schema.SCHEMA_NAMES:
        for key, definition in schema.load_schema(name).get("$defs", {}).items():
            if key in seen:
                assert definition == seen[key][1], f"$defs/{key}: {name} vs {seen[key][0]}"
            else:
                seen[key] = (name, definition)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("ga_kpi_summary.json", "ga_kpi_summary"),
        ("day_07_summary.json", "day_summary"),
        ("anomaly_events.json", "anomaly_events"),
        ("regression_summary.json", "regression_summary"),
        ("GA_7DAY_RETROSPECTIVE.json", "retrospective"),
    ],
)
def test_output_file_names_map_to_their_schema(filename: str, expected: str) -> None:
    assert schema.schema_for_file(filename) == expected


# --- a demo run's outputs ---------------------------------------------------------------


def _strict_load(path: Path) -> Any:
    """json.load that refuses the NaN/Infinity tokens Python's json would accept."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{path.name} contains {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.mark.slow
def test_the_demo_writes_every_output(demo_week: DemoWeek) -> None:
    names = {path.name for path in demo_week.out.iterdir()}
    assert set(OUTPUTS) <= names
    assert {"GA_7DAY_RETROSPECTIVE.md", "GA_7DAY_RETROSPECTIVE.html"} <= names
    assert not [name for name in names if name.endswith(".tmp")]


@pytest.mark.slow
@pytest.mark.parametrize("filename", OUTPUTS)
def test_every_demo_output_matches_its_schema(demo_week: DemoWeek, filename: str) -> None:
    path = demo_week.out / filename
    document = _strict_load(path)
    assert document["schema_version"] == SCHEMA_VERSION == "1.3"
    assert schema.schema_errors(schema.schema_for_file(filename), document) == []
    assert schema.validate_file(path) == schema.schema_for_file(filename)


@pytest.mark.slow
def test_the_retrospective_carries_what_the_charts_plot(demo_week: DemoWeek) -> None:
    retro = demo_week.retrospective
    series = {(s["service"], s["kpi"]): s for s in retro["kpi_daily"]}
    p99 = series[("api-gateway", "latency_p99")]
    assert p99["status"] == "degraded"
    assert p99["band"] == pytest.approx({"lower": 135.0, "upper": 165.0}, abs=0.1)
    day2 = next(d for d in p99["days"] if d["day"] == 2)
    assert day2["flagged"] is True and day2["value"] == pytest.approx(180.0, abs=0.1)
    assert series[("api-gateway", "cpu_utilization")]["status"] == "drifted"
    assert [b["band"] for b in retro["health_bands"]] == [
        "healthy",
        "watch",
        "degraded",
        "critical",
    ]
    for slo in retro["slo_compliance"]:
        assert slo["burn_down"][-1]["budget_consumed_pct"] == pytest.approx(
            slo["budget_consumed_pct"], rel=1e-9, abs=1e-9
        )
    first_day = retro["cost_analysis"]["by_day"][0]
    assert sum(first_day["by_resource"].values()) == pytest.approx(first_day["cost_usd"])
    assert retro["comparison"] is None  # the demo release names no previous release


# --- failures -----------------------------------------------------------------------------


def test_a_broken_document_fails_with_the_path_of_each_problem() -> None:
    broken: dict[str, Any] = {
        "schema_version": "1.0",
        "release": {"name": "v1", "ga_date": "2026-03-03", "timezone": "UTC"},
        "z_threshold": 3.0,
        "days": [],
        "count": 0,
        "events": [{"kpi": "x", "service": "y", "day": 1, "peak_z": math.nan}],
    }
    with pytest.raises(schema.SchemaValidationError) as raised:
        schema.validate_document("anomaly_events", broken)
    message = str(raised.value)
    assert "anomaly_events.schema.json" in message
    assert "$.release: 'window_days' is a required property" in message
    assert "$.events[0].peak_z: NaN/Infinity is not JSON" in message
    assert "$.events[0]: 'start' is a required property" in message


def test_a_document_without_schema_version_is_refused() -> None:
    problems = schema.schema_errors("regression_summary", {"release": {}})
    assert "$: 'schema_version' is a required property" in problems


@pytest.mark.slow
def test_the_asset_refuses_a_model_that_breaks_the_contract_and_writes_nothing(
    demo_week: DemoWeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tars_pipeline.reporting import week as asset_module

    original = asset_module.build_retrospective

    def without_priorities(*args: Any, **kwargs: Any) -> dict[str, Any]:
        model = original(*args, **kwargs)
        for item in model["action_items"]:
            del item["priority"]
        return model

    monkeypatch.setattr(asset_module, "build_retrospective", without_priorities)
    before = {path.name: path.read_bytes() for path in demo_week.out.iterdir()}
    release = demo_week.config.release(DEMO_RELEASE)
    with pytest.raises(RunFailedError) as raised:
        demo_week.runner.release_level(release, ("retrospective",))
    message = str(raised.value)
    assert "retrospective.schema.json" in message
    assert "$.action_items[0]: 'priority' is a required property" in message
    after = {path.name: path.read_bytes() for path in demo_week.out.iterdir()}
    assert after == before
