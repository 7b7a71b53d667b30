#!/usr/bin/env bash
# CI: the real-browser end-to-end tests (tests/browser.rs). Installs Debian's
# chromium and chromedriver when they are missing, and axe-core from npm into
# target/axe (the tests check every page with it), then runs the ignored
# browser tests explicitly. Screenshots of every page at 390 and 1280 px land
# in target/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi
/usr/bin/chromedriver --version

axe=target/axe/node_modules/axe-core/axe.min.js
if [ -z "${UTSKICK_AXE:-}" ] && [ ! -f "$axe" ]; then
    mkdir -p target/axe
    npm install --prefix target/axe --no-audit --no-fund --no-save axe-core@4
fi
head -c 40 "${UTSKICK_AXE:-$axe}"; echo

cargo test --locked --test browser -- --ignored 2>&1
