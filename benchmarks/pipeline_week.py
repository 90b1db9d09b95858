"""How long the bundled week takes through the Dagster graph, and how much memory.

    .venv/bin/python benchmarks/pipeline_week.py [--repeat N]

Runs the whole week (8 release-days, baseline, regression summary, retrospective) on a
temporary Dagster instance and DuckDB file, the way the CLIs do, and prints wall time per
step, samples per second, peak RSS and the store's size. The machine is shared and noisy,
so compare figures as ratios measured in one run (e.g. a day vs the retrospective), not
against numbers from another day.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG, Progress, Runner  # noqa: E402
from tars_pipeline.config import load_config  # noqa: E402
from tars_pipeline_tests.conftest import DEMO_RELEASE, write_config  # noqa: E402

DAILY = ("kpi_samples", "anomaly_events", "daily_summary")


def run_week(folder: Path) -> dict[str, list[float]]:
    config = load_config(write_config(folder))
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    timings: dict[str, list[float]] = {"day": [], "baseline": [], "final": []}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runner = Runner(config, instance=instance, progress=Progress(enabled=False))
        release = config.release(DEMO_RELEASE)
        for day in release.days:
            start = time.perf_counter()
            runner.day(release, day, DAILY)
            timings["day"].append(time.perf_counter() - start)
            if day == 0:
                start = time.perf_counter()
                runner.release_level(release, ("baseline",))
                timings["baseline"].append(time.perf_counter() - start)
        start = time.perf_counter()
        runner.release_level(release, ("regression_summary", "retrospective"))
        timings["final"].append(time.perf_counter() - start)
    timings["store_mb"] = [config.store_file.stat().st_size / 1e6]
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    days, finals, weeks = [], [], []
    store_mb = 0.0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            timings = run_week(Path(folder))
            weeks.append(time.perf_counter() - start)
            days.extend(timings["day"])
            finals.extend(timings["final"])
            store_mb = timings["store_mb"][0]
    samples_per_day = 3 * 12 * 1440
    day_median = statistics.median(days)
    print(f"week (8 days + baseline + retrospective): {statistics.median(weeks):.1f} s")
    print(f"one release-day (samples, anomalies, summary): median {day_median:.2f} s")
    print(f"  throughput: {samples_per_day / day_median:,.0f} samples/s end to end")
    print(
        f"regression summary + retrospective: {statistics.median(finals):.2f} s "
        f"({statistics.median(finals) / day_median:.1f}x a day)"
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MB; DuckDB store after the week: {store_mb:.1f} MB")


if __name__ == "__main__":
    main()
