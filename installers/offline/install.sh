#!/bin/sh
# Install palette-wizard from this wheelhouse with no network access (target @TARGET@, Python @PYTHON_VERSION@).
# Usage: ./install.sh [VENV_DIR]     default VENV_DIR: $HOME/.local/share/palette-wizard/venv
# PYTHON=/path/to/python3.X picks the interpreter (it must be Python @PYTHON_VERSION@).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-${HOME}/.local/share/palette-wizard/venv}
python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python@PYTHON_VERSION@ python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
[ -n "$python" ] || { echo "error: no python3 found; set PYTHON=/path/to/python@PYTHON_VERSION@" >&2; exit 2; }
have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$have" != "@PYTHON_VERSION@" ]; then
  echo "error: this wheelhouse is for Python @PYTHON_VERSION@, but $python is $have; set PYTHON=" >&2
  exit 2
fi

echo "checking the wheels against SHA256SUMS"
if command -v sha256sum >/dev/null 2>&1; then
  (cd "$here" && sha256sum -c --quiet SHA256SUMS)
else  # macOS
  (cd "$here" && shasum -a 256 -c --quiet SHA256SUMS)
fi

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --no-index --find-links "$here" --only-binary=:all: \
  --disable-pip-version-check "@REQUIREMENT@"
"$venv/bin/palette-wizard" --version
echo "installed: $venv/bin/palette-wizard (add $venv/bin to PATH, or run it by that path)"
