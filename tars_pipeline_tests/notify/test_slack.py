"""Slack: the Day-7 message and the P0 alert, as Slack receives them — and a service name
that tries to ping the channel and smuggle a link does neither."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tars_pipeline.config import NotificationsConfig, SlackConfig
from tars_pipeline.notify import notify_p0, notify_retrospective
from tars_pipeline.notify.slack import mrkdwn, p0_message, retrospective_message
from tars_pipeline_tests.notify.conftest import SLACK_PATH, retrospective_model
from tars_pipeline_tests.notify.server import Answer

SLACK = NotificationsConfig(slack=SlackConfig())


def strings(value: Any) -> Iterator[str]:
    """Every string in a payload (texts of blocks, fields, elements)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_mrkdwn_escapes_the_three_control_characters_and_nothing_else():
    assert (
        mrkdwn("<!channel> & <https://evil|x>") == "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;"
    )
    assert mrkdwn("api-gateway") == "api-gateway"
    assert mrkdwn("p99 *bold* _it_") == "p99 *bold* _it_"


def test_mrkdwn_breaks_bare_broadcasts_and_keeps_values_on_one_line():
    assert "@here" not in mrkdwn("svc @here")
    assert "@channel" not in mrkdwn("svc @Channel")
    assert mrkdwn("svc@example.com") == "svc@example.com"
    assert mrkdwn("a\n*forged line*\r\tb") == "a *forged line* b"
    assert len(mrkdwn("x" * 1000)) == 300


def test_no_text_in_either_message_can_ping_or_link():
    model = retrospective_model()
    for message in (retrospective_message(model), p0_message(model)):
        texts = list(strings(message))
        assert any("&lt;!channel&gt; &amp; &lt;https://evil|x&gt;" in text for text in texts)
        for text in texts:
            assert "<!channel>" not in text and "<https://evil" not in text
            assert "<" not in text and ">" not in text


def test_the_retrospective_message_carries_the_headline_numbers_and_top_recommendations():
    model = retrospective_model()
    message = retrospective_message(model, report_location="/data/out/GA_7DAY_RETROSPECTIVE.md")
    assert message["text"].startswith(":tada: GA +7 retrospective ready for v1.0.1")
    assert "1 P0 item(s) need immediate action" in message["text"]
    assert message["text"].endswith("View: /data/out/GA_7DAY_RETROSPECTIVE.md")
    header, numbers, top, context = message["blocks"]
    assert header["text"]["text"] == "GA +7 retrospective ready: v1.0.1"
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in numbers["fields"]}
    assert fields["*Average health (days 1+)*"] == "88.4"
    assert fields["*Lowest day*"] == "day 3: 61.5"
    assert fields["*Degradations*"] == "2 (1 critical, 1 high)"
    assert fields["*Action items*"] == "1 P0, 1 P1, 1 P2, 1 P3"
    lines = top["text"]["text"].splitlines()
    assert lines[0] == "*Top recommendations*"
    assert lines[1].startswith("• *[P0]* Fix error rate regression on &lt;!channel&gt;")
    assert "GA_7DAY_RETROSPECTIVE.md" in context["elements"][0]["text"]
    assert message["unfurl_links"] is False


def test_the_p0_message_lists_each_p0_with_its_evidence():
    message = p0_message(retrospective_model())
    assert message is not None
    assert message["text"].startswith(":rotating_light: P0 in release v1.0.1: 1 item(s)")
    body = message["blocks"][1]["text"]["text"]
    assert "*1 P0 action item(s)*" in body
    assert "evidence: kpi error_rate · service &lt;!channel&gt;" in body
    assert "change pct +900.0 %" in body
    assert p0_message(retrospective_model(p0=False)) is None


def test_slack_receives_the_retrospective_message_as_json(server, env, http):
    report = notify_retrospective(retrospective_model(), SLACK, env=env, http=http)
    (request,) = server.requests_to(SLACK_PATH, "POST")
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.body == retrospective_message(retrospective_model())
    assert [(d.channel, d.kind, d.status) for d in report.deliveries] == [
        ("slack", "retrospective", "sent")
    ]
    assert "XXXXsecretXXXX" not in report.deliveries[0].target
    assert report.deliveries[0].target.startswith("Slack webhook from $TARS_SLACK_WEBHOOK_URL")


def test_slack_receives_the_p0_alert_only_when_there_is_a_p0(server, env, http):
    report = notify_p0(retrospective_model(), SLACK, env=env, http=http)
    assert [d.status for d in report.deliveries] == ["sent"]
    assert server.requests_to(SLACK_PATH)[0].body["text"].startswith(":rotating_light:")
    assert notify_p0(retrospective_model(p0=False), SLACK, env=env, http=http).deliveries == []
    assert len(server.requests_to(SLACK_PATH)) == 1


@pytest.mark.parametrize(
    ("notify_on", "expected"),
    [(("retrospective",), ["retrospective"]), (("p0",), ["p0"]), ((), [])],
)
def test_notify_on_chooses_the_messages(server, env, http, notify_on, expected):
    config = NotificationsConfig(slack=SlackConfig(notify_on=notify_on))
    model = retrospective_model()
    report = notify_retrospective(model, config, env=env, http=http)
    report.extend(notify_p0(model, config, env=env, http=http))
    assert [d.kind for d in report.deliveries] == expected
    assert len(server.requests_to(SLACK_PATH)) == len(expected)


def test_a_failing_slack_is_reported_not_raised(server, env, http):
    server.script(SLACK_PATH, Answer(404, "no_service"))
    report = notify_retrospective(retrospective_model(), SLACK, env=env, http=http)
    (failure,) = report.failures
    assert "HTTP 404 (no_service)" in failure.error
    assert "XXXXsecretXXXX" not in failure.error
