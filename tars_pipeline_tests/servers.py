"""Real servers for the tests (Prometheus, Postgres, Chromium), and one rule for when a
machine lacks one: skip with a one-line reason, unless TARS_REQUIRE_SERVERS=1 (which
`.ci/run` sets), where a missing server fails the suite.

`CI=true` alone does not make them mandatory: GitHub Actions and GitLab set it on every
job, and `make test` must pass in a team's own CI without Debian's binaries.

Postgres: Debian's `postgresql` binaries (initdb, pg_ctl) start a throw-away cluster in a
temporary folder on a free loopback port, trust authentication, for as long as the test
needs it. initdb refuses to run as root, so as root the cluster runs as the `postgres`
user the Debian package creates.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE_ENV = "TARS_REQUIRE_SERVERS"


def servers_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip the test with `reason`, or fail it when the servers are required."""
    if servers_required():
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)
    raise AssertionError("unreachable")  # pytest.skip raises


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@dataclass(frozen=True)
class Postgres:
    port: int
    database: str = "dagster"
    user: str = "tars"

    def instance_yaml(self) -> str:
        """The `storage:` block of a dagster.yaml keeping runs, events and schedules here,
        as docs/deployment.md writes it (the psycopg2 driver dagster-postgres installs:
        SQLAlchemy ≥ 2.1 would pick psycopg 3 for a bare `postgresql` scheme)."""
        return (
            "\nstorage:\n  postgres:\n    postgres_db:\n"
            f"      username: {self.user}\n      password: ''\n      hostname: 127.0.0.1\n"
            f"      db_name: {self.database}\n      port: {self.port}\n"
            "      scheme: postgresql+psycopg2\n"
        )


@contextmanager
def postgres_server(folder: Path) -> Iterator[Postgres]:
    """A fresh Postgres cluster in `folder`, on 127.0.0.1, stopped (and its files left for
    pytest's tmp cleanup) when the block ends."""
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    if not (initdb and pg_ctl):
        unavailable(
            "postgresql is not installed (apt-get install --no-install-recommends postgresql, "
            "or .ci/setup.d/30-postgresql.sh)"
        )
    as_user: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    owned = folder
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            unavailable("running as root without runuser: initdb cannot run as root")
        as_user = ["runuser", "-u", "postgres", "--"]
        # pytest's folders are root's alone (0700): the cluster gets one of its own.
        owned = Path(tempfile.mkdtemp(prefix="tars-postgres-"))
        shutil.chown(owned, "postgres")
    data, sockets = owned / "pgdata", owned / "sockets"
    sockets.mkdir()
    if as_user:
        shutil.chown(sockets, "postgres")
    server = Postgres(port=free_port())

    def run(*command: str) -> None:
        result = subprocess.run(
            [*as_user, *command], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])

    run(initdb, "-D", str(data), "-U", server.user, "--auth=trust", "-E", "UTF8", "--no-sync")
    options = (
        f"-p {server.port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c max_connections=200"
    )
    log = owned / "postgres.log"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
    try:
        _create_database(server)
        yield server
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if owned != folder:
            shutil.rmtree(owned, ignore_errors=True)


def _create_database(server: Postgres) -> None:
    import psycopg2

    deadline = time.monotonic() + 30
    while True:
        try:
            connection = psycopg2.connect(
                host="127.0.0.1", port=server.port, user=server.user, dbname="postgres"
            )
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {server.database}")
    connection.close()


# --- An S3-compatible server -----------------------------------------------------------------
# moto's server (PyPI `moto[server]`) is an EMULATOR of the S3 API, not S3: it serves the
# real protocol (signed requests, PUT/GET/LIST, multipart) over loopback, which is what the
# store's code talks to, but it is not AWS's consistency or latency.

S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "tars-test-key",
    "AWS_SECRET_ACCESS_KEY": "tars-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def create_bucket(self, name: str) -> str:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint_url, **_boto_credentials())
        client.create_bucket(Bucket=name)
        return f"s3://{name}"


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@contextmanager
def s3_server(log: Path) -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, for as long as the block runs."""
    import sys

    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        unavailable("moto_server is not installed (pip install 'moto[server]': make install)")
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=output, stderr=output
        )
    server = S3Server(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
