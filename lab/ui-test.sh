#!/usr/bin/env bash
# The web UI's browser tests (lab/ui/ui-test.mjs): a devnet of real daemons, Debian's chromium driven by
# playwright-core, axe-core for accessibility. Installs chromium (Debian) and the two npm packages (pinned by
# lab/ui/package-lock.json) when they are missing. Screenshots go to target/ui-screenshots/.
#
# usage: lab/ui-test.sh [BITDUST BINARY, default target/debug/bitdust]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${1:-$ROOT/target/debug/bitdust}")
if [ ! -x /usr/bin/chromium ]; then
    apt-get -o APT::Sandbox::User=root update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o APT::Sandbox::User=root install -y -qq chromium
fi
command -v npm >/dev/null || {
    apt-get -o APT::Sandbox::User=root update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o APT::Sandbox::User=root install -y -qq nodejs npm
}
cd "$ROOT/lab/ui"
npm ci --no-audit --no-fund --silent
node ui-test.mjs "$BIN"
