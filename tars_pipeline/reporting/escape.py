"""Escaping for text that comes from a metric source (service and KPI names, labels).

A label value can hold anything; rendered unescaped it could break a Markdown table,
inject HTML or ping a Slack channel. Every template filter goes through here.
"""

from __future__ import annotations

import re

# Re-exported: the Markdown renderers format a signed change with the judge's formatter.
from tars_pipeline.judge.formatting import signed_pct

__all__ = ["markdown", "signed_pct"]

# Characters that can open emphasis, code, links, HTML or entities, or end a table cell,
# anywhere in a line (CommonMark lets any ASCII punctuation be backslash-escaped).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|<>~&])")


def markdown(text: object) -> str:
    """Inline Markdown: special characters backslash-escaped, newlines folded."""
    flat = "".join(ch for ch in " ".join(str(text).split()) if ch.isprintable())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)
