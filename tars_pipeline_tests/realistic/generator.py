"""Exporter-shaped raw metrics for a realistic release week, and the ground truth of its changes.

A week is a pre-GA reference week (GA-7 .. GA-1), GA day and Days 1..7 at a 60 s scrape
interval, for a few services ("applications") of 2-3 pods each, in the shapes real exporters
produce:

- Micrometer / Spring Boot: cumulative `http_server_requests_seconds` histograms (bucket
  ladder 5 ms .. 10 s and +Inf, `_count`, `_sum`) per application, instance, uri, method,
  status and outcome; `process_cpu_usage` (0-1); `jvm_memory_used_bytes` /
  `jvm_memory_max_bytes` (area="heap", id="G1 Old Gen") with a GC sawtooth;
- kube-state-metrics: `kube_deployment_status_replicas_available`, an HPA following load;
- OpenCost-style hourly gauges in USD/h per application (constant within each hour).

Traffic follows a diurnal cycle in the week's timezone (DST included), weekends are lighter
(reference week too), counts are Poisson, latencies log-normal per route. Pods restart
(counter resets), scrape targets go down (gaps), and injected changes (`Injection`) move
error share, latency, CPU, heap, or price from a moment on.

The same code runs noise-free (`noise=False`: expected counts, no jitter) with and without
the injections: the ground truth of an injection is the change it makes to each KPI's
day mean *in that noise-free model*, so neither noise nor the weekend dip can make or hide a
truth (docs/scenario-suite.md has the rules).
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from scipy.special import ndtr

STEP = 60
PRE_ROLL_MINUTES = 30  # before the reference week, so rate() has samples at its first minute
REFERENCE_DAYS = 7
WINDOW_DAYS = 7
RATE_WINDOW_MINUTES = 5
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0)
"""Finite `le` bounds in seconds (a configured Micrometer SLO ladder); +Inf is added. Short,
as every bucket is a series of 21,600 samples a week."""
HEAP_MAX_BYTES = 2 * 1024**3
GC_TRIGGER = 0.78  # old-gen occupancy that triggers a mixed collection
COST_FAMILIES = {
    "cost_compute": "opencost_workload_cpu_cost_hourly",
    "cost_memory": "opencost_workload_ram_cost_hourly",
    "cost_storage": "opencost_workload_pv_cost_hourly",
    "cost_network": "opencost_workload_network_cost_hourly",
}
KPI_NAMES = (
    "availability",
    "error_rate",
    "throughput",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "cpu_utilization",
    "memory_utilization",
    *COST_FAMILIES,
)
QUANTILES = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}

InjectionKind = Literal[
    "error_step",  # SERVER_ERROR share + magnitude (absolute share) from start
    "latency_step",  # durations x magnitude from start (magnitude < 1: an improvement)
    "cpu_step",  # process CPU x (1 + magnitude) from start
    "cpu_ramp",  # process CPU x (1 + magnitude * progress), progress 0 -> 1 over duration
    "memory_leak",  # old-gen floor + magnitude x heap max per day from start
    "cost_step",  # compute price x (1 + magnitude) from start
]


@dataclass(frozen=True)
class Route:
    uri: str
    method: str
    share: float  # of the service's requests
    median_s: float  # latency median of successful requests, seconds
    sigma: float  # log-normal shape
    client_errors: float = 0.0  # share of 404s on this route


@dataclass(frozen=True)
class Service:
    name: str
    peak_rps: float  # whole service, at the daily peak on a weekday
    routes: tuple[Route, ...]
    instances: int = 2
    server_error_share: float = 0.0008
    cpu_idle: float = 0.04  # process CPU of an idle pod, 0-1
    cpu_per_rps: float = 0.012  # process CPU per req/s handled by one replica
    rps_per_replica: float = 15.0  # HPA target
    heap_floor: float = 0.30  # live set after a mixed GC, share of max
    alloc_per_request: float = 2.0e4  # old-gen bytes promoted per request (the sawtooth)
    cpu_price: float = 0.046  # USD per replica-hour
    ram_price: float = 0.012
    storage_usd_h: float = 0.05
    network_usd_per_mreq: float = 0.9  # USD per million requests


@dataclass(frozen=True)
class Injection:
    """A change of the service's behaviour from `day` at local `at`, for `minutes` (None:
    to the end of the week). `sudden`: a step or a short incident that anomaly detection
    should date; ramps and leaks are not. `label` names it in the tables."""

    label: str
    kind: InjectionKind
    service: str
    day: int
    at: str  # local "HH:MM"
    magnitude: float
    minutes: int | None = None
    sudden: bool = True
    incident: bool = False  # a short incident: a degradation on it is allowed, not required
    uri: str | None = None  # localised to this route (error_step, latency_step)
    instance: int | None = None  # localised to this pod, 0-based (error_step, latency_step)

    @property
    def localised(self) -> bool:
        return self.uri is not None or self.instance is not None

    def applies_to(self, instance: int, route: Route) -> bool:
        return (self.uri is None or self.uri == route.uri) and (
            self.instance is None or self.instance == instance
        )


@dataclass(frozen=True)
class Restart:
    """Pod `instance` (0-based) of `service` restarts at day/at: its counters reset to 0."""

    service: str
    instance: int
    day: int
    at: str


@dataclass(frozen=True)
class Gap:
    """The service's pods are not scraped for `minutes` from day/at (target down)."""

    service: str
    day: int
    at: str
    minutes: int


@dataclass(frozen=True)
class WeekSpec:
    key: str
    title: str
    timezone: str
    ga_weekday: int  # 0 = Monday
    seed: int
    services: tuple[Service, ...]
    injections: tuple[Injection, ...] = ()
    restarts: tuple[Restart, ...] = ()
    gaps: tuple[Gap, ...] = ()
    weekend_factor: float = 0.5  # traffic on Saturday/Sunday relative to a weekday
    daily_noise: float = 0.03  # day-to-day traffic level jitter (relative sd)
    needs_dst: bool = False  # place the week so a DST change falls in Days 1..7
    ga_date: dt.date | None = None  # set by `place_weeks`

    @property
    def release_name(self) -> str:
        return f"{self.key}-ga"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)


# --------------------------------------------------------------------------- time grid


def local_midnight(date: dt.date, tz: ZoneInfo) -> int:
    return int(dt.datetime.combine(date, dt.time(0), tzinfo=tz).timestamp())


def week_bounds(week: WeekSpec) -> tuple[int, int]:
    """[first, end) Unix seconds of the generated data, pre-roll included."""
    assert week.ga_date is not None, "place_weeks first"
    start = local_midnight(week.ga_date - dt.timedelta(days=REFERENCE_DAYS), week.tz)
    end = local_midnight(week.ga_date + dt.timedelta(days=WINDOW_DAYS + 1), week.tz)
    return start - PRE_ROLL_MINUTES * STEP, end


def day_bounds(week: WeekSpec, day: int) -> tuple[int, int]:
    assert week.ga_date is not None
    date = week.ga_date + dt.timedelta(days=day)
    return local_midnight(date, week.tz), local_midnight(date + dt.timedelta(days=1), week.tz)


def moment(week: WeekSpec, day: int, at: str) -> int:
    assert week.ga_date is not None
    hour, minute = (int(part) for part in at.split(":"))
    date = week.ga_date + dt.timedelta(days=day)
    local = dt.datetime.combine(date, dt.time(hour, minute), tzinfo=week.tz)
    return int(local.timestamp())


@dataclass
class Grid:
    ts: np.ndarray  # Unix seconds, one per minute
    local_hour: np.ndarray  # fractional local hour
    weekend: np.ndarray  # bool, local Saturday/Sunday
    day: np.ndarray  # release-day index (local calendar day - GA date)

    def __len__(self) -> int:
        return len(self.ts)


def grid(week: WeekSpec) -> Grid:
    first, end = week_bounds(week)
    ts = np.arange(first, end, STEP, dtype=np.int64)
    local = pd.to_datetime(ts, unit="s", utc=True).tz_convert(week.timezone)
    assert week.ga_date is not None
    ga = pd.Timestamp(week.ga_date)
    days = np.asarray((local.tz_localize(None).normalize() - ga).days)
    return Grid(
        ts=ts,
        local_hour=np.asarray(local.hour + local.minute / 60.0, dtype=float),
        weekend=np.asarray(local.dayofweek >= 5),
        day=days,
    )


def has_dst_change(date_from: dt.date, days: int, tz: ZoneInfo) -> bool:
    offsets = {
        dt.datetime.combine(date_from + dt.timedelta(days=i), dt.time(12), tzinfo=tz).utcoffset()
        for i in range(days + 1)
    }
    return len(offsets) > 1


def place_weeks(weeks: tuple[WeekSpec, ...], now: dt.datetime) -> tuple[WeekSpec, ...]:
    """Give each week a GA date in the recent past: each ends at least two days before now,
    none overlaps another's reference week, each on its GA weekday; a `needs_dst` week is
    moved back until a daylight-saving change falls inside Days 1..7."""
    cursor = (now - dt.timedelta(days=2)).date()
    placed = []
    for week in weeks:
        ga = cursor - dt.timedelta(days=WINDOW_DAYS + 1)
        ga -= dt.timedelta(days=(ga.weekday() - week.ga_weekday) % 7)
        while week.needs_dst and not has_dst_change(ga, WINDOW_DAYS, week.tz):
            ga -= dt.timedelta(days=7)
        assert (now.date() - ga).days < 2 * 366, f"{week.key}: no slot in the last two years"
        placed.append(_replace(week, ga_date=ga))
        cursor = ga - dt.timedelta(days=REFERENCE_DAYS + 2)
    return tuple(placed)


def _replace(week: WeekSpec, **changes: object) -> WeekSpec:
    from dataclasses import replace

    return replace(week, **changes)


# --------------------------------------------------------------------------- the model


def _rng(week: WeekSpec, *parts: object) -> np.random.Generator:
    key = "/".join(str(p) for p in (week.seed, *parts)).encode()
    return np.random.default_rng(zlib.crc32(key))


def diurnal(local_hour: np.ndarray) -> np.ndarray:
    """0.2 at 04:00 local, 1.0 at 16:00."""
    phase = 0.5 - 0.5 * np.cos(2 * np.pi * (local_hour - 4.0) / 24.0)
    return 0.2 + 0.8 * phase**1.5


def load_factor(week: WeekSpec, g: Grid, noise: bool) -> np.ndarray:
    level = diurnal(g.local_hour) * np.where(g.weekend, week.weekend_factor, 1.0)
    if noise:
        jitter = _rng(week, "daily").normal(1.0, week.daily_noise, size=40)
        level = level * jitter[np.clip(g.day + 10, 0, 39)]
    return level


def _profile(
    week: WeekSpec, g: Grid, service: str, kinds: tuple[str, ...], inject: bool
) -> list[tuple[Injection, np.ndarray]]:
    """(injection, activity 0..1 per minute) for the service's injections of these kinds."""
    if not inject:
        return []
    out = []
    for inj in week.injections:
        if inj.service != service or inj.kind not in kinds:
            continue
        start = moment(week, inj.day, inj.at)
        end = start + inj.minutes * STEP if inj.minutes else g.ts[-1] + STEP
        active = ((g.ts >= start) & (g.ts < end)).astype(float)
        if inj.kind == "cpu_ramp":
            active = active * np.clip((g.ts - start) / max(end - start, 1), 0, 1)
        if inj.kind == "memory_leak":
            active = active * np.clip((g.ts - start) / 86_400.0, 0, None)  # days since start
        out.append((inj, active))
    return out


@dataclass
class ServiceData:
    """Per-minute increments and gauges of one service (noise-free or sampled)."""

    name: str
    instances: int
    # http: key (instance, route index, outcome) -> (counts[T], bucket counts[T, len+1], sum[T])
    http: dict[tuple[int, int, str], tuple[np.ndarray, np.ndarray, np.ndarray]]
    cpu: np.ndarray  # [instances, T], 0-1
    heap_used: np.ndarray  # [instances, T], bytes
    replicas: np.ndarray  # [T]
    cost: dict[str, np.ndarray]  # KPI name -> USD/h [T]
    restarts: list[tuple[int, int]]  # (instance, minute index)
    gap: np.ndarray  # bool [T], not scraped


OUTCOMES = (("SUCCESS", "200"), ("CLIENT_ERROR", "404"), ("SERVER_ERROR", "500"))


def _bucket_probabilities(median: np.ndarray, sigma: float) -> np.ndarray:
    """P(duration in bucket b) for b = (..5ms], (5ms..10ms], ..., (10s..+Inf): [T, 12]."""
    bounds = np.log(np.asarray(BUCKETS))[None, :]
    cdf = ndtr((bounds - np.log(median)[:, None]) / sigma)
    cdf = np.concatenate([cdf, np.ones((len(median), 1))], axis=1)
    return np.diff(cdf, axis=1, prepend=0.0)


def service_data(
    week: WeekSpec, g: Grid, svc: Service, *, noise: bool, inject: bool
) -> ServiceData:
    n = len(g)
    load = load_factor(week, g, noise)
    rps = svc.peak_rps * load  # expected service req/s
    rng = _rng(week, svc.name, "http")

    # Service-wide injections move every pod and route; a localised one (`uri`,
    # `instance`) only the label values it names: its magnitude is the error share added to
    # (or the latency factor of) those requests alone.
    errors_at = _profile(week, g, svc.name, ("error_step",), inject)
    slower_at = _profile(week, g, svc.name, ("latency_step",), inject)
    err_share = np.full(n, svc.server_error_share)
    for inj, active in errors_at:
        if not inj.localised:
            err_share = err_share + inj.magnitude * active
    err_share = np.clip(err_share, 0, 1)
    latency_x = np.ones(n)
    for inj, active in slower_at:
        if not inj.localised:
            latency_x = latency_x * (1 + (inj.magnitude - 1) * active)
    latency_x = latency_x * (0.92 + 0.08 * load)  # a little slower under load
    local_errors = [(inj, active) for inj, active in errors_at if inj.localised]
    local_slower = [(inj, active) for inj, active in slower_at if inj.localised]

    weights = np.full(svc.instances, 1.0 / svc.instances)
    http = {}
    for i in range(svc.instances):
        for r, route in enumerate(svc.routes):
            base = rps * STEP * weights[i] * route.share
            # 5xx come from the first route only (its share carries the service's error
            # share), 404s from routes that have them: 4 label sets per pod, not 6.
            server = np.clip(err_share / route.share, 0, 1) if r == 0 else np.zeros(n)
            for inj, active in local_errors:
                if inj.applies_to(i, route):
                    server = np.clip(server + inj.magnitude * active, 0, 1 - route.client_errors)
            route_x = latency_x
            for inj, active in local_slower:
                if inj.applies_to(i, route):
                    route_x = route_x * (1 + (inj.magnitude - 1) * active)
            serves_errors = r == 0 or any(inj.applies_to(i, route) for inj, _ in local_errors)
            shares = {
                "SUCCESS": 1 - server - route.client_errors,
                "CLIENT_ERROR": np.full(n, route.client_errors),
                "SERVER_ERROR": server,
            }
            medians = {
                "SUCCESS": route.median_s * route_x,
                "CLIENT_ERROR": 0.3 * route.median_s * np.ones(n),
                "SERVER_ERROR": 0.6 * route.median_s * route_x,
            }
            for outcome, _status in OUTCOMES:
                if outcome == "CLIENT_ERROR" and route.client_errors == 0:
                    continue
                if outcome == "SERVER_ERROR" and not serves_errors:
                    continue
                lam = base * shares[outcome]
                probs = _bucket_probabilities(medians[outcome], route.sigma)
                mean_s = medians[outcome] * np.exp(route.sigma**2 / 2)
                if noise:
                    counts = rng.poisson(lam).astype(np.int64)
                    buckets = rng.multinomial(counts, probs)
                    total = counts * mean_s * rng.gamma(40, 1 / 40, size=n)
                else:
                    counts = lam
                    buckets = lam[:, None] * probs
                    total = lam * mean_s
                http[i, r, outcome] = (counts, buckets, total)

    # HPA: desired replicas from load, evaluated each minute, scale-down after 15 min.
    desired = np.clip(np.ceil(rps / svc.rps_per_replica), 2, 6)
    replicas = pd.Series(desired).rolling(15, min_periods=1).max().to_numpy()
    cpu_x = np.ones(n)
    for inj, active in _profile(week, g, svc.name, ("cpu_step", "cpu_ramp"), inject):
        cpu_x = cpu_x * (1 + inj.magnitude * active)
    per_replica = svc.cpu_idle + svc.cpu_per_rps * rps / replicas
    cpu = np.tile(per_replica * cpu_x, (svc.instances, 1))
    if noise:
        cpu = cpu * _rng(week, svc.name, "cpu").normal(1.0, 0.05, size=cpu.shape)
    cpu = np.clip(cpu, 0.0, 1.0)

    restarts = [
        (r.instance, int(np.searchsorted(g.ts, moment(week, r.day, r.at))))
        for r in week.restarts
        if r.service == svc.name
    ]
    leak = np.zeros(n)
    for inj, days in _profile(week, g, svc.name, ("memory_leak",), inject):
        leak = leak + inj.magnitude * days
    heap = np.empty((svc.instances, n))
    alloc = svc.alloc_per_request * rps * STEP / svc.instances
    jitter = _rng(week, svc.name, "heap").normal(1.0, 0.15, size=(svc.instances, n))
    for i in range(svc.instances):
        restart_at = {m for inst, m in restarts if inst == i}
        floor = (svc.heap_floor + leak) * HEAP_MAX_BYTES
        # Stagger the pods' GC phase; the sawtooth is the same shape with and without noise.
        used = floor[0] + (0.2 + 0.3 * i) * (GC_TRIGGER * HEAP_MAX_BYTES - floor[0])
        row = heap[i]
        step = alloc * (jitter[i] if noise else 1.0)
        trigger = GC_TRIGGER * HEAP_MAX_BYTES
        for t in range(n):
            if t in restart_at:
                used = 0.6 * floor[t]  # a fresh JVM: the live set is still being built
            used += step[t]
            if used >= trigger:
                used = floor[t]
            row[t] = used
        np.minimum(row, 0.98 * HEAP_MAX_BYTES, out=row)

    # OpenCost: each hour's value is the previous hour's usage, constant within the hour.
    hour = (g.ts // 3600).astype(np.int64)
    price_x = np.ones(n)
    for inj, active in _profile(week, g, svc.name, ("cost_step",), inject):
        price_x = price_x * (1 + inj.magnitude * active)

    def hourly(values: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame({"h": hour, "v": values})
        means = frame.groupby("h")["v"].mean()
        previous = means.shift(1).bfill()
        return previous.reindex(hour).to_numpy()

    requests_h = hourly(rps) * 3600 / 1e6
    cost = {
        "cost_compute": hourly(replicas * svc.cpu_price * price_x),
        "cost_memory": hourly(replicas * svc.ram_price),
        "cost_storage": np.full(n, svc.storage_usd_h),
        "cost_network": requests_h * svc.network_usd_per_mreq,
    }
    gap = np.zeros(n, dtype=bool)
    for gp in week.gaps:
        if gp.service == svc.name:
            start = moment(week, gp.day, gp.at)
            gap |= (g.ts >= start) & (g.ts < start + gp.minutes * STEP)
    return ServiceData(svc.name, svc.instances, http, cpu, heap, replicas, cost, restarts, gap)


# --------------------------------------------------------------------------- OpenMetrics


def _cumulative(inc: np.ndarray, resets: list[int]) -> np.ndarray:
    """Cumulative counter of per-minute increments, restarting at 0 at each reset index."""
    total = np.cumsum(inc, axis=0)
    for at in sorted(resets):
        total[at:] = total[at:] - (total[at - 1] if at > 0 else 0)
    return total


def _num(values: np.ndarray, integer: bool) -> list[str]:
    if integer:
        return [str(v) for v in np.asarray(values, dtype=np.int64).tolist()]
    return [repr(v) for v in np.round(np.asarray(values, dtype=float), 6).tolist()]


def http_labels(service: str, instance: int, route: Route, outcome: str) -> str:
    """The label set of one Micrometer http_server_requests_seconds series."""
    status = dict(OUTCOMES)[outcome]
    return (
        f'application="{service}",instance="{service}-{instance}:8080",method="{route.method}",'
        f'outcome="{outcome}",status="{status}",uri="{route.uri}"'
    )


def openmetrics_lines(week: WeekSpec, g: Grid, data: list[ServiceData]) -> Iterator[str]:
    """The week as OpenMetrics text chunks (timestamps in seconds); no `# EOF`."""
    stamps_all = [str(t) for t in g.ts.tolist()]
    les = [repr(b) for b in BUCKETS] + ["+Inf"]

    yield "# TYPE http_server_requests_seconds histogram\n"
    yield "# HELP http_server_requests_seconds Duration of HTTP server request handling\n"
    for d in data:
        svc = week.service(d.name)
        keep = np.flatnonzero(~d.gap)
        stamps = [stamps_all[k] for k in keep]
        for (i, r, outcome), (_counts, buckets, total) in d.http.items():
            route = svc.routes[r]
            resets = [m for inst, m in d.restarts if inst == i]
            labels = http_labels(d.name, i, route, outcome)
            cum_buckets = np.cumsum(_cumulative(buckets, resets), axis=1)[keep]
            columns = [
                (f'http_server_requests_seconds_bucket{{{labels},le="{le}"}} ', cum_buckets[:, b])
                for b, le in enumerate(les)
            ]
            columns.append((f"http_server_requests_seconds_count{{{labels}}} ", cum_buckets[:, -1]))
            text = [(p, _num(v, True)) for p, v in columns]
            sums = _num(_cumulative(total, resets)[keep], False)
            text.append((f"http_server_requests_seconds_sum{{{labels}}} ", sums))
            for k, stamp in enumerate(stamps):
                yield "".join(f"{p}{vals[k]} {stamp}\n" for p, vals in text)

    def gauge(name: str, help_text: str, rows: list[tuple[str, np.ndarray, np.ndarray]]):
        yield f"# TYPE {name} gauge\n# HELP {name} {help_text}\n"
        for labels, values, mask in rows:
            idx = np.flatnonzero(mask)
            vals = _num(values[idx], False)
            yield "".join(
                f"{name}{{{labels}}} {v} {stamps_all[k]}\n"
                for v, k in zip(vals, idx.tolist(), strict=True)
            )

    def pods(d: ServiceData, extra: str = "") -> list[str]:
        return [
            f'application="{d.name}",instance="{d.name}-{i}:8080"{extra}'
            for i in range(d.instances)
        ]

    yield from gauge(
        "process_cpu_usage",
        "The recent cpu usage for the Java Virtual Machine process",
        [(lab, d.cpu[i], ~d.gap) for d in data for i, lab in enumerate(pods(d))],
    )
    heap_labels = ',area="heap",id="G1 Old Gen"'
    yield from gauge(
        "jvm_memory_used_bytes",
        "The amount of used memory",
        [(lab, d.heap_used[i], ~d.gap) for d in data for i, lab in enumerate(pods(d, heap_labels))],
    )
    yield from gauge(
        "jvm_memory_max_bytes",
        "The maximum amount of memory in bytes that can be used for memory management",
        [
            (lab, np.full(len(g), float(HEAP_MAX_BYTES)), ~d.gap)
            for d in data
            for lab in pods(d, heap_labels)
        ],
    )
    everywhere = np.ones(len(g), dtype=bool)
    yield from gauge(
        "kube_deployment_status_replicas_available",
        "The number of available replicas per deployment",
        [
            (
                f'application="{d.name}",deployment="{d.name}",namespace="shop"',
                d.replicas,
                everywhere,
            )
            for d in data
        ],
    )
    for kpi, family in COST_FAMILIES.items():
        yield from gauge(
            family,
            f"OpenCost-style {kpi.removeprefix('cost_')} cost of the workload, USD per hour",
            [(f'application="{d.name}",namespace="shop"', d.cost[kpi], everywhere) for d in data],
        )


def write_week(week: WeekSpec, path: Path) -> int:
    """Generate the week (with noise and injections) into `path`; returns sample lines."""
    g = grid(week)
    data = [service_data(week, g, svc, noise=True, inject=True) for svc in week.services]
    lines = 0
    with path.open("w", encoding="utf-8") as out:
        for chunk in openmetrics_lines(week, g, data):
            lines += chunk.count("\n")
            out.write(chunk)
        out.write("# EOF\n")
    return lines


# --------------------------------------------------------------------------- KPIs in numpy


def _rolling(values: np.ndarray, window: int = RATE_WINDOW_MINUTES) -> np.ndarray:
    cum = np.cumsum(values, axis=0)
    out = cum.copy()
    out[window:] = cum[window:] - cum[:-window]
    return out


def histogram_quantile(q: float, cum_buckets: np.ndarray) -> np.ndarray:
    """Prometheus's histogram_quantile over cumulative bucket counts [T, len(BUCKETS)+1]."""
    total = cum_buckets[:, -1]
    rank = q * total
    idx = np.argmax(cum_buckets >= rank[:, None], axis=1)
    upper = np.asarray([*BUCKETS, BUCKETS[-1]])[idx]
    lower = np.where(idx > 0, np.asarray([0.0, *BUCKETS])[idx], 0.0)
    below = np.where(idx > 0, np.take_along_axis(cum_buckets, (idx - 1)[:, None], 1)[:, 0], 0.0)
    inside = np.take_along_axis(cum_buckets, idx[:, None], 1)[:, 0] - below
    with np.errstate(invalid="ignore", divide="ignore"):
        value = lower + (upper - lower) * (rank - below) / inside
    value = np.where(idx == len(BUCKETS), BUCKETS[-1], value)
    return np.where(total > 0, value, np.nan)


def kpi_series(d: ServiceData) -> dict[str, np.ndarray]:
    """Each KPI per minute as the catalog's PromQL computes it (rate over 5 minutes)."""
    requests = sum(c for c, _, _ in d.http.values())
    errors = sum(c for (_, _, o), (c, _, _) in d.http.items() if o == "SERVER_ERROR")
    buckets = sum(b for _, b, _ in d.http.values())
    req_w = _rolling(np.asarray(requests, dtype=float))
    err_w = _rolling(np.asarray(errors, dtype=float))
    cum_b = np.cumsum(_rolling(np.asarray(buckets, dtype=float)), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        error_rate = np.where(req_w > 0, 100 * err_w / req_w, np.nan)
    out = {
        "throughput": req_w / (RATE_WINDOW_MINUTES * STEP),
        "error_rate": error_rate,
        "availability": 100 - error_rate,
        "cpu_utilization": 100 * d.cpu.mean(axis=0),
        "memory_utilization": 100 * d.heap_used.sum(axis=0) / (d.instances * HEAP_MAX_BYTES),
        **{k: 1000 * histogram_quantile(q, cum_b) for k, q in QUANTILES.items()},
        **d.cost,
    }
    for name in out:
        if not name.startswith("cost_"):
            out[name] = np.where(d.gap, np.nan, out[name])
    return out


# --------------------------------------------------------------------------- ground truth

KIND_OF = {
    "availability": "user_facing",
    "error_rate": "user_facing",
    "throughput": "user_facing",
    "latency_p50": "user_facing",
    "latency_p95": "user_facing",
    "latency_p99": "user_facing",
    "cpu_utilization": "resource",
    "memory_utilization": "resource",
    **dict.fromkeys(COST_FAMILIES, "cost"),
}
HIGHER_IS_BETTER = {"availability"}
NEUTRAL = {"throughput"}
THRESHOLD_PCT = {k: 10.0 for k in KPI_NAMES} | {"availability": 0.1}
"""threshold_pct of each KPI as the generated tars.yaml sets it (the product defaults)."""
DEGRADATION_PCT = {
    k: (THRESHOLD_PCT[k] if KIND_OF[k] == "user_facing" else 30.0) for k in KPI_NAMES
}
"""Adverse change that makes a degradation: threshold_pct for user-facing KPIs,
thresholds.unexpected_drift_max_pct (30 %) for resource and cost KPIs (the product's rule)."""
SUDDEN_WINDOW_MINUTES = 30  # a step is judged on its first 30 minutes for "sudden" KPIs
COST_ONSET_MINUTES = 120  # an hourly cost gauge shows a step one hour late (previous hour)


@dataclass
class Effect:
    kpi: str
    day: int
    change_pct: float  # injected vs counterfactual day mean, noise-free
    adverse: bool


@dataclass
class Truth:
    """What one injection truly does, from the noise-free model."""

    injection: Injection
    start_ts: int
    end_ts: int | None  # None: to the end of the week
    effects: list[Effect] = field(default_factory=list)  # every (kpi, day) beyond threshold_pct
    sudden_kpis: list[str] = field(default_factory=list)  # beyond threshold over the onset

    @property
    def degradations(self) -> list[tuple[str, str, int]]:
        """(kpi, service, first day) whose adverse change reaches the degradation threshold.
        Cost KPIs are never degradations in the product (methods/cost.md): a cost step is
        judged by the cost section's level change, scored separately."""
        first: dict[str, int] = {}
        for e in self.effects:
            if KIND_OF[e.kpi] == "cost":
                continue
            if e.adverse and abs(e.change_pct) >= DEGRADATION_PCT[e.kpi]:
                first[e.kpi] = min(first.get(e.kpi, 99), e.day)
        return [(k, self.injection.service, d) for k, d in sorted(first.items())]

    @property
    def affected_kpis(self) -> set[str]:
        return {e.kpi for e in self.effects} | set(self.sudden_kpis)

    @property
    def active_days(self) -> set[int]:
        return {e.day for e in self.effects} | {self.injection.day}

    def as_dict(self) -> dict:
        inj = self.injection
        return {
            "label": inj.label,
            "kind": inj.kind,
            "service": inj.service,
            "day": inj.day,
            "start": self.start_ts,
            "end": self.end_ts,
            "sudden": inj.sudden,
            "incident": inj.incident,
            "magnitude": inj.magnitude,
            "degradations": [list(d) for d in self.degradations],
            "sudden_kpis": self.sudden_kpis,
            "effects": [
                {
                    "kpi": e.kpi,
                    "day": e.day,
                    "change_pct": round(e.change_pct, 3),
                    "adverse": e.adverse,
                }
                for e in self.effects
            ],
        }


def _adverse(kpi: str, change: float) -> bool:
    if kpi in NEUTRAL:
        return False
    return change < 0 if kpi in HIGHER_IS_BETTER else change > 0


def _relative(new: float, old: float) -> float:
    if not np.isfinite(new) or not np.isfinite(old):
        return 0.0
    if abs(old) < 1e-9:
        return 0.0 if abs(new) < 1e-9 else float("inf") * np.sign(new - old)
    return 100.0 * (new - old) / abs(old)


def ground_truth(week: WeekSpec) -> list[Truth]:
    """Each injection's effect: its noise-free KPI series (only that injection applied) vs the
    noise-free counterfactual, as day means (days 0..7) and over its first 30 minutes."""
    g = grid(week)
    truths = []
    base_cache: dict[str, dict[str, np.ndarray]] = {}
    for inj in week.injections:
        svc = week.service(inj.service)
        if svc.name not in base_cache:
            base_cache[svc.name] = kpi_series(service_data(week, g, svc, noise=False, inject=False))
        base = base_cache[svc.name]
        alone = _replace(week, injections=(inj,))
        hit = kpi_series(service_data(alone, g, svc, noise=False, inject=True))
        start = moment(week, inj.day, inj.at)
        end = start + inj.minutes * STEP if inj.minutes else None
        truth = Truth(inj, start, end)
        for kpi in KPI_NAMES:
            for day in range(0, WINDOW_DAYS + 1):
                lo, hi = day_bounds(week, day)
                sel = (g.ts >= lo) & (g.ts < hi)
                change = _relative(np.nanmean(hit[kpi][sel]), np.nanmean(base[kpi][sel]))
                if abs(change) >= THRESHOLD_PCT[kpi]:
                    truth.effects.append(
                        Effect(kpi, day, float(change), bool(_adverse(kpi, change)))
                    )
            if inj.sudden:
                window = COST_ONSET_MINUTES if KIND_OF[kpi] == "cost" else SUDDEN_WINDOW_MINUTES
                onset_end = start + min(inj.minutes or 10**6, window) * STEP
                sel = (g.ts >= start) & (g.ts < onset_end)
                change = _relative(np.nanmean(hit[kpi][sel]), np.nanmean(base[kpi][sel]))
                if abs(change) >= THRESHOLD_PCT[kpi] and kpi not in NEUTRAL:
                    truth.sudden_kpis.append(kpi)
        truths.append(truth)
    return truths


def observed_day_means(week: WeekSpec) -> dict[tuple[str, str], list[float]]:
    """Day means (0..7) of every KPI of the generated (noisy) week: the numbers an SRE
    would compute from the raw samples, for the docs and the tests."""
    g = grid(week)
    out = {}
    for svc in week.services:
        series = kpi_series(service_data(week, g, svc, noise=True, inject=True))
        for kpi, values in series.items():
            means = []
            for day in range(0, WINDOW_DAYS + 1):
                lo, hi = day_bounds(week, day)
                sel = (g.ts >= lo) & (g.ts < hi)
                means.append(float(np.nanmean(values[sel])))
            out[svc.name, kpi] = means
    return out
