"""T.A.R.S. Observability: the seven days after GA, as Dagster assets."""

__version__ = "1.0.2-pre"
PHASE = "Phase 14.6"
