"""Breakdowns for the top-contributor drill-down: a KPI's additive measures by label value.

For a degraded (service, KPI), the KPI's numerator and denominator are queried again with
`sum by (<label>)`, one label at a time, over the baseline window and the degraded window;
`judge/contributors.py` ranks the label values (docs/methods/contributors.md).

- **From Prometheus** (`fetch_breakdown`): each template is a range query at the source's
  step, with `{by}` the label and the KPI queries' usual placeholders ({service},
  {service_label}, {rate_window}), through the source's own `PrometheusClient` (auth,
  retries, secret scrubbing). A label value's measure is averaged over the window's
  evaluation timestamps, a timestamp where its series is absent counting 0, so the values
  add up to the total's average. A label no series carries (PromQL's `sum by` then gives
  one series without it) is skipped, and so is a label with a single value.
- **From a snapshot** (`snapshot_breakdown`): `<release>/breakdown/*.parquet` with columns
  service, kpi, ts (TIMESTAMPTZ), dimension, element, numerator, denominator (null or
  absent for an additive KPI), averaged the same way, read with DuckDB.

Both keep at most `MAX_ELEMENTS` values per label (`cap_elements`: the rest summed into
"(other)").
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from tars_pipeline.config import (
    DEFAULT_BREAKDOWN_LABELS,
    GIB_BYTES,
    KpiBreakdown,
    KpiDefinition,
    default_kpis,
    usage_kpis,
)
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.contributors import (
    BREAKDOWN_COLUMNS,
    MAX_ELEMENTS,
    NO_VALUE,
    Contributors,
    cap_elements,
    empty_breakdown,
    rank_contributors,
)
from tars_pipeline.sources.base import expected_points
from tars_pipeline.sources.prometheus import parse_values, range_chunks, render_query

if TYPE_CHECKING:
    from tars_pipeline.sources.prometheus import PrometheusClient

BY = "{by}"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
HTTP_LABELS = DEFAULT_BREAKDOWN_LABELS
RESOURCE_LABELS: tuple[str, ...] = ("pod", "container", "instance", "node", "region", "version")
COST_LABELS: tuple[str, ...] = ("node", "instance_type", "instance", "pod", "region")
BREAKDOWN_DIR = "breakdown"
"""The snapshot's breakdown files: <release>/breakdown/*.parquet."""

Window = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class BreakdownQuery:
    """How to break one KPI down by label: KPI = scale · Σ num / Σ den, or scale · Σ num.

    `numerator` and `denominator` are PromQL templates with `{by}` (the label) and the
    KPI queries' placeholders. `complement`: the KPI is scale · (1 − Σ num / Σ den)
    (availability from errors / requests). `measure` names the decomposed measure when it
    is not the KPI itself ("mean latency" for a percentile), and `slice_query` is the
    slice's own KPI by `{by}` (its quantile), fetched to show beside it, never ranked.
    """

    numerator: str
    denominator: str | None = None
    scale: float = 1.0
    labels: tuple[str, ...] = DEFAULT_BREAKDOWN_LABELS
    complement: bool = False
    measure: str | None = None
    slice_query: str | None = None

    def __post_init__(self) -> None:
        for name in ("numerator", "denominator", "slice_query"):
            template = getattr(self, name)
            if template is not None and BY not in template:
                raise ValueError(f"breakdown {name} has no {BY}: {template!r}")
        bad = [label for label in self.labels if not LABEL_NAME.match(label)]
        if bad:
            raise ValueError(f"breakdown labels {bad} are not Prometheus label names")
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"breakdown scale must be finite and non-zero, got {self.scale}")
        if self.complement and self.denominator is None:
            raise ValueError("a complement (1 − num / den) needs a denominator")

    @property
    def ratio(self) -> bool:
        return self.denominator is not None

    @classmethod
    def from_config(cls, breakdown: KpiBreakdown) -> BreakdownQuery:
        """A `kpis[].breakdown` block of tars.yaml."""
        return cls(
            numerator=breakdown.numerator,
            denominator=breakdown.denominator,
            scale=breakdown.scale,
            labels=tuple(breakdown.labels),
            complement=breakdown.complement,
            measure=breakdown.measure,
            slice_query=breakdown.slice_query,
        )


def default_breakdowns() -> dict[str, BreakdownQuery]:
    """The breakdowns of the default catalog (`default_kpis`, `usage_kpis`), over the
    same conventional metric names."""
    sel = '{service_label}="{service}"'
    window = "[{rate_window}]"
    containers = f'{sel},container!="",container!="POD"'

    def by(expression: str) -> str:
        return f"sum by ({BY}) ({expression})"

    requests = by(f"rate(http_requests_total{{{sel}}}{window})")
    errors = by(f'rate(http_requests_total{{{sel},code=~"5.."}}{window})')

    def latency(q: str) -> BreakdownQuery:
        return BreakdownQuery(
            numerator=by(f"rate(http_request_duration_seconds_sum{{{sel}}}{window})"),
            denominator=by(f"rate(http_request_duration_seconds_count{{{sel}}}{window})"),
            scale=1000.0,
            measure="mean latency",
            slice_query=(
                f"1000 * histogram_quantile({q}, sum by (le, {BY}) "
                f"(rate(http_request_duration_seconds_bucket{{{sel}}}{window})))"
            ),
        )

    def cost(metric: str) -> BreakdownQuery:
        return BreakdownQuery(numerator=by(f"{metric}{{{sel}}}"), labels=COST_LABELS)

    cpu = f"rate(process_cpu_seconds_total{{{sel}}}{window})"
    return {
        "availability": BreakdownQuery(errors, requests, scale=100.0, complement=True),
        "error_rate": BreakdownQuery(errors, requests, scale=100.0),
        "throughput": BreakdownQuery(requests),
        "latency_p50": latency("0.50"),
        "latency_p95": latency("0.95"),
        "latency_p99": latency("0.99"),
        "cpu_utilization": BreakdownQuery(
            by(cpu), f"count by ({BY}) ({cpu})", scale=100.0, labels=RESOURCE_LABELS
        ),
        "memory_utilization": BreakdownQuery(
            by(f"container_memory_working_set_bytes{{{sel}}}"),
            by(f"container_spec_memory_limit_bytes{{{sel}}}"),
            scale=100.0,
            labels=RESOURCE_LABELS,
        ),
        "cost_compute": cost("node_cpu_hourly_cost"),
        "cost_memory": cost("node_ram_hourly_cost"),
        "cost_storage": cost("pv_hourly_cost"),
        "cost_network": cost("network_hourly_cost"),
        "usage_compute": BreakdownQuery(
            by(f"rate(container_cpu_usage_seconds_total{{{containers}}}{window})"),
            labels=RESOURCE_LABELS,
        ),
        "usage_memory": BreakdownQuery(
            by(f"container_memory_working_set_bytes{{{containers}}}"),
            scale=1 / GIB_BYTES,
            labels=RESOURCE_LABELS,
        ),
        "usage_storage": BreakdownQuery(
            by(f"kubelet_volume_stats_capacity_bytes{{{sel}}}"),
            scale=1 / GIB_BYTES,
            labels=(*RESOURCE_LABELS, "persistentvolumeclaim"),
        ),
        "usage_network": BreakdownQuery(
            by(f"rate(container_network_transmit_bytes_total{{{sel}}}{window})"),
            scale=3600 / GIB_BYTES,
            labels=RESOURCE_LABELS,
        ),
    }


@cache
def _default_queries() -> Mapping[str, str]:
    return {kpi.name: kpi.query for kpi in (*default_kpis(), *usage_kpis())}


def breakdown_query_for(kpi: KpiDefinition) -> BreakdownQuery | None:
    """The KPI's `breakdown` from tars.yaml; else the default catalog's, but only while
    the KPI keeps the catalog's query (a redefined `error_rate` over other metrics does not
    get a breakdown over http_requests_total); else None."""
    if kpi.breakdown is not None:
        try:
            return BreakdownQuery.from_config(kpi.breakdown)
        except ValueError as error:
            raise TarsUserError(
                str(error),
                where=f"kpis[{kpi.name}].breakdown",
                remedy=f"write the numerator (and denominator) with {BY} where the label goes, "
                f"e.g. sum by ({BY}) (rate(...))",
            ) from None
    if _default_queries().get(kpi.name) != kpi.query:
        return None
    return default_breakdowns().get(kpi.name)


def render_breakdown(
    template: str, *, by: str, service: str, service_label: str, rate_window: str
) -> str:
    """`template` with `{by}` = the label (a validated label name, so it cannot smuggle a
    placeholder in), then the KPI placeholders as `render_query` fills them: a service
    name holding "{by}" stays text."""
    if not LABEL_NAME.match(by):
        raise ValueError(f"{by!r} is not a Prometheus label name")
    return render_query(
        template.replace(BY, by),
        service=service,
        service_label=service_label,
        rate_window=rate_window,
    )


def rank_breakdown(
    breakdown: pd.DataFrame, query: BreakdownQuery, *, top_n: int = 3
) -> Contributors | None:
    """`rank_contributors` with the query's scale, ratio, complement and measure."""
    return rank_contributors(
        breakdown,
        scale=query.scale,
        ratio=query.ratio,
        complement=query.complement,
        top_n=top_n,
        measure=query.measure,
    )


# --- Prometheus ------------------------------------------------------------------------------


def fetch_breakdown(
    client: PrometheusClient,
    query: BreakdownQuery,
    *,
    kpi: KpiDefinition,
    service: str,
    service_label: str,
    rate_window: str,
    baseline: Window,
    observed: Window,
    step_seconds: int,
    max_elements: int = MAX_ELEMENTS,
) -> pd.DataFrame:
    """The breakdown of one (service, KPI) over two windows, from Prometheus: one row per
    (label, value) with BREAKDOWN_COLUMNS, and `baseline_kpi` / `observed_kpi` when the
    query has a `slice_query`. Windows are [start, end), evaluated at `step_seconds`."""
    windows = {"baseline": baseline, "observed": observed}
    for name, (start, end) in windows.items():
        if expected_points(start, end, step_seconds) < 1:
            raise ValueError(f"the {name} window {start} .. {end} holds no {step_seconds} s step")
    templates = {
        part: template
        for part, template in (
            ("num", query.numerator),
            ("den", query.denominator),
            ("kpi", query.slice_query),
        )
        if template is not None
    }
    tasks = [
        (label, side, part) for label in query.labels for side in windows for part in templates
    ]

    def run(task: tuple[str, str, str]) -> dict[str, float]:
        label, side, part = task
        promql = render_breakdown(
            templates[part],
            by=label,
            service=service,
            service_label=service_label,
            rate_window=rate_window,
        )
        start, end = windows[side]
        return _window_means(
            client,
            promql,
            label,
            start,
            end,
            step_seconds,
            kpi=kpi,
            service=service,
            additive=part != "kpi",
        )

    if not tasks:
        return empty_breakdown()
    workers = min(client.settings.max_concurrent_queries, len(tasks))
    with ThreadPoolExecutor(workers, thread_name_prefix="tars-breakdown") as pool:
        try:
            results = dict(zip(tasks, pool.map(run, tasks), strict=True))
        except BaseException:  # the first error; the queries not yet started are cancelled
            pool.shutdown(wait=True, cancel_futures=True)
            raise

    rows: list[dict] = []
    for label in query.labels:
        measured = {
            (side, part): results[label, side, part] for side in windows for part in templates
        }
        elements = sorted(
            {
                element
                for (_, part), values in measured.items()
                if part != "kpi"
                for element in values
            }
        )
        if len(elements) < 2:
            continue  # no series carries the label ("" only), or one value: nothing to rank
        for element in elements:
            row = {"dimension": label, "element": element or NO_VALUE}
            for side in windows:
                # A value with no series on a side (a uri without errors) measures 0 there.
                for part in ("num", "den", "kpi"):
                    if part in templates:
                        row[f"{side}_{part}"] = measured[side, part].get(element, np.nan)
                    elif part == "den":
                        row[f"{side}_den"] = np.nan
            rows.append(row)
    if not rows:
        return empty_breakdown()
    frame = pd.DataFrame(rows)
    for column in BREAKDOWN_COLUMNS[2:]:
        frame[column] = frame[column].astype("float64")
    return cap_elements(frame, max_elements)


def _window_means(
    client: PrometheusClient,
    promql: str,
    label: str,
    start: dt.datetime,
    end: dt.datetime,
    step_seconds: int,
    *,
    kpi: KpiDefinition,
    service: str,
    additive: bool,
) -> dict[str, float]:
    """Each label value's mean over [start, end): an additive measure's sum over the
    window's evaluation timestamps divided by their number (absent = 0); a slice's own
    KPI (a quantile, not additive) as the mean of its finite samples."""
    points = expected_points(start, end, step_seconds)
    start_ms, end_ms = round(start.timestamp() * 1000), round(end.timestamp() * 1000)
    per_element: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for first, last in range_chunks(
        start, points, step_seconds, client.settings.max_points_per_query
    ):
        try:
            result = client.query_range(promql, first, last, step_seconds, kpi=kpi, service=service)
        except TarsUserError as error:
            raise _as_breakdown_error(error, kpi, promql) from None
        for series in result:
            element = str(series.get("metric", {}).get(label, ""))
            per_element.setdefault(element, []).append(parse_values(series.get("values", [])))
    means: dict[str, float] = {}
    for element, parts in per_element.items():
        # Series of one value in one chunk are distinct series: their samples add up.
        stamps = np.concatenate([part[0] for part in parts])
        values = np.concatenate([part[1] for part in parts])
        inside = (stamps >= start_ms) & (stamps < end_ms) & np.isfinite(values)
        if additive:
            means[element] = float(values[inside].sum() / points)
        elif inside.any():
            means[element] = float(values[inside].mean())
    return means


def _as_breakdown_error(error: TarsUserError, kpi: KpiDefinition, promql: str) -> TarsUserError:
    """A rejected breakdown query names the breakdown to fix, not the KPI's own query."""
    if error.where != f"kpis[{kpi.name}].query":
        return error
    message = str(error).removeprefix(f"{error.where}: ").split("\n  -> ")[0]
    message = message.replace("the query of KPI", "the breakdown query of KPI", 1)
    return TarsUserError(
        message,
        where=f"kpis[{kpi.name}].breakdown",
        remedy=f"fix the breakdown PromQL (try it in the Prometheus UI with a label for {BY}); "
        f"placeholders: {BY}, {{service}}, {{service_label}}, {{rate_window}}",
    )


# --- snapshot files --------------------------------------------------------------------------

REQUIRED_COLUMNS = ("service", "kpi", "ts", "dimension", "element", "numerator")
ZONED_TS = "TIMESTAMP WITH TIME ZONE"
NUMERIC_TYPES = frozenset(
    ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT",
     "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
)  # fmt: skip


def snapshot_breakdown(
    release_dir: Path,
    *,
    service: str,
    kpi: str,
    baseline: Window,
    observed: Window,
    max_elements: int = MAX_ELEMENTS,
) -> pd.DataFrame:
    """The breakdown of one (service, KPI name) over two [start, end) windows, from the
    snapshot's `breakdown/*.parquet`; empty when the release has none. A value's measure is
    its sum over the window's timestamps divided by the number of timestamps the
    dimension has rows at; NaN/Inf measures are dropped (gaps, as in the samples)."""
    folder = Path(release_dir) / BREAKDOWN_DIR
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return empty_breakdown()
    with duckdb.connect() as conn:
        with_denominator = [_check_file(conn, path) for path in files]
        denominator = "denominator" if any(with_denominator) else "NULL"
        parameters = {
            "files": [str(path) for path in files],
            "service": service,
            "kpi": kpi,
            "b0": baseline[0],
            "b1": baseline[1],
            "o0": observed[0],
            "o1": observed[1],
        }
        selected = (
            "SELECT dimension, element, ts, CAST(numerator AS DOUBLE) AS numerator, "
            f"CAST({denominator} AS DOUBLE) AS denominator "
            "FROM read_parquet($files, union_by_name = true) "
            "WHERE service = $service AND kpi = $kpi"
        )
        try:
            doubled = conn.execute(
                f"SELECT dimension, element, ts, count(*) AS n FROM ({selected}) "
                "GROUP BY ALL HAVING count(*) > 1 ORDER BY ts, dimension, element LIMIT 1",
                {name: parameters[name] for name in ("files", "service", "kpi")},
            ).fetchall()
            averaged = conn.execute(
                f"""
                WITH windowed AS (
                    SELECT *, CASE WHEN ts >= $b0 AND ts < $b1 THEN 'baseline'
                                   WHEN ts >= $o0 AND ts < $o1 THEN 'observed' END AS side
                    FROM ({selected})
                ),
                points AS (
                    SELECT side, dimension, count(DISTINCT ts) AS points
                    FROM windowed WHERE side IS NOT NULL GROUP BY side, dimension
                )
                SELECT side, dimension, element,
                       sum(numerator) FILTER (WHERE isfinite(numerator)) / points AS num,
                       sum(denominator) FILTER (WHERE isfinite(denominator)) / points AS den
                FROM windowed JOIN points USING (side, dimension)
                GROUP BY side, dimension, element, points
                ORDER BY dimension, element
                """,
                parameters,
            ).df()
        except duckdb.Error as error:
            raise TarsUserError(
                f"cannot read the breakdown files: {str(error).splitlines()[0]}",
                where=str(folder),
                remedy="each file needs columns service, kpi, ts, dimension, element, "
                "numerator (and denominator for a ratio KPI)",
            ) from None
    if doubled:
        dimension, element, ts, count = doubled[0]
        raise TarsUserError(
            f"{count} rows for {service} / {kpi} {dimension}={element} at "
            f"{pd.Timestamp(ts).isoformat()}",
            where=str(folder),
            remedy="keep one row per (service, kpi, ts, dimension, element): a file "
            "exported twice does this",
        )
    if averaged.empty:
        return empty_breakdown()
    wide = averaged.pivot(index=["dimension", "element"], columns="side", values=["num", "den"])
    frame = pd.DataFrame(
        {
            "dimension": wide.index.get_level_values("dimension").astype(str),
            "element": wide.index.get_level_values("element").astype(str),
        }
    )
    for side in ("baseline", "observed"):
        for part in ("num", "den"):
            column = (part, side)
            frame[f"{side}_{part}"] = (
                wide[column].to_numpy(dtype="float64") if column in wide.columns else np.nan
            )
    return cap_elements(frame[list(BREAKDOWN_COLUMNS)], max_elements)


def _check_file(conn: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """A readable breakdown file with the columns and a zoned `ts`, or a TarsUserError
    naming it; True when it has a denominator column."""
    try:
        described = conn.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as error:
        raise TarsUserError(
            f"cannot read {path.name} as Parquet ({str(error).splitlines()[0]})",
            where=str(path),
            remedy="the file is truncated or not Parquet: export it again or remove it",
        ) from None
    types = {str(row[0]): str(row[1]) for row in described}
    missing = [name for name in REQUIRED_COLUMNS if name not in types]
    if missing:
        raise TarsUserError(
            f"{path.name} has no column(s) {missing} (it has {sorted(types)})",
            where=str(path),
            remedy="a breakdown file has columns service, kpi, ts (with time zone), "
            "dimension, element, numerator and, for a ratio KPI, denominator",
        )
    for name in ("numerator", "denominator"):
        if name in types and not (
            types[name] in NUMERIC_TYPES or types[name].startswith("DECIMAL")
        ):
            raise TarsUserError(
                f"{path.name}: column {name} is {types[name]}, not a number",
                where=str(path),
                remedy=f"write {name} as a float (DOUBLE) column",
            )
    if types["ts"] != ZONED_TS:
        raise TarsUserError(
            f"{path.name}: column ts is {types['ts']}, without a time zone",
            where=str(path),
            remedy="write ts as a zoned timestamp in UTC (pandas: pd.to_datetime(..., "
            "utc=True); DuckDB: TIMESTAMPTZ)",
        )
    return "denominator" in types
