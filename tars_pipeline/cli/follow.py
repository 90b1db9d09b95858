"""`tars-anomaly-detector --follow`: continuous mode without the Dagster daemon.

Runs the continuous sensor's tick (`sensors_continuous.evaluate`) in a loop, on its
interval (5 minutes; `--interval` to change it): the same detector, settings and cleaning
as the nightly asset on the last hour of samples, each new event appended to the store
and anomaly_events.json rewritten (aside, then renamed), critical ones told to Slack when
`notify_on` has "live_critical". What is seen lives in this process; the store dedupes
across restarts and against the sensor, so running both, or restarting this, lists and
notifies an event once. Ctrl-C stops it between or during ticks and exits 130.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import threading
from pathlib import Path

from tars_pipeline.cli.output import EXIT_INTERRUPTED, Output, plural
from tars_pipeline.config import Release, TarsConfig, load_config
from tars_pipeline.errors import TarsUserError


class OutputLog:
    """The tick's log lines on the command's output: info as results, the rest on stderr."""

    def __init__(self, out: Output) -> None:
        self.out = out

    def info(self, message: str) -> None:
        self.out.say(message)

    def warning(self, message: str) -> None:
        self.out.warning(message)

    def error(self, message: str) -> None:
        self.out.warning(message)  # a tick's failure does not stop the loop


def _config(args: argparse.Namespace) -> TarsConfig:
    config = load_config(args.config)
    if args.prometheus_url:
        from tars_pipeline.sources.prometheus import with_prometheus_url

        config = with_prometheus_url(config, args.prometheus_url)
    if args.release is not None:
        chosen = [release for release in config.releases if release.name == args.release]
        if not chosen:
            names = ", ".join(release.name for release in config.releases)
            raise TarsUserError(
                f"no release named {args.release!r} in the config (releases: {names})",
                where="--release",
            )
        config = config.model_copy(update={"releases": chosen})
    return config


def follow(args: argparse.Namespace, out: Output) -> int:
    """The loop; returns 130 on Ctrl-C (its only way out, unless --ticks is given)."""
    from tars_pipeline.resources import ReportsResource
    from tars_pipeline.sensors_continuous import (
        MINIMUM_INTERVAL_SECONDS,
        SeenEvents,
        evaluate,
    )

    config = _config(args)
    reports = ReportsResource(
        output_dir=str(args.output_dir or ""), per_release=not args.output_dir
    )

    def folder_of(release: Release) -> Path:
        return reports.folder(release.name, config)

    interval = float(args.interval or MINIMUM_INTERVAL_SECONDS)
    seen = SeenEvents(None)
    log = OutputLog(out)
    ticks = total = 0
    out.say(f"following the open release windows every {interval:g} s (Ctrl-C stops)")
    # Ctrl-C sets `stopped` as well as raising: a KeyboardInterrupt that lands inside a
    # DuckDB read comes back as a duckdb error, which the store readers may treat as
    # "busy"; the flag still ends the loop after that tick.
    stopped = threading.Event()

    def on_interrupt(signum: int, frame: object) -> None:
        stopped.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        while not stopped.is_set():
            now = dt.datetime.now(dt.UTC)
            outcome = evaluate(config, now, seen, folder_of, log)
            ticks += 1
            total += len(outcome.new)
            out.say(f"{now.isoformat(timespec='seconds')}: {outcome.summary()}")
            for document in outcome.documents:
                out.detail(f"wrote {document}")
            if args.ticks is not None and ticks >= args.ticks:
                break
            stopped.wait(interval)
    except KeyboardInterrupt:
        stopped.set()
    finally:
        signal.signal(signal.SIGINT, previous)
    if stopped.is_set():
        out.say(f"stopped after {plural(ticks, 'tick')}: {plural(total, 'new event')}")
        out.record(mode="follow", ticks=ticks, events=total)
        return EXIT_INTERRUPTED
    out.record(mode="follow", ticks=ticks, events=total)
    return 0
