#!/usr/bin/env bash
# Build an offline wheelhouse for a jump host without internet: every wheel for one platform and Python version,
# with checksums and an install script that uses `pip --no-index`. Arguments go to installers/wheelhouse.py:
#   scripts/build-wheelhouse.sh --target linux-x86_64 --python 3.11        → wheelhouse/linux-x86_64-py3.11
#   scripts/build-wheelhouse.sh --target windows-x86_64 --python 3.12 --force
#   scripts/build-wheelhouse.sh --target macos-arm64 --python 3.11 --dry-run
# Targets: linux-x86_64, linux-aarch64, windows-x86_64, macos-arm64, macos-x86_64.
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"
cd "$WIZARD_ROOT"
ensure_python
# The builder needs only pip and `packaging`; a small virtualenv of its own keeps it apart from the app's.
TOOLS="${WHEELHOUSE_VENV:-$WIZARD_ROOT/build/wheelhouse-tools}"
if [ ! -x "$TOOLS/bin/python" ]; then
  say "creating $TOOLS"
  "$PYTHON" -m venv "$TOOLS"
fi
"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check "pip>=23.1" "packaging>=23" "setuptools>=68" wheel
exec "$TOOLS/bin/python" installers/wheelhouse.py "$@"
