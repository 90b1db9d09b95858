"""Dispatch: secrets from the environment, dry runs that send nothing, a JSON webhook that
speaks the retrospective's contract, and one broken channel not silencing the others."""

from __future__ import annotations

import json

import pytest

from tars_pipeline.config import GitHubConfig, NotificationsConfig, SlackConfig, WebhookConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.notify import is_configured, notify_p0, notify_retrospective
from tars_pipeline_tests.notify.conftest import (
    ISSUES,
    REPOSITORY,
    SLACK_PATH,
    WEBHOOK_PATH,
    retrospective_model,
)
from tars_pipeline_tests.notify.server import Answer, FakeServer


def everything(server: FakeServer, *, dry_run: bool = False) -> NotificationsConfig:
    return NotificationsConfig(
        slack=SlackConfig(dry_run=dry_run),
        github=GitHubConfig(repository=REPOSITORY, api_url=server.url + "/api", dry_run=dry_run),
        webhook=WebhookConfig(dry_run=dry_run),
    )


def test_everything_configured_sends_slack_issues_and_the_webhook(server, env, http):
    model = retrospective_model()
    report = notify_retrospective(model, everything(server), env=env, http=http)
    report.extend(notify_p0(model, everything(server), env=env, http=http))
    assert [(d.channel, d.kind, d.status) for d in report.deliveries] == [
        ("slack", "retrospective", "sent"),
        ("github", "issue", "created"),
        ("github", "issue", "created"),
        ("webhook", "retrospective", "sent"),
        ("slack", "p0", "sent"),
    ]
    assert not report.dry_run and report.failures == []


def test_dry_run_sends_nothing_needs_no_secret_and_prints_the_payloads(server, http):
    printed: list[str] = []
    model = retrospective_model()
    config = everything(server, dry_run=True)
    report = notify_retrospective(model, config, env={}, http=http, echo=printed.append)
    report.extend(notify_p0(model, config, env={}, http=http, echo=printed.append))
    assert server.requests == []
    assert report.dry_run
    assert [(d.channel, d.status) for d in report.deliveries] == [
        ("slack", "dry_run"),
        ("github", "dry_run"),
        ("github", "dry_run"),
        ("webhook", "dry_run"),
        ("slack", "dry_run"),
    ]
    assert all(line.startswith("[dry-run] ") for line in printed)
    slack_payload = json.loads(printed[0].split(":\n", 1)[1])
    assert slack_payload["text"].startswith(":tada: GA +7 retrospective ready")
    assert '"title": "P0: Fix error rate regression' in printed[1]
    assert report.deliveries[1].payload["labels"] == ["P0", "retrospective"]


def test_dry_run_is_per_channel(server, env, http):
    config = NotificationsConfig(
        slack=SlackConfig(dry_run=True), webhook=WebhookConfig(dry_run=False)
    )
    report = notify_retrospective(retrospective_model(), config, env=env, http=http)
    assert [(d.channel, d.status) for d in report.deliveries] == [
        ("slack", "dry_run"),
        ("webhook", "sent"),
    ]
    assert server.requests_to(SLACK_PATH) == [] and len(server.requests_to(WEBHOOK_PATH)) == 1
    assert not report.dry_run


@pytest.mark.parametrize("missing", ["TARS_SLACK_WEBHOOK_URL", "GITHUB_TOKEN", "TARS_WEBHOOK_URL"])
def test_a_missing_secret_names_its_variable_and_nothing_is_sent(server, env, http, missing):
    env = {name: value for name, value in env.items() if name != missing}
    with pytest.raises(TarsUserError, match=f"environment variable {missing} is not set") as caught:
        notify_retrospective(retrospective_model(), everything(server), env=env, http=http)
    assert "dry_run: true" in str(caught.value)
    assert server.requests == []


def test_a_blank_variable_counts_as_missing(server, env, http):
    config = NotificationsConfig(slack=SlackConfig(webhook_url_env="TEAM_SLACK_HOOK"))
    with pytest.raises(TarsUserError, match="TEAM_SLACK_HOOK is not set"):
        notify_retrospective(retrospective_model(), config, env={"TEAM_SLACK_HOOK": " "})
    with pytest.raises(TarsUserError, match="TEAM_SLACK_HOOK is not set"):
        notify_p0(retrospective_model(), config, env={})


def test_a_variable_that_is_not_a_url_is_refused_without_echoing_it(server, http):
    env = {"TARS_WEBHOOK_URL": "hooks.example.com/secret-token-123"}
    with pytest.raises(TarsUserError, match="TARS_WEBHOOK_URL does not hold an http") as caught:
        notify_retrospective(
            retrospective_model(), NotificationsConfig(webhook=WebhookConfig()), env=env
        )
    assert "secret-token-123" not in str(caught.value)


def test_the_webhook_receives_the_summary_and_the_seeds_action_item_keys(server, env, http):
    config = NotificationsConfig(webhook=WebhookConfig())
    model = retrospective_model()
    notify_retrospective(model, config, env=env, http=http, report_location="/out/retro.md")
    (request,) = server.requests_to(WEBHOOK_PATH, "POST")
    body = request.body
    assert body["event"] == "tars.retrospective_ready"
    assert body["release"]["name"] == "v1.0.1" and body["summary"] == model["summary"]
    assert body["report"] == "/out/retro.md"
    # The seed's GitHub snippet reads exactly these keys.
    for item in body["action_items"]:
        assert item["priority"] in {"P0", "P1", "P2", "P3"} and item["description"]
    assert body["recommendations"][0]["evidence"]["service"] == model["degradations"][1]["service"]


def test_one_failing_channel_does_not_silence_the_others(server, env, http):
    server.script(SLACK_PATH, *[Answer(500, "down")] * 4)
    report = notify_retrospective(retrospective_model(), everything(server), env=env, http=http)
    assert [d.status for d in report.deliveries] == ["failed", "created", "created", "sent"]
    assert len(server.requests_to(ISSUES, "POST")) == 2
    assert "XXXXsecretXXXX" not in report.failures[0].error


def test_nothing_configured_means_nothing_to_do():
    config = NotificationsConfig()
    assert not is_configured(config)
    report = notify_retrospective(retrospective_model(), config, env={})
    assert report.deliveries == [] and not report.configured and not report.dry_run


def test_the_p0_only_slack_secret_is_checked_before_github_is_told(server, env, http):
    config = NotificationsConfig(
        slack=SlackConfig(notify_on=("p0",)),
        github=GitHubConfig(repository=REPOSITORY, api_url=server.url + "/api"),
    )
    env = {name: value for name, value in env.items() if name != "TARS_SLACK_WEBHOOK_URL"}
    with pytest.raises(TarsUserError, match="TARS_SLACK_WEBHOOK_URL is not set"):
        notify_retrospective(retrospective_model(), config, env=env, http=http)
    assert server.requests == []
