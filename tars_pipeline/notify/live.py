"""Mid-week: the Slack "live critical anomaly" message, from continuous mode.

Sent when the continuous sensor (or `tars-anomaly-detector --follow`) writes a critical
event to the store for the first time, and only with `live_critical` in
`notifications.slack.notify_on`: the store is what makes it once per event (an event
already stored, by an earlier tick, the other follower or the nightly run, is not new).
The secret is read from the environment as for the retrospective's messages and never
shown: a missing variable is a `TarsUserError` naming the variable, a failed POST a
delivery whose error is scrubbed of the URL (`notify.http`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from tars_pipeline.config import NotificationsConfig
from tars_pipeline.notify.dispatch import (
    Echo,
    NotifyReport,
    _client,
    _post,
    _target,
    is_configured,
    resolve_secrets,
)
from tars_pipeline.notify.http import HttpClient
from tars_pipeline.notify.slack import _section, mrkdwn

_log = logging.getLogger(__name__)
MAX_EVENTS_LISTED = 10


def _moment(value: Any) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def live_critical_message(release: str, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One message for a tick's critical events of one release (every label escaped)."""
    name = mrkdwn(release)
    lines = [
        f"• *{mrkdwn(event['service'])}* {mrkdwn(event['kpi'])}: {mrkdwn(event['direction'])} "
        f"since {_moment(event['start'])}, peak z {float(event['peak_z']):.1f} "
        f"(value {float(event['peak_value']):.4g}, expected "
        f"{float(event['expected_value']):.4g})"
        for event in events[:MAX_EVENTS_LISTED]
    ]
    if len(events) > MAX_EVENTS_LISTED:
        lines.append(f"• … and {len(events) - MAX_EVENTS_LISTED} more")
    first = events[0]
    text = (
        f":rotating_light: Live critical anomaly in release {name}: "
        f"{mrkdwn(first['service'], limit=80)} {mrkdwn(first['kpi'], limit=80)} "
        f"{mrkdwn(first['direction'])}" + (f" (+{len(events) - 1} more)" if len(events) > 1 else "")
    )
    blocks = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Live critical anomaly: {name}"[:150]},
        },
        _section(
            f":rotating_light: *{len(events)} critical anomaly event(s)* just detected in "
            f"release *{name}* by continuous mode:\n" + "\n".join(lines)
        ),
    ]
    return {"text": text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def notify_live_critical(
    release: str,
    events: Sequence[Mapping[str, Any]],
    config: NotificationsConfig,
    *,
    env: Mapping[str, str] = os.environ,
    http: HttpClient | None = None,
    echo: Echo | None = None,
) -> NotifyReport:
    """POST (or in dry-run print) one Slack message for `events`; an empty report when
    there is none or Slack's `notify_on` lacks "live_critical"."""
    echo = echo or _log.info
    report = NotifyReport(configured=is_configured(config))
    settings = config.slack
    if not events or settings is None or "live_critical" not in settings.notify_on:
        return report
    url = resolve_secrets(config, env).slack_webhook_url
    report.deliveries.append(
        _post(
            _client(config, http),
            channel="slack",
            kind="live_critical",
            title=f"live critical anomaly in release {release}: {len(events)} event(s)",
            target=_target("Slack webhook", settings.webhook_url_env, url),
            url=url,
            payload=live_critical_message(release, events),
            echo=echo,
        )
    )
    return report
