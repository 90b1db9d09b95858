"""The Kubernetes pieces: the image's command serves the code location, and the Helm values
say what dagster.yaml says.

No cluster or Docker daemon runs here: the image's CMD is run as a process (the same
`dagster api grpc` a pod runs) and health-checked over gRPC on loopback, and the values
file is checked against the instance settings it must mirror.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tars_pipeline.cli.runner import PACKAGED_INSTANCE_CONFIG
from tars_pipeline_tests.conftest import REPO
from tars_pipeline_tests.servers import free_port

pytestmark = pytest.mark.slow

DOCKERFILE = REPO / "Dockerfile"
VALUES = REPO / "deploy" / "helm" / "values.yaml"


def _pins() -> dict[str, str]:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    return dict(re.findall(r'"(dagster[a-z-]*)==([0-9.]+)"', text))


CORE = ("dagster", "dagster-webserver", "dagster-dg-cli")  # versioned as dagster itself


def test_the_image_installs_integrations_of_the_pinned_dagster_release() -> None:
    """Integrations are released as 0.(minor + 16).patch of dagster (1.13.27 ↔ 0.29.27)."""
    pins = _pins()
    _, minor, patch = pins["dagster"].split(".")
    integration = f"0.{int(minor) + 16}.{patch}"
    assert all(pins[name] == pins["dagster"] for name in CORE if name in pins)
    assert {name: version for name, version in pins.items() if name not in CORE} == {
        "dagster-duckdb": integration,
        "dagster-postgres": integration,
    }
    added = dict(re.findall(r'"(dagster-[a-z0-9]+)==([0-9.]+)"', DOCKERFILE.read_text("utf-8")))
    assert added == {"dagster-k8s": integration, "dagster-aws": integration}


def test_the_helm_values_queue_runs_as_dagster_yaml_does() -> None:
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    instance = yaml.safe_load(PACKAGED_INSTANCE_CONFIG.read_text(encoding="utf-8"))
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    runs = instance["concurrency"]["runs"]
    assert queued["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "tars_pipeline.definitions"]
    command = re.search(r"CMD \[(.*?)\]", DOCKERFILE.read_text("utf-8"), re.S)
    assert command and '"tars_pipeline.definitions"' in command.group(1)
    assert str(deployment["port"]) in command.group(1)


def test_the_images_command_serves_the_code_location(tmp_path: Path) -> None:
    """`dagster api grpc --module-name tars_pipeline.definitions`, as the pod runs it."""
    dagster = str(Path(sys.executable).parent / "dagster")
    port = str(free_port())
    env = {**os.environ, "TARS_CONFIG": str(REPO / "tars.yaml"), "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    server = subprocess.Popen(
        [dagster, "api", "grpc", "--module-name", "tars_pipeline.definitions",
         "--host", "127.0.0.1", "--port", port],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            check = subprocess.run(
                [dagster, "api", "grpc-health-check", "--host", "127.0.0.1", "--port", port],
                env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if check.returncode == 0:
                break
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, check.stdout + check.stderr
            time.sleep(1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded CI machine: serving is what is tested
            server.kill()
            server.wait(timeout=30)
