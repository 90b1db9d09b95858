"""The retrospective as one self-contained HTML page: inline CSS, charts as inline SVG.

Why self-contained: the page is mailed, attached to tickets and opened from artifact
stores, often offline or behind a strict CSP, so it loads nothing (no script, no fonts, no
images by URL) and prints as it shows.

Why autoescape: every service, KPI and label name comes from a metric source and can hold
anything, `<script>` included. Jinja2's autoescape escapes every `{{ value }}`; the only
`Markup` in the page is the SVG that `charts.py` drew and checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

from tars_pipeline.judge.formatting import (
    format_figure,
    format_p_value,
    format_signed,
    format_significant,
    format_usd,
    magnitude_pct,
    signed_pct,
)
from tars_pipeline.reporting.retrospective import SECTIONS

TEMPLATE = "retrospective.html.j2"

# Recommendation evidence keys shown inline, in this order (the JSON keeps them all).
_EVIDENCE_KEYS = (
    "service", "kpi", "resource_type", "slo", "day", "baseline", "observed", "change_pct",
    "p_value", "budget_consumed_pct", "burn_rate", "days_to_exhaustion", "trend",
    "estimated_monthly_saving", "projected_monthly",
)  # fmt: skip


def _p_value(value: float | None) -> str:
    """A p-value in a column headed p: `< 1e-16` rather than a misleading 0."""
    return format_p_value(value, labelled=False)


def evidence_items(evidence: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """A recommendation's evidence as (name, value) pairs for one line of small print."""
    items = []
    for key in _EVIDENCE_KEYS:
        value = (evidence or {}).get(key)
        if value is None or isinstance(value, list | dict):
            continue
        if key == "p_value":
            shown = _p_value(value)
        elif key in {"estimated_monthly_saving", "projected_monthly"}:
            shown = format_usd(value, 0)
        elif key == "change_pct":
            shown = signed_pct(value)
        elif isinstance(value, float):
            shown = format_significant(value)
        else:
            shown = str(value)
        items.append((key.replace("_", " "), shown))
    return items


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tars_pipeline", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # every source text is escaped; charts are Markup from charts.py
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # The same filters as the Markdown template's, plus the HTML table's own.
    env.filters["num"] = format_figure
    env.filters["signed"] = format_signed
    env.filters["pvalue"] = _p_value
    env.filters["usd"] = format_usd
    env.filters["val"] = format_significant
    env.filters["pct"] = magnitude_pct
    env.globals["evidence_items"] = evidence_items
    return env


def render_html(model: Mapping[str, Any]) -> str:
    """The model (`build_retrospective`) as GA_7DAY_RETROSPECTIVE.html."""
    # Matplotlib is imported when a report is drawn, not when the code location loads:
    # every run worker and CLI process would otherwise pay ~0.3 s for it.
    from tars_pipeline.reporting.charts import build_charts

    return (
        _environment()
        .get_template(TEMPLATE)
        .render(r=model, charts=build_charts(model), sections=SECTIONS)
    )
