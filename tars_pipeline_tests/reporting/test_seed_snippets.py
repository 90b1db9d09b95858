"""The seed's integration snippets run unchanged against the demo's retrospective JSON.

The snippets are copied verbatim from the product brief ("Integration Examples"): teams
paste them into their automation, so the keys they read (`action_items[].priority`,
`.description`, `cost_analysis`) are a contract. `requests.post` is replaced by a local
recorder; nothing leaves the machine.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from tars_pipeline_tests.conftest import DemoWeek

pytestmark = pytest.mark.slow

# Verbatim from the seed, "GitHub Issues (Automated)".
GITHUB_ISSUES_SNIPPET = """\
# Create issues from action items
import json, requests

with open('GA_7DAY_RETROSPECTIVE.json') as f:
    retro = json.load(f)

for item in retro['action_items']:
    if item['priority'] in ['P0', 'P1']:
        requests.post('https://api.github.com/repos/ORG/REPO/issues', json={
            'title': f"{item['priority']}: {item['description']}",
            'labels': [item['priority'], 'retrospective']
        })
"""

# Verbatim from the seed, "Cost Dashboard".
COST_DASHBOARD_SNIPPET = """\
# Push cost data to dashboard
import json

with open('GA_7DAY_RETROSPECTIVE.json') as f:
    retro = json.load(f)

cost_data = retro['cost_analysis']
# POST to Grafana, Datadog, etc.
"""


class RecordingRequests(types.ModuleType):
    """Stands in for the `requests` module: records each post, sends nothing."""

    def __init__(self) -> None:
        super().__init__("requests")
        self.posts: list[dict[str, Any]] = []

    def post(self, url: str, json: Any = None, **kwargs: Any) -> None:
        self.posts.append({"url": url, "json": json, **kwargs})


def _run(snippet: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "seed_snippet"}
    exec(compile(snippet, "<seed snippet>", "exec"), namespace)
    return namespace


def test_the_github_issues_snippet_opens_one_issue_per_p0_p1_action_item(
    demo_week: DemoWeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = RecordingRequests()
    monkeypatch.setitem(sys.modules, "requests", recorder)
    monkeypatch.chdir(demo_week.out)

    _run(GITHUB_ISSUES_SNIPPET)

    urgent = [i for i in demo_week.retrospective["action_items"] if i["priority"] in {"P0", "P1"}]
    assert urgent, "the demo week has a P1 (the day-2 latency regression)"
    assert len(recorder.posts) == len(urgent)
    first = recorder.posts[0]
    assert first["url"] == "https://api.github.com/repos/ORG/REPO/issues"
    assert first["json"]["title"].startswith("P1: Root-cause the resolved latency p99 regression")
    assert first["json"]["labels"] == ["P1", "retrospective"]


def test_the_cost_dashboard_snippet_reads_the_cost_analysis(
    demo_week: DemoWeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo_week.out)

    cost_data = _run(COST_DASHBOARD_SNIPPET)["cost_data"]

    assert cost_data["daily_average"] == pytest.approx(336.0, abs=0.5)
    assert cost_data["change_pct"] == pytest.approx(12.0, abs=0.2)
    assert {row["resource_type"] for row in cost_data["by_resource"]} == {
        "compute",
        "memory",
        "storage",
        "network",
    }
    assert cost_data["projected_monthly"] == pytest.approx(336.0 * 30, rel=0.01)
