"""The Dagster code location (workspace.yaml, `dagster dev`): TARS for the tars.yaml found
through $TARS_CONFIG or ./tars.yaml. The graph itself is assembled in graph.py."""

from tars_pipeline.config import load_config
from tars_pipeline.graph import build_definitions

defs = build_definitions(load_config())
