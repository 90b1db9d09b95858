"""Entry points: tars-ga-kpi, tars-stability-monitor, tars-anomaly-detector,
tars-regression-analyzer, tars-retro. Each materializes assets through `Runner`."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tars_pipeline import VERSION_LINE
from tars_pipeline.cli.arguments import DAY, NON_NEGATIVE, POSITIVE, number
from tars_pipeline.config import CONFIG_ENV_VAR, Release, TarsConfig, load_config
from tars_pipeline.errors import RunFailedError, TarsUserError
from tars_pipeline.reporting import RETRO_HTML, RETRO_JSON, RETRO_MD

if TYPE_CHECKING:  # Dagster loads only when a command runs (not for --help or the CSV mode)
    from tars_pipeline.cli.runner import Runner

DAILY = ("kpi_samples", "anomaly_events", "daily_summary")
GA_DAY = ("kpi_samples", "anomaly_events", "baseline", "daily_summary")  # one run
EPILOG = (
    "Configuration: --config PATH, else $TARS_CONFIG, else ./tars.yaml (docs/configuration.md). "
    "Runs are recorded in the Dagster instance at $DAGSTER_HOME (default "
    "<data_dir>/dagster_home); open it with `make dev`. Exit status: 0 ok, 1 run failed, "
    "2 bad input, 3 the verdict reached --fail-on."
)
STATUSES = ("pass", "warn", "fail")


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=VERSION_LINE)
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"tars.yaml to use (default ${CONFIG_ENV_VAR} or ./tars.yaml)",
    )
    parser.add_argument(
        "--release",
        metavar="NAME",
        help="release to work on (default: the only release, else the latest GA date)",
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write this command's outputs into DIR (default <output_dir>/<release>/)",
    )
    parser.add_argument(
        "--fail-on",
        choices=("warn", "fail"),
        metavar="warn|fail",
        help="exit 3 when the command's verdict is at least this (a CI/CD gate): the "
        "release's for tars-regression-analyzer and tars-retro, the day's checks for "
        "tars-ga-kpi and tars-stability-monitor (ERROR fails, WARN warns), the events' "
        "severity for tars-anomaly-detector (critical fails, high warns)",
    )
    parser.add_argument(
        "--prometheus-url",
        metavar="URL",
        help="read metrics from the Prometheus(-compatible) API at URL instead of the "
        "config's source (auth, headers and TLS from source: when it is prometheus; "
        "docs/prometheus.md)",
    )
    return parser


def _release(config: TarsConfig, name: str | None) -> Release:
    if name:
        return config.release(name)
    return max(config.releases, key=lambda release: release.ga_date)


def _stored_days(runner: Runner, release: Release, table: str) -> list[int]:
    from tars_pipeline.store import days_present, open_store

    with open_store(runner.store) as conn:
        return days_present(conn, table, release.name)


def _show_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


DEBUG_ENV_VAR = "TARS_DEBUG"


def _main(body: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser):
    def entry(argv: Sequence[str] | None = None) -> int:
        args = parser.parse_args(argv)
        try:
            return body(args)
        except TarsUserError as error:
            print(f"error: {error}", file=sys.stderr)
            return TarsUserError.exit_code
        except RunFailedError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception as error:  # a TARS bug: one line, the traceback on request
            if os.environ.get(DEBUG_ENV_VAR):
                raise
            print(
                f"error: unexpected {type(error).__name__}: {error}\n"
                f"  -> this is a TARS bug: run again with {DEBUG_ENV_VAR}=1 for the traceback "
                "and report it",
                file=sys.stderr,
            )
            return 1

    def console_script() -> None:
        sys.exit(entry())

    console_script.run = entry  # type: ignore[attr-defined]
    return console_script


def _gate(args: argparse.Namespace, status: str, reasons: str = "") -> int:
    """Print the verdict; 3 when it reaches --fail-on, else 0."""
    print(f"verdict: {status}" + (f" ({reasons})" if reasons else ""))
    if args.fail_on and STATUSES.index(status) >= STATUSES.index(args.fail_on):
        return 3
    return 0


def _checks_verdict(args: argparse.Namespace, runner: Runner, result: object) -> int:
    failed = runner.failed_checks(result)
    status = "pass"
    if failed:
        status = "fail" if any(c.severity.value == "ERROR" for c in failed) else "warn"
    return _gate(args, status, ", ".join(f"{c.check_name} {c.severity.value}" for c in failed))


def _setup(args: argparse.Namespace) -> tuple[Release, Runner]:
    config = load_config(args.config)
    if config.config_path is not None:
        # The code location (its day partitions and schedules) reads this file when it loads.
        os.environ[CONFIG_ENV_VAR] = str(config.config_path)
    from tars_pipeline.cli.runner import Runner
    from tars_pipeline.sources.prometheus import with_prometheus_url

    if args.prometheus_url:
        with_prometheus_url(config, args.prometheus_url)  # a bad URL is refused here, once
    release = _release(config, args.release)
    runner = Runner(config, output_dir=args.output_dir, prometheus_url=args.prometheus_url or "")
    # Refused before any run starts, so a typo in a path changes nothing.
    _writable(runner.output_folder(release), "--output-dir" if args.output_dir else "output_dir")
    _writable(config.store_file.parent, "store_path" if config.store_path else "data_dir")
    return release, runner


def _writable(folder: Path, where: str) -> None:
    """`folder` exists (made if needed) and this user can create files in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".tars-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise TarsUserError(
            f"cannot write to {folder} ({error.strerror or error})",
            where=where,
            remedy="point it at a folder this user can create and write",
        ) from None


# --- tars-ga-kpi -----------------------------------------------------------------------

_ga_parser = _parser(
    "tars-ga-kpi",
    "Day 0 (GA day): capture the baseline — fetch the GA day's KPI samples, compute the "
    "baseline statistics and write ga_kpi_summary.json (and day_00_summary.json).",
)


def _ga_kpi(args: argparse.Namespace) -> int:
    release, runner = _setup(args)
    result = runner.day(release, 0, GA_DAY)
    meta = runner.metadata(result, "baseline")
    print(
        f"Baseline captured for {release.name} (GA {release.ga_date}, {release.timezone}): "
        f"{meta.get('series', 0)} series, {meta.get('samples', 0)} samples"
    )
    print(f"  -> {_show_path(runner.output_folder(release) / 'ga_kpi_summary.json')}")
    return _checks_verdict(args, runner, result)


ga_kpi = _main(_ga_kpi, _ga_parser)


# --- tars-stability-monitor ------------------------------------------------------------

_stability_parser = _parser(
    "tars-stability-monitor",
    "Days 1..N: summarise one day against the GA baseline — drift per KPI, SLO status, "
    "cost, anomalies and the 0-100 health score — and write day_NN_summary.json.",
)
_stability_parser.add_argument(
    "--day-number",
    type=DAY,
    metavar="N",
    help="day after GA to summarise (default: the day ending today in the release timezone)",
)


def _today_day(release: Release) -> int:
    return release.day_of(dt.datetime.now(dt.UTC))


def _stability_monitor(args: argparse.Namespace) -> int:
    release, runner = _setup(args)
    day = args.day_number if args.day_number is not None else _today_day(release)
    if not 0 <= day <= release.window_days:
        raise TarsUserError(
            f"day {day} is outside release {release.name}'s window (0..{release.window_days})",
            where="--day-number",
            remedy=f"pass --day-number between 0 and {release.window_days}",
        )
    result = runner.day(release, day, DAILY)
    meta = runner.metadata(result, "daily_summary")
    print(
        f"{release.name} day {day} ({release.day_date(day)}): health {meta.get('health_score')} "
        f"({meta.get('health_band')}), {meta.get('flagged_kpis', 0)} KPI drift(s) flagged, "
        f"{meta.get('anomalies', 0)} anomalies, {meta.get('slo_breaches', 0)} SLO breach(es)"
    )
    for check in runner.failed_checks(result):
        print(f"  {check.severity.value}: {check.check_name}: {check.description}")
    print(f"  -> {_show_path(runner.output_folder(release) / f'day_{day:02d}_summary.json')}")
    return _checks_verdict(args, runner, result)


stability_monitor = _main(_stability_monitor, _stability_parser)


# --- tars-anomaly-detector -------------------------------------------------------------

_anomaly_parser = _parser(
    "tars-anomaly-detector",
    "Detect anomalies with EWMA + z-score on the stored days (or one --day-number) and "
    "write anomaly_events.json with z-scores and timestamps.",
)
_anomaly_parser.add_argument(
    "--z-threshold",
    type=POSITIVE,
    metavar="Z",
    help="flag samples with |z| >= Z (default thresholds.z_threshold, 3.0)",
)
_anomaly_parser.add_argument(
    "--day-number", type=DAY, metavar="N", help="only this day (fetching its samples if needed)"
)
_csv_mode = _anomaly_parser.add_argument_group(
    "CSV mode", "run the detector on any timestamp,value file instead (no tars.yaml needed)"
)
_csv_mode.add_argument(
    "--input",
    type=Path,
    metavar="FILE.csv",
    help="a CSV with timestamp,value columns (naive timestamps are UTC)",
)
_csv_mode.add_argument(
    "--output", type=Path, metavar="FILE.json", help="write the events here (default: stdout)"
)
_csv_mode.add_argument(
    "--span", type=number(int, minimum=2), metavar="N", help="EWMA span in samples (default 60)"
)
_csv_mode.add_argument("--warmup", type=DAY, metavar="N", help="warm-up samples (default 60)")
_csv_mode.add_argument(
    "--method", choices=("ewma", "robust"), default="ewma", help="detector (default ewma)"
)
_csv_mode.add_argument(
    "--min-change-pct",
    type=NON_NEGATIVE,
    metavar="PCT",
    help="smallest move, in %% of the expected level, that can be an event (default 10)",
)


def _anomaly_csv(args: argparse.Namespace) -> int:
    from tars_pipeline.cli import anomaly_csv  # the detector, without Dagster

    def given(value: object, default: object) -> object:
        return default if value is None else value

    document = anomaly_csv.detect_csv(
        args.input,
        z_threshold=given(args.z_threshold, anomaly_csv.DEFAULT_Z_THRESHOLD),
        span=given(args.span, anomaly_csv.DEFAULT_SPAN),
        warmup=given(args.warmup, anomaly_csv.DEFAULT_WARMUP),
        method=args.method,
        min_change_pct=given(args.min_change_pct, anomaly_csv.DEFAULT_MIN_CHANGE_PCT),
    )
    written = anomaly_csv.write_document(document, args.output)  # stdout without --output
    print(anomaly_csv.summary(document), file=sys.stderr if written is None else sys.stdout)
    if written is not None:
        print(f"  -> {_show_path(written)}")
    return 0


def _anomaly_detector(args: argparse.Namespace) -> int:
    if args.input is not None:
        return _anomaly_csv(args)
    release, runner = _setup(args)
    if args.z_threshold is not None and args.z_threshold <= 0:
        raise TarsUserError("must be a positive number", where="--z-threshold")
    stored = _stored_days(runner, release, "samples")
    days = [args.day_number] if args.day_number is not None else stored
    if not days:
        raise TarsUserError(
            f"no samples stored for release {release.name}",
            where="tars-anomaly-detector",
            remedy="run tars-ga-kpi / tars-stability-monitor first, or pass --day-number N",
        )
    run_config = (
        {"ops": {"anomaly_events": {"config": {"z_threshold": args.z_threshold}}}}
        if args.z_threshold is not None
        else None
    )
    total = 0
    severities: set[str] = set()
    for day in days:
        if not 0 <= day <= release.window_days:
            raise TarsUserError(
                f"day {day} is outside the window 0..{release.window_days}", where="--day-number"
            )
        selection = ("anomaly_events",) if day in stored else ("kpi_samples", "anomaly_events")
        result = runner.day(release, day, selection, run_config=run_config)
        meta = runner.metadata(result, "anomaly_events")
        total += int(meta.get("events", 0))
        severities |= set(meta.get("by_severity") or {})
    threshold = args.z_threshold or runner.config.thresholds.z_threshold
    print(
        f"{release.name}: {total} anomaly event(s) with |z| >= {threshold} on day(s) "
        f"{', '.join(str(d) for d in days)}"
    )
    print(f"  -> {_show_path(runner.output_folder(release) / 'anomaly_events.json')}")
    status = "fail" if "critical" in severities else "warn" if "high" in severities else "pass"
    return _gate(args, status, ", ".join(sorted(severities & {"critical", "high"})))


anomaly_detector = _main(_anomaly_detector, _anomaly_parser)


# --- tars-regression-analyzer ----------------------------------------------------------

_regression_parser = _parser(
    "tars-regression-analyzer",
    "Day 7: rank regressions over the whole window (Mann-Whitney U against the baseline, "
    "severity by drift and SLO impact) and write regression_summary.json.",
)


def _regression_analyzer(args: argparse.Namespace) -> int:
    release, runner = _setup(args)
    result = runner.release_level(release, ("regression_summary",))
    meta = runner.metadata(result, "regression_summary")
    print(
        f"{release.name}: {meta.get('degradations', 0)} degradation(s), "
        f"{meta.get('unexpected_drifts', 0)} unexpected drift(s) over days "
        f"{meta.get('days_analysed', '?')}"
    )
    print(f"  -> {_show_path(runner.output_folder(release) / 'regression_summary.json')}")
    return _gate(args, meta.get("verdict", "pass"), meta.get("verdict_reasons", ""))


regression_analyzer = _main(_regression_analyzer, _regression_parser)


# --- tars-retro ------------------------------------------------------------------------

_retro_parser = _parser(
    "tars-retro",
    "Day 7: write the retrospective (GA_7DAY_RETROSPECTIVE.md, .json and .html) from the "
    "stored week and send the configured notifications (Slack, GitHub issues, webhook). "
    "With --auto, first materialize whatever the week is missing.",
)
_retro_parser.add_argument(
    "--auto",
    action="store_true",
    help="materialize missing days, the baseline and the regression summary first",
)


def _retro(args: argparse.Namespace) -> int:
    release, runner = _setup(args)
    if args.auto:
        if 0 not in _stored_days(runner, release, "baseline_stats"):
            if 0 not in _stored_days(runner, release, "samples"):
                runner.day(release, 0, GA_DAY)
            else:
                runner.release_level(release, ("baseline",))
        summarised = set(_stored_days(runner, release, "daily_stats"))
        sampled = set(_stored_days(runner, release, "samples"))
        for day in release.days:
            if day in summarised:
                continue
            selection = DAILY if day not in sampled else ("anomaly_events", "daily_summary")
            runner.day(release, day, selection)
    selection: tuple[str, ...] = ("regression_summary", "retrospective", "release_notifications")
    if args.auto and (kept := runner.reusable(release, "regression_summary", DAILY)) is not None:
        # tars-regression-analyzer has just written it, from these days and settings.
        selection = selection[1:]
        print(
            f"note: regression_summary of run {kept.run_id[:8]} is up to date (no day "
            "materialized since, same settings): reused",
            file=sys.stderr,
        )
    result = runner.release_level(release, selection)
    meta = runner.metadata(result, "retrospective")
    folder = runner.output_folder(release)
    print(
        f"{release.name} retrospective: {meta.get('degradations', 0)} degradation(s), "
        f"{meta.get('recommendations', 0)} recommendation(s), "
        f"{meta.get('action_items', 0)} action item(s)"
    )
    for name in (RETRO_MD, RETRO_JSON, RETRO_HTML):
        print(f"  -> {_show_path(folder / name)}")
    return _gate(args, meta.get("verdict", "pass"), meta.get("verdict_reasons", ""))


retro = _main(_retro, _retro_parser)
