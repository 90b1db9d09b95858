"""The bundled week, run once per test session through the real Dagster graph.

The report tests (JSON contract, seed snippets, HTML, browser) all read the outputs of one
demo run: running the week takes ~30 s, so it is shared rather than repeated.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG, Progress, Runner
from tars_pipeline.config import TarsConfig, load_config
from tars_pipeline_tests.conftest import DEMO_RELEASE, write_config

DAILY = ("kpi_samples", "anomaly_events", "daily_summary")


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
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runner = Runner(config, instance=instance, progress=Progress(enabled=False))
        release = config.release(DEMO_RELEASE)
        for day in release.days:
            runner.day(release, day, DAILY)
            if day == 0:
                runner.release_level(release, ("baseline",))
        runner.release_level(release, ("regression_summary", "retrospective"))
        yield DemoWeek(folder, config, runner, instance)
