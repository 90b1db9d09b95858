"""One Prometheus for the session, loaded with every realistic week (harness.load_suite).

Set TARS_REALISTIC_WEEKS=w1,w2 to load only some weeks. Without prometheus/promtool the
tests that need the server skip (or fail in CI), as in tars_pipeline_tests/prometheus.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tars_pipeline_tests.prometheus.conftest import require_binaries
from tars_pipeline_tests.realistic.harness import Suite, load_suite


@pytest.fixture(scope="session")
def realistic_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    require_binaries()
    selected = os.environ.get("TARS_REALISTIC_WEEKS", "").strip()
    keys = [k.strip() for k in selected.split(",") if k.strip()] or None
    with load_suite(tmp_path_factory.mktemp("realistic"), keys) as suite:
        yield suite
