"""A backfill of R releases × (window + 1) days through the Dagster daemon, serial and
parallel, measured in one run.

    .venv/bin/python benchmarks/parallel_backfill.py [--releases 3] [--window 7]
        [--concurrency 4] [--storage postgres|sqlite] [--daemon stock|fast]

Each mode gets a fresh project (the bundled week replayed under R release names, the
Parquet store) and a fresh instance, served by dagster-webserver and dagster-daemon on
loopback; "Materialize all" (every asset, every partition) is launched through GraphQL
and timed until the backfill completes. Serial is the instance settings TARS shipped
before the Parquet store (one run at a time, one store step at a time); parallel is
today's dagster.yaml with --concurrency runs and steps. The script then checks that both
wrote the same outputs for every release and prints the wall times and their ratio.

With --storage postgres (the default when Debian's initdb is installed) the instance
lives in a throw-away Postgres cluster, as in tars_pipeline_tests/test_parallel_backfill.py.
--daemon stock (the default) runs `dagster-daemon run` as users do; --daemon fast is the
tests' daemon, which ticks every second and so keeps about one of the two cores busy itself.
Besides the wall times it prints, per mode, how many runs were in flight on average, the
seconds with none in flight (launching, queueing, waiting for a daemon tick) and how busy
the machine's cores were (/proc/stat), so a ratio can be read for what bounds it.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402

from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG  # noqa: E402
from tars_pipeline.sensors import register_releases  # noqa: E402
from tars_pipeline_tests.conftest import write_config  # noqa: E402
from tars_pipeline_tests.servers import _postgres_binary, postgres_server  # noqa: E402
from tars_pipeline_tests.test_golden_outputs import OUTPUTS, normalise  # noqa: E402
from tars_pipeline_tests.test_parallel_backfill import _snapshot  # noqa: E402
from tars_pipeline_tests.test_ui import ASSETS, FAST_QUEUE, DagsterUI  # noqa: E402


def _limits(settings: str, runs: int, steps: int) -> str:
    settings = re.sub(r"max_concurrent_runs: \d+", f"max_concurrent_runs: {runs}", settings)
    return re.sub(r"default_limit: \d+", f"default_limit: {steps}", settings)


def _project(folder: Path, names: list[str], window: int) -> Path:
    import tars_pipeline_tests.test_parallel_backfill as module

    module.NAMES = tuple(names)  # _snapshot copies the week under these names
    snapshot = _snapshot(folder / "snapshot")
    (folder / "project").mkdir(parents=True)
    releases = [
        {"name": name, "ga_date": "2026-03-03", "timezone": "America/New_York",
         "window_days": window}
        for name in names
    ]  # fmt: skip
    source = {"type": "snapshot", "path": str(snapshot)}
    return write_config(folder / "project", releases=releases, source=source)


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat; (0, 0) elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def timeline(records: list, wall: float) -> dict:
    """What the runs did with the wall time: runs in flight on average (the sum of the runs'
    own times over the span from the first start to the last end), the seconds with no run
    in flight (waiting for the daemon to submit or dequeue), and the mean queueing delay."""
    spans = sorted(
        (r.start_time, r.end_time, r.create_timestamp.timestamp())
        for r in records
        if r.start_time is not None and r.end_time is not None
    )
    if not spans:
        return {"in_flight": 0.0, "idle_s": wall, "queued_s": 0.0}
    first, last = spans[0][0], max(end for _, end, _ in spans)
    idle, reach = 0.0, first
    for start, end, _ in spans:
        idle += max(0.0, start - reach)
        reach = max(reach, end)
    busy = sum(end - start for start, end, _ in spans)
    queued = sum(start - created for start, _, created in spans) / len(spans)
    return {
        "in_flight": round(busy / (last - first), 2),
        "idle_s": round(idle, 1),
        "queued_s": round(queued, 1),
        "run_s": round(busy / len(spans), 2),
    }


def run_mode(
    folder: Path, names: list[str], window: int, limit: int, storage: str, daemon: str
) -> dict:
    config = _project(folder, names, window)
    with contextlib.ExitStack() as stack:
        extra = ""
        if storage == "postgres":
            extra = stack.enter_context(postgres_server(folder / "postgres")).instance_yaml()
        fast = daemon == "fast"
        server = DagsterUI(folder, config, extra_settings=extra, fast_daemon=fast)
        settings = _limits(PACKAGED_INSTANCE_CONFIG.read_text(encoding="utf-8"), limit, limit)
        queue = FAST_QUEUE if fast else ""
        (server.home / "dagster.yaml").write_text(settings + extra + queue, "utf-8")
        with dg.DagsterInstance.from_config(str(server.home)) as instance:
            register_releases(instance, names)
        server.start()
        stack.callback(server.stop)
        params = {"assetSelection": [{"path": [a]} for a in ASSETS], "allPartitions": True}
        began, ticks = time.monotonic(), _cpu_ticks()
        status = server.wait_for_backfill(server.launch_backfill(params), timeout=7200)
        wall = time.monotonic() - began
        busy, total = (after - before for after, before in zip(_cpu_ticks(), ticks, strict=True))
        with dg.DagsterInstance.from_config(str(server.home)) as instance:
            records = instance.get_run_records()
            failed = sum(1 for r in records if not r.dagster_run.is_success)
    return {
        "status": status,
        "wall": wall,
        "runs": len(records),
        "failed": failed,
        "cpu_busy": round(busy / total, 2) if total else None,
        **timeline(records, wall),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=3)
    parser.add_argument("--window", type=int, default=7, help="window_days (days 0..N)")
    parser.add_argument("--concurrency", type=int, default=4)
    default_storage = "postgres" if _postgres_binary("initdb") else "sqlite"
    parser.add_argument("--storage", choices=("postgres", "sqlite"), default=default_storage)
    parser.add_argument(
        "--daemon",
        choices=("stock", "fast"),
        default="stock",
        help="stock: dagster-daemon as users run it (the backfill daemon ticks every 30 s, "
        "the run queue every 5 s); fast: the tests' daemon, every daemon ticking each second "
        "and the queue polled each second (that ticking itself keeps about a core busy)",
    )
    args = parser.parse_args()
    names = [f"v{index + 1}.0.0" for index in range(args.releases)]
    # As `make bytecode` does: the run workers read the package's .pyc files instead of
    # compiling it from source each (where PYTHONDONTWRITEBYTECODE is set, they would).
    compileall.compile_dir(REPO / "tars_pipeline", quiet=1, workers=0)
    with tempfile.TemporaryDirectory(prefix="tars-backfill-") as scratch:
        root = Path(scratch)
        results = {}
        for mode, limit in (("serial", 1), ("parallel", args.concurrency)):
            results[mode] = run_mode(
                root / mode, names, args.window, limit, args.storage, args.daemon
            )
            print(f"  {mode}: {results[mode]}", flush=True)
        same = all(
            normalise((root / "serial" / "project" / "out" / name / output).read_text("utf-8"))
            == normalise((root / "parallel" / "project" / "out" / name / output).read_text("utf-8"))
            for name in names
            for output in OUTPUTS
            if not (output.startswith("day_") and int(output[4:6]) > args.window)
        )
    serial, parallel = results["serial"], results["parallel"]
    print()
    print(f"backfill of {args.releases} releases × {args.window + 1} days, every asset, "
          f"instance on {args.storage}, {args.daemon} daemon")  # fmt: skip
    print(
        "| mode | runs at once | runs | failed | wall s | runs in flight (mean) | "
        "no run in flight s | a run s (mean) | queued s (mean) | CPU busy (both cores) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, limit in (("serial", 1), ("parallel", args.concurrency)):
        r = results[mode]
        print(
            f"| {mode} | {limit} | {r['runs']} | {r['failed']} | {r['wall']:.0f} | "
            f"{r['in_flight']} | {r['idle_s']} | {r['run_s']} | {r['queued_s']} | "
            f"{r['cpu_busy']:.0%} |"
        )
    print(f"parallel / serial wall time: {parallel['wall'] / serial['wall']:.2f}")
    print(f"outputs identical: {'yes' if same else 'NO'}")
    return 0 if same and not serial["failed"] and not parallel["failed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
