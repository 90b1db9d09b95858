#!/usr/bin/env bash
# Prometheus and promtool for the real-server tests (tars_pipeline_tests/prometheus/): the
# bundled week is backfilled with promtool and served by a throw-away prometheus on a free
# loopback port. In CI (CI=true) those tests fail, not skip, when the binaries are missing.
# Idempotent: does nothing when both binaries are on PATH; otherwise one `apt-get update` and
# an install of Debian's `prometheus` package (2.x; no recommends: the node exporter and the
# web console libraries are not needed). On a host running systemd the package also starts a
# prometheus service on :9090; the tests do not use it.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  echo "prometheus present: $(prometheus --version 2>&1 | head -n 1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends prometheus
prometheus --version 2>&1 | head -n 1
promtool --version 2>&1 | head -n 1
