"""Entry points: tars-ga-kpi, tars-stability-monitor, tars-anomaly-detector,
tars-regression-analyzer, tars-retro. Each materializes assets through `Runner`.

Every command follows the conventions of `cli/output.py` (--json, -q/-v, --no-color, the
exit statuses) and prints what failed as one line per finding, so a count it prints is the
number of lines that follow it. Nothing heavy is imported before the arguments are parsed:
`--help` and `--version` load neither Dagster nor pandas.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tars_pipeline.cli.arguments import DAY, NON_NEGATIVE, POSITIVE, number
from tars_pipeline.cli.output import (
    DEBUG_ENV_VAR,
    EXIT_EPILOG,
    EXIT_OK,
    EXIT_VERDICT,
    Finding,
    Output,
    Parser,
    add_conventions,
    days_text,
    group_findings,
    plural,
    run,
)
from tars_pipeline.errors import TarsUserError
from tars_pipeline.reporting import RETRO_HTML, RETRO_JSON, RETRO_MD

if TYPE_CHECKING:  # Dagster loads only when a command runs (not for --help or the CSV mode)
    import dagster as dg

    from tars_pipeline.cli.runner import Runner
    from tars_pipeline.config import Release, TarsConfig

__all__ = ["DEBUG_ENV_VAR", "anomaly_detector", "ga_kpi", "regression_analyzer", "retro",
           "stability_monitor"]  # fmt: skip

# tars_pipeline.config.CONFIG_ENV_VAR, spelled here so that --help does not load the config
# module (pydantic, numpy); a test holds the two equal.
CONFIG_ENV_VAR = "TARS_CONFIG"
DAILY = ("kpi_samples", "anomaly_events", "daily_summary")
GA_DAY = ("kpi_samples", "anomaly_events", "baseline", "daily_summary")  # one run
EPILOG = (
    "Configuration: --config PATH, else $TARS_CONFIG, else ./tars.yaml (docs/configuration.md). "
    "Runs are recorded in the Dagster instance at $DAGSTER_HOME (default "
    "<data_dir>/dagster_home); open it with `make dev`. " + EXIT_EPILOG
)
STATUSES = ("pass", "warn", "fail")
# Findings printed per command; the rest is counted and left to the JSON files.
SHOWN_FINDINGS = 20
COMPLETENESS_CHECK, SLO_CHECK, DRIFT_CHECK = (
    "data_completeness",
    "slo_compliance",
    ("drift_within_threshold"),
)  # judge/checks.py's names (a test holds them equal), without importing pandas here


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=description, epilog=EPILOG)
    add_conventions(parser)
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


Body = Callable[[argparse.Namespace, Output], int]


def _main(body: Body, parser: argparse.ArgumentParser):
    def entry(argv: Sequence[str] | None = None) -> int:
        return run(parser, body, argv)

    def console_script() -> None:
        sys.exit(entry())

    console_script.run = entry  # type: ignore[attr-defined]
    return console_script


# --- what every command reports ---------------------------------------------------------------


def _gate(args: argparse.Namespace, out: Output, status: str, reasons: str = "") -> int:
    """Print and record the verdict; 3 when it reaches --fail-on, else 0."""
    out.say(f"verdict: {out.severity(status)}" + (f" ({reasons})" if reasons else ""))
    reached = bool(args.fail_on) and STATUSES.index(status) >= STATUSES.index(args.fail_on)
    out.record(
        verdict={
            "status": status,
            "reasons": reasons,
            "fail_on": args.fail_on,
            "gate_reached": reached,
        }
    )
    return EXIT_VERDICT if reached else EXIT_OK


def _checks_verdict(
    args: argparse.Namespace, out: Output, evaluations: Sequence[dg.AssetCheckEvaluation]
) -> int:
    failed = sorted(
        (check for check in evaluations if not check.passed),
        key=lambda check: check.severity.value != "ERROR",
    )
    status = "pass"
    if failed:
        status = "fail" if any(c.severity.value == "ERROR" for c in failed) else "warn"
    return _gate(args, out, status, ", ".join(f"{c.check_name} {c.severity.value}" for c in failed))


def _finding_lines(check: dg.AssetCheckEvaluation) -> list[str]:
    """The check's findings (assets/checks.py), or its description when it has none."""
    listed = check.metadata.get("findings")
    lines = [str(line) for line in (listed.value if listed is not None else None) or []]
    return lines or [check.description or "failed"]


def _findings(evaluations: Iterable[dg.AssetCheckEvaluation]) -> list[Finding]:
    return [
        Finding(check.severity.value, check.check_name, line)
        for check in sorted(
            (c for c in evaluations if not c.passed), key=lambda c: c.severity.value != "ERROR"
        )
        for line in _finding_lines(check)
    ]


def _check_records(evaluations: Iterable[dg.AssetCheckEvaluation], day: int) -> list[dict]:
    return [
        {
            "day": day,
            "asset": check.asset_key.to_user_string(),
            "check": check.check_name,
            "passed": check.passed,
            "severity": None if check.passed else check.severity.value,
            "summary": check.description,
            "findings": [] if check.passed else _finding_lines(check),
        }
        for check in evaluations
    ]


def _say_findings(
    out: Output, by_day: Sequence[tuple[int, Finding]], *, with_days: bool, more_in: str = ""
) -> None:
    """One line per finding; the same finding on several days once, with its days."""
    grouped = group_findings(by_day)
    for finding, days in grouped[:SHOWN_FINDINGS]:
        suffix = f" ({days_text(days)})" if with_days else ""
        out.say(f"  {out.severity(finding.severity)} {finding.check}: {finding.text}{suffix}")
    if len(grouped) > SHOWN_FINDINGS:
        where = f" in {more_in}" if more_in else ""
        out.say(f"  … and {len(grouped) - SHOWN_FINDINGS} more{where}")


def _say_passed(out: Output, evaluations: Iterable[dg.AssetCheckEvaluation]) -> None:
    for check in evaluations:
        if check.passed:
            out.detail(f"  {out.severity('pass')} {check.check_name}: {check.description}")


def _say_outputs(out: Output, paths: Sequence[Path]) -> None:
    for path in paths:
        out.say(f"  -> {_show_path(path)}")
    out.record(outputs=[str(path.resolve()) for path in paths])


def _say_runs(out: Output, runner: Runner) -> None:
    for record in runner.runs:
        out.detail(
            f"  run {record.run_id} ({record.job}, {record.partition}): {record.seconds:.1f} s"
        )
    out.record(runs=[asdict(record) for record in runner.runs])


def _setup(args: argparse.Namespace, out: Output) -> tuple[Release, Runner]:
    from tars_pipeline.config import load_config

    config = load_config(args.config)
    if config.config_path is not None:
        # The code location (its day partitions and schedules) reads this file when it loads.
        os.environ[CONFIG_ENV_VAR] = str(config.config_path)
    from tars_pipeline.cli.runner import Progress, Runner
    from tars_pipeline.sources.prometheus import with_prometheus_url

    if args.prometheus_url:
        with_prometheus_url(config, args.prometheus_url)  # a bad URL is refused here, once
    release = _release(config, args.release)
    out.record(release=release.name)
    runner = Runner(
        config,
        output_dir=args.output_dir,
        prometheus_url=args.prometheus_url or "",
        progress=Progress(enabled=not out.quiet, color=not out.no_color),
        notify=lambda line: out.note(line.removeprefix("note: ")),
        log_level="INFO" if out.verbosity >= 2 else "CRITICAL",
    )
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


def _ga_kpi(args: argparse.Namespace, out: Output) -> int:
    release, runner = _setup(args, out)
    result = runner.day(release, 0, GA_DAY)
    meta = runner.metadata(result, "baseline")
    series, samples = int(meta.get("series", 0)), int(meta.get("samples", 0))
    out.say(
        f"Baseline captured for {release.name} (GA {release.ga_date}, {release.timezone}): "
        f"{plural(series, 'series', 'series')}, {plural(samples, 'sample')}"
    )
    evaluations = runner.checks(result)
    _say_findings(out, [(0, finding) for finding in _findings(evaluations)], with_days=False)
    _say_passed(out, evaluations)
    folder = runner.output_folder(release)
    _say_outputs(out, [folder / "ga_kpi_summary.json", folder / "day_00_summary.json"])
    out.record(
        ga_date=release.ga_date.isoformat(),
        timezone=release.timezone,
        series=series,
        samples=samples,
        checks=_check_records(evaluations, 0),
    )
    _say_runs(out, runner)
    return _checks_verdict(args, out, evaluations)


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


def _stability_monitor(args: argparse.Namespace, out: Output) -> int:
    release, runner = _setup(args, out)
    day = args.day_number if args.day_number is not None else _today_day(release)
    if not 0 <= day <= release.window_days:
        raise TarsUserError(
            f"day {day} is outside release {release.name}'s window (0..{release.window_days})",
            where="--day-number",
            remedy=f"pass --day-number between 0 and {release.window_days}",
        )
    result = runner.day(release, day, DAILY)
    meta = runner.metadata(result, "daily_summary")
    evaluations = runner.checks(result)
    findings = _findings(evaluations)
    counted = {name: [f for f in findings if f.check == name] for name in
               (DRIFT_CHECK, SLO_CHECK, COMPLETENESS_CHECK)}  # fmt: skip
    anomalies = int(meta.get("anomalies", 0))
    parts = [
        f"{plural(len(counted[DRIFT_CHECK]), 'KPI')} beyond threshold",
        plural(len(counted[SLO_CHECK]), "SLO breach", "SLO breaches"),
        plural(anomalies, "anomaly event"),
    ]
    if counted[COMPLETENESS_CHECK]:
        parts.append(f"{plural(len(counted[COMPLETENESS_CHECK]), 'series', 'series')} incomplete")
    out.say(
        f"{release.name} day {day} ({release.day_date(day)}): health "
        f"{meta.get('health_score')} ({meta.get('health_band')}), " + ", ".join(parts)
    )
    path = runner.output_folder(release) / f"day_{day:02d}_summary.json"
    _say_findings(out, [(day, f) for f in findings], with_days=False, more_in=path.name)
    _say_passed(out, evaluations)
    _say_outputs(out, [path])
    out.record(
        day=day,
        date=release.day_date(day).isoformat(),
        health={"score": meta.get("health_score"), "band": meta.get("health_band")},
        kpis_beyond_threshold=len(counted[DRIFT_CHECK]),
        slo_breaches=len(counted[SLO_CHECK]),
        incomplete_series=len(counted[COMPLETENESS_CHECK]),
        anomalies=anomalies,
        checks=_check_records(evaluations, day),
    )
    _say_runs(out, runner)
    return _checks_verdict(args, out, evaluations)


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
_anomaly_parser.add_argument(
    "--recompute",
    action="store_true",
    help="run the detector on every day, even where the stored events are up to date",
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
    "--output",
    type=Path,
    metavar="FILE.json",
    help="write the events here (default: stdout; with --json, inside the result object)",
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


def _anomaly_csv(args: argparse.Namespace, out: Output) -> int:
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
    out.record(
        mode="csv",
        input=document["input"],
        settings=document["settings"],
        events=document["count"],
    )
    if args.output is None and out.json_mode:  # one JSON object: the events go inside it
        out.record(document=document)
        written = None
    else:
        written = anomaly_csv.write_document(document, args.output)  # stdout without --output
    summary = anomaly_csv.summary(document)
    if written is None:  # stdout is the document (or the result): the summary goes aside
        if not out.quiet:
            print(summary, file=out.stderr)
        return EXIT_OK
    out.say(summary)
    _say_outputs(out, [written])
    return EXIT_OK


def _anomaly_detector(args: argparse.Namespace, out: Output) -> int:
    if args.input is not None:
        return _anomaly_csv(args, out)
    release, runner = _setup(args, out)
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
    by_severity: dict[str, int] = {}
    findings: list[tuple[int, Finding]] = []
    checks: list[dict] = []
    reused: dict[int, str] = {}
    threshold = args.z_threshold or runner.config.thresholds.z_threshold
    for day in days:
        if not 0 <= day <= release.window_days:
            raise TarsUserError(
                f"day {day} is outside the window 0..{release.window_days}", where="--day-number"
            )
        kept = None if args.recompute or day not in stored else _fresh_events(
            runner, release, day, threshold
        )  # fmt: skip
        if kept is not None:
            # tars-stability-monitor has just detected them, from these samples and settings.
            reused[day] = kept.run_id
            meta = _record_metadata(kept)
        else:
            selection = ("anomaly_events",) if day in stored else ("kpi_samples", "anomaly_events")
            result = runner.day(release, day, selection, run_config=run_config)
            meta = runner.metadata(result, "anomaly_events")
            evaluations = runner.checks(result)  # data_completeness, when samples were fetched
            findings += [(day, finding) for finding in _findings(evaluations)]
            checks += _check_records(evaluations, day)
        total += int(meta.get("events", 0))
        for severity, count in (meta.get("by_severity") or {}).items():
            by_severity[severity] = by_severity.get(severity, 0) + int(count)
    if reused:
        out.note(
            f"{days_text(sorted(reused)).capitalize()}: events up to date (same samples and "
            "settings since their run): reused; --recompute runs the detector again"
        )
    out.say(
        f"{release.name}: {plural(total, 'anomaly event')} with |z| >= {threshold:g} on "
        f"{days_text(days)}"
    )
    _say_findings(out, findings, with_days=True)
    _say_outputs(out, [runner.output_folder(release) / "anomaly_events.json"])
    out.record(
        days=days,
        z_threshold=threshold,
        events=total,
        by_severity=by_severity,
        checks=checks,
        reused_from={str(day): run_id for day, run_id in reused.items()},
    )
    _say_runs(out, runner)
    severities = set(by_severity)
    status = "fail" if "critical" in severities else "warn" if "high" in severities else "pass"
    return _gate(args, out, status, ", ".join(sorted(severities & {"critical", "high"})))


def _fresh_events(
    runner: Runner, release: Release, day: int, threshold: float
) -> dg.EventLogRecord | None:
    """The day's stored anomaly events when they can stand in for a new run: the same
    settings and z-threshold, and none of the samples they were detected on (the day, the
    day before for the warm-up, GA day for the profile) fetched again since."""
    from tars_pipeline.store import open_store, read_table

    def stored() -> bool:
        with open_store(runner.store) as conn:
            marker = read_table(conn, "anomaly_days", release.name, [day])
        return len(marker) == 1 and float(marker["z_threshold"].iloc[0]) == float(threshold)

    return runner.reusable_day(
        release,
        day,
        "anomaly_events",
        {"kpi_samples": [d for d in (0, day - 1, day) if d >= 0]},
        stored=stored,
        metadata={"z_threshold": f"{float(threshold):g}"},
    )


def _record_metadata(record: dg.EventLogRecord) -> dict[str, Any]:
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization is not None else {}
    return {key: value.value for key, value in metadata.items()}


anomaly_detector = _main(_anomaly_detector, _anomaly_parser)


# --- tars-regression-analyzer ----------------------------------------------------------

_regression_parser = _parser(
    "tars-regression-analyzer",
    "Day 7: rank regressions over the whole window (Mann-Whitney U against the baseline, "
    "severity by drift and SLO impact) and write regression_summary.json.",
)


def _regression_analyzer(args: argparse.Namespace, out: Output) -> int:
    release, runner = _setup(args, out)
    result = runner.release_level(release, ("regression_summary",))
    meta = runner.metadata(result, "regression_summary")
    degradations = int(meta.get("degradations", 0))
    drifts = int(meta.get("unexpected_drifts", 0))
    out.say(
        f"{release.name}: {plural(degradations, 'degradation')}, "
        f"{plural(drifts, 'unexpected drift')} over days {meta.get('days_analysed', '?')}"
    )
    _say_outputs(out, [runner.output_folder(release) / "regression_summary.json"])
    out.record(
        degradations=degradations,
        unexpected_drifts=drifts,
        successes=int(meta.get("successes", 0)),
        days_analysed=meta.get("days_analysed"),
    )
    _say_runs(out, runner)
    return _gate(args, out, meta.get("verdict", "pass"), meta.get("verdict_reasons", ""))


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
NOTIFICATION_FIELDS = ("messages_sent", "slack_messages", "issues_created",
                       "issues_skipped_duplicates", "dry_run_deliveries", "failures")  # fmt: skip


def _fill_in(
    runner: Runner, release: Release, out: Output
) -> tuple[bool, list[int], list[tuple[int, Finding]], list[dict]]:
    """--auto: the baseline and every day the store is missing. Returns whether the
    baseline was made, the days materialized, and their checks' findings by day."""
    made_baseline = False
    filled: list[int] = []
    findings: list[tuple[int, Finding]] = []
    checks: list[dict] = []

    def judged(day: int, result: dg.ExecuteInProcessResult) -> None:
        evaluations = runner.checks(result)
        findings.extend((day, finding) for finding in _findings(evaluations))
        checks.extend(_check_records(evaluations, day))

    if 0 not in _stored_days(runner, release, "baseline_stats"):
        made_baseline = True
        if 0 not in _stored_days(runner, release, "samples"):
            judged(0, runner.day(release, 0, GA_DAY))
            filled.append(0)
        else:
            runner.release_level(release, ("baseline",))
    summarised = set(_stored_days(runner, release, "daily_stats"))
    sampled = set(_stored_days(runner, release, "samples"))
    for day in release.days:
        if day in summarised or day in filled:
            continue
        selection = DAILY if day not in sampled else ("anomaly_events", "daily_summary")
        judged(day, runner.day(release, day, selection))
        filled.append(day)
    return made_baseline, filled, findings, checks


def _retro(args: argparse.Namespace, out: Output) -> int:
    release, runner = _setup(args, out)
    if args.auto:
        made_baseline, filled, findings, checks = _fill_in(runner, release, out)
        if made_baseline or filled:
            what = (["the baseline"] if made_baseline else []) + (
                [days_text(filled)] if filled else []
            )
            out.say(f"{release.name}: filled in {' and '.join(what)}")
            _say_findings(out, findings, with_days=True)
        out.record(filled={"baseline": made_baseline, "days": filled}, checks=checks)
    selection: tuple[str, ...] = ("regression_summary", "retrospective", "release_notifications")
    reused = None
    if args.auto and (kept := runner.reusable(release, "regression_summary", DAILY)) is not None:
        # tars-regression-analyzer has just written it, from these days and settings.
        selection = selection[1:]
        reused = kept.run_id
        out.note(
            f"regression_summary of run {kept.run_id[:8]} is up to date (no day "
            "materialized since, same settings): reused"
        )
    result = runner.release_level(release, selection)
    meta = runner.metadata(result, "retrospective")
    folder = runner.output_folder(release)
    degradations = int(meta.get("degradations", 0))
    recommendations = int(meta.get("recommendations", 0))
    action_items = int(meta.get("action_items", 0))
    out.say(
        f"{release.name} retrospective: {plural(degradations, 'degradation')}, "
        f"{plural(recommendations, 'recommendation')}, {plural(action_items, 'action item')}"
    )
    _say_outputs(out, [folder / name for name in (RETRO_MD, RETRO_JSON, RETRO_HTML)])
    notified = runner.metadata(result, "release_notifications")
    out.record(
        degradations=degradations,
        recommendations=recommendations,
        action_items=action_items,
        regression_summary_reused_from=reused,
        notifications={key: notified[key] for key in NOTIFICATION_FIELDS if key in notified},
    )
    _say_runs(out, runner)
    return _gate(args, out, meta.get("verdict", "pass"), meta.get("verdict_reasons", ""))


retro = _main(_retro, _retro_parser)


# --- tars-anomaly-detector --follow (continuous mode without the daemon: cli/follow.py) --

_follow_mode = _anomaly_parser.add_argument_group(
    "follow mode", "continuous mode without the Dagster daemon (cli/follow.py)"
)
_follow_mode.add_argument(
    "--follow",
    action="store_true",
    help="every 5 minutes, judge the last hour of the open release windows as the "
    "continuous sensor does, storing new events and rewriting anomaly_events.json; "
    "Ctrl-C stops (exit 130)",
)
_follow_mode.add_argument(
    "--interval", type=POSITIVE, metavar="SECONDS", help="seconds between ticks (default 300)"
)
_follow_mode.add_argument(
    "--ticks", type=number(int, minimum=1), metavar="N", help="stop after N ticks"
)


def _anomaly_detector_or_follow(args: argparse.Namespace, out: Output) -> int:
    if not args.follow:
        return _anomaly_detector(args, out)
    for option, value in (("--input", args.input), ("--day-number", args.day_number),
                          ("--z-threshold", args.z_threshold)):  # fmt: skip
        if value is not None:
            raise TarsUserError(
                "--follow uses tars.yaml's thresholds on the open release windows",
                where=option,
                remedy=f"drop {option}, or run without --follow",
            )
    from tars_pipeline.cli.follow import follow

    return follow(args, out)


anomaly_detector = _main(_anomaly_detector_or_follow, _anomaly_parser)
