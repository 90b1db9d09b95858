"""A generic JSON webhook: the retrospective's summary and action items, for automation.

The payload is a subset of GA_7DAY_RETROSPECTIVE.json under the same key names (the
contract of SPEC §4), so a receiver written against the file works on the webhook too.
Values are not escaped: JSON is data, and whoever renders it escapes for their medium.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVENT_RETROSPECTIVE = "tars.retrospective_ready"


def retrospective_payload(
    model: Mapping[str, Any], *, report_location: str | None = None
) -> dict[str, Any]:
    """`event`, `schema_version`, `release`, `summary`, `recommendations`, `action_items`."""
    return {
        "event": EVENT_RETROSPECTIVE,
        "schema_version": model.get("schema_version"),
        "generator": model.get("generator"),
        "generated_at": model.get("generated_at"),
        "release": model["release"],
        "summary": model.get("summary", {}),
        "recommendations": [
            {
                "priority": rec["priority"],
                "title": rec["title"],
                "category": rec.get("category"),
                "evidence": rec.get("evidence"),
            }
            for rec in model.get("recommendations", [])
        ],
        "action_items": list(model.get("action_items", [])),
        "report": report_location,
    }
