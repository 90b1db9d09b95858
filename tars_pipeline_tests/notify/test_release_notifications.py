"""release_notifications on a real Dagster instance: the Day-7 asset reads the stored
retrospective, tells Slack, GitHub and the webhook on loopback, and says so in its
metadata — and materializing it again opens no twin issues."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG
from tars_pipeline.config import TarsConfig, load_config
from tars_pipeline.definitions import ASSETS
from tars_pipeline.resources import ReportsResource, StoreResource, TarsConfigResource
from tars_pipeline.sensors import register_releases
from tars_pipeline.store import open_store, replace_document
from tars_pipeline_tests.conftest import DEMO_RELEASE, write_config
from tars_pipeline_tests.notify.conftest import (
    ISSUES,
    REPOSITORY,
    SLACK_PATH,
    WEBHOOK_PATH,
    retrospective_model,
)
from tars_pipeline_tests.notify.server import FakeServer


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PACKAGED_INSTANCE_CONFIG, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        register_releases(instance, [DEMO_RELEASE])
        yield instance


def week_config(tmp_path: Path, notifications_settings: dict[str, Any]) -> TarsConfig:
    """The demo config plus `notifications:`, with a retrospective already in its store."""
    config = load_config(write_config(tmp_path, notifications=notifications_settings))
    with open_store(DuckDBResource(database=str(config.store_file))) as conn:
        replace_document(conn, DEMO_RELEASE, 7, "retrospective", retrospective_model())
    return config


def materialize(config: TarsConfig, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        selection=["release_notifications"],
        partition_key=DEMO_RELEASE,
        instance=instance,
        resources={
            "tars_config": TarsConfigResource(config_path=str(config.config_path)),
            "duckdb": StoreResource(),
            "reports": ReportsResource(),
        },
        raise_on_error=False,
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (event,) = result.asset_materializations_for_node("release_notifications")
    return {key: value.value for key, value in event.metadata.items()}


@pytest.fixture
def live(server: FakeServer, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {
        "slack": {},
        "github": {"repository": REPOSITORY, "api_url": server.url + "/api"},
        "webhook": {},
    }


def test_day_seven_tells_everyone_once_and_reruns_open_no_twins(tmp_path, instance, server, live):
    config = week_config(tmp_path, live)
    first = materialize(config, instance)
    assert first.success
    sent = metadata(first)
    assert sent["status"] == "sent" and sent["dry_run"] is False
    assert sent["issues_created"] == 2 and sent["issues_skipped_duplicates"] == 0
    assert sent["slack_messages"] == 2 and sent["p0_alert"] == "sent"
    assert sent["messages_sent"] == 3 and sent["failures"] == 0
    assert "| github | issue | created | P0: Fix error rate regression" in sent["deliveries"]
    slack = [r.body["text"] for r in server.requests_to(SLACK_PATH)]
    assert slack[0].startswith(":tada:") and slack[1].startswith(":rotating_light:")
    assert f"{DEMO_RELEASE}/GA_7DAY_RETROSPECTIVE.md" in slack[0]
    assert len(server.requests_to(WEBHOOK_PATH)) == 1
    assert "XXXXsecretXXXX" not in str(sent)

    again = metadata(materialize(config, instance))
    assert again["issues_created"] == 0 and again["issues_skipped_duplicates"] == 2
    assert len(server.requests_to(ISSUES, "POST")) == 2
    assert instance.get_materialized_partitions(dg.AssetKey("release_notifications")) == {
        DEMO_RELEASE
    }


def test_without_notifications_it_materializes_and_says_so(tmp_path, instance, server):
    result = materialize(load_config(write_config(tmp_path)), instance)
    assert result.success
    assert metadata(result)["status"] == "no notifications configured"
    assert server.requests == []


def test_dry_run_materializes_what_it_would_send_and_sends_nothing(tmp_path, instance, server):
    dry = {
        "slack": {"dry_run": True},
        "github": {"repository": REPOSITORY, "api_url": server.url + "/api", "dry_run": True},
    }
    result = materialize(week_config(tmp_path, dry), instance)
    assert result.success
    shown = metadata(result)
    assert shown["dry_run"] is True and shown["status"] == "dry run: nothing sent"
    assert [p["channel"] for p in shown["dry_run_payloads"]] == [
        "slack",
        "github",
        "github",
        "slack",
    ]
    assert server.requests == []


def test_a_rejected_token_fails_the_step_and_names_what_failed(
    tmp_path, instance, server, live, monkeypatch
):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_rejected_abcdef")
    result = materialize(week_config(tmp_path, live), instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "2 notification(s) failed" in message and "HTTP 401" in message
    assert "ghp_rejected_abcdef" not in message
    # The other channels still went out.
    assert len(server.requests_to(SLACK_PATH)) == 2 and len(server.requests_to(WEBHOOK_PATH)) == 1
