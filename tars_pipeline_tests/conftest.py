"""Shared fixtures: a release week on the bundled snapshot, in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT = REPO / "test_data" / "snapshot"
DEMO_RELEASE = "v1.0.1"


def write_config(folder: Path, **overrides: object) -> Path:
    """A tars.yaml in `folder` reading the bundled week, storing everything in `folder`."""
    settings: dict[str, object] = {
        "data_dir": str(folder / "data"),
        "output_dir": str(folder / "out"),
        "source": {"type": "snapshot", "path": str(SNAPSHOT)},
        "releases": [
            {
                "name": DEMO_RELEASE,
                "ga_date": "2026-03-03",
                "timezone": "America/New_York",
                "window_days": 7,
            }
        ],
    }
    settings.update(overrides)
    path = folder / "tars.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)
