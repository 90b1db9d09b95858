"""Slack incoming-webhook messages: "retrospective ready" and "P0 appeared".

Every value that can come from a metric source (service, KPI, recommendation titles that
quote them) goes through `mrkdwn`. Slack's own rule (api.slack.com, "Formatting text"):
escape `&`, `<` and `>` as HTML entities and nothing else — that alone stops
`<!channel>` from pinging everyone and `<https://evil|x>` from becoming a disguised
link. Bare `@channel`/`@here`/`@everyone` are broken with a word joiner as well, in case
the webhook's app has `link_names` on, and newlines are folded so a label cannot forge a
line of its own in the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MAX_SECTION_CHARS = 2900  # Slack rejects a section text over 3000 characters
MAX_LINE_CHARS = 300
TOP_RECOMMENDATIONS = 5
PRIORITIES = ("P0", "P1", "P2", "P3")

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SPECIAL = re.compile(r"[&<>]")
_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_WORD_JOINER = "\u2060"


def mrkdwn(text: object, *, limit: int = MAX_LINE_CHARS) -> str:
    """Text from a source, safe inside a Slack mrkdwn field.

    Whitespace runs (newlines included) become one space and control characters go, so
    the value stays on its line; then `&<>` become entities and broadcast mentions are
    broken. Long values are cut at `limit` characters (before escaping, so an entity is
    never split).
    """
    flat = "".join(ch for ch in " ".join(str(text).split()) if ch.isprintable())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    escaped = _SPECIAL.sub(lambda match: _ENTITIES[match.group()], flat)
    return _BROADCAST.sub("@" + _WORD_JOINER, escaped)


def _count_line(counts: Mapping[str, int], order: Sequence[str]) -> str:
    parts = [f"{counts[key]} {key}" for key in order if counts.get(key)]
    return ", ".join(parts) if parts else "none"


def _section(text: str) -> dict[str, Any]:
    if len(text) > MAX_SECTION_CHARS:
        text = text[: MAX_SECTION_CHARS - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _location_block(report_location: str | None) -> list[dict[str, Any]]:
    if not report_location:
        return []
    return [
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"Report: {mrkdwn(report_location)}"}],
        }
    ]


def _action_counts(model: Mapping[str, Any]) -> dict[str, int]:
    return {
        priority: sum(1 for item in model.get("action_items", []) if item["priority"] == priority)
        for priority in PRIORITIES
    }


def retrospective_message(
    model: Mapping[str, Any],
    *,
    report_location: str | None = None,
    top: int = TOP_RECOMMENDATIONS,
) -> dict[str, Any]:
    """ "GA +7 retrospective ready": headline numbers and the top recommendations.

    `text` is the notification/fallback line (what a phone shows); `blocks` the layout.
    """
    release = mrkdwn(model["release"]["name"])
    summary = model.get("summary", {})
    average = summary.get("average_health")
    lowest = summary.get("lowest_health")
    severity = summary.get("degradations_by_severity", {})
    actions = _action_counts(model)
    average_text = "n/a" if average is None else f"{average:g}"
    lowest_text = "n/a" if not lowest else f"day {lowest['day']}: {lowest['score']:g}"
    degradations = summary.get("degradations", 0)
    fields = [
        ("Average health (days 1+)", average_text),
        ("Lowest day", lowest_text),
        (
            "Degradations",
            f"{degradations} ({_count_line(severity, ('critical', 'high', 'medium', 'low'))})",
        ),
        ("Unexpected drifts", str(summary.get("unexpected_drifts", 0))),
        ("Anomaly events", str(summary.get("anomalies", 0))),
        ("Action items", _count_line(actions, PRIORITIES)),
    ]
    recommendations = list(model.get("recommendations", []))[:top]
    lines = [f"• *[{rec['priority']}]* {mrkdwn(rec['title'])}" for rec in recommendations]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"GA +7 retrospective ready: {release}"[:150]},
        },
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in fields],
        },
    ]
    if lines:
        blocks.append(_section("*Top recommendations*\n" + "\n".join(lines)))
    blocks.extend(_location_block(report_location))
    p0 = f", {actions['P0']} P0 item(s) need immediate action" if actions["P0"] else ""
    text = (
        f":tada: GA +7 retrospective ready for {release}: average health {average_text}, "
        f"{degradations} degradation(s){p0}."
    )
    if report_location:
        text += f" View: {mrkdwn(report_location)}"
    return {"text": text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def p0_items(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The retrospective's P0 action items, each with its recommendation's evidence."""
    evidence = {
        rec["title"]: rec.get("evidence")
        for rec in model.get("recommendations", [])
        if rec.get("priority") == "P0"
    }
    return [
        {**item, "evidence": evidence.get(item["description"])}
        for item in model.get("action_items", [])
        if item.get("priority") == "P0"
    ]


def _evidence_line(evidence: Any) -> str:
    if not isinstance(evidence, Mapping):
        return ""
    parts = []
    for key in ("kpi", "service", "day", "change_pct", "budget_consumed_pct", "status"):
        value = evidence.get(key)
        if value is None:
            continue
        shown = f"{value:+.1f} %" if key == "change_pct" and isinstance(value, float) else value
        if key == "budget_consumed_pct" and isinstance(value, float):
            shown = f"{value:.0f} % of budget"
        parts.append(f"{key.replace('_', ' ')} {mrkdwn(shown)}")
    return " · ".join(parts)


def p0_message(
    model: Mapping[str, Any], *, report_location: str | None = None
) -> dict[str, Any] | None:
    """ "P0 appeared": each P0 action item with its evidence; None when there is none."""
    items = p0_items(model)
    if not items:
        return None
    release = mrkdwn(model["release"]["name"])
    lines = []
    for item in items:
        line = f"• {mrkdwn(item['description'])}"
        evidence = _evidence_line(item.get("evidence"))
        if evidence:
            line += f"\n      evidence: {evidence}"
        lines.append(line)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"P0 in release {release}"[:150]},
        },
        _section(
            f":rotating_light: *{len(items)} P0 action item(s)* from the GA +7 "
            f"retrospective of *{release}* need immediate action:\n" + "\n".join(lines)
        ),
        *_location_block(report_location),
    ]
    text = (
        f":rotating_light: P0 in release {release}: {len(items)} item(s) need immediate "
        f"action — {mrkdwn(items[0]['description'], limit=150)}"
    )
    return {"text": text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}
