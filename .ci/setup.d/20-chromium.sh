#!/usr/bin/env bash
# Headless Chromium for the HTML report's browser test (tars_pipeline_tests/reporting/).
# Idempotent: does nothing when a chromium binary is already on PATH; otherwise one
# `apt-get update` and an install of Debian's `chromium` package (no recommends: fonts and
# the sandbox helper come as dependencies, the desktop integration is not needed).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "chromium present: $(chromium --version 2>/dev/null || echo unknown version)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
chromium --version
