#!/usr/bin/env bash
# Installs what the dashboard's browser test (tests/integration/test_dashboard.py) drives:
# Debian's chromium and its chromedriver (selenium comes with the test extra).
# Debian/Ubuntu, as root (as CI runs). Idempotent: returns at once when both
# are there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "browser.sh: chromium and chromedriver ready"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "browser.sh: chromium and chromedriver are missing and installing them needs root" >&2
    exit 1
fi
echo "browser.sh: installing chromium and chromium-driver (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium chromium-driver
echo "browser.sh: chromium and chromedriver ready"
