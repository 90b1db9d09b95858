"""Cost from usage × a price table gives the cost analysis the cost metrics give, on a week
held by a real Prometheus.

The week is the bundled one (test_data/generate.py, called, not changed), with the usage
series a Kubernetes cluster exports beside it, consistent with the cost gauges: per service,
cAdvisor's container_cpu_usage_seconds_total, container_memory_working_set_bytes (a
`container="app"` series; the bundled label-less one plays the pod-level cgroup, which the
default query's container filter leaves out), kubelet_volume_stats_capacity_bytes and
container_network_transmit_bytes_total.
Every OpenCost-style cost gauge (USD/h) is usage × the price table below, so the two ways
of costing the week describe the same spend:

- compute and network keep the bundled cost gauges; the cores and GiB/h are derived from
  them at the service's price (search runs on pricier compute-optimised nodes);
- memory is the working set of a 64-replica fleet at $/GiB-hour;
- storage is each service's provisioned volumes at $/GiB-month, with checkout's volume
  grown from 1,000 to 1,500 GiB on Day 3.

The real graph runs the week twice (Runner on a temporary Dagster instance): once with the
default catalog and no prices (cost from the gauges), once with `cost.basis: prices` (the
gauges leave the catalog; cost from usage × prices). The cost analyses, the cost section of
the Markdown report and the daily health scores agree to float rounding
(COST_REL_TOLERANCE). A third check, on the judge path, reads the same days with
`basis: auto` and the compute gauge gone, and finds usage filling in for it alone.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tars_pipeline.config import GIB_BYTES, TarsConfig, load_config
from tars_pipeline.judge.cost import daily_cost
from tars_pipeline.sources.prometheus import PrometheusSource
from tars_pipeline_tests.conftest import DEMO_RELEASE, run_the_week, week_runner, write_config
from tars_pipeline_tests.judge.test_pricing import assert_close
from tars_pipeline_tests.prometheus.conftest import (
    BUNDLED_GA,
    SERVICES,
    TIMEZONE,
    assert_blocks_not_in_future,
    assert_seconds_before_now,
    backfill,
    load_generator,
    require_binaries,
    serving,
    shifted_ga_date,
)

pytestmark = pytest.mark.slow

STEP_SECONDS = 60
PRICES: dict[str, Any] = {
    "compute": 0.0316,  # USD per core-hour
    "memory": 0.0042,  # per GiB-hour
    "storage": 0.10,  # per GiB-month
    "network": 0.09,  # per GiB sent
    "services": {"search": {"compute": 0.0475}},
}
DAYS_PER_MONTH = 30.0
MEMORY_REPLICAS = 64
"""The `container="app"` working set and limit stand for 64 replicas. memory_utilization
sums them with the label-less (pod-level) series: 65 × an integer byte count is exact,
so its ratio keeps the bundled values."""
VOLUME_GIB = {"api-gateway": 2000.0, "checkout": 1000.0, "search": 4000.0}
GROWN_VOLUME = ("checkout", 1500.0, dt.datetime(2026, 3, 6, 15, 0, tzinfo=dt.UTC))  # Day 3
COST_REL_TOLERANCE = 1e-9
"""Usage × price vs the gauge: float64 rounding in rate() over one scrape interval and in
the price division; measured on the week's cost analysis: 5e-14 at worst (a change_pct)."""
MEASURED: dict[str, float] = {}


def price(service: str, resource: str) -> float:
    return PRICES["services"].get(service, {}).get(resource, PRICES[resource])


def counter(seconds: np.ndarray, increments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A counter that starts at 0 one step before the window, as generate.py's do."""
    stamps = np.concatenate([[seconds[0] - STEP_SECONDS], seconds])
    return stamps, np.concatenate([[0.0], np.cumsum(increments)])


Families = dict[str, tuple[str, str, dict[str, tuple[np.ndarray, np.ndarray]]]]


def priced_week_families() -> Families:
    """The bundled week's raw series, plus usage; every cost gauge = usage × price."""
    generator = load_generator()
    families: Families = generator.openmetrics_families(generator.generate_samples())
    for service in SERVICES:
        label = f'service="{service}"'
        seconds, compute_usd = families["node_cpu_hourly_cost"][2][
            f"node_cpu_hourly_cost{{{label}}}"
        ]
        _, network_usd = families["network_hourly_cost"][2][f"network_hourly_cost{{{label}}}"]
        ws_name = f"container_memory_working_set_bytes{{{label}}}"
        _, pod_working_set = families["container_memory_working_set_bytes"][2][ws_name]
        limit_name = f"container_spec_memory_limit_bytes{{{label}}}"
        _, pod_limit = families["container_spec_memory_limit_bytes"][2][limit_name]

        cores = compute_usd / price(service, "compute")
        families.setdefault(
            "container_cpu_usage_seconds", ("counter", "CPU time of the containers.", {})
        )[2][f'container_cpu_usage_seconds_total{{{label},container="app"}}'] = counter(
            seconds, cores * STEP_SECONDS
        )

        fleet_bytes = pod_working_set * MEMORY_REPLICAS
        app = f'{{{label},container="app"}}'
        families["container_memory_working_set_bytes"][2][
            f"container_memory_working_set_bytes{app}"
        ] = (seconds, fleet_bytes)
        families["container_spec_memory_limit_bytes"][2][
            f"container_spec_memory_limit_bytes{app}"
        ] = (seconds, pod_limit * MEMORY_REPLICAS)
        memory_gib = fleet_bytes / GIB_BYTES  # × $/GiB-hour = $/h
        families["node_ram_hourly_cost"][2][f"node_ram_hourly_cost{{{label}}}"] = (
            seconds,
            memory_gib * price(service, "memory"),
        )

        volume_gib = np.full(len(seconds), VOLUME_GIB[service])
        grown, size, since = GROWN_VOLUME
        if service == grown:
            volume_gib[seconds >= since.timestamp()] = size
        families.setdefault(
            "kubelet_volume_stats_capacity_bytes", ("gauge", "Volume capacity.", {})
        )[2][f'kubelet_volume_stats_capacity_bytes{{{label},persistentvolumeclaim="data-0"}}'] = (
            seconds,
            volume_gib * GIB_BYTES,
        )
        hours_per_month = DAYS_PER_MONTH * 24  # × $/GiB-month ÷ hours a month = $/h
        families["pv_hourly_cost"][2][f"pv_hourly_cost{{{label}}}"] = (
            seconds,
            volume_gib * price(service, "storage") / hours_per_month,
        )

        gib_per_hour = network_usd / price(service, "network")
        families.setdefault("container_network_transmit_bytes", ("counter", "Bytes sent.", {}))[2][
            f'container_network_transmit_bytes_total{{{label},interface="eth0"}}'
        ] = counter(seconds, gib_per_hour * GIB_BYTES * STEP_SECONDS / 3600)
    return families


def write_families(families: Families, path: Path, shift_seconds: int) -> None:
    """OpenMetrics text: each family's series in time order; a histogram's buckets, count
    and sum point by point, as OpenMetrics groups a histogram's MetricPoint."""
    with path.open("w", encoding="utf-8") as out:
        for family, (kind, help_text, series) in families.items():
            out.write(f"# TYPE {family} {kind}\n# HELP {family} {help_text}\n")
            if kind == "histogram":
                groups: dict[str, list[str]] = {}
                for name in series:
                    groups.setdefault(name.split(",le=")[0].split("{", 1)[1], []).append(name)
                for names in groups.values():
                    stamps = (series[names[0]][0] + shift_seconds).tolist()
                    columns = [series[name][1].tolist() for name in names]
                    for i, ts in enumerate(stamps):
                        out.writelines(
                            f"{name} {values[i]!r} {ts}\n"
                            for name, values in zip(names, columns, strict=True)
                        )
                continue
            for name, (stamps, values) in series.items():
                out.writelines(
                    f"{name} {value!r} {ts}\n"
                    for ts, value in zip(
                        (stamps + shift_seconds).tolist(), values.tolist(), strict=True
                    )
                )
        out.write("# EOF\n")


@dataclass
class Week:
    config: TarsConfig
    out: Path

    def read(self, name: str) -> Any:
        return json.loads((self.out / DEMO_RELEASE / name).read_text(encoding="utf-8"))

    def text(self, name: str) -> str:
        return (self.out / DEMO_RELEASE / name).read_text(encoding="utf-8")


@dataclass
class PricedWeek:
    url: str
    ga_date: dt.date
    from_metrics: Week
    from_prices: Week

    def config(self, folder: Path, **cost: Any) -> TarsConfig:
        return load_config(week_config(folder, self.url, self.ga_date, **cost))


def week_config(folder: Path, url: str, ga_date: dt.date, **cost: Any) -> Path:
    return write_config(
        folder,
        source={
            "type": "prometheus",
            "url": url,
            "rate_window": "1m",  # scraped every 60 s: rate() is one step's increase
            "retries": 1,
            "retry_backoff_seconds": 0.05,
        },
        releases=[
            {
                "name": DEMO_RELEASE,
                "ga_date": ga_date.isoformat(),
                "timezone": TIMEZONE,
                "window_days": 7,
            }
        ],
        cost={"days_per_month": DAYS_PER_MONTH, **cost},
    )


def run_week(folder: Path, url: str, ga_date: dt.date, **cost: Any) -> Week:
    folder.mkdir()
    config = load_config(week_config(folder, url, ga_date, **cost))
    with week_runner(folder, config) as (runner, _instance):
        run_the_week(runner)
    return Week(config, folder / "out")


@pytest.fixture(scope="module")
def priced_week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PricedWeek]:
    prometheus, promtool = require_binaries()
    folder = tmp_path_factory.mktemp("priced_week")
    now = dt.datetime.now(dt.UTC)
    ga_date = shifted_ga_date(now)
    week = folder / "week.om"
    write_families(priced_week_families(), week, (ga_date - BUNDLED_GA).days * 86_400)
    assert_seconds_before_now(week, now)
    tsdb = folder / "tsdb"
    tsdb.mkdir()
    backfill(promtool, week, tsdb)
    assert_blocks_not_in_future(tsdb, now)
    week.unlink()
    with serving(prometheus, tsdb, folder) as (url, _port, _pid):
        yield PricedWeek(
            url=url,
            ga_date=ga_date,
            from_metrics=run_week(folder / "metrics", url, ga_date),
            from_prices=run_week(folder / "prices", url, ga_date, basis="prices", prices=PRICES),
        )


def test_the_two_runs_cost_the_week_from_different_series(priced_week: PricedWeek) -> None:
    metrics = {kpi.name for kpi in priced_week.from_metrics.config.kpis if kpi.kind == "cost"}
    prices = {kpi.name for kpi in priced_week.from_prices.config.kpis if kpi.kind == "cost"}
    assert metrics == {"cost_compute", "cost_memory", "cost_storage", "cost_network"}
    assert prices == {"usage_compute", "usage_memory", "usage_storage", "usage_network"}
    for week in (priced_week.from_metrics, priced_week.from_prices):
        quality = week.read("GA_7DAY_RETROSPECTIVE.json")["data_quality"]
        assert quality["complete"], quality["below_complete"][:3]


def _without_onset(cost: dict) -> dict:
    """The cost analysis without the level change's onset: it is dated from the cost
    samples, which a price-table week does not have (its samples are usage)."""
    change = cost.get("level_change")
    if not isinstance(change, dict):
        return cost
    kept = {k: v for k, v in change.items() if k not in ("onset", "annotations")}
    return {**cost, "level_change": kept}


def test_usage_times_prices_gives_the_cost_analysis_of_the_cost_metrics(
    priced_week: PricedWeek,
) -> None:
    ours = _without_onset(priced_week.from_prices.read("regression_summary.json")["cost_analysis"])
    theirs = _without_onset(
        priced_week.from_metrics.read("regression_summary.json")["cost_analysis"]
    )
    MEASURED["regression_summary.cost_analysis"] = assert_close(ours, theirs, COST_REL_TOLERANCE)
    retro = _without_onset(
        priced_week.from_prices.read("GA_7DAY_RETROSPECTIVE.json")["cost_analysis"]
    )
    retro_metrics = _without_onset(
        priced_week.from_metrics.read("GA_7DAY_RETROSPECTIVE.json")["cost_analysis"]
    )
    MEASURED["retrospective.cost_analysis"] = assert_close(retro, retro_metrics, COST_REL_TOLERANCE)
    print(f"\nworst relative difference: {MEASURED}")
    print(json.dumps({k: theirs[k] for k in ("ga_day_cost", "daily_average", "change_pct")}))

    # What an SRE reads: every resource type priced, the search right-sizing hint, the
    # checkout volume that grew by half, dated on the day it happened.
    assert {row["resource_type"] for row in ours["by_resource"]} == {
        "compute", "memory", "storage", "network",
    }  # fmt: skip
    hints = {(hint["kind"], hint["service"], hint.get("resource_type")) for hint in ours["hints"]}
    assert ("right_sizing", "search", "compute") in hints
    assert ("cost_growth", "checkout", "storage") in hints
    storage = next(row for row in ours["by_resource"] if row["resource_type"] == "storage")
    ga_storage = sum(VOLUME_GIB.values()) * PRICES["storage"] / DAYS_PER_MONTH
    assert storage["ga_day_cost"] == pytest.approx(ga_storage, rel=1e-12)


def test_the_report_reads_the_same_either_way(priced_week: PricedWeek) -> None:
    def cost_section(week: Week) -> str:
        markdown = week.text("GA_7DAY_RETROSPECTIVE.md")
        section = re.search(r"^## \d+\. Cost analysis.*?(?=^## )", markdown, re.M | re.S)
        assert section is not None
        return section.group(0)

    ours = cost_section(priced_week.from_prices)
    assert ours == cost_section(priced_week.from_metrics)
    assert "Right-size search compute" in ours


def test_the_health_scores_agree_too(priced_week: PricedWeek) -> None:
    # At a fixed price a usage series drifts exactly as its cost does, and both kinds
    # weigh 0.25: the days score the same.
    def scores(week: Week) -> list[float]:
        return [day["score"] for day in week.read("GA_7DAY_RETROSPECTIVE.json")["health_scores"]]

    ours, theirs = scores(priced_week.from_prices), scores(priced_week.from_metrics)
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_auto_fills_in_with_usage_only_where_a_cost_metric_has_no_data(
    priced_week: PricedWeek, tmp_path: Path
) -> None:
    """The judge path on the same Prometheus, `basis: auto` with the price table: with
    every gauge there usage changes nothing; without the compute gauge (an OpenCost that
    exports no CPU cost) compute is priced from usage and the rest still comes from the
    gauges, at the same dollars."""
    auto = priced_week.config(tmp_path, prices=PRICES)
    assert {"cost_compute", "usage_compute"} <= set(auto.kpis_by_name)
    release = auto.release(DEMO_RELEASE)
    source = PrometheusSource(auto.source)
    for day in (0, 5):  # GA day, and the 23-hour day the clocks go forward
        start, end = release.day_bounds(day)
        hours = (end - start).total_seconds() / 3600
        fetched = source.fetch_day(release, start, end, auto.kpis, STEP_SECONDS).samples
        metrics_only = daily_cost(fetched, auto.kpis_by_name, hours_in_day=hours)
        both = daily_cost(fetched, auto.kpis_by_name, hours_in_day=hours, cost=auto.cost)
        pd.testing.assert_frame_equal(both, metrics_only)  # the gauges win everywhere

        no_cpu_cost = fetched[fetched["kpi"] != "cost_compute"]
        filled = daily_cost(no_cpu_cost, auto.kpis_by_name, hours_in_day=hours, cost=auto.cost)
        assert len(filled) == len(metrics_only) == 4 * len(SERVICES)
        keys = ["service", "resource_type"]
        MEASURED[f"auto, day {day}"] = assert_close(
            filled.set_index(keys)["cost_usd"].to_dict(),
            metrics_only.set_index(keys)["cost_usd"].to_dict(),
            COST_REL_TOLERANCE,
        )
