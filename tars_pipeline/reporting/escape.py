"""Escaping for text that comes from a metric source (service and KPI names, labels).

A label value can hold anything; rendered unescaped it could break a Markdown table,
inject HTML or ping a Slack channel. Every template filter goes through here.

Two escapers, one promise (the text reads back exactly as it came, and can open no markup):
- `markdown` escapes every character that could ever be markup. It is for text a machine
  renders in a place we do not control the surroundings of (Dagster metadata, GitHub issue
  bodies), and its output is stable for their tests.
- `markdown_text` escapes a character only where CommonMark (and GitHub's tables and
  strikethrough) would read it as markup, so the retrospective a person reads as plain text
  says `error_rate` and `~60 %`, not `error\\_rate` and `\\~60 %`.
"""

from __future__ import annotations

import re
import unicodedata

# Re-exported: the Markdown renderers format a signed change with the judge's formatter.
from tars_pipeline.judge.formatting import signed_pct

__all__ = ["markdown", "markdown_text", "signed_pct"]

# Characters that can open emphasis, code, links, HTML or entities, or end a table cell,
# anywhere in a line (CommonMark lets any ASCII punctuation be backslash-escaped).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|<>~&])")


def _flat(text: object) -> str:
    """One line: whitespace runs folded to a space, control characters dropped."""
    return "".join(ch for ch in " ".join(str(text).split()) if ch.isprintable())


def markdown(text: object) -> str:
    """Inline Markdown: special characters backslash-escaped, newlines folded."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _flat(text))


# --- Escaping only where it matters -------------------------------------------------------

# Markup wherever it stands: a backslash escapes the next character, backticks open code
# spans, brackets links and images (and `- [ ]` task boxes), a pipe ends a table cell.
_ALWAYS = frozenset("\\`[]|")
# Emphasis (`*`, `_`) and GFM strikethrough (`~`) are delimiter runs: markup only where the
# flanking rules let the run open or close (CommonMark 0.31, section 6.2).
_DELIMITERS = frozenset("*_~")
# `&name;`, `&#123;` and `&#x1F;` are character references; `&` anywhere else is text.
_ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
# A line that starts with one of these is a heading, a quote, a list item, a thematic break
# or a setext underline. The template puts names mid-line, but a name must not rely on it.
_BLOCK_START = re.compile(r"^(?:[#>]|[-+=*](?=\s|$|[-+=*])|(\d{1,9})(?=[.)](?:\s|$)))")


def _is_space(ch: str | None) -> bool:
    return ch is None or ch.isspace()


def _is_punctuation(ch: str | None) -> bool:
    """CommonMark's Unicode punctuation: ASCII punctuation, Unicode P* and S* categories."""
    return ch is not None and unicodedata.category(ch)[0] in "PS"


def _delimiter_is_markup(char: str, before: str | None, after: str | None) -> bool:
    """Whether a run of `char` between `before` and `after` could open or close emphasis
    (or, for `~`, close a strikethrough). None is a boundary of the text: what the template
    puts there is unknown, so a run at either end is always escaped."""
    if before is None or after is None:
        return True
    left_flanking = not _is_space(after) and (
        not _is_punctuation(after) or _is_space(before) or _is_punctuation(before)
    )
    right_flanking = not _is_space(before) and (
        not _is_punctuation(before) or _is_space(after) or _is_punctuation(after)
    )
    if char == "~":
        # The template writes no tilde, so a strikethrough needs a closer from the text:
        # escaping every run that can close is enough, and `~60 %` stays as written.
        return right_flanking
    if char == "_":
        # `_` inside a word (`error_rate`) neither opens nor closes.
        can_open = left_flanking and (not right_flanking or _is_punctuation(before))
        can_close = right_flanking and (not left_flanking or _is_punctuation(after))
        return can_open or can_close
    # `*`: the template's own `**bold**` could pair with a lone opener from the text.
    return left_flanking or right_flanking


def markdown_text(text: object) -> str:
    """Inline Markdown that reads as plain text: newlines folded, and a backslash added
    only before a character CommonMark/GFM would read as markup there.

    Always escaped: backslash, backtick, `[`, `]`, `|`. Emphasis and strikethrough
    delimiters (`*`, `_`, `~`) where their run could open or close (so `error_rate` and
    `~60 %` stay as they are). `<` unless a space follows it (no tag, autolink or comment
    starts with `< `). `&` where it would start a character reference. At the start of the
    text, a heading, quote, list or break marker (`#`, `>`, `-`, `+`, `=`, `1.`).
    """
    flat = _flat(text)
    out: list[str] = []
    index, length = 0, len(flat)
    while index < length:
        ch = flat[index]
        if ch in _DELIMITERS:
            end = index
            while end < length and flat[end] == ch:
                end += 1
            before = flat[index - 1] if index > 0 else None
            after = flat[end] if end < length else None
            run = flat[index:end]
            out.append(
                run.replace(ch, "\\" + ch) if _delimiter_is_markup(ch, before, after) else run
            )
            index = end
            continue
        if ch in _ALWAYS:
            out.append("\\" + ch)
        elif ch == "<":
            after = flat[index + 1] if index + 1 < length else None
            out.append("<" if after == " " else "\\<")
        elif ch == "&" and _ENTITY.match(flat, index):
            out.append("\\&")
        else:
            out.append(ch)
        index += 1
    escaped = "".join(out)
    return _BLOCK_START.sub(_escape_block_start, escaped, count=1)


def _escape_block_start(match: re.Match[str]) -> str:
    if match.group(1) is not None:  # "1." / "1)": escape the delimiter after the number
        return match.group(1) + "\\"
    return "\\" + match.group(0)
