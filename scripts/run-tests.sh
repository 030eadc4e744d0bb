#!/usr/bin/env bash
# Set up everything the test suite needs (Debian packages, test peers, a virtualenv), then run lint, type checks
# and every test. Usage: scripts/run-tests.sh [extra pytest arguments]
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"
cd "$WIZARD_ROOT"

ensure_debs "${QT_DEBS[@]}" xvfb xauth openssh-client openssh-server dnsmasq-base iputils-ping curl iproute2 \
  golang-go golang-github-vmware-govmomi-dev xorriso
ensure_venv test

say "ruff (lint and format)"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
say "mypy"
"$VENV/bin/mypy"
say "pytest"
export QT_QPA_PLATFORM=offscreen
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
