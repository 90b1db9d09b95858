"""Escaping for text that comes from a metric source (service and KPI names, labels).

A label value can hold anything; rendered unescaped it could break a Markdown table,
inject HTML or ping a Slack channel. Every template filter goes through here.
"""

from __future__ import annotations

import re

# Characters that can open emphasis, code, links, HTML or entities, or end a table cell,
# anywhere in a line (CommonMark lets any ASCII punctuation be backslash-escaped).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|<>~&])")


def markdown(text: object) -> str:
    """Inline Markdown: special characters backslash-escaped, newlines folded."""
    flat = "".join(ch for ch in " ".join(str(text).split()) if ch.isprintable())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)


def signed_pct(value: float | None, digits: int = 1) -> str:
    """`+20.0 %`, or `n/a` where a relative change is undefined (a ~0 baseline)."""
    return "n/a" if value is None else f"{value:+.{digits}f} %"
