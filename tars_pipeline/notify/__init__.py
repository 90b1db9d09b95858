"""Notifications for the Day-7 retrospective: Slack, GitHub issues and a generic webhook.

Pure Python (no Dagster): `dispatch` reads secrets from the environment and calls the
channel modules; the `release_notifications` asset is the thin Dagster shell around it.
"""

from tars_pipeline.notify.dispatch import (
    Delivery,
    NotifyReport,
    is_configured,
    notify_p0,
    notify_retrospective,
)

__all__ = ["Delivery", "NotifyReport", "is_configured", "notify_p0", "notify_retrospective"]
