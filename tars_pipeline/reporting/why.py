"""The why-and-when lines of a finding, for the Markdown and HTML reports (one wording).

From a degradation's or drift's record: when it began (onset ± interval, levels before
and after), the changes just before it, what drove it (top contributors), how large the
shift is with its interval, and how sure the verdict is after the false-discovery control.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tars_pipeline.judge.formatting import format_figure

MAX_CAUSES = 2


def onset_line(record: Mapping[str, Any], unit: str = "") -> str | None:
    """ "began at 14:32 ± 3 min on day 2 (150 → 180 ms)"."""
    onset = record.get("onset")
    if not isinstance(onset, Mapping):
        return None
    spread = max(
        float(onset.get("onset_minus_minutes") or 0), float(onset.get("onset_plus_minutes") or 0)
    )
    day = onset.get("day")
    suffix = f" {unit}" if unit else ""
    when = f"at {onset.get('local_time')} ± {spread:.0f} min" + (
        f" on day {day}" if day is not None else ""
    )
    return (
        f"began {when} ({format_figure(onset.get('before'))} → "
        f"{format_figure(onset.get('after'))}{suffix})"
    )


def cause_lines(record: Mapping[str, Any]) -> list[str]:
    """The annotations named on the finding, nearest first: "began 3 min after deploy X"."""
    causes = record.get("annotations") or []
    return [str(cause["sentence"]) for cause in causes[:MAX_CAUSES] if cause.get("sentence")]


def contributors_line(record: Mapping[str, Any]) -> str | None:
    contributors = record.get("contributors")
    if isinstance(contributors, Mapping) and contributors.get("headline"):
        return str(contributors["headline"])
    return None


def effect_line(record: Mapping[str, Any], unit: str = "") -> str | None:
    """ "shift +12.3 ms (95 % CI +10.1 to +14.0; Hodges-Lehmann), q = 0.002"."""
    effect = record.get("effect")
    parts = []
    if isinstance(effect, Mapping) and effect.get("estimate") is not None:
        suffix = f" {unit}" if unit else ""
        text = f"shift {_signed(effect['estimate'])}{suffix}"
        if effect.get("low") is not None and effect.get("high") is not None:
            level = round(100 * float(effect.get("confidence") or 0.95))
            text += f" ({level} % CI {_signed(effect['low'])} to {_signed(effect['high'])})"
        parts.append(text)
    q_value = record.get("q_value")
    if isinstance(q_value, int | float):
        shown = "q < 0.0001" if q_value < 1e-4 else f"q = {q_value:.2g}"
        parts.append(f"{shown} after false-discovery control")
    return ", ".join(parts) or None


def feedback_line(record: Mapping[str, Any]) -> str | None:
    mark = record.get("feedback")
    if not isinstance(mark, Mapping) or not mark.get("mark"):
        return None
    text = f"marked {str(mark['mark']).replace('_', ' ')}"
    if mark.get("reason"):
        text += f": {mark['reason']}"
    if mark.get("excluded_from_verdict"):
        text += " (left out of the verdict)"
    return text


def why_lines(record: Mapping[str, Any], unit: str = "") -> list[str]:
    """Every line that applies, in reading order: when, after what, driven by what, how
    large and how sure, and the user's mark."""
    lines: Sequence[str | None] = (
        onset_line(record, unit),
        *cause_lines(record),
        contributors_line(record),
        effect_line(record, unit),
        feedback_line(record),
    )
    return [line for line in lines if line]


def _signed(value: Any) -> str:
    number = float(value)
    return ("+" if number > 0 else "") + format_figure(number)
