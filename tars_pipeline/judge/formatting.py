"""Every number formatter of the reports: sentences, tables, Markdown and HTML.

One owner, several named variants. The variants differ on purpose and the golden outputs
depend on each of them, so they are kept apart rather than merged:

- *sentence* style (`format_number`, `format_pct`, `format_with_unit`, `format_p_value`):
  what `explain` writes into an explanation or a recommendation title. Short: 150, 52.3,
  0.08; "+20 %" rather than "+20.0 %".
- *figure* style (`format_figure`, `format_signed`, `signed_pct`, `format_usd`): a column of
  a Markdown or HTML table, fixed decimals so the figures line up.
- *measured value* style (`format_significant`): a value in its unit with a fixed number of
  significant digits, so 99.95 stays 99.95 and 0.0004 stays readable.
- `magnitude_pct`: an unsigned percentage that does not round a small one to 0.0 %.

`None` and non-finite numbers read "n/a" wherever a variant accepts them; `finite_or_none`
is the same rule for the numbers a record carries.
"""

from __future__ import annotations

import math
from typing import Any

# Below this a p-value has underflowed (scipy returns 0.0): saying "p = 0" would claim
# certainty the test cannot give.
P_VALUE_FLOOR = 1e-16


def finite_or_none(value: object) -> float | None:
    """`value` as a float, or None when it is missing, not a number, NaN or infinite: what a
    record carries, so no JSON output ever holds NaN or Infinity."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- sentence style -------------------------------------------------------------------


def format_number(value: float | None) -> str:
    """A value for a sentence: 150, 52.3, 0.08, 1,234."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    if value == 0:
        return "0"
    return f"{value:.2g}"


def format_with_unit(value: float | None, unit: str) -> str:
    """`format_number` and the unit: "180 ms", "0.08 %", "n/a" and nothing for no unit."""
    return f"{format_number(value)} {unit}".rstrip()


def format_pct(value: float | None, *, signed: bool = True) -> str:
    """A percentage for a sentence: +20 %, +15.7 %, −3.2 % (one decimal unless it is zero).

    `signed=False` for a spread or a magnitude, which has no direction.
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    rounded = round(value, 1)
    decimals = 0 if rounded == int(rounded) else 1
    sign = "+" if signed else ""
    return f"{value:{sign}.{decimals}f} %"


def format_p_value(value: float | None, *, labelled: bool = True) -> str:
    """p = 0.0032, and p < 1e-16 for a p-value that underflowed to 0.0.

    `labelled=False` drops the "p": "0.0032", "< 1e-16", for a table column headed p.
    """
    if value is None:
        return "n/a"
    relation, number = ("<", "1e-16") if value < P_VALUE_FLOOR else ("=", f"{value:.2g}")
    if labelled:
        return f"p {relation} {number}"
    return number if relation == "=" else f"{relation} {number}"


# --- figure style (tables) --------------------------------------------------------------


def format_figure(value: Any, digits: int = 2) -> str:
    """A figure for a report table: thousands separated, `digits` fixed decimals, except a
    whole number from 1,000 on, which shows none ($1,234 rather than $1,234.00)."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def format_signed(value: Any, digits: int = 1) -> str:
    """A change with its sign and fixed decimals (`+20.0`), `n/a` where it is undefined."""
    return "n/a" if value is None else f"{value:+.{digits}f}"


def signed_pct(value: float | None, digits: int = 1) -> str:
    """`format_signed` in percent: `+20.0 %`, or `n/a` where a relative change is undefined
    (a ~0 baseline). Unlike `format_pct` it keeps its decimals, for a table column."""
    return "n/a" if value is None else f"{format_signed(value, digits)} %"


def format_usd(value: float | None, digits: int = 2) -> str:
    """Dollars, thousands separated: $1,234.50 (`digits=0` for a monthly estimate)."""
    return "n/a" if value is None else f"${value:,.{digits}f}"


# --- measured values and magnitudes ----------------------------------------------------


def format_significant(
    value: float | None, digits: int = 4, *, thousands_from: float = 1000.0
) -> str:
    """A measured value to `digits` significant digits (99.95 stays 99.95, not 100.0), as a
    whole number with thousands separated from `thousands_from` on.

    The HTML report uses the defaults; the drift table keeps six digits up to a million, so
    a baseline of 1,015.25 req/s still shows its decimals there.
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= thousands_from else f"{value:.{digits}g}"


def magnitude_pct(value: float | None) -> str:
    """An unsigned percentage: one decimal, or two significant digits below 0.1 %, so a
    small drift does not read as 0.0 %."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.1f} %" if abs(value) >= 0.1 or value == 0 else f"{value:.2g} %"
