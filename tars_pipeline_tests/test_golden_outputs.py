"""Every output of the bundled week, byte for byte, against the committed golden copies.

A refactor of the judge, the graph or the renderers must not change what an SRE reads: this
test compares the 14 files of one run of the week (SPEC §4) with `golden/v1.0.1/`, after
blanking the one thing that differs between runs (the generation timestamp) and writing
every number of more than 12 significant digits with 12: a release of NumPy or SciPy may
move the last bit of a float (SciPy 1.17's pearsonr did, in the 16th digit of a trend's r),
which no reader sees, while any change a reader could see still shows.

When an output is meant to change, regenerate the copies and review the diff:

    TARS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tars_pipeline_tests/test_golden_outputs.py
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from tars_pipeline_tests.conftest import DEMO_RELEASE, DemoWeek

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).resolve().parent / "golden" / DEMO_RELEASE
OUTPUTS = (
    "ga_kpi_summary.json",
    *(f"day_{day:02d}_summary.json" for day in range(8)),
    "anomaly_events.json",
    "regression_summary.json",
    "GA_7DAY_RETROSPECTIVE.json",
    "GA_7DAY_RETROSPECTIVE.md",
    "GA_7DAY_RETROSPECTIVE.html",
)
# "generated_at": "2026-12-01T10:19:46+00:00" (JSON), "generated 2026-12-01T10:19:46+00:00"
# (Markdown), "Generated 2026-12-01 10:19:46+00:00" (HTML).
_GENERATED = re.compile(
    r'(?i)(generated(?:_at)?"?:?\s*"?)'
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?"
)


# A decimal number with more than 12 significant digits (JSON floats as repr writes them).
_LONG_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])")


def _twelve_digits(match: re.Match[str]) -> str:
    number = match.group(0)
    mantissa = number.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    return number if len(mantissa) <= 12 else format(float(number), ".12g")


def normalise(text: str) -> str:
    return _LONG_NUMBER.sub(_twelve_digits, _GENERATED.sub(r"\1<generated>", text))


@pytest.mark.parametrize("name", OUTPUTS)
def test_output_matches_its_golden_copy(demo_week: DemoWeek, name: str) -> None:
    produced = normalise((demo_week.out / name).read_text(encoding="utf-8"))
    golden = GOLDEN / name
    if os.environ.get("TARS_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(produced, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    if produced != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), produced.splitlines(), "golden", "produced", lineterm="", n=1
        )
        pytest.fail(f"{name} differs from its golden copy:\n" + "\n".join(list(diff)[:60]))


def test_normalise_writes_long_numbers_with_twelve_digits() -> None:
    assert normalise('"r": 0.9814479205255556,') == normalise('"r": 0.9814479205255555,')
    assert normalise('"r": 0.9814479205255556,') == '"r": 0.981447920526,'
    assert normalise('"r": 0.9814479205255556') != normalise('"r": 0.9814479215255556')
    assert normalise("p 0.0012, 12.5 %, 3.0, -7.25e-05, v1.0.1") == (
        "p 0.0012, 12.5 %, 3.0, -7.25e-05, v1.0.1"
    )
    assert normalise("1.2345678901234567e-07") == "1.23456789012e-07"


def test_normalise_blanks_only_the_generation_time() -> None:
    assert normalise('"generated_at": "2026-12-01T10:19:46+00:00", "x": 1') == (
        '"generated_at": "<generated>", "x": 1'
    )
    assert normalise("Generated 2026-12-01 10:19:46+00:00 by") == "Generated <generated> by"
    assert normalise('"start": "2026-03-03T05:00:00+00:00"') == (
        '"start": "2026-03-03T05:00:00+00:00"'
    )
