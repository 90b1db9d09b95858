"""What the week's verdicts rest on: each series' coverage per day, and what it means.

Kayenta's NoData class, for a whole week: a series missing on a day was not judged that
day; one below `USABLE_PCT` of its points was judged on too little data to trust; one below
`COMPLETE_PCT` was judged on the samples present (gaps are never filled, so they are not
drift). The same limits as the `data_completeness` check (judge/checks.py).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from tars_pipeline.judge.checks import COMPLETE_PCT, USABLE_PCT


def _state(completeness_pct: float) -> str:
    if completeness_pct <= 0:
        return "missing"
    if completeness_pct < USABLE_PCT:
        return "too_little_data"
    return "gaps"


def week_data_quality(coverage: pd.DataFrame) -> dict[str, Any]:
    """`coverage` (day, service, kpi, expected_points, points over the stored days) as the
    report's data-quality record: overall completeness, and each series-day below
    COMPLETE_PCT with its state (missing / too_little_data / gaps) and what it means."""
    if coverage is None or coverage.empty:
        return {"completeness_pct": None, "series_days": 0, "below_complete": [],
                "complete": False, "note": "no coverage recorded"}  # fmt: skip
    expected = coverage["expected_points"].where(coverage["expected_points"] > 0)
    pct = (100.0 * coverage["points"] / expected).fillna(0.0)
    frame = coverage.assign(completeness_pct=pct)
    short = frame[frame["completeness_pct"] < COMPLETE_PCT].sort_values(
        ["day", "service", "kpi"], kind="stable"
    )
    meaning = {
        "missing": "not judged that day",
        "too_little_data": f"judged on under {USABLE_PCT:g} % of its points: do not trust it",
        "gaps": "judged on the samples present (gaps are not filled)",
    }
    below = [
        {
            "day": int(row.day),
            "service": row.service,
            "kpi": row.kpi,
            "completeness_pct": round(float(row.completeness_pct), 2),
            "state": _state(float(row.completeness_pct)),
            "meaning": meaning[_state(float(row.completeness_pct))],
        }
        for row in short.itertuples()
    ]
    total = float(coverage["expected_points"].sum())
    return {
        "completeness_pct": round(100.0 * float(coverage["points"].sum()) / total, 2)
        if total
        else None,
        "series_days": len(frame),
        "below_complete": below,
        "complete": not below,
        "note": f"every series covered ≥ {COMPLETE_PCT:g} % of every day"
        if not below
        else f"{len(below)} series-day(s) below {COMPLETE_PCT:g} % coverage",
    }
