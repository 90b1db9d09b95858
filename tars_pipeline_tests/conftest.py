"""Shared fixtures: a release week on the bundled snapshot, in a temporary folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG, Progress, Runner
from tars_pipeline.config import TarsConfig, load_config

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT = REPO / "test_data" / "snapshot"
DEMO_RELEASE = "v1.0.1"


def write_config(folder: Path, **overrides: object) -> Path:
    """A tars.yaml in `folder` reading the bundled week, storing everything in `folder`."""
    settings: dict[str, object] = {
        "data_dir": str(folder / "data"),
        "output_dir": str(folder / "out"),
        "source": {"type": "snapshot", "path": str(SNAPSHOT)},
        "releases": [
            {
                "name": DEMO_RELEASE,
                "ga_date": "2026-03-03",
                "timezone": "America/New_York",
                "window_days": 7,
            }
        ],
    }
    settings.update(overrides)
    path = folder / "tars.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


DAILY = ("kpi_samples", "anomaly_events", "daily_summary")
GA_DAY = ("kpi_samples", "anomaly_events", "baseline", "daily_summary")


@contextmanager
def week_runner(folder: Path, config: TarsConfig) -> Iterator[tuple[Runner, dg.DagsterInstance]]:
    """A Runner (the CLIs' code path) on a fresh persistent Dagster instance in `folder`."""
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield Runner(config, instance=instance, progress=Progress(enabled=False)), instance


def run_the_week(runner: Runner, release_name: str = DEMO_RELEASE) -> None:
    """GA day and its baseline, every nightly summary, then the Day-7 analysis."""
    release = runner.config.release(release_name)
    for day in release.days:
        runner.day(release, day, GA_DAY if day == 0 else DAILY)
    runner.release_level(release, ("regression_summary", "retrospective"))


# The bundled week, run once per test session through the real Dagster graph: the report,
# pipeline and golden-output tests all read the outputs of this one run.


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


# The longest files first: with `--dist loadfile`, xdist hands whole files to the workers in
# collection order, so a long file collected last leaves the other worker idle at the end.
SLOWEST_FIRST = (
    "test_parallel_backfill.py",
    "test_schedules_daemon.py",
    "test_ui.py",
    "realistic/",
    "test_store_s3.py",
    "prometheus/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid
        return next((i for i, name in enumerate(SLOWEST_FIRST) if name in path), len(SLOWEST_FIRST))

    items.sort(key=rank)  # stable: the order within a file is kept
