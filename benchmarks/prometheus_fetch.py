"""A day of many series from a real Prometheus: TARS's source vs a plain client.

    .venv/bin/python benchmarks/prometheus_fetch.py                 # 2,000 services x 12 KPIs
    .venv/bin/python benchmarks/prometheus_fetch.py --services 50 --repeat 1   # the smoke size

What is measured (issue 10, "Prometheus at scale"): one day of `services x 12` series,
each a gauge stored in a real Prometheus (Debian's `prometheus`, backfilled with
`promtool tsdb create-blocks-from openmetrics`, as the test suite does), fetched

- by TARS: `PrometheusSource.fetch_day` with `max_concurrent_queries = C`, which renders
  each KPI's PromQL per service, issues the range queries C at a time, parses and merges
  the values and returns the day's samples frame, sorted;
- by a plain client: a `requests.Session` and a thread pool of the same C issuing the same
  `GET /api/v1/query_range` calls (same query, start, end, step) and decoding the JSON,
  nothing more.

The figure is the plain client's wall time over TARS's (the throughput ratio, 1.0 = as fast
as the plain client); runs alternate and the best of `--repeat` of each counts, so the
two share the machine's state. The series are stored at `--step` seconds (default 300:
288 points a series, 6.9 M samples; `--step 60` stores 34.6 M samples, ~2 GB of text for
promtool) and fetched at the same step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tars_pipeline.config import KpiDefinition, PrometheusSourceConfig, Release  # noqa: E402
from tars_pipeline.sources.prometheus import PrometheusSource, render_query  # noqa: E402
from tars_pipeline_tests.prometheus.conftest import backfill, serving  # noqa: E402

KPI_COUNT = 12
METRIC = "tars_bench_kpi"


def bench_kpis() -> list[KpiDefinition]:
    return [
        KpiDefinition(
            name=f"kpi_{index:02d}",
            title=f"KPI {index}",
            unit="x",
            direction="lower_is_better",
            kind="resource",
            query=f'{METRIC}{{{{service_label}}="{{service}}",kpi="kpi_{index:02d}"}}',
        )
        for index in range(KPI_COUNT)
    ]


def write_day(path: Path, services: list[str], start_s: int, points: int, step: int) -> int:
    """The day as OpenMetrics text, series after series: a level per series plus noise."""
    rng = np.random.default_rng(7)
    stamps = [str(start_s + step * i) for i in range(points)]
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(f"# TYPE {METRIC} gauge\n")
        for service in services:
            for kpi in range(KPI_COUNT):
                labels = f'{METRIC}{{service="{service}",kpi="kpi_{kpi:02d}"}} '
                values = 100.0 + kpi + rng.normal(0.0, 5.0, points)
                out.write(
                    "".join(
                        f"{labels}{value:.4f} {stamp}\n"
                        for value, stamp in zip(values, stamps, strict=True)
                    )
                )
                written += points
        out.write("# EOF\n")
    return written


def plain_fetch(url: str, calls: list[dict[str, str]], concurrency: int) -> int:
    """The same range queries through a bare session and thread pool: JSON decoded, no
    more. Returns the points received."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(10, concurrency))
    session.mount(url, adapter)

    def call(params: dict[str, str]) -> int:
        response = session.get(f"{url}/api/v1/query_range", params=params, timeout=60)
        response.raise_for_status()
        result = response.json()["data"]["result"]
        return sum(len(series["values"]) for series in result)

    with ThreadPoolExecutor(concurrency) as pool:
        points = sum(pool.map(call, calls))
    session.close()
    return points


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--step", type=int, default=300, help="seconds between points")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        print("prometheus_fetch: needs Debian's prometheus and promtool on PATH", file=sys.stderr)
        return 2

    services = [f"svc-{index:05d}" for index in range(args.services)]
    ga_date = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).date()
    release = Release(name="bench", ga_date=ga_date, timezone="UTC", services=tuple(services))
    start, end = release.day_bounds(0)
    points = int((end - start).total_seconds()) // args.step
    kpis = bench_kpis()

    with tempfile.TemporaryDirectory(prefix="tars-bench-prom-") as folder_name:
        folder = Path(folder_name)
        text = folder / "day.om"
        began = time.perf_counter()
        samples = write_day(text, services, int(start.timestamp()), points, args.step)
        size = text.stat().st_size
        data_dir = folder / "tsdb"
        data_dir.mkdir()
        backfill(promtool, text, data_dir)
        text.unlink()
        load_seconds = time.perf_counter() - began
        print(
            f"loaded {len(services) * KPI_COUNT:,} series, {samples:,} samples "
            f"({size / 2**20:,.0f} MiB of OpenMetrics) in {load_seconds:.1f} s",
            flush=True,
        )
        with serving(prometheus, data_dir, folder) as (url, _port, _pid):
            settings = PrometheusSourceConfig(
                url=url, max_concurrent_queries=args.concurrency, timeout_seconds=60
            )
            source = PrometheusSource(settings)
            last = end - dt.timedelta(seconds=args.step)
            calls = [
                {
                    "query": render_query(
                        kpi.query,
                        service=service,
                        service_label=settings.service_label,
                        rate_window=settings.rate_window,
                    ),
                    "start": f"{start.timestamp():.3f}",
                    "end": f"{last.timestamp():.3f}",
                    "step": str(args.step),
                }
                for kpi in kpis
                for service in services
            ]
            # Warm the server's caches with one pass of each, then alternate.
            plain_fetch(url, calls[: min(len(calls), 500)], args.concurrency)
            tars_times, plain_times = [], []
            tars_points = plain_points = 0
            for _ in range(args.repeat):
                began = time.perf_counter()
                plain_points = plain_fetch(url, calls, args.concurrency)
                plain_times.append(time.perf_counter() - began)
                began = time.perf_counter()
                fetched = source.fetch_day(release, start, end, kpis, args.step)
                tars_times.append(time.perf_counter() - began)
                tars_points = len(fetched.samples)
                del fetched
    if tars_points != plain_points or tars_points != samples:
        print(
            f"prometheus_fetch: TARS got {tars_points:,} points, the plain client "
            f"{plain_points:,}, {samples:,} were stored",
            file=sys.stderr,
        )
        return 1
    tars_best, plain_best = min(tars_times), min(plain_times)
    figures = {
        "series": len(services) * KPI_COUNT,
        "samples": samples,
        "step_seconds": args.step,
        "concurrency": args.concurrency,
        "calls": len(calls),
        "plain_seconds": [round(t, 2) for t in plain_times],
        "tars_seconds": [round(t, 2) for t in tars_times],
        "throughput_ratio": round(plain_best / tars_best, 3),
    }
    print(
        f"{figures['series']:,} series, {len(calls):,} range queries, concurrency "
        f"{args.concurrency}: plain client {plain_best:.2f} s, TARS {tars_best:.2f} s -> "
        f"TARS at {figures['throughput_ratio']:.2f}x the plain client's throughput "
        "(target >= 0.8x)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
