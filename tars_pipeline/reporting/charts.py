"""The retrospective's charts, drawn with matplotlib and inlined into the HTML as SVG.

Why matplotlib: it is well kept, renders offline (Agg, no display, no browser, no network),
and its SVG keeps text as text (`svg.fonttype = none`), so a chart is a few kilobytes, sharp
when printed, and searchable. Every chart is a pure function of the retrospective model
(`reporting/retrospective.py`): what is drawn is in the JSON too.

Safety: service, KPI and resource names come from a metric source. matplotlib escapes
`<`, `>` and `&` in SVG text; mathtext is off (a `$` in a name would otherwise be parsed
as TeX, or fail); `label` folds control characters and truncates. Finally `_inert` parses
each SVG and refuses any that could run script or load a resource, so `Markup` is only
ever applied to drawings.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from xml.etree import ElementTree

# No pyplot: figures are plain `Figure` objects saved straight to SVG, so no GUI backend
# is ever selected and no global figure state is shared between runs.
import matplotlib
from markupsafe import Markup
from matplotlib import transforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, ScalarFormatter

from tars_pipeline.judge.direction import good_sign

# A palette that survives greyscale printing: one accent, red for adverse, amber for
# anomalies, soft fills for bands.
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
ACCENT = "#2563eb"
BAND_FILL = "#dbeafe"
ADVERSE = "#dc2626"
ANOMALY = "#d97706"
GOOD = "#15803d"
PREVIOUS = "#9ca3af"
# Health bands, best first (band names are configurable; colours go by rank).
BAND_COLOURS = ("#dcfce7", "#fef9c3", "#ffedd5", "#fee2e2", "#fecaca")
BAND_TEXT = ("#166534", "#854d0e", "#9a3412", "#991b1b", "#7f1d1d")
# Resource types and services get colours by order of appearance.
SERIES_COLOURS = ("#2563eb", "#0d9488", "#9333ea", "#ea580c", "#64748b", "#db2777", "#ca8a04")

_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.major.size": 0,
    "ytick.major.size": 0,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "figure.dpi": 100,
}

_MAX_LABEL = 40
_UNSAFE_ELEMENTS = frozenset({"script", "foreignobject", "iframe", "object", "embed", "image"})


def label(text: object, max_length: int = _MAX_LABEL) -> str:
    """Text from a source made safe for a matplotlib label: printable, one line, short.
    (Mathtext is off in `_RC`, so `$` is literal; matplotlib escapes XML itself.)"""
    flat = "".join(ch for ch in " ".join(str(text).split()) if ch.isprintable())
    return flat if len(flat) <= max_length else flat[: max_length - 1] + "…"


def _inert(svg: str) -> str:
    """`svg` unchanged if, parsed as XML, it has no element or attribute that can run
    script or load anything: no script/foreignObject, no on* handler, no link other than
    a same-document `#id`. Structural, so a label that merely *reads* `onerror=` is fine."""
    for element in ElementTree.fromstring(svg).iter():
        tag = str(element.tag).rsplit("}", 1)[-1].lower()
        if tag in _UNSAFE_ELEMENTS:
            raise ValueError(f"refusing to inline an SVG chart with a <{tag}> element")
        for name, value in element.attrib.items():
            attribute = name.rsplit("}", 1)[-1].lower()
            if attribute.startswith("on") or (attribute == "href" and not value.startswith("#")):
                raise ValueError(f"refusing to inline an SVG chart with a {attribute} attribute")
    return svg


@contextmanager
def _figure(key: str, width: float, height: float) -> Iterator[Figure]:
    # A salt per chart makes matplotlib's element ids unique within the page (several SVGs
    # share one HTML document) and stable between runs (reviewable diffs).
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"tars-{key}"}):
        yield Figure(figsize=(width, height), layout="constrained")


def _svg(figure: Figure, key: str, description: str) -> Markup:
    """The figure as an inline <svg> element: no XML prolog, scalable, labelled."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})  # inside `_figure`'s rc
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Comments, the RDF metadata block and matplotlib's global `*{stroke-...}` style go;
    # the page's CSS carries that rule, scoped to charts.
    text = re.sub(
        r"<!--.*?-->|<metadata>.*?</metadata>|<style[^>]*>.*?</style>", "", text, flags=re.DOTALL
    )
    # The root keeps its viewBox; CSS sizes it to the column width.
    root_end = text.index(">")
    root = re.sub(r'\s(width|height)="[^"]*"', "", text[:root_end])
    root += f' class="chart" role="img" aria-label="{_attribute(description)}"'
    return Markup(_inert(root + text[root_end:]))  # matplotlib's output, checked by _inert


def _attribute(text: str) -> str:
    return (
        label(text, 200)
        .replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def _day_ticks(axes: Any, days: Sequence[int], dates: Mapping[int, str] | None = None) -> None:
    axes.set_xticks(list(days))
    labels = []
    for day in days:
        name = "GA" if day == 0 else f"D{day}"
        if dates and day in dates:
            name += f"\n{dates[day][5:]}"
        labels.append(name)
    axes.set_xticklabels(labels)
    axes.set_xlim(min(days) - 0.5, max(days) + 0.5)


# ---------------------------------------------------------------------------------------
# Each KPI against its baseline band


def kpi_chart(series: Mapping[str, Any], key: str) -> Markup:
    """A series' daily statistic against baseline ± threshold; flagged days in red, days with
    anomaly events marked with an amber triangle and their count."""
    points = [d for d in series["days"] if d["value"] is not None]
    days = [d["day"] for d in series["days"]] or [0]
    unit = label(series.get("unit") or "", 12)
    with _figure(key, 3.4, 2.1) as figure:
        axes = figure.add_subplot()
        band = series.get("band")
        if band is not None:
            axes.axhspan(band["lower"], band["upper"], color=BAND_FILL, lw=0, zorder=0)
        if series.get("baseline") is not None:
            axes.axhline(series["baseline"], color=ACCENT, lw=0.9, ls=(0, (4, 3)), zorder=1)
        axes.plot(
            [d["day"] for d in points],
            [d["value"] for d in points],
            color=INK,
            lw=1.4,
            zorder=2,
        )
        for flagged, colour in ((False, INK), (True, ADVERSE)):
            chosen = [d for d in points if d["flagged"] == flagged and d["day"] > 0]
            axes.scatter(
                [d["day"] for d in chosen],
                [d["value"] for d in chosen],
                s=22 if flagged else 12,
                color=colour,
                zorder=3,
            )
        ga_day = [d for d in points if d["day"] == 0]
        axes.scatter(
            [d["day"] for d in ga_day], [d["value"] for d in ga_day], s=16, color=ACCENT, zorder=3
        )
        marker_at = transforms.blended_transform_factory(axes.transData, axes.transAxes)
        for day in series["days"]:
            if day["anomalies"]:
                axes.plot(day["day"], 0.94, marker="v", ms=6, color=ANOMALY, transform=marker_at)
                if day["anomalies"] > 1:
                    axes.text(
                        day["day"] + 0.16,
                        0.94,
                        str(day["anomalies"]),
                        color=ANOMALY,
                        fontsize=7,
                        va="center",
                        transform=marker_at,
                    )
        markers = series.get("markers") or {}
        for cause in markers.get("annotations") or []:
            axes.axvline(cause["x"], color=ACCENT, lw=0.8, ls=(0, (1, 2)), zorder=1)
            axes.plot(cause["x"], 0.06, marker="^", ms=5, color=ACCENT, transform=marker_at)
        if markers.get("onset") is not None:
            axes.axvline(markers["onset"], color=ADVERSE, lw=1.0, zorder=1)
            axes.text(
                markers["onset"] + 0.06,
                0.06,
                f"onset {label(markers.get('onset_label') or '', 8)}",
                color=ADVERSE,
                fontsize=6.5,
                va="bottom",
                transform=marker_at,
            )
        values = [d["value"] for d in points]
        if band is not None:
            values += [band["lower"], band["upper"]]
        if values:
            low, high = min(values), max(values)
            pad = (high - low) * 0.18 or abs(high) * 0.05 or 1.0
            axes.set_ylim(low - pad, high + pad * 1.6)
        axes.yaxis.set_major_locator(MaxNLocator(4))
        # Decimals follow the tick spacing (99.85 / 99.90, not 100 / 100); no offset text.
        formatter = ScalarFormatter(useOffset=False)
        formatter.set_scientific(False)
        axes.yaxis.set_major_formatter(formatter)
        if unit:
            axes.set_ylabel(unit)
        _day_ticks(axes, days)
        description = (
            f"{series.get('kpi_title') or series['kpi']} on {series['service']}: daily "
            f"{series.get('statistic', 'mean')} against the GA-day baseline band"
        )
        return _svg(figure, key, description)


# ---------------------------------------------------------------------------------------
# Health per day with its bands


def health_chart(
    health_scores: Sequence[Mapping[str, Any]],
    bands: Sequence[Mapping[str, Any]],
    dates: Mapping[int, str],
    key: str = "health",
) -> Markup:
    """The 0-100 score per day over the shaded bands it falls in."""
    days = [h["day"] for h in health_scores]
    scores = [h["score"] for h in health_scores]
    lowest = min(scores, default=100.0)
    floor = max(0.0, min(50.0, (lowest // 10) * 10 - 10))
    with _figure(key, 9.0, 2.5) as figure:
        axes = figure.add_subplot()
        colour_of_band: dict[str, str] = {}
        for rank, band in enumerate(bands):
            colour = BAND_COLOURS[min(rank, len(BAND_COLOURS) - 1)]
            text_colour = BAND_TEXT[min(rank, len(BAND_TEXT) - 1)]
            colour_of_band[band["band"]] = text_colour
            low, high = max(band["min_score"], floor), band["max_score"]
            if high <= floor:
                continue
            axes.axhspan(low, high, color=colour, lw=0, zorder=0)
            axes.text(
                1.005,
                (low + high) / 2,
                label(band["band"], 14),
                transform=transforms.blended_transform_factory(axes.transAxes, axes.transData),
                color=text_colour,
                fontsize=8,
                va="center",
                ha="left",
            )
        axes.plot(days, scores, color=INK, lw=1.6, zorder=2)
        for health in health_scores:
            colour = colour_of_band.get(health["band"], INK)
            axes.scatter([health["day"]], [health["score"]], s=28, color=colour, zorder=3)
            axes.annotate(
                f"{health['score']:.1f}",
                (health["day"], health["score"]),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=8,
                color=INK,
            )
        axes.set_ylim(floor, 104)
        axes.set_ylabel("health (0-100)")
        axes.grid(False)
        _day_ticks(axes, days or [0], dates)
        return _svg(figure, key, "Health score per day with its bands")


# ---------------------------------------------------------------------------------------
# SLO error-budget burn-down


def slo_burn_down_chart(
    slo_compliance: Sequence[Mapping[str, Any]], key: str = "slo"
) -> Markup | None:
    """Remaining error budget (% of the SLO period's) at the end of each day, one panel per
    SLO and one line per service, against the line a burn rate of exactly 1 would follow."""
    by_slo: dict[str, list[Mapping[str, Any]]] = {}
    for slo in slo_compliance:
        if slo.get("burn_down"):
            by_slo.setdefault(slo["slo"], []).append(slo)
    if not by_slo:
        return None
    services = sorted({slo["service"] for entries in by_slo.values() for slo in entries})
    colours = {
        service: SERIES_COLOURS[index % len(SERIES_COLOURS)]
        for index, service in enumerate(services)
    }
    panels = list(by_slo.items())[:4]
    lowest = min(
        min(p["budget_remaining_pct"], p.get("sustainable_remaining_pct", 100.0))
        for _, entries in panels
        for slo in entries
        for p in slo["burn_down"]
    )
    floor = max(0.0, (lowest // 10) * 10 - 10)
    with _figure(key, 9.0, 2.7) as figure:
        grid = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for axes, (name, entries) in zip(grid, panels, strict=True):
            first = min(p["day"] for slo in entries for p in slo["burn_down"]) - 1
            reference = entries[0]["burn_down"]
            axes.plot(
                [first] + [p["day"] for p in reference],
                [100.0] + [p.get("sustainable_remaining_pct", 100.0) for p in reference],
                color=MUTED,
                lw=1,
                ls=(0, (3, 3)),
            )
            for slo in entries:
                points = slo["burn_down"]
                x = [first] + [p["day"] for p in points]
                y = [100.0] + [p["budget_remaining_pct"] for p in points]
                axes.plot(x, y, color=colours[slo["service"]], lw=1.6, marker="o", ms=2.5)
            axes.set_title(label(name, 30), fontsize=9, color=INK, loc="left")
            axes.set_ylim(floor, 102)
            axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0f} %"))
            _day_ticks(axes, list(range(first, max(x) + 1)))
        grid[0].set_ylabel("error budget left")
        handles = [Line2D([], [], color=colours[s], lw=1.6, label=label(s, 28)) for s in services]
        handles.append(
            Line2D(
                [], [], color=MUTED, lw=1, ls=(0, (3, 3)), label="burn rate 1× (lasts the period)"
            )
        )
        figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5))
        return _svg(figure, key, "SLO error budget remaining at the end of each day")


# ---------------------------------------------------------------------------------------
# Cost by resource type


def cost_chart(cost: Mapping[str, Any], key: str = "cost") -> Markup | None:
    """Each day's bill stacked by resource type, with the GA-day cost and the window's
    daily average as reference lines."""
    by_day = cost.get("by_day") or []
    if not by_day:
        return None
    resources = [r["resource_type"] for r in cost.get("by_resource", [])]
    for day in by_day:
        resources += [r for r in day.get("by_resource", {}) if r not in resources]
    days = [d["day"] for d in by_day]
    with _figure(key, 9.0, 2.7) as figure:
        axes = figure.add_subplot()
        bottoms = [0.0] * len(by_day)
        if any(d.get("by_resource") for d in by_day):
            for index, resource in enumerate(resources):
                heights = [float(d.get("by_resource", {}).get(resource, 0.0)) for d in by_day]
                axes.bar(
                    days,
                    heights,
                    bottom=bottoms,
                    width=0.62,
                    color=SERIES_COLOURS[index % len(SERIES_COLOURS)],
                    label=label(resource, 24),
                    zorder=2,
                )
                bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        else:
            bottoms = [float(d["cost_usd"]) for d in by_day]
            axes.bar(days, bottoms, width=0.62, color=ACCENT, label="total", zorder=2)
        for day, total in zip(days, bottoms, strict=True):
            axes.annotate(
                f"${total:,.0f}",
                (day, total),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=8,
                color=INK,
            )
        if cost.get("ga_day_cost") is not None:
            axes.axhline(cost["ga_day_cost"], color=MUTED, lw=1, ls=(0, (3, 3)), zorder=3)
        if cost.get("daily_average") is not None:
            axes.axhline(cost["daily_average"], color=INK, lw=1, ls=(0, (6, 2)), zorder=3)
            axes.plot([], [], color=INK, lw=1, ls=(0, (6, 2)), label="daily average D1+")
        if cost.get("ga_day_cost") is not None:
            axes.plot([], [], color=MUTED, lw=1, ls=(0, (3, 3)), label="GA day")
        axes.set_ylim(0, max(bottoms, default=1.0) * 1.18 or 1.0)
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"${value:,.0f}"))
        axes.set_ylabel("USD per day")
        _day_ticks(axes, days)
        figure.legend(loc="outside right upper")
        return _svg(figure, key, "Cost per day, stacked by resource type")


# ---------------------------------------------------------------------------------------
# This release against the previous one


def comparison_chart(
    comparison: Mapping[str, Any], release_name: str, key: str = "comparison"
) -> Markup | None:
    """Health per day of both releases, and the KPIs that moved most between them."""
    if not comparison or not comparison.get("available"):
        return None
    health = comparison.get("health", [])
    moved = [row for row in comparison.get("kpis", []) if row.get("change_pct") is not None]
    moved = sorted(moved, key=lambda row: -abs(row["change_pct"]))[:10][::-1]
    with _figure(key, 9.0, 3.0) as figure:
        left, right = figure.subplots(1, 2, width_ratios=(1, 1.25))
        for field, colour, name in (
            ("previous", PREVIOUS, comparison["previous_release"]),
            ("current", ACCENT, release_name),
        ):
            points = [h for h in health if h.get(field) is not None]
            left.plot(
                [h["day"] for h in points],
                [h[field] for h in points],
                color=colour,
                lw=1.6,
                marker="o",
                ms=3,
                label=label(name, 24),
            )
        days = [h["day"] for h in health] or [0]
        _day_ticks(left, days)
        left.set_ylim(
            max(
                0.0,
                min([h[f] for h in health for f in ("current", "previous") if h.get(f)] or [0])
                - 10,
            ),
            102,
        )
        left.set_ylabel("health (0-100)")
        left.legend(loc="lower left")
        if moved:
            names = [
                label(f"{row['service']} · {row.get('kpi_title') or row['kpi']}", 34)
                for row in moved
            ]
            colours = [_comparison_colour(row) for row in moved]
            right.barh(range(len(moved)), [row["change_pct"] for row in moved], color=colours)
            right.set_yticks(range(len(moved)))
            right.set_yticklabels(names, fontsize=7.5)
            right.axvline(0, color=INK, lw=0.8)
            right.grid(axis="x", color=GRID, lw=0.6)
            right.grid(axis="y", visible=False)
            right.xaxis.set_major_locator(MaxNLocator(5))
            right.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:+.0f} %"))
            right.set_xlabel(f"window mean vs {label(comparison['previous_release'], 24)}")
        else:
            right.set_axis_off()
        return _svg(figure, key, "This release compared with the previous release")


def _comparison_colour(row: Mapping[str, Any]) -> str:
    """Red: worse beyond the KPI's threshold; green: better beyond it; grey otherwise."""
    if row.get("adverse"):
        return ADVERSE
    threshold = row.get("threshold_pct") or 10.0
    helped = good_sign(row.get("direction")) * (row.get("change_pct") or 0.0)
    return GOOD if helped >= threshold else MUTED


# ---------------------------------------------------------------------------------------


def charted_series(
    kpi_daily: Sequence[Mapping[str, Any]], statuses: Sequence[str], limit: int
) -> list[Mapping[str, Any]]:
    """The series of the given statuses the report charts, worst first, at most `limit`.
    Cost KPIs are left out: the cost chart shows them by resource type."""
    return [s for s in kpi_daily if s["status"] in statuses and s.get("kind") != "cost"][:limit]


def build_charts(model: Mapping[str, Any]) -> dict[str, Any]:
    """Every chart of the report, keyed as the HTML template uses them. A chart whose data
    is absent is None (the template then leaves it out)."""
    dates = {day["day"]: day["date"] for day in model["window"]["days"]}
    kpi_charts: dict[tuple[str, str], Markup] = {}
    for group, statuses, limit in (
        ("degraded", ("degraded",), 12),
        ("drifted", ("drifted",), 12),
        ("other", ("flagged", "anomalous"), 9),
    ):
        for index, series in enumerate(charted_series(model["kpi_daily"], statuses, limit)):
            kpi_charts[(series["service"], series["kpi"])] = kpi_chart(
                series, key=f"kpi-{group}-{index}"
            )
    return {
        "health": health_chart(model["health_scores"], model["health_bands"], dates),
        "kpi": kpi_charts,
        "slo": slo_burn_down_chart(model["slo_compliance"]),
        "cost": cost_chart(model["cost_analysis"]),
        "comparison": comparison_chart(model.get("comparison") or {}, model["release"]["name"]),
    }
