"""Which way is bad: the one owner of a KPI direction's sign.

A KPI's `direction` says which way a move hurts: up for `lower_is_better` (latency, error
rate), down for `higher_is_better` (availability), neither for `neutral` (throughput, a
load figure that is explained but never judged). Every rule that asks "did it move the bad
way?" multiplies the move by `adverse_sign`; a chart that colours improvements uses
`good_sign`, its opposite.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

ADVERSE_SIGN: dict[str, float] = {"lower_is_better": 1.0, "higher_is_better": -1.0}


def adverse_sign(direction: str | None) -> float:
    """+1 for lower_is_better, −1 for higher_is_better, 0 for neutral (or unknown): a move
    times this sign is positive exactly when it is a move the bad way."""
    return ADVERSE_SIGN.get(direction or "", 0.0)


def good_sign(direction: str | None) -> float:
    """The opposite of `adverse_sign`: a move times this sign is positive when it helped."""
    return -adverse_sign(direction)


def adverse_signs(directions: Iterable[str | None]) -> np.ndarray:
    """`adverse_sign` of each direction, for a column of drift rows."""
    return np.array([adverse_sign(direction) for direction in directions], dtype="float64")


def has_bad_side(direction: str | None) -> bool:
    """False for a neutral KPI: nothing it does is a degradation, and it carries no SLO."""
    return adverse_sign(direction) != 0.0


def beyond(values: np.ndarray | float, reference: float, direction: str | None) -> np.ndarray:
    """Where `values` lie past `reference` the bad way: above it for lower_is_better, below
    it for higher_is_better, never for neutral (NaN is never beyond). Multiplying both sides
    by ±1 is exact, so this is `values > reference` or `values < reference` to the bit."""
    sign = adverse_sign(direction)
    with np.errstate(invalid="ignore"):
        return np.asarray(sign * np.asarray(values, dtype="float64") > sign * reference)
