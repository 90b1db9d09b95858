"""Defaults needed before, or without, loading tars.yaml's models.

The detector's settings are `thresholds:` in tars.yaml (config.py takes its defaults from
here), and the CSV mode of tars-anomaly-detector uses the same ones without importing the
config models: pydantic's model building is a fifth of that command's start-up.
"""

Z_THRESHOLD = 3.0
EWMA_SPAN = 60
WARMUP_SAMPLES = 60
ANOMALY_MIN_POINTS = 3
KPI_THRESHOLD_PCT = 10.0
"""A KPI's drift threshold, which is also the smallest move an anomaly event can be."""


def anomaly_severity_z() -> dict[str, float]:
    """|z| from which an event is medium, high, critical (else low); a new dict each call."""
    return {"medium": 4.0, "high": 6.0, "critical": 10.0}
