"""The bundled week, run once per test session through the real Dagster graph.

The report tests (JSON contract, seed snippets, HTML, browser) all read the outputs of one
demo run: running the week takes ~30 s, so it is shared rather than repeated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tars_pipeline.cli.runner import Runner
from tars_pipeline.config import TarsConfig, load_config
from tars_pipeline_tests.conftest import DEMO_RELEASE, run_the_week, week_runner, write_config


@dataclass
class DemoWeek:
    """A finished week: its config, runner, Dagster instance and output folder."""

    folder: Path
    config: TarsConfig
    runner: Runner
    instance: dg.DagsterInstance

    @property
    def out(self) -> Path:
        return self.folder / "out" / DEMO_RELEASE

    def read_json(self, name: str) -> Any:
        return json.loads((self.out / name).read_text(encoding="utf-8"))

    @property
    def retrospective(self) -> dict[str, Any]:
        return self.read_json("GA_7DAY_RETROSPECTIVE.json")


@pytest.fixture(scope="session")
def demo_week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoWeek]:
    """GA day, seven nightly summaries, then the regression analysis and retrospective."""
    folder = tmp_path_factory.mktemp("demo_week")
    config = load_config(write_config(folder))
    with week_runner(folder, config) as (runner, instance):
        run_the_week(runner)
        yield DemoWeek(folder, config, runner, instance)
