"""A backfill of R releases × (window + 1) days through the Dagster daemon, serial and
parallel, measured in one run.

    .venv/bin/python benchmarks/parallel_backfill.py [--releases 3] [--window 7]
        [--concurrency 4] [--storage postgres|sqlite]

Each mode gets a fresh project (the bundled week replayed under R release names, the
Parquet store) and a fresh instance, served by dagster-webserver and dagster-daemon on
loopback; "Materialize all" (every asset, every partition) is launched through GraphQL
and timed until the backfill completes. Serial is the instance settings TARS shipped
before the Parquet store (one run at a time, one store step at a time); parallel is
today's dagster.yaml with --concurrency runs and steps. The script then checks that both
wrote the same outputs for every release and prints the wall times and their ratio.

With --storage postgres (the default when Debian's initdb is installed) the instance
lives in a throw-away Postgres cluster, as in tars_pipeline_tests/test_parallel_backfill.py.
"""

from __future__ import annotations

import argparse
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


def run_mode(folder: Path, names: list[str], window: int, limit: int, storage: str) -> dict:
    config = _project(folder, names, window)
    with contextlib.ExitStack() as stack:
        extra = ""
        if storage == "postgres":
            extra = stack.enter_context(postgres_server(folder / "postgres")).instance_yaml()
        server = DagsterUI(folder, config, extra_settings=extra)
        settings = _limits(PACKAGED_INSTANCE_CONFIG.read_text(encoding="utf-8"), limit, limit)
        (server.home / "dagster.yaml").write_text(settings + extra + FAST_QUEUE, "utf-8")
        with dg.DagsterInstance.from_config(str(server.home)) as instance:
            register_releases(instance, names)
        server.start()
        stack.callback(server.stop)
        params = {"assetSelection": [{"path": [a]} for a in ASSETS], "allPartitions": True}
        began = time.monotonic()
        status = server.wait_for_backfill(server.launch_backfill(params), timeout=7200)
        wall = time.monotonic() - began
        with dg.DagsterInstance.from_config(str(server.home)) as instance:
            records = instance.get_run_records()
            failed = sum(1 for r in records if not r.dagster_run.is_success)
    return {"status": status, "wall": wall, "runs": len(records), "failed": failed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=3)
    parser.add_argument("--window", type=int, default=7, help="window_days (days 0..N)")
    parser.add_argument("--concurrency", type=int, default=4)
    default_storage = "postgres" if _postgres_binary("initdb") else "sqlite"
    parser.add_argument("--storage", choices=("postgres", "sqlite"), default=default_storage)
    args = parser.parse_args()
    names = [f"v{index + 1}.0.0" for index in range(args.releases)]
    with tempfile.TemporaryDirectory(prefix="tars-backfill-") as scratch:
        root = Path(scratch)
        results = {}
        for mode, limit in (("serial", 1), ("parallel", args.concurrency)):
            results[mode] = run_mode(root / mode, names, args.window, limit, args.storage)
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
          f"instance on {args.storage}")  # fmt: skip
    print("| mode | runs at once | runs | failed | wall s |")
    print("|---|---|---|---|---|")
    print(f"| serial | 1 | {serial['runs']} | {serial['failed']} | {serial['wall']:.0f} |")
    print(
        f"| parallel | {args.concurrency} | {parallel['runs']} | {parallel['failed']} | "
        f"{parallel['wall']:.0f} |"
    )
    print(f"parallel / serial wall time: {parallel['wall'] / serial['wall']:.2f}")
    print(f"outputs identical: {'yes' if same else 'NO'}")
    return 0 if same and not serial["failed"] and not parallel["failed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
