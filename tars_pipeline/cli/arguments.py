"""Number arguments that refuse what no setting can be: NaN, ±Inf, and values below a
bound. argparse prints the flag and this message and exits 2, before anything runs."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(
    kind: type[int] | type[float], *, minimum: float, inclusive: bool = True
) -> Callable[[str], int | float]:
    """An argparse `type`: `kind(text)`, finite and ≥ (or >) `minimum`."""
    bound = f"{'≥' if inclusive else '>'} {minimum:g}"
    what = "a whole number" if kind is int else "a finite number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}")
        if value < minimum or (not inclusive and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


DAY = number(int, minimum=0)
POSITIVE = number(float, minimum=0, inclusive=False)
NON_NEGATIVE = number(float, minimum=0)
