"""The judge is the functional core: importing all of it loads no Dagster."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import tars_pipeline.judge


def test_the_judge_imports_no_dagster() -> None:
    modules = [
        f"tars_pipeline.judge.{info.name}"
        for info in pkgutil.iter_modules(tars_pipeline.judge.__path__)
    ]
    assert len(modules) > 10
    probe = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in modules)
        + ("print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster')))")
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
