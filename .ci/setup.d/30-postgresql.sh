#!/usr/bin/env bash
# Postgres for the tests that keep the Dagster instance there (runs, event logs, schedules):
# each such test starts its own throw-away cluster with Debian's initdb/pg_ctl in a
# temporary folder on a free loopback port (tars_pipeline_tests/servers.py); nothing here
# starts a server. As root, the cluster runs as the `postgres` user the package creates.
# Idempotent: does nothing when initdb and pg_ctl are present; otherwise one apt-get update
# and an install of Debian's `postgresql` (no recommends). On a host running systemd the
# package also starts its own cluster on :5432; the tests do not use it.
set -euo pipefail

find_bin() {
  command -v "$1" 2>/dev/null || ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | tail -n 1
}

if [ -n "$(find_bin initdb)" ] && [ -n "$(find_bin pg_ctl)" ]; then
  echo "postgresql present: $("$(find_bin pg_ctl)" --version)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends postgresql
"$(find_bin pg_ctl)" --version
