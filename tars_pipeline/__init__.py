"""T.A.R.S. Observability: the seven days after GA, as Dagster assets."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed_version

PHASE = "Phase 14.6"


def _version() -> str:
    """The installed package's version as the seed prints it: 1.0.2rc0 → "1.0.2-pre"."""
    try:
        installed = _installed_version("tars-observability")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "1.0.2-pre"
    from packaging.version import Version

    parsed = Version(installed)
    return parsed.base_version + ("-pre" if parsed.is_prerelease else "")


__version__ = _version()
VERSION_LINE = f"T.A.R.S. Observability v{__version__} ({PHASE})"
"""What every command's --version prints (the seed's line)."""
