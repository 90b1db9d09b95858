"""Smoke versions of the benchmarks (`make bench` runs the real sizes): each script runs end
to end on a small workload and prints its figures. No figure is asserted against a target:
targets are read from `make bench`, as ratios measured in one run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tars_pipeline_tests.conftest import REPO

pytestmark = pytest.mark.slow


def _script(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_detector_bound_benchmark_prints_its_ratio() -> None:
    out = _script("benchmarks/detector_bound.py", "--series", "24", "--points", "3000",
                  "--repeat", "1")  # fmt: skip
    assert "72,000 samples in 24 series" in out
    ratio = re.search(r"bound throughput: (\d+\.\d+)", out)
    assert ratio is not None and float(ratio.group(1)) > 0


def test_the_scale_benchmark_runs_the_bundled_week_and_prints_its_table() -> None:
    out = _script("benchmarks/scale.py", "--smoke")
    assert "| 0 | 36 | 412,560 |" in out
    for step in ("kpi_samples", "anomaly_events", "daily_summary", "baseline",
                 "regression_summary", "retrospective"):  # fmt: skip
        assert re.search(rf"\| {step} \| \d+\.\d\d \|", out), step
    assert "Dagster overhead" in out
