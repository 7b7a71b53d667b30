#!/usr/bin/env bash
# CI: the real-browser end-to-end test (tests/browser.rs). Installs Debian's
# chromium and chromedriver when they are missing, then runs the ignored
# browser tests explicitly. Screenshots land in target/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi
/usr/bin/chromedriver --version
cargo test --locked --test browser -- --ignored 2>&1
