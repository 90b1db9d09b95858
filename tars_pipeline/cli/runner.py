"""Materialize TARS assets from the command line on a persistent Dagster instance.

Runs land in the same instance `make dev` shows (DAGSTER_HOME, default
<data_dir>/dagster_home), so what a command did is visible and re-runnable in the UI.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from tars_pipeline.config import Release, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.graph import build_assets, build_checks, build_resources
from tars_pipeline.partitions import release_day_key
from tars_pipeline.sensors import register_releases
from tars_pipeline.sources.prometheus import PROGRESS_TAG

PACKAGED_INSTANCE_CONFIG = Path(__file__).resolve().parent.parent / "dagster.yaml"


class RunFailedError(Exception):
    """A Dagster run failed for a reason that is not a user error."""


def ensure_dagster_home(config: TarsConfig) -> Path:
    """DAGSTER_HOME (or <data_dir>/dagster_home), holding TARS's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or config.data_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


class Progress:
    """One line per step on a terminal; silent when stderr is a log file or a pipe."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def step(self, message: str) -> None:
        if self.enabled:
            print(f"  … {message}", file=sys.stderr, flush=True)


def _user_error_in(error: Any) -> str | None:
    """The TarsUserError message inside a failed step's error chain, if there is one."""
    while error is not None:
        if getattr(error, "cls_name", None) == "TarsUserError":
            return error.message.strip().removeprefix("tars_pipeline.errors.TarsUserError: ")
        error = getattr(error, "cause", None) or getattr(error, "context", None)
    return None


class Runner:
    """Materializes selections of the TARS graph for one config."""

    def __init__(
        self,
        config: TarsConfig,
        *,
        output_dir: str | None = None,
        instance: dg.DagsterInstance | None = None,
        progress: Progress | None = None,
    ):
        self.config = config
        assets = build_assets(config)
        self.assets = [*assets, *build_checks(config, assets)]
        self.resources = build_resources(
            config, output_dir=output_dir, per_release=output_dir is None
        )
        if instance is None:
            ensure_dagster_home(config)
            instance = dg.DagsterInstance.get()
        self.instance = instance
        self.progress = progress or Progress()
        register_releases(instance, [release.name for release in config.releases])

    def output_folder(self, release: Release) -> Path:
        return self.resources["reports"].folder(release.name)

    def materialize(
        self,
        asset_names: Sequence[str],
        partition_key: str | dg.MultiPartitionKey,
        *,
        run_config: dict | None = None,
        label: str,
    ) -> dg.ExecuteInProcessResult:
        self.progress.step(label)
        # The run's own log goes to the instance (the UI shows it); the terminal gets the
        # progress lines and, on failure, one clear message. CRITICAL, not ERROR: Dagster logs
        # a failed step at ERROR with its stack trace, and the message below says it better.
        quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        result = dg.materialize(
            self.assets,
            selection=list(asset_names),
            partition_key=str(partition_key),
            instance=self.instance,
            resources=self.resources,
            run_config={**quiet, **(run_config or {})},
            raise_on_error=False,
            # On a terminal, the Prometheus source adds one line per KPI fetch. The step's
            # stderr is captured (and mirrored) by Dagster, so the step cannot ask isatty().
            tags={
                "tars/source": "cli",
                **({PROGRESS_TAG: "terminal"} if self.progress.enabled else {}),
            },
        )
        if not result.success:
            for event in result.all_events:
                if event.is_step_failure:
                    error = event.step_failure_data.error
                    message = _user_error_in(error)
                    if message:
                        raise TarsUserError(message)
                    raise RunFailedError(
                        f"{label} failed in step {event.step_key}: "
                        f"{error.message.strip() if error else 'unknown error'}\n"
                        f"  run {result.run_id}: open it in the Dagster UI (make dev) for logs"
                    )
            raise RunFailedError(f"{label} failed (run {result.run_id})")
        return result

    def day(
        self,
        release: Release,
        day: int,
        asset_names: Sequence[str],
        *,
        run_config: dict | None = None,
    ) -> dg.ExecuteInProcessResult:
        label = f"{release.name} day {day}/{release.window_days}: {', '.join(asset_names)}"
        return self.materialize(
            asset_names, release_day_key(release.name, day), run_config=run_config, label=label
        )

    def release_level(
        self, release: Release, asset_names: Sequence[str]
    ) -> dg.ExecuteInProcessResult:
        label = f"{release.name}: {', '.join(asset_names)}"
        return self.materialize(asset_names, release.name, label=label)

    def failed_checks(self, result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
        """The asset checks of a run that did not pass (ERROR first)."""
        failed = [
            event.asset_check_evaluation_data
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
            and not event.asset_check_evaluation_data.passed
        ]
        return sorted(failed, key=lambda check: check.severity != dg.AssetCheckSeverity.ERROR)

    def metadata(self, result: dg.ExecuteInProcessResult, asset_name: str) -> dict[str, Any]:
        for event in result.get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            if materialization.asset_key == dg.AssetKey(asset_name):
                return {key: value.value for key, value in materialization.metadata.items()}
        return {}
