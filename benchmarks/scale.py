"""Speed and memory at scale: the bundled week replicated to W-large (504 series), 4x and 16x.

    .venv/bin/python benchmarks/scale.py [--scales 1,4,16] [--skip-cli] [--keep DIR]
    .venv/bin/python benchmarks/scale.py --smoke      (what `make test` runs: tiny, ~1 min)

The workload. W-large is the bundled week (3 services x 12 KPIs, per minute, 8 local days)
with its services replicated 14 times (42 services, 504 series, 5.8 M samples); 4x and 16x
replicate 56 and 224 times (2,016 and 8,064 series). Replicas are renamed copies of the
bundled series (`checkout-007`), so every copy carries the same incidents and the same
detections: this is a speed and memory workload, not a signal one (the scenario suite,
benchmarks/scenario_score.py, is the signal one). The files are in the snapshot format the
snapshot source reads, one Parquet file per local day, written by DuckDB.

The figures, all from one run, each as a ratio to another figure of the same run:
- the week through the seed's CLIs (the 11 `make demo` commands, each its own process);
- the same week in one process (`Runner`, the code path of the CLIs), per asset wall time
  (from the run's step events) and the Dagster overhead (the run's wall time the steps
  do not account for);
- the floor: a hand-written NumPy/DuckDB pass over the same samples doing the least the
  product must do (read every sample once, a day's per-series aggregates in DuckDB SQL,
  the EWMA z-scores with `scipy.signal.lfilter`, write the aggregates as Parquet);
- growth from W-large to 4x and 16x, per asset, against the growth of the samples;
- peak RSS of each process (the OS's figure for the child, `wait4`).
benchmarks/detector_bound.py measures the detector against its lower bound.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BUNDLED = REPO / "test_data" / "snapshot" / "v1.0.1"
RELEASE = "v1.0.1"
W_LARGE_COPIES = 14  # 42 services x 12 KPIs = 504 series
BIN = Path(sys.executable).parent


def generate(out: Path, copies: int) -> Path:
    """The bundled week with each service replicated `copies` times, in the snapshot format."""
    import duckdb

    folder = out / RELEASE
    folder.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((BUNDLED / "manifest.json").read_text(encoding="utf-8"))
    services = [f"{name}-{k:03d}" for name in manifest["services"] for k in range(copies)]
    manifest.update(services=services, generated_by="benchmarks/scale.py", copies=copies)
    with duckdb.connect() as conn:
        conn.execute("SET threads = 1")  # the bytes repeat
        for day_file in sorted(BUNDLED.glob("*.parquet")):
            conn.execute(
                f"""
                COPY (
                    SELECT s.service || '-' || lpad(k.range::VARCHAR, 3, '0') AS service,
                           s.kpi, s.ts, s.value
                    FROM read_parquet('{day_file}') AS s CROSS JOIN range({copies}) AS k
                    ORDER BY service, kpi, ts
                ) TO '{folder / day_file.name}' (FORMAT parquet)
                """
            )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return out


def sample_count(snapshot: Path) -> int:
    import duckdb

    with duckdb.connect() as conn:
        pattern = str(snapshot / RELEASE / "*.parquet")
        return conn.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchone()[0]


def project(folder: Path, snapshot: Path) -> Path:
    from tars_pipeline_tests.conftest import write_config

    folder.mkdir(parents=True, exist_ok=True)
    return write_config(folder, source={"type": "snapshot", "path": str(snapshot)})


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def cli_week(folder: Path, snapshot: Path) -> dict[str, float]:
    """The 11 `make demo` commands, each a process, on a fresh store and instance."""
    config = project(folder, snapshot)
    # The code location's partitions come from $TARS_CONFIG: this week's config.
    env = {**os.environ, "DAGSTER_HOME": str(folder / "dagster_home"), "TARS_CONFIG": str(config)}
    base = ["--config", str(config)]
    commands = [[str(BIN / "tars-ga-kpi"), *base]]
    monitor = [str(BIN / "tars-stability-monitor"), *base, "--day-number"]
    commands += [[*monitor, str(day)] for day in range(1, 8)]
    commands += [
        [str(BIN / "tars-anomaly-detector"), *base, "--z-threshold", "3.0"],
        [str(BIN / "tars-regression-analyzer"), *base],
        [str(BIN / "tars-retro"), "--auto", *base],
    ]
    wall, peak, each = 0.0, 0.0, []
    for command in commands:
        seconds, rss = timed(command, env)
        wall, peak = wall + seconds, max(peak, rss)
        each.append(seconds)
    # Where the sequence's time went, from the instance the commands wrote their runs to.
    out = folder / "cli_runs.json"
    runs_command = [sys.executable, __file__, "--_runs", str(folder / "dagster_home"), str(out)]
    timed(runs_command, env)
    runs = json.loads(out.read_text(encoding="utf-8"))
    return {"wall": wall, "rss": peak, "commands": each, **runs}


def one_process_week(folder: Path, snapshot: Path) -> dict[str, float]:
    """The week in one child process (`--_week`), which prints its per-asset figures."""
    config = project(folder, snapshot)
    out = folder / "figures.json"
    command = [sys.executable, __file__, "--_week", str(config), str(out)]
    wall, rss = timed(command, {**os.environ, "TARS_CONFIG": str(config)})
    figures = json.loads(out.read_text(encoding="utf-8"))
    return {"wall": wall, "rss": rss, **figures}


def _week_in_this_process(config_path: Path, out: Path) -> None:
    import dagster as dg

    from tars_pipeline.cli.commands import DAILY, GA_DAY
    from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG, Progress, Runner
    from tars_pipeline.config import load_config

    config = load_config(config_path)
    home = config_path.parent / "dagster_home"
    home.mkdir()
    shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    start = time.perf_counter()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runner = Runner(config, instance=instance, progress=Progress(enabled=False))
        release = config.release(RELEASE)
        results = [runner.day(release, day, GA_DAY if day == 0 else DAILY) for day in release.days]
        results.append(runner.release_level(release, ("regression_summary", "retrospective")))
        figures = _run_figures(instance, [result.run_id for result in results])
    out.write_text(
        json.dumps({"in_process": time.perf_counter() - start, **figures}), encoding="utf-8"
    )


def _run_figures(instance, run_ids: list[str]) -> dict:
    """The runs' wall time (start to end events) and each step's, summed over the runs."""
    import dagster as dg

    steps: dict[str, float] = defaultdict(float)
    runs = 0.0
    for run_id in run_ids:
        record = instance.get_run_record_by_id(run_id)
        runs += record.end_time - record.start_time
        begun: dict[str, float] = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or entry.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                begun[entry.step_key] = entry.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                steps[entry.step_key] += entry.timestamp - begun[entry.step_key]
    return {"runs": runs, "steps": dict(steps)}


def _runs_of_instance(home: Path, out: Path) -> None:
    """`_run_figures` of every run in the instance at `home` (the CLI sequence's)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_ids = [record.dagster_run.run_id for record in instance.get_run_records()]
        out.write_text(json.dumps(_run_figures(instance, run_ids)), encoding="utf-8")


def floor(snapshot: Path, folder: Path) -> dict[str, float]:
    """The least the week's work can cost: a child process (`--_floor`) timing itself."""
    out = folder / "floor.json"
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--_floor", str(snapshot), str(out)]
    wall, rss = timed(command, {**os.environ})
    return {"wall": wall, "rss": rss, **json.loads(out.read_text(encoding="utf-8"))}


def _floor_in_this_process(snapshot: Path, out: Path) -> None:
    start = time.perf_counter()
    import duckdb
    import numpy as np
    from scipy.signal import lfilter

    alpha, events = 2.0 / 61.0, 0
    with duckdb.connect() as conn:
        for day_file in sorted((snapshot / RELEASE).glob("*.parquet")):
            conn.execute(
                f"""
                COPY (
                    SELECT service, kpi, count(*) AS n, avg(value) AS mean,
                           quantile_cont(value, [0.5, 0.95, 0.99]) AS q,
                           min(value) AS lo, max(value) AS hi
                    FROM read_parquet('{day_file}') GROUP BY service, kpi
                ) TO '{out.parent / (day_file.stem + "-stats.parquet")}' (FORMAT parquet)
                """
            )
            table = conn.execute(
                f"SELECT service, kpi, value FROM read_parquet('{day_file}') "
                "ORDER BY service, kpi, ts"
            ).fetchnumpy()
            values = np.asarray(table["value"], dtype="float64")
            keys = np.char.add(table["service"].astype(str), table["kpi"].astype(str))
            bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
            for first, stop in itertools.pairwise(bounds):
                x = values[first:stop]
                mean, _ = lfilter([alpha], [1, alpha - 1], x, zi=[(1 - alpha) * x[0]])
                diff = x[1:] - mean[:-1]
                var = lfilter([(1 - alpha) * alpha], [1, alpha - 1], diff * diff)
                z = diff[1:] / np.maximum(np.sqrt(var[:-1]), 1e-9 * np.abs(x[2:]) + 1e-12)
                events += int(np.count_nonzero(np.abs(z) >= 3.0))
    out.write_text(json.dumps({"in_process": time.perf_counter() - start}), encoding="utf-8")


def run(
    scales: list[int], skip_cli: bool, root: Path, cli_up_to: int | None = None
) -> dict[int, dict[str, dict]]:
    results: dict[int, dict[str, dict]] = {}
    for scale in scales:
        copies = max(1, W_LARGE_COPIES * scale) if scale > 0 else 1
        snapshot = generate(root / f"x{scale}" / "snapshot", copies)
        manifest = json.loads((snapshot / RELEASE / "manifest.json").read_text(encoding="utf-8"))
        series = len(manifest["services"]) * len(manifest["kpis"])
        entry: dict[str, dict] = {"samples": {"n": float(sample_count(snapshot)), "series": series}}
        entry["floor"] = floor(snapshot, root / f"x{scale}" / "floor")
        entry["process"] = one_process_week(root / f"x{scale}" / "process", snapshot)
        if not skip_cli and (cli_up_to is None or scale <= cli_up_to):
            entry["cli"] = cli_week(root / f"x{scale}" / "cli", snapshot)
        results[scale] = entry
        print(f"scale {scale}: done ({entry['samples']['n']:,.0f} samples)", flush=True)
    return results


def report(results: dict[int, dict[str, dict]]) -> None:
    print()
    print("| scale | series | samples | CLIs (11 processes) | one process | floor | "
          "one process / floor | CLIs / floor | peak RSS (CLIs, one process, floor) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for scale, entry in results.items():
        n = entry["samples"]["n"]
        series = int(entry["samples"]["series"])
        cli = entry.get("cli")
        proc, low = entry["process"], entry["floor"]
        cli_wall = f"{cli['wall']:.1f} s" if cli else "-"
        cli_ratio = f"{cli['wall'] / low['wall']:.1f}x" if cli else "-"
        cli_rss = f"{cli['rss']:.0f}" if cli else "-"
        print(
            f"| {scale} | {series:,} | {n:,.0f} | {cli_wall} | {proc['wall']:.1f} s | "
            f"{low['wall']:.1f} s | {proc['wall'] / low['wall']:.1f}x | {cli_ratio} | "
            f"{cli_rss} / {proc['rss']:.0f} / {low['rss']:.0f} MiB |"
        )
    first_scale = next(iter(results))
    first = results[first_scale]
    print()
    print("Per asset, one process (seconds, summed over the week's runs); growth is the time's")
    print(f"ratio to scale {first_scale} over the samples' ratio (1.0 = linear):")
    steps = sorted(first["process"]["steps"])
    header = " | ".join(f"x{scale}" for scale in results)
    print(f"| step | {header} | growth |")
    print("|---|" + "---|" * len(results) + "---|")
    for step in steps:
        cells, growth = [], []
        for scale, entry in results.items():
            seconds = entry["process"]["steps"].get(step, 0.0)
            cells.append(f"{seconds:.2f}")
            if scale != first_scale and first["process"]["steps"].get(step):
                time_ratio = seconds / first["process"]["steps"][step]
                sample_ratio = entry["samples"]["n"] / first["samples"]["n"]
                growth.append(f"{time_ratio / sample_ratio:.2f}")
        print(f"| {step} | {' | '.join(cells)} | {', '.join(growth) or '-'} |")
    for scale, entry in results.items():
        proc = entry["process"]
        overhead = proc["runs"] - sum(proc["steps"].values())
        print(
            f"scale {scale}: Dagster overhead {overhead:.1f} s of {proc['runs']:.1f} s in runs "
            f"({overhead / proc['runs']:.0%}); process start-up and instance "
            f"{proc['wall'] - proc['in_process']:.1f} s"
        )
        if cli := entry.get("cli"):
            in_steps = sum(cli["steps"].values())
            print(
                f"scale {scale}, the 11 CLIs: {cli['wall']:.1f} s = steps {in_steps:.1f} s + "
                f"Dagster within the runs {cli['runs'] - in_steps:.1f} s + outside the runs "
                f"(start-up, imports, instance, run creation) {cli['wall'] - cli['runs']:.1f} s; "
                "per command " + ", ".join(f"{seconds:.1f}" for seconds in cli["commands"])
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,4,16",
                        help="multiples of W-large (504 series); 0 = the bundled week")  # fmt: skip
    parser.add_argument("--skip-cli", action="store_true", help="not the 11-process sequence")
    parser.add_argument("--skip-cli-above", type=int, default=None, metavar="SCALE",
                        help="the 11-process sequence only up to this scale")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="the bundled week only, no CLIs")
    parser.add_argument("--keep", type=Path, help="keep the generated weeks in this folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--_week", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_floor", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_runs", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._week:
        return _week_in_this_process(*args._week)
    if args._runs:
        return _runs_of_instance(*args._runs)
    if args._floor:
        return _floor_in_this_process(*args._floor)
    scales = [0] if args.smoke else [int(s) for s in args.scales.split(",")]
    root = args.keep or Path(tempfile.mkdtemp(prefix="tars-scale-"))
    try:
        results = run(scales, args.skip_cli or args.smoke, root, args.skip_cli_above)
        report(results)
        if args.json:
            print(json.dumps(results, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this script: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
