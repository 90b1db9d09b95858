"""The HTML report: the seven sections with their charts, self-contained, and inert however
hostile the names in the metric source are (and the Markdown table stays a table)."""

from __future__ import annotations

import copy
import datetime as dt
import re
from html.parser import HTMLParser
from typing import Any

import pandas as pd
import pytest

from tars_pipeline.config import Release
from tars_pipeline.reporting import charts
from tars_pipeline.reporting.html import render_html
from tars_pipeline.reporting.retrospective import SECTIONS, build_retrospective, render_markdown
from tars_pipeline.reporting.schema import schema_errors
from tars_pipeline_tests.conftest import DemoWeek

# Names a metric source could hand us: HTML, script, Markdown, table pipes, TeX dollars.
HOSTILE_SERVICE = (
    'api<script>window.__pwned=1</script>|`x`*y*_[z](javascript:alert(1))$a$ "q"'
    '<img src=x onerror="window.__pwned=1">'
)
HOSTILE_KPI = 'p99<svg onload="window.__pwned=1">|lat'
HOSTILE_TITLE = "<b>Latency</b> | p99 <style>*{display:none}</style>"
HOSTILE_RESOURCE = "compute</text><script>window.__pwned=1</script>"


def hostile(model: dict[str, Any]) -> dict[str, Any]:
    """The model with a service, a KPI, its title and a resource type renamed, everywhere
    they occur (values, sentences and mapping keys), as a source could name them."""
    replacements = (
        ("api-gateway", HOSTILE_SERVICE),
        ("latency_p99", HOSTILE_KPI),
        ("Latency p99", HOSTILE_TITLE),
        ("compute", HOSTILE_RESOURCE),
    )

    def rename(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in replacements:
                value = value.replace(old, new)
            return value
        if isinstance(value, dict):
            return {rename(key): rename(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rename(item) for item in value]
        return value

    return rename(copy.deepcopy(model))


class TagCollector(HTMLParser):
    """Every start tag with its attributes, and the visible text, as a browser parses it."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in {"style", "svg"}:
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "svg"} and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def parse(html: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(html)
    return collector


def assert_inert(html: str) -> None:
    """Nothing in the page can run script or fetch anything."""
    assert "<script" not in html.lower()
    page = parse(html)
    for tag, attributes in page.tags:
        assert tag not in {"script", "iframe", "object", "embed", "img", "link", "base"}, tag
        for name, value in attributes.items():
            assert not name.startswith("on"), (tag, name)
            if name in {"href", "src", "xlink:href", "action"}:
                assert (value or "").startswith("#"), (tag, name, value)
    assert [tag for tag, _ in page.tags].count("style") == 1  # ours, in <head>


def markdown_tables(text: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def cell_count(row: str) -> int:
    """Cells of a GitHub table row: pipes not escaped by a backslash separate them."""
    return len(re.split(r"(?<!\\)\|", row.strip())) - 2


# --- the demo's report --------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_html(demo_week: DemoWeek) -> str:
    return (demo_week.out / "GA_7DAY_RETROSPECTIVE.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_report_has_the_seven_sections_in_the_markdowns_order(
    demo_week: DemoWeek, demo_html: str
) -> None:
    headings = re.findall(r"<h2><span class=\"n\">(\d)\.</span>([^<]+)</h2>", demo_html)
    assert [(int(n), title.strip()) for n, title in headings] == list(enumerate(SECTIONS, start=1))
    markdown = (demo_week.out / "GA_7DAY_RETROSPECTIVE.md").read_text(encoding="utf-8")
    md_order = [markdown.find(f"## {n}. {title}") for n, title in enumerate(SECTIONS, start=1)]
    assert -1 not in md_order and md_order == sorted(md_order)


@pytest.mark.slow
def test_the_report_draws_every_chart_as_inline_svg(demo_html: str, demo_week: DemoWeek) -> None:
    retro = demo_week.retrospective
    charted = [s for s in retro["kpi_daily"] if s["status"] != "ok" and s.get("kind") != "cost"]
    # health + cost + SLO burn-down + one per charted KPI; no comparison in the demo.
    assert demo_html.count("<svg ") == 3 + len(charted)
    assert 'aria-label="Health score per day with its bands"' in demo_html
    assert 'aria-label="SLO error budget remaining at the end of each day"' in demo_html
    assert 'aria-label="Cost per day, stacked by resource type"' in demo_html
    assert 'aria-label="Latency p99 on api-gateway: daily mean' in demo_html
    assert 'id="comparison"' not in demo_html


@pytest.mark.slow
def test_the_report_is_self_contained_and_runs_no_script(demo_html: str) -> None:
    assert_inert(demo_html)
    for needle in ("<link", "@import", "url(http", 'src="http', "<script"):
        assert needle not in demo_html
    assert "default-src 'none'" in demo_html  # and the browser is told so, too
    assert len(demo_html.encode()) < 600_000


@pytest.mark.slow
def test_the_report_shows_no_nan_or_infinity(demo_html: str, demo_week: DemoWeek) -> None:
    text = " ".join(parse(demo_html).text)
    assert not re.search(r"\b(nan|NaN|inf|Infinity)\b", text)
    markdown = (demo_week.out / "GA_7DAY_RETROSPECTIVE.md").read_text(encoding="utf-8")
    assert not re.search(r"\b(nan|NaN|inf|Infinity)\b", markdown)


@pytest.mark.slow
def test_the_report_tells_the_seed_story(demo_html: str) -> None:
    text = " ".join(" ".join(parse(demo_html).text).split())
    assert "150 → 180 ms" in text
    assert "0.05 → 0.08 %" in text
    assert "$336" in text and "+12.0 % vs GA day" in text
    assert "Root-cause the resolved latency p99 regression on api-gateway" in text


@pytest.mark.slow
def test_rendering_is_deterministic(demo_week: DemoWeek) -> None:
    model = demo_week.retrospective
    assert render_html(model) == render_html(model)


# --- hostile names ------------------------------------------------------------------------


@pytest.mark.slow
def test_hostile_names_are_escaped_in_html_and_charts(demo_week: DemoWeek) -> None:
    model = hostile(demo_week.retrospective)
    html = render_html(model)
    assert_inert(html)
    assert "api&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "&lt;b&gt;Latency&lt;/b&gt;" in html
    # The charts survived the names (none refused, none dropped) and escape them too.
    assert html.count("<svg ") == render_html(demo_week.retrospective).count("<svg ")
    assert "compute&lt;/text&gt;&lt;script&gt;" in html


@pytest.mark.slow
def test_hostile_names_keep_every_markdown_table_intact(demo_week: DemoWeek) -> None:
    markdown = render_markdown(hostile(demo_week.retrospective))
    tables = markdown_tables(markdown)
    assert len(tables) >= 5
    for table in tables:
        widths = {cell_count(row) for row in table}
        assert len(widths) == 1, table
    assert "<script" not in markdown.replace("\\<script", "")
    degradation_rows = [row for row in tables[1] if "Latency" in row]
    assert degradation_rows and cell_count(degradation_rows[0]) == 8


def test_a_dollar_in_a_name_is_text_not_tex() -> None:
    series = {
        "service": "$svc$",
        "kpi": "k",
        "kpi_title": "a $\\frac{1}{0}$ b",
        "unit": "$",
        "statistic": "mean",
        "baseline": 1.0,
        "band": {"lower": 0.9, "upper": 1.1},
        "days": [
            {"day": 0, "value": 1.0, "flagged": False, "anomalies": 0},
            {"day": 1, "value": 1.2, "flagged": True, "anomalies": 2},
        ],
    }
    svg = str(charts.kpi_chart(series, key="t"))
    assert ">$<" in svg  # the unit, verbatim
    assert "a $\\frac{1}{0}$ b on $svc$" in svg


def test_label_folds_control_characters_and_truncates() -> None:
    assert charts.label("a\nb\tc\x00d") == "a b cd"
    assert charts.label("x" * 100, 10) == "x" * 9 + "…"


def test_an_svg_that_could_run_script_is_refused() -> None:
    for svg in (
        '<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><rect onclick="x()"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<a xlink:href="javascript:x()"/></svg>',
    ):
        with pytest.raises(ValueError, match="refusing"):
            charts._inert(svg)
    # Text that merely reads like a handler is a label, not an attribute.
    charts._inert('<svg xmlns="http://www.w3.org/2000/svg"><text>onerror="x"</text></svg>')


def test_a_partial_week_with_no_findings_still_renders_and_validates() -> None:
    """Day 1 of a 3-day window, no cost metrics, no SLO data: the page says so, no chart
    breaks, and the model still keeps the contract."""
    health = pd.DataFrame(
        {
            "release": "v9",
            "day": [0, 1],
            "score": [100.0, 97.5],
            "band": "healthy",
            "weighted_kpi_score": [100.0, 97.5],
            "anomaly_penalty": 0.0,
        }
    )
    no_cost = {
        "ga_day_cost": None, "daily_average": None, "change_pct": None, "by_day": [],
        "by_resource": [], "projected_monthly": None, "hints": [],
    }  # fmt: skip
    model = build_retrospective(
        Release(name="v9", ga_date=dt.date(2026, 1, 1), window_days=3),
        regression={"days_analysed": [1], "complete": False, "cost_analysis": no_cost},
        health=health,
        contributions=pd.DataFrame(
            columns=["release", "day", "service", "kpi", "kpi_score", "weight", "weighted_points"]
        ),
        anomalies=pd.DataFrame(),
        recommendations=[],
        action_items=[],
        drift=pd.DataFrame(),
    )
    assert schema_errors("retrospective", model) == []
    html = render_html(model)
    assert_inert(html)
    assert "Partial window" in html
    assert "No statistically significant degradation" in html
    assert "No SLOs configured." in html
    assert html.count("<svg ") == 1  # the health chart; nothing else has data
