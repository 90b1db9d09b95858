"""Run TARS jobs from the command line on a persistent Dagster instance.

A command launches the same named jobs the schedules launch (`tars_day`, `tars_baseline`,
`tars_close`; GA day's four assets in one run of the location's asset job), executed in this
process, and records each run with the origin of the code location `tars` (workspace.yaml).
So the runs land in the instance `make dev` shows (DAGSTER_HOME, default
<data_dir>/dagster_home) and the UI can re-execute them: the command's settings (--config,
--output-dir, --prometheus-url) travel in the run config, not in the process.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_duckdb import DuckDBResource

from tars_pipeline.cli.hygiene import process_tags, reap_dead_runs
from tars_pipeline.cli.interrupts import ctrl_c_pressed
from tars_pipeline.cli.progress import Progress
from tars_pipeline.config import Release, TarsConfig, config_digest
from tars_pipeline.errors import RunFailedError, TarsUserError
from tars_pipeline.partitions import release_day_key, release_day_partitions
from tars_pipeline.resources import ReportsResource, TarsConfigResource
from tars_pipeline.sensors import register_releases
from tars_pipeline.sources.prometheus import PROGRESS_TAG
from tars_pipeline.store import ParquetLocation, open_store, read_document, store_location

PACKAGED_INSTANCE_CONFIG = Path(__file__).resolve().parent.parent / "dagster.yaml"
DEFINITIONS_MODULE = "tars_pipeline.definitions"
LOCATION_NAME = "tars"  # workspace.yaml
REPOSITORY_NAME = "__repository__"  # the repository of a Definitions object
ASSET_JOB = "__ASSET_JOB"  # the location's job for any asset selection (the UI's Materialize)
DAY_ASSETS = frozenset({"kpi_samples", "anomaly_events", "daily_summary"})
CLOSE_ASSETS = frozenset({"regression_summary", "retrospective", "release_notifications"})


def ensure_dagster_home(config: TarsConfig) -> Path:
    """DAGSTER_HOME (or <data_dir>/dagster_home), holding TARS's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or config.data_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


__all__ = ["Progress", "RunRecord", "Runner", "ensure_dagster_home", "job_for"]


@dataclass(frozen=True)
class RunRecord:
    """One run a Runner launched: what the commands report with -v and in --json."""

    run_id: str
    job: str
    partition: str
    assets: tuple[str, ...]
    seconds: float


def _user_error_in(error: Any) -> str | None:
    """The TarsUserError message inside a failed step's error chain, if there is one."""
    while error is not None:
        if getattr(error, "cls_name", None) == "TarsUserError":
            return error.message.strip().removeprefix("tars_pipeline.errors.TarsUserError: ")
        error = getattr(error, "cause", None) or getattr(error, "context", None)
    return None


# Errors of the filesystem a user fixes by pointing a setting elsewhere: exit 2, not 1.
PATH_ERRORS = frozenset(
    ("PermissionError", "NotADirectoryError", "IsADirectoryError", "FileExistsError",
     "FileNotFoundError", "ReadOnlyFileSystemError")
)  # fmt: skip


def _root_cause(error: Any) -> Any:
    """The innermost error of a failed step's chain: what went wrong, not "Error occurred
    while executing op"."""
    while error is not None:
        inner = getattr(error, "cause", None) or getattr(error, "context", None)
        if inner is None:
            return error
        error = inner
    return None


def _explain(error: Any, label: str, step: str, run_id: str) -> Exception:
    """The exception a CLI shows for a failed step: the user error inside it (exit 2), a
    path the user must change (exit 2), or the root cause (exit 1), never Dagster's
    wrapper alone."""
    message = _user_error_in(error)
    if message:
        return TarsUserError(message)
    root = _root_cause(error)
    name = getattr(root, "cls_name", None) or "error"
    text = (getattr(root, "message", "") or "").strip().removeprefix(f"{name}: ")
    if name in PATH_ERRORS or (name == "OSError" and "Read-only file system" in text):
        return TarsUserError(
            f"{label}: cannot write where the config or a flag points ({name}: {text})",
            where="--output-dir / output_dir, data_dir or store_path",
            remedy="point it at a folder this user can create and write, then run the "
            "command again",
        )
    if "lock" in text.lower() and "duckdb" in name.lower() + text.lower():
        return RunFailedError(
            f"{label}: another process holds the DuckDB store ({text})\n"
            "  -> wait for it (a run or an open session) to finish, or use the default "
            "Parquet layout (store_layout: auto), whose readers never block writers"
        )
    return RunFailedError(
        f"{label} failed in step {step}: {name}: {text or 'unknown error'}\n"
        f"  run {run_id}: open it in the Dagster UI (make dev) for the logs"
    )


@contextmanager
def _watch_ctrl_c() -> Iterator[Callable[[], bool]]:
    """Whether Ctrl-C arrived while the block ran. Dagster swaps the SIGINT handler for the
    length of a run and turns an interrupt into a failed step ("Query interrupted"), so
    the command asks the signal module's wakeup file instead, which every signal reaches
    whatever the handler: Ctrl-C then exits 130, not 1 as if the run had failed."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def interrupted() -> bool:
        try:
            return signal.SIGINT in os.read(read_end, 1024)
        except BlockingIOError:
            return False

    try:
        yield interrupted
    finally:
        signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)


def job_for(asset_names: Sequence[str]) -> str:
    """The named job whose selection holds `asset_names`: GA day's assets with the baseline
    (two partitions definitions) run in the location's asset job."""
    names = set(asset_names)
    if names <= DAY_ASSETS:
        return "tars_day"
    if names == {"baseline"}:
        return "tars_baseline"
    if names <= CLOSE_ASSETS:
        return "tars_close"
    return ASSET_JOB


def _remote_origin(job_name: str) -> RemoteJobOrigin:
    """The origin a run launched from the UI would carry: location `tars` loading this
    module with this interpreter, so the webserver finds the job to re-execute."""
    target = LoadableTargetOrigin(
        executable_path=sys.executable,
        module_name=DEFINITIONS_MODULE,
        attribute="defs",
        working_directory=str(Path.cwd()),
    )
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target, LOCATION_NAME)
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name)


def _partition_tags(partition_key: str | dg.MultiPartitionKey) -> dict[str, str]:
    """The run's partition tags; GA day's run spans two partitions definitions that share
    its key (release x day and release x day_00), so the tags come from the key's shape."""
    if isinstance(partition_key, dg.MultiPartitionKey):
        return dict(release_day_partitions.get_tags_for_partition_key(partition_key))
    return {"dagster/partition": str(partition_key)}


class Runner:
    """Runs selections of the TARS graph for one config, as named job runs."""

    def __init__(
        self,
        config: TarsConfig,
        *,
        output_dir: str | None = None,
        prometheus_url: str = "",
        instance: dg.DagsterInstance | None = None,
        progress: Progress | None = None,
        notify: Callable[[str], None] | None = None,
        log_level: str = "CRITICAL",
    ):
        """`notify` gets the lines worth telling the user (default: stderr); `log_level` is
        the runs' Dagster console log on stderr (CRITICAL: silent, the CLI explains a
        failure better)."""
        self.config = config
        self.repository = ReconstructableRepository.for_module(
            DEFINITIONS_MODULE, "defs", working_directory=str(Path.cwd())
        )
        self.resource_config = {
            "tars_config": {
                "config": {
                    "config_path": str(config.config_path or ""),
                    "prometheus_url": prometheus_url,
                }
            },
            "reports": {
                "config": {"output_dir": output_dir or "", "per_release": output_dir is None}
            },
        }
        self.output_dir = output_dir
        if instance is None:
            ensure_dagster_home(config)
            instance = dg.DagsterInstance.get()
        self.instance = instance
        self.progress = progress or Progress()
        self.log_level = log_level
        self.runs: list[RunRecord] = []
        register_releases(instance, [release.name for release in config.releases])
        # Runs an earlier command left STARTED when its process was killed (hygiene.py).
        reap_dead_runs(instance, notify or (lambda line: print(line, file=sys.stderr)))

    @property
    def store(self) -> DuckDBResource | ParquetLocation:
        return store_location(self.config)

    def output_folder(self, release: Release) -> Path:
        """Where this runner's runs write `release`'s reports (the `reports` resource's rule)."""
        reports = ReportsResource(output_dir=self.output_dir or "", per_release=not self.output_dir)
        return reports.folder(release.name, self.config)

    def materialize(
        self,
        asset_names: Sequence[str],
        partition_key: str | dg.MultiPartitionKey,
        *,
        run_config: dict | None = None,
        label: str,
    ) -> dg.ExecuteInProcessResult:
        with self.progress.task(label):
            return self._materialize(asset_names, partition_key, run_config, label)

    def _materialize(
        self,
        asset_names: Sequence[str],
        partition_key: str | dg.MultiPartitionKey,
        run_config: dict | None,
        label: str,
    ) -> dg.ExecuteInProcessResult:
        if ctrl_c_pressed():  # a Ctrl-C that landed where it was swallowed: no next run
            raise KeyboardInterrupt(f"{label}: not started")
        started = time.monotonic()
        job_name = job_for(asset_names)
        recon_job = self.repository.get_reconstructable_job(job_name)
        job_def = recon_job.get_definition()
        selection = [dg.AssetKey(name) for name in asset_names]
        # The run's own log goes to the instance (the UI shows it); the terminal gets the
        # progress lines and, on failure, one clear message. CRITICAL, not ERROR: Dagster logs
        # a failed step at ERROR with its stack trace, and the message below says it better.
        quiet = {"loggers": {"console": {"config": {"log_level": self.log_level}}}}
        run = self.instance.create_run_for_job(
            job_def=job_def,
            run_config={**quiet, "resources": self.resource_config, **(run_config or {})},
            tags={
                "tars/source": "cli",
                **process_tags(),  # which process runs it: found if that process dies
                # On a terminal, the Prometheus source adds one line per KPI fetch. The
                # step's stderr is captured by Dagster, so the step cannot ask isatty().
                **({PROGRESS_TAG: "terminal"} if self.progress.terminal else {}),
                **_partition_tags(partition_key),
            },
            asset_selection=frozenset(selection),
            remote_job_origin=_remote_origin(job_name),
            job_code_origin=recon_job.get_python_origin(),
        )
        with _watch_ctrl_c() as interrupted:
            result = execute_run(recon_job, run, self.instance)
            stopped = interrupted() or ctrl_c_pressed()
        # Ctrl-C stops the command whatever became of the run: Dagster holds the signal
        # until a step checks for it, and the run may then succeed; no next run may start.
        if stopped:
            outcome = "completed" if result.success else "marked failed"
            raise KeyboardInterrupt(f"{label}: stopped, run {result.run_id} {outcome}")
        self.runs.append(
            RunRecord(
                result.run_id,
                job_name,
                str(partition_key),
                tuple(asset_names),
                round(time.monotonic() - started, 2),
            )
        )
        if not result.success:
            for event in result.all_events:
                if event.is_step_failure:
                    error = event.step_failure_data.error
                    raise _explain(error, label, str(event.step_key), result.run_id)
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
        """Release-level assets; the baseline is the release's day_00 partition."""
        label = f"{release.name}: {', '.join(asset_names)}"
        key = release_day_key(release.name, 0) if "baseline" in asset_names else release.name
        return self.materialize(asset_names, key, label=label)

    def reusable(
        self, release: Release, asset_name: str, upstream: Sequence[str]
    ) -> dg.EventLogRecord | None:
        """The latest materialization of release-level `asset_name` when it can stand in for
        a new one: made with the same settings and TARS (`config_digest`), its file in this
        runner's output folder and its document in the store, and no partition of
        `upstream` of the release materialized since. None otherwise."""

        def stored() -> bool:
            with open_store(self.store) as conn:
                return read_document(conn, release.name, asset_name) is not None

        days = [str(release_day_key(release.name, day)) for day in release.days]
        return self._reusable(
            asset_name, release.name, release, {name: days for name in upstream}, stored
        )

    def reusable_day(
        self,
        release: Release,
        day: int,
        asset_name: str,
        upstream: Mapping[str, Sequence[int]],
        *,
        stored: Callable[[], bool],
        metadata: Mapping[str, str] | None = None,
    ) -> dg.EventLogRecord | None:
        """The latest materialization of day-partitioned `asset_name` for `day` when it can
        stand in for a new one: the rules of `reusable`, its metadata values `metadata` (the
        run's own settings, e.g. the z-threshold), `stored()` true (its rows are in the
        store), and none of the `upstream` assets' days materialized since."""
        partitions = {
            name: [str(release_day_key(release.name, d)) for d in sorted(set(days))]
            for name, days in upstream.items()
        }
        key = str(release_day_key(release.name, day))
        return self._reusable(asset_name, key, release, partitions, stored, metadata or {})

    def _reusable(
        self,
        asset_name: str,
        partition: str,
        release: Release,
        upstream: Mapping[str, Sequence[str]],
        stored: Callable[[], bool],
        expected_metadata: Mapping[str, str] | None = None,
    ) -> dg.EventLogRecord | None:
        latest = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset_name), asset_partitions=[partition]),
            limit=1,
        ).records
        if not latest:
            return None
        record = latest[0]
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization is not None else {}
        digest, path = metadata.get("config_digest"), metadata.get(asset_name)
        settings = TarsConfigResource(**self.resource_config["tars_config"]["config"]).load()
        if digest is None or digest.value != config_digest(settings):
            return None
        for name, value in (expected_metadata or {}).items():
            if name not in metadata or str(metadata[name].value) != value:
                return None
        expected = self.output_folder(release) / f"{asset_name}.json"
        if path is None or Path(str(path.value)) != expected or not expected.is_file():
            return None
        if not stored():
            return None
        for name, partitions in upstream.items():
            if not partitions:
                continue
            since = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey(name),
                    asset_partitions=list(partitions),
                    after_storage_id=record.storage_id,
                ),
                limit=1,
            ).records
            if since:
                return None
        return record

    def checks(self, result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
        """Every asset check a run evaluated, in the order it did."""
        return [
            event.asset_check_evaluation_data
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ]

    def failed_checks(self, result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
        """The asset checks of a run that did not pass (ERROR first)."""
        failed = [check for check in self.checks(result) if not check.passed]
        return sorted(failed, key=lambda check: check.severity != dg.AssetCheckSeverity.ERROR)

    def metadata(self, result: dg.ExecuteInProcessResult, asset_name: str) -> dict[str, Any]:
        for event in result.get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            if materialization.asset_key == dg.AssetKey(asset_name):
                return {key: value.value for key, value in materialization.metadata.items()}
        return {}
