"""GitHub issues for P0/P1 action items, end to end against a loopback issues API:
created once with the evidence, and never again — not on a re-run, not once closed."""

from __future__ import annotations

import pytest

from tars_pipeline.config import GitHubConfig, NotificationsConfig
from tars_pipeline.notify import notify_retrospective
from tars_pipeline.notify.github import GitHubIssues, fingerprint, issue_drafts, marker
from tars_pipeline.notify.http import HttpError
from tars_pipeline_tests.notify.conftest import (
    EVIL_SERVICE,
    ISSUES,
    REPOSITORY,
    TOKEN,
    retrospective_model,
)
from tars_pipeline_tests.notify.server import Answer, FakeServer


def config(server: FakeServer, **settings: object) -> NotificationsConfig:
    github = GitHubConfig(repository=REPOSITORY, api_url=server.url + "/api", **settings)
    return NotificationsConfig(github=github)


def run(server, env, http, model=None, **settings):
    model = model or retrospective_model()
    return notify_retrospective(model, config(server, **settings), env=env, http=http)


def test_p0_and_p1_items_become_issues_titled_and_labelled_as_the_seed(server, env, http):
    report = run(server, env, http)
    created = server.requests_to(ISSUES, "POST")
    model = retrospective_model()
    expected = [i for i in model["action_items"] if i["priority"] in ("P0", "P1")]
    assert [r.body["title"] for r in created] == [
        f"{item['priority']}: {item['description']}" for item in expected
    ]
    assert [r.body["labels"] for r in created] == [
        ["P0", "retrospective"],
        ["P1", "retrospective"],
    ]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)
    assert all(r.headers["accept"] == "application/vnd.github+json" for r in server.requests)
    assert report.count(channel="github", status="created") == 2
    assert [d.link for d in report.deliveries] == [
        "https://github.example/issues/1",
        "https://github.example/issues/2",
    ]


def test_the_issue_body_carries_the_evidence_escaped_and_the_fingerprint(server, env, http):
    run(server, env, http)
    body = server.requests_to(ISSUES, "POST")[0].body["body"]
    assert "### Evidence" in body and "| field | value |" in body
    assert "| kpi | error\\_rate |" in body
    assert "| change\\_pct | 900 |" in body
    assert "**What to do:** Break the errors of" in body
    # The hostile service name is inert Markdown: no raw tag, link or table break.
    assert EVIL_SERVICE not in body and "<!channel>" not in body
    assert "| service | \\<!channel\\> \\& \\<https://evil\\|x\\> |" in body
    (draft, _) = issue_drafts(retrospective_model(), ("P0", "P1"))
    assert body.endswith(marker(draft.fingerprint))


def test_a_second_run_opens_no_twins(server, env, http):
    run(server, env, http)
    report = run(server, env, http)
    assert len(server.requests_to(ISSUES, "POST")) == 2
    assert report.count(channel="github", status="duplicate") == 2
    assert report.count(channel="github", status="created") == 0


def test_a_closed_issue_still_counts_and_is_not_reopened(server, env, http):
    run(server, env, http)
    for issue in server.issues:
        issue["state"] = "closed"
    report = run(server, env, http)
    assert len(server.requests_to(ISSUES, "POST")) == 2
    assert {d.status for d in report.deliveries} == {"duplicate"}


def test_numbers_moving_on_a_rerun_do_not_make_a_new_issue(server, env, http):
    run(server, env, http)
    model = retrospective_model()
    for collection in ("recommendations", "action_items"):
        for entry in model[collection]:
            key = "title" if collection == "recommendations" else "description"
            entry[key] = entry[key].replace("+900 %", "+950 %").replace("+20 %", "+21 %")
    report = run(server, env, http, model=model)
    assert report.count(channel="github", status="duplicate") == 2
    assert len(server.requests_to(ISSUES, "POST")) == 2


def test_existing_issues_are_searched_across_pages_open_and_closed(server, env, http):
    # Four unrelated issues first: with two per page, ours sit on page three.
    for n in range(4):
        server.add_issue(title=f"old {n}", body="no marker", labels=["retrospective"])
    drafts = issue_drafts(retrospective_model(), ("P0", "P1"))
    for draft in drafts:
        server.add_issue(
            title=draft.title, body=draft.body, labels=["retrospective"], state="closed"
        )
    server.add_issue(title="unlabelled", body=drafts[0].body, labels=["bug"])
    report = run(server, env, http)
    lists = server.requests_to(ISSUES, "GET")
    assert [r.query.get("page", "1") for r in lists] == ["1", "2", "3"]
    assert lists[0].query == {"state": "all", "labels": "retrospective", "per_page": "100"}
    assert server.requests_to(ISSUES, "POST") == []
    assert report.count(channel="github", status="duplicate") == 2


def test_pull_requests_in_the_listing_are_not_issues(server, env, http):
    (draft, _) = issue_drafts(retrospective_model(), ("P0", "P1"))
    server.add_issue(title="PR", body=draft.body, labels=["retrospective"], pull_request={})
    run(server, env, http)
    assert len(server.requests_to(ISSUES, "POST")) == 2


def test_a_server_error_after_creating_does_not_open_a_twin_on_retry(server, env, http):
    server.create_then_fail = 1  # GitHub stored the first issue, then answered 502
    report = run(server, env, http)
    assert len(server.issues) == 2
    assert len(server.requests_to(ISSUES, "POST")) == 2  # one per item, no retry of the first
    assert report.count(channel="github", status="created") == 2


def test_bad_credentials_fail_once_without_retry_or_token(server, env, http):
    report = run(server, env={**env, "GITHUB_TOKEN": "ghp_wrong_token_abcdef"}, http=http)
    assert len(server.requests_to(ISSUES)) == 1
    assert len(report.failures) == 2
    error = report.failures[0].error
    assert "HTTP 401" in error and "Bad credentials" in error
    assert "ghp_wrong_token_abcdef" not in error and f"/repos/{REPOSITORY}/issues" in error


def test_a_next_link_to_another_host_is_not_followed_with_the_token(server, env, http):
    evil = Answer(200, [], {"Link": '<https://evil.example/steal?page=2>; rel="next"'})
    server.script(ISSUES, evil)
    issues = GitHubIssues(http, api_url=server.url + "/api", repository=REPOSITORY, token=TOKEN)
    with pytest.raises(HttpError, match="another host"):
        issues.existing()


def test_configured_priorities_and_labels_are_honoured(server, env, http):
    run(server, env, http, priorities=("P2",), labels=("post-ga", "retrospective"))
    (request,) = server.requests_to(ISSUES, "POST")
    assert request.body["title"].startswith("P2: Investigate CPU utilisation drift")
    assert request.body["labels"] == ["P2", "retrospective", "post-ga"]


def test_the_fingerprint_is_the_finding_not_its_wording():
    evidence = {"kpi": "latency_p99", "service": "api-gateway", "change_pct": 20.0}
    base = fingerprint("v1.0.1", "P1", "degradation", evidence, "Fix … +20 %")
    assert base == fingerprint(
        "v1.0.1", "P1", "degradation", {**evidence, "change_pct": 25.0}, "Fix … +25 %"
    )
    assert len(base) == 64 and int(base, 16) >= 0
    for changed in (
        fingerprint("v1.0.2", "P1", "degradation", evidence, ""),
        fingerprint("v1.0.1", "P0", "degradation", evidence, ""),
        fingerprint("v1.0.1", "P1", "slo", evidence, ""),
        fingerprint("v1.0.1", "P1", "degradation", {**evidence, "service": "checkout"}, ""),
        fingerprint("v1.0.1", "P1", "degradation", {**evidence, "kpi": "latency_p95"}, ""),
    ):
        assert changed != base
    # Without a KPI or service, the description is what tells items apart.
    assert fingerprint("v1", "P3", "cost", {}, "a") != fingerprint("v1", "P3", "cost", {}, "b")


def test_a_service_name_cannot_mention_a_team_in_the_issue_body():
    (draft, _) = issue_drafts(retrospective_model("@acme/sre **oncall**"), ("P0", "P1"))
    assert "@acme" not in draft.body and "@\u2060acme/sre \\*\\*oncall\\*\\*" in draft.body
    assert draft.title.startswith("P0: Fix error rate regression on @acme/sre **oncall**")


def test_a_listing_that_is_not_a_list_of_issues_stops_creation(server, env, http):
    server.script(ISSUES, Answer(200, "<html>maintenance</html>"))
    report = run(server, env, http)
    assert [d.status for d in report.deliveries] == ["failed", "failed"]
    assert "not a JSON list of issues" in report.failures[0].error
    assert server.requests_to(ISSUES, "POST") == []
