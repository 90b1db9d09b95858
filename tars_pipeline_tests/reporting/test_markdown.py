"""The Markdown retrospective as a person reads it: plain words without backslashes, units
in the table headers, and still no markup from a hostile label value.

The rendering is checked with a real CommonMark parser (markdown-it-py, with GitHub's
tables and strikethrough), not with string matching: what a name turns into is what a
Markdown viewer would draw.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from tars_pipeline.reporting.escape import markdown_text
from tars_pipeline.reporting.retrospective import render_markdown
from tars_pipeline_tests.reporting.test_html import cell_count, hostile, markdown_tables

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "v1.0.1"
GFM = MarkdownIt("commonmark").enable(["table", "strikethrough"])


class Rendered(HTMLParser):
    """The tags and the visible text of rendered Markdown."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _model() -> dict[str, Any]:
    return json.loads((GOLDEN / "GA_7DAY_RETROSPECTIVE.json").read_text(encoding="utf-8"))


def _folded(text: str) -> str:
    return "".join(ch for ch in " ".join(text.split()) if ch.isprintable())


# --- the escaper ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("error_rate", "error_rate"),  # `_` inside a word is no emphasis
        ("latency_p99 on api-gateway", "latency_p99 on api-gateway"),
        ("sized to run at ~60 %, ~37% less", "sized to run at ~60 %, ~37% less"),
        ("p < 1e-16", "p < 1e-16"),
        ("R&D", "R&D"),
        ("2 * 3", "2 * 3"),
        ("-17 % to +18 %", "-17 % to +18 %"),
        ("2.5 ms", "2.5 ms"),
        ("_private_", r"\_private\_"),
        ("a*b*c", r"a\*b\*c"),
        ("x~ y", r"x\~ y"),  # a tilde that could close a strikethrough
        ("a ~~b~~ c", r"a ~~b\~\~ c"),
        ("<script>", r"\<script>"),
        ("&amp;", r"\&amp;"),
        ("[z](javascript:alert(1))", r"\[z\](javascript:alert(1))"),
        ("a|b", r"a\|b"),
        ("`x`", r"\`x\`"),
        ("back\\slash", r"back\\slash"),
        ("# heading", r"\# heading"),
        ("> quote", r"\> quote"),
        ("- item", r"\- item"),
        ("1. item", r"1\. item"),
        ("===", r"\==="),
        ("two\nlines\x00", "two lines"),
    ],
)
def test_only_what_markdown_would_read_as_markup_is_escaped(text: str, expected: str) -> None:
    assert markdown_text(text) == expected


MARKUP_PRONE = st.text(
    alphabet=st.sampled_from(list("ab1_*~`[]()<>|&#;!-+=.\\ \"'$@:/é€—")), max_size=24
)


@settings(max_examples=400, deadline=None)
@given(MARKUP_PRONE)
def test_any_text_reads_back_as_itself_and_opens_no_markup(text: str) -> None:
    """In a paragraph, a table cell and next to the template's own bold, the escaped text
    renders to exactly its characters and to no tag the context did not bring."""
    escaped = markdown_text(text)
    contexts = {
        "paragraph": (f"{escaped}\n", {"p"}),
        "list item": (f"- {escaped}\n", {"ul", "li"}),
        "bold": (f"**x {escaped} y**\n", {"p", "strong"}),
        "table": (f"| a | b |\n| --- | --- |\n| {escaped} | z |\n", None),
    }
    for name, (source, allowed) in contexts.items():
        rendered = Rendered(GFM.render(source))
        if allowed is None:  # the table: still two cells, the text in the first
            assert rendered.tags == ["table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td"]
            continue
        assert set(rendered.tags) <= allowed, (name, source, rendered.tags)
        shown = _folded("".join(rendered.text))
        expected = _folded(f"x {text} y") if name == "bold" else _folded(text)
        assert shown == expected, (name, source)


# --- the demo's retrospective --------------------------------------------------------------


def test_the_demo_report_has_no_backslash_in_its_plain_text() -> None:
    text = render_markdown(_model())
    assert "\\" not in text
    assert "latency_p99 on api-gateway" in text and "saves ~$670/month" in text
    assert "p < 1e-16" in text


def test_tables_say_their_units_in_the_header() -> None:
    tables = {table[0]: table[2:] for table in markdown_tables(render_markdown(_model()))}
    headers = list(tables)
    assert (
        "| Day | Date | Health (0–100) | Band | KPI score (0–100) | Anomaly penalty (points) |"
        in (headers)
    )
    cost = next(header for header in headers if header.startswith("| Resource "))
    assert cost == "| Resource | GA day (USD) | Daily average (USD) | Change (%) | Share (%) |"
    assert tables[cost][0] == "| compute | 180.00 | 201.60 | +12.0 | 60.0 |"
    slo = next(header for header in headers if "Budget consumed" in header)
    assert "| Target (%) | Budget consumed (%) | Burn rate, window (×) |" in slo
    # A column whose rows are different KPIs carries each row's unit in the cell.
    degradations = next(
        header for header in headers if header.startswith("| Severity | Service | KPI | First")
    )
    assert "| Change (%) |" in degradations
    assert tables[degradations][0].split(" | ")[4:6] == ["150.00 → 180.00 ms", "+20.0"]
    anomalies = next(header for header in headers if "Peak z (σ)" in header)
    assert "| 189.14 ms | 126.29 ms |" in tables[anomalies][0]


def test_hostile_names_add_no_markup_to_the_report() -> None:
    """Names with HTML, script, links, code, emphasis and pipes: the report renders to the
    same kinds of tags as the demo's, every table keeps its columns, and the names read
    back as they are."""
    model = _model()
    plain = Rendered(GFM.render(render_markdown(model)))
    text = render_markdown(hostile(model))
    rendered = Rendered(GFM.render(text))
    assert set(rendered.tags) == set(plain.tags)
    for table in markdown_tables(text):
        assert len({cell_count(row) for row in table}) == 1, table
    shown = "".join(rendered.text)
    assert "api<script>window.__pwned=1</script>|`x`*y*_[z](javascript:alert(1))" in shown
    assert "<b>Latency</b> | p99 <style>*{display:none}</style>" in shown


@pytest.mark.parametrize(
    "name", ["# Fake heading", "> quoted", "- [x] done", "1. first", "<!-- hide", "*x*", "__y__"]
)
def test_a_name_that_starts_like_a_block_stays_text(name: str) -> None:
    model = _model()
    renamed = json.loads(json.dumps(model).replace("api-gateway", name.replace('"', "")))
    rendered = Rendered(GFM.render(render_markdown(renamed)))
    assert set(rendered.tags) == set(Rendered(GFM.render(render_markdown(model))).tags)
    assert name in "".join(rendered.text)
