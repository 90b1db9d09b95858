#!/usr/bin/env bash
# The Prometheus Pushgateway for the test that pushes the retrospective's OpenMetrics file
# (tars_pipeline_tests/test_openmetrics.py): the test starts a throw-away pushgateway on a
# free loopback port, pushes the bundled week's metrics and scrapes them back over HTTP.
# Idempotent: does nothing when the binary is present; otherwise one `apt-get update` and
# an install of Debian's `prometheus-pushgateway` package (1.x, no recommends). Debian names
# the binary prometheus-pushgateway. On a host running systemd the package also starts a
# pushgateway service on :9091; the test does not use it.
set -euo pipefail

find_bin() {
  command -v prometheus-pushgateway 2>/dev/null || command -v pushgateway 2>/dev/null || true
}

if [ -n "$(find_bin)" ]; then
  echo "pushgateway present: $("$(find_bin)" --version 2>&1 | head -n 1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends prometheus-pushgateway
"$(find_bin)" --version 2>&1 | head -n 1
