"""Who gets told what on Day 7: reads secrets, builds each channel's payload, sends or prints.

- Secrets (webhook URLs, the GitHub token) come only from the environment variables the
  config names. All of them are read *before* anything is sent, so a missing one fails
  with a `TarsUserError` naming the variable and leaves no half-notified state.
- A channel in dry-run mode sends nothing (not even GitHub's read-only listing) and
  needs no secret: it prints the payload it would send, so a config can be tried before
  the tokens exist.
- One channel failing does not stop the others; every outcome lands in the returned
  `NotifyReport`, which the asset turns into metadata (or a failure listing them).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from tars_pipeline.config import NotificationsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.notify import github, slack, webhook
from tars_pipeline.notify.http import HttpClient, HttpError, redact_url

Status = Literal["sent", "created", "duplicate", "dry_run", "failed"]
SUCCESS: frozenset[str] = frozenset({"sent", "created", "duplicate", "dry_run"})

_log = logging.getLogger(__name__)
Echo = Callable[[str], None]


@dataclass(frozen=True)
class Delivery:
    """One message or issue: where it went (redacted), what it was and how it went."""

    channel: Literal["slack", "github", "webhook"]
    kind: str  # "retrospective", "p0" or "issue"
    status: Status
    target: str
    title: str
    payload: Any = None
    link: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "kind": self.kind,
            "status": self.status,
            "target": self.target,
            "title": self.title,
            "link": self.link,
            "error": self.error,
        }


@dataclass
class NotifyReport:
    """Everything one notification pass did (or, in dry-run, would have done)."""

    configured: bool = True
    deliveries: list[Delivery] = field(default_factory=list)

    def extend(self, other: NotifyReport) -> NotifyReport:
        self.configured = self.configured or other.configured
        self.deliveries.extend(other.deliveries)
        return self

    def count(self, *, channel: str | None = None, status: str | None = None) -> int:
        return sum(
            1
            for delivery in self.deliveries
            if (channel is None or delivery.channel == channel)
            and (status is None or delivery.status == status)
        )

    @property
    def failures(self) -> list[Delivery]:
        return [delivery for delivery in self.deliveries if delivery.status == "failed"]

    @property
    def dry_run(self) -> bool:
        """True when nothing was really sent because every delivery was a dry run."""
        return bool(self.deliveries) and all(d.status == "dry_run" for d in self.deliveries)


def is_configured(config: NotificationsConfig) -> bool:
    return any(channel is not None for channel in (config.slack, config.github, config.webhook))


def _secret(env: Mapping[str, str], variable: str, setting: str) -> str:
    value = (env.get(variable) or "").strip()
    if not value:
        channel = setting.split(".")[1]
        raise TarsUserError(
            f"environment variable {variable} is not set (named by {setting})",
            where="tars.yaml",
            remedy=f"export {variable} with the secret, or set notifications.{channel}."
            "dry_run: true to print what would be sent without sending it",
        )
    return value


def _url_secret(env: Mapping[str, str], variable: str, setting: str) -> str:
    url = _secret(env, variable, setting)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Never echo the value: it is a secret, and a mangled one is still mostly secret.
        raise TarsUserError(
            f"environment variable {variable} does not hold an http(s) URL (named by {setting})",
            where="tars.yaml",
            remedy=f"set {variable} to the full URL, e.g. https://hooks.slack.com/services/…",
        )
    return url


def _url_secrets(url: str) -> list[str]:
    """The URL and its path and query: the parts that carry a webhook's token."""
    parts = urlsplit(url)
    return [url, parts.path, parts.query]


def _target(name: str, variable: str, url: str | None) -> str:
    shown = redact_url(url) if url else "not sent"
    return f"{name} from ${variable} ({shown})"


def _post(
    http: HttpClient,
    *,
    channel: Literal["slack", "webhook"],
    kind: str,
    title: str,
    target: str,
    url: str | None,
    payload: dict[str, Any],
    echo: Echo,
) -> Delivery:
    """POST one JSON message, or print it when `url` is None (dry run)."""
    if url is None:
        echo(
            f"[dry-run] {channel} {kind}: would POST to {target}:\n"
            + json.dumps(payload, indent=2, ensure_ascii=False)
        )
        return Delivery(channel, kind, "dry_run", target, title, payload)
    try:
        http.request("POST", url, target=target, json_body=payload, secrets=_url_secrets(url))
    except HttpError as error:
        echo(f"{channel} {kind}: FAILED — {error}")
        return Delivery(channel, kind, "failed", target, title, payload, error=str(error))
    echo(f"{channel} {kind}: sent to {target}")
    return Delivery(channel, kind, "sent", target, title, payload)


def _github(
    http: HttpClient,
    model: Mapping[str, Any],
    config: NotificationsConfig,
    token: str | None,
    echo: Echo,
) -> list[Delivery]:
    settings = config.github
    assert settings is not None
    drafts = github.issue_drafts(model, settings.priorities, settings.labels)
    target = f"GitHub issues of {settings.repository}"
    if token is None:
        for draft in drafts:
            echo(
                f"[dry-run] github issue: would create in {settings.repository} unless an "
                f"issue with fingerprint {draft.fingerprint[:12]}… exists:\n"
                + json.dumps(draft.payload(), indent=2, ensure_ascii=False)
            )
        return [
            Delivery("github", "issue", "dry_run", target, draft.title, draft.payload())
            for draft in drafts
        ]
    if not drafts:
        return []
    issues = github.GitHubIssues(
        http, api_url=settings.api_url, repository=settings.repository, token=token
    )
    try:
        outcomes = issues.sync(drafts)
    except HttpError as error:
        # Without the listing, creating could open twins: every draft fails instead.
        message = f"not created: listing existing issues failed — {error}"
        echo(f"github: {message}")
        return [
            Delivery(
                "github", "issue", "failed", target, draft.title, draft.payload(), error=message
            )
            for draft in drafts
        ]
    deliveries = []
    for outcome in outcomes:
        link = outcome.issue.url if outcome.issue else None
        what = {"created": "created", "duplicate": "exists, skipped", "failed": "FAILED"}
        echo(f"github issue {what[outcome.status]}: {outcome.draft.title} {link or ''}".rstrip())
        deliveries.append(
            Delivery(
                "github",
                "issue",
                outcome.status,
                target,
                outcome.draft.title,
                outcome.draft.payload(),
                link,
                outcome.error,
            )
        )
    return deliveries


@dataclass(frozen=True)
class Secrets:
    """The secrets of the configured live channels; None for absent or dry-run ones."""

    slack_webhook_url: str | None = None
    github_token: str | None = None
    webhook_url: str | None = None


def resolve_secrets(config: NotificationsConfig, env: Mapping[str, str]) -> Secrets:
    """Read every live channel's secret, or raise TarsUserError naming the first missing.

    Both `notify_retrospective` and `notify_p0` resolve *all* of them before sending, so
    a missing variable can never leave Slack told and GitHub not (or the other way).
    """
    slack_live = config.slack is not None and bool(config.slack.notify_on)
    return Secrets(
        slack_webhook_url=(
            _url_secret(env, config.slack.webhook_url_env, "notifications.slack.webhook_url_env")
            if config.slack is not None and slack_live and not config.slack.dry_run
            else None
        ),
        github_token=(
            _secret(env, config.github.token_env, "notifications.github.token_env")
            if config.github is not None and not config.github.dry_run
            else None
        ),
        webhook_url=(
            _url_secret(env, config.webhook.url_env, "notifications.webhook.url_env")
            if config.webhook is not None and not config.webhook.dry_run
            else None
        ),
    )


def _client(config: NotificationsConfig, http: HttpClient | None) -> HttpClient:
    return http or HttpClient(timeout_seconds=config.timeout_seconds, retries=config.retries)


def notify_retrospective(
    model: Mapping[str, Any],
    config: NotificationsConfig,
    *,
    env: Mapping[str, str] = os.environ,
    http: HttpClient | None = None,
    report_location: str | None = None,
    echo: Echo | None = None,
) -> NotifyReport:
    """Day 7: the Slack "retrospective ready" message, GitHub issues, the JSON webhook.

    `model` is the retrospective's data model (GA_7DAY_RETROSPECTIVE.json);
    `report_location` a path or URL shown to readers. Raises TarsUserError, before
    sending anything, when a channel that is not in dry-run lacks its secret.
    """
    echo = echo or _log.info
    report = NotifyReport(configured=is_configured(config))
    http = _client(config, http)
    secrets = resolve_secrets(config, env)
    slack_settings = (
        config.slack if config.slack and "retrospective" in config.slack.notify_on else None
    )
    slack_url = secrets.slack_webhook_url
    token = secrets.github_token
    webhook_url = secrets.webhook_url
    release = model["release"]["name"]
    if slack_settings:
        report.deliveries.append(
            _post(
                http,
                channel="slack",
                kind="retrospective",
                title=f"GA +7 retrospective ready: {release}",
                target=_target("Slack webhook", slack_settings.webhook_url_env, slack_url),
                url=slack_url,
                payload=slack.retrospective_message(model, report_location=report_location),
                echo=echo,
            )
        )
    if config.github:
        report.deliveries.extend(_github(http, model, config, token, echo))
    if config.webhook:
        report.deliveries.append(
            _post(
                http,
                channel="webhook",
                kind="retrospective",
                title=f"{webhook.EVENT_RETROSPECTIVE}: {release}",
                target=_target("webhook", config.webhook.url_env, webhook_url),
                url=webhook_url,
                payload=webhook.retrospective_payload(model, report_location=report_location),
                echo=echo,
            )
        )
    return report


def notify_p0(
    model: Mapping[str, Any],
    config: NotificationsConfig,
    *,
    env: Mapping[str, str] = os.environ,
    http: HttpClient | None = None,
    report_location: str | None = None,
    echo: Echo | None = None,
) -> NotifyReport:
    """The Slack "P0 appeared" message, when the retrospective has P0 action items and
    Slack's `notify_on` includes "p0". An empty report otherwise."""
    echo = echo or _log.info
    report = NotifyReport(configured=is_configured(config))
    settings = config.slack
    if settings is None or "p0" not in settings.notify_on:
        return report
    url = resolve_secrets(config, env).slack_webhook_url
    payload = slack.p0_message(model, report_location=report_location)
    if payload is None:
        return report
    report.deliveries.append(
        _post(
            _client(config, http),
            channel="slack",
            kind="p0",
            title=f"P0 in release {model['release']['name']}: {len(slack.p0_items(model))} item(s)",
            target=_target("Slack webhook", settings.webhook_url_env, url),
            url=url,
            payload=payload,
            echo=echo,
        )
    )
    return report


def summary_lines(deliveries: Iterable[Delivery]) -> list[str]:
    """One readable line per delivery, for logs and the asset's Markdown metadata."""
    return [
        f"{d.channel} {d.kind}: {d.status} — {d.title}"
        + (f" ({d.link})" if d.link else "")
        + (f" — {d.error}" if d.error else "")
        for d in deliveries
    ]
