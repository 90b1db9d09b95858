"""tars-snapshot: pull a release window from Prometheus into the offline snapshot format.

Why: a snapshot (Parquet files + manifest.json, read by the `snapshot` source) lets a week
be replayed, shared and analysed without access to production — the retrospective can be
re-run, a threshold tuned, or a bug reproduced from the files alone. It is the same fetch
the `kpi_samples` asset does (one code path: `PrometheusSource.fetch_day`), written to
files instead of the store, so a replay gives the same numbers as the live run.

    tars-snapshot [--config PATH] [--release NAME] [--prometheus-url URL]
                  [--output-dir DIR] [--day N ...]

Writes <DIR>/<release>/YYYY-MM-DD.parquet (one file per day of the window) and
<DIR>/<release>/manifest.json; DIR defaults to <data_dir>/snapshot. Point a config at it
with `source: {type: snapshot, path: DIR}`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tars_pipeline import __version__
from tars_pipeline.cli.arguments import DAY
from tars_pipeline.cli.output import EXIT_EPILOG, EXIT_OK, Output, Parser, add_conventions, run
from tars_pipeline.errors import TarsUserError

if TYPE_CHECKING:  # pandas, DuckDB and the sources load when an export runs, not for --help
    import pandas as pd

    from tars_pipeline.config import Release

CONFIG_ENV_VAR = "TARS_CONFIG"  # tars_pipeline.config's (a test holds them equal)
FORMAT_VERSION = 1


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tars-snapshot",
        description="Export a release window from Prometheus into the offline snapshot format "
        "(Parquet + manifest.json), to replay, share or analyse it without production access.",
        epilog="See docs/prometheus.md. " + EXIT_EPILOG,
    )
    add_conventions(parser)
    parser.add_argument(
        "--config", metavar="PATH", help=f"tars.yaml (default ${CONFIG_ENV_VAR} or ./tars.yaml)"
    )
    parser.add_argument(
        "--release", metavar="NAME", help="release to export (default: the latest GA date)"
    )
    parser.add_argument(
        "--prometheus-url", metavar="URL", help="Prometheus API to read (default: source.url)"
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="snapshot root to write <release>/ into (default <data_dir>/snapshot)",
    )
    parser.add_argument(
        "--day",
        type=DAY,
        action="append",
        metavar="N",
        help="export only day N (repeatable; default: every day of the window that has ended)",
    )
    return parser


def _days(release: Release, requested: Sequence[int] | None, now: dt.datetime) -> list[int]:
    if requested:
        for day in requested:
            if not 0 <= day <= release.window_days:
                raise TarsUserError(
                    f"day {day} is outside release {release.name}'s window "
                    f"(0..{release.window_days})",
                    where="--day",
                )
        return sorted(set(requested))
    ended = [day for day in release.days if release.day_bounds(day)[1] <= now]
    if not ended:
        raise TarsUserError(
            f"no day of release {release.name} has ended yet (GA {release.ga_date})",
            where="tars-snapshot",
            remedy="export after GA day ends, or pass --day N for a partial day",
        )
    return ended


def write_day(release_dir: Path, date: dt.date, samples: pd.DataFrame) -> Path:
    """One day's samples as `<date>.parquet`, sorted, written atomically."""
    import duckdb

    release_dir.mkdir(parents=True, exist_ok=True)
    path = release_dir / f"{date.isoformat()}.parquet"
    partial = path.with_suffix(".parquet.tmp")
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.register("day_samples", samples)
        # COPY's target cannot be a bound parameter; the path is ours, quote it as SQL.
        target = "'" + str(partial).replace("'", "''") + "'"
        conn.execute(
            "COPY (SELECT service::VARCHAR AS service, kpi::VARCHAR AS kpi,"
            " ts::TIMESTAMPTZ AS ts, value::DOUBLE AS value"
            " FROM day_samples ORDER BY service, kpi, ts)"
            f" TO {target} (FORMAT parquet, COMPRESSION zstd)"
        )
    partial.replace(path)
    return path


def write_manifest(
    release_dir: Path,
    release: Release,
    *,
    step_seconds: int,
    services: Sequence[str],
    kpis: Sequence[str],
    source_url: str,
    completeness: dict[str, float],
) -> Path:
    """manifest.json for the folder, merged with an earlier export's days and services."""
    from tars_pipeline.sources.snapshot import MANIFEST_NAME, SNAPSHOT_FORMAT

    path = release_dir / MANIFEST_NAME
    earlier: dict = {}
    if path.is_file():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            earlier = {}
        if earlier.get("release") not in (None, release.name):
            raise TarsUserError(
                f"{path} belongs to release {earlier.get('release')!r}",
                where="--output-dir",
                remedy="export each release into its own snapshot root, or remove the folder",
            )
    manifest = {
        "format": SNAPSHOT_FORMAT,
        "format_version": FORMAT_VERSION,
        "release": release.name,
        "ga_date": release.ga_date.isoformat(),
        "timezone": release.timezone,
        "window_days": release.window_days,
        "step_seconds": step_seconds,
        "services": sorted(set(earlier.get("services", [])) | set(services)),
        "kpis": list(dict.fromkeys([*earlier.get("kpis", []), *kpis])),
        "generated_by": f"tars-snapshot {__version__}",
        "exported_from": source_url,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "completeness_pct": {**earlier.get("completeness_pct", {}), **completeness},
    }
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _export(args: argparse.Namespace, out: Output) -> int:
    from tars_pipeline.cli.progress import Progress
    from tars_pipeline.config import PrometheusSourceConfig, load_config
    from tars_pipeline.sources import build_source
    from tars_pipeline.sources.prometheus import terminal_progress, with_prometheus_url

    config = load_config(args.config)
    if args.prometheus_url:
        config = with_prometheus_url(config, args.prometheus_url)
    if not isinstance(config.source, PrometheusSourceConfig):
        raise TarsUserError(
            "tars-snapshot reads from Prometheus, and the config's source is "
            f"{config.source.type!r}",
            where="source.type",
            remedy="pass --prometheus-url URL, or set source: {type: prometheus, url: ...}",
        )
    release = (
        config.release(args.release)
        if args.release
        else max(config.releases, key=lambda item: item.ga_date)
    )
    out.record(release=release.name)
    days = _days(release, args.day, dt.datetime.now(dt.UTC))
    root = Path(args.output_dir) if args.output_dir else config.data_dir / "snapshot"
    release_dir = root / release.name

    progress = Progress(enabled=not out.quiet, color=not out.no_color)
    # One line per KPI fetch on a terminal (the source's own), above the day's spinner.
    per_kpi = terminal_progress() if progress.terminal else None
    source = build_source(config, progress=per_kpi, warn=out.warning)
    services: set[str] = set()
    completeness: dict[str, float] = {}
    rows = 0
    written: list[str] = []
    for day in days:
        start, end = release.day_bounds(day)
        with progress.task(f"{release.name} day {day}/{release.window_days}: export"):
            fetch = source.fetch_day(release, start, end, config.kpis, config.step_seconds)
        services |= {c.service for c in fetch.coverage}
        expected = sum(c.expected_points for c in fetch.coverage)
        points = sum(c.points for c in fetch.coverage)
        completeness[str(day)] = round(100.0 * points / expected, 2) if expected else 0.0
        for gap in fetch.missing:
            out.warning(f"day {day}: no data for {gap.service}/{gap.kpi}")
        for gap in fetch.incomplete:
            out.warning(f"day {day}: {gap.service}/{gap.kpi} covers {gap.completeness_pct:.1f} %")
        if fetch.samples.empty:
            out.warning(f"day {day}: no samples at all, no file written")
            continue
        written.append(str(write_day(release_dir, release.day_date(day), fetch.samples).resolve()))
        rows += len(fetch.samples)
    manifest = write_manifest(
        release_dir,
        release,
        step_seconds=config.step_seconds,
        services=sorted(services),
        kpis=[kpi.name for kpi in config.kpis],
        source_url=config.source.url,
        completeness=completeness,
    )
    shown = ", ".join(str(day) for day in days)
    out.say(f"Exported {release.name} day(s) {shown}: {rows} samples, {len(services)} service(s)")
    out.say(f"  -> {release_dir}")
    out.record(
        days=days,
        samples=rows,
        services=sorted(services),
        completeness_pct=completeness,
        folder=str(release_dir.resolve()),
        outputs=[*written, str(manifest.resolve())],
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (the console script exits with it)."""
    return run(_parser(), _export, argv)


def console_script() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_script()
