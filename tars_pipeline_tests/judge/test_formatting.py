"""The number formatters: one owner, variants that round differently on purpose."""

from __future__ import annotations

import math

import pytest

from tars_pipeline.judge.formatting import (
    finite_or_none,
    format_figure,
    format_number,
    format_p_value,
    format_pct,
    format_signed,
    format_significant,
    format_usd,
    format_with_unit,
    magnitude_pct,
    signed_pct,
)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1234.4, "1,234"), (150.0, "150"), (52.34, "52.3"), (0.08, "0.08"), (0.0, "0"), (None, "n/a")],
)
def test_a_sentence_number_is_short(value, shown):
    assert format_number(value) == shown


def test_a_sentence_percentage_drops_a_zero_decimal_and_a_table_one_keeps_it():
    assert format_pct(20.0) == "+20 %" and format_pct(15.71) == "+15.7 %"
    assert format_pct(3.0, signed=False) == "3 %"
    assert signed_pct(20.0) == "+20.0 %" and signed_pct(-3.25, 2) == "-3.25 %"
    assert signed_pct(None) == "n/a" and format_pct(math.nan) == "n/a"


def test_a_p_value_that_underflowed_is_not_shown_as_zero():
    assert format_p_value(0.0) == "p < 1e-16" and format_p_value(0.00321) == "p = 0.0032"
    assert format_p_value(0.0, labelled=False) == "< 1e-16"
    assert format_p_value(0.00321, labelled=False) == "0.0032"
    assert format_p_value(None, labelled=False) == "n/a"


def test_table_figures_keep_fixed_decimals_except_whole_thousands():
    assert format_figure(1234.0) == "1,234" and format_figure(1234.5) == "1,234.50"
    assert format_figure(0.5, 1) == "0.5" and format_figure(None) == "n/a"
    assert format_signed(2.0) == "+2.0" and format_usd(1234.5) == "$1,234.50"
    assert format_usd(1234.5, 0) == "$1,234"


def test_measured_values_keep_their_significant_digits():
    assert format_significant(99.95) == "99.95" and format_significant(1500.4) == "1,500"
    assert format_significant(1015.25, 6, thousands_from=1e6) == "1015.25"
    assert format_significant(math.inf) == "n/a" and format_with_unit(None, "ms") == "n/a ms"
    assert magnitude_pct(0.04) == "0.04 %" and magnitude_pct(12.34) == "12.3 %"


def test_records_carry_none_rather_than_nan():
    assert finite_or_none("1.5") == 1.5
    assert finite_or_none(math.nan) is None and finite_or_none("x") is None
