#!/usr/bin/env bash
# Build the Linux one-folder desktop app into dist/palette-wizard with PyInstaller, then smoke-test the result:
# its libraries, `--version`, an offscreen start of the desktop wizard (plain and on the rehearsal lab) and a
# whole headless rehearsal, all from the built files with an empty home folder.
# Usage: scripts/build-app.sh [--no-smoke] [--archive]   (the Windows and macOS builds: see installers/README.md)
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"
cd "$WIZARD_ROOT"

SMOKE=1 ARCHIVE=0
for arg in "$@"; do
  case "$arg" in
    --no-smoke) SMOKE=0 ;;
    --archive) ARCHIVE=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# PyInstaller reads shared-library dependencies with objdump and ldd (binutils, libc-bin).
ensure_debs "${QT_DEBS[@]}" binutils
ensure_venv test
"$VENV/bin/python" -m pip install -q -r installers/requirements-build.txt

VERSION="$("$VENV/bin/python" -c 'import sys; sys.path.insert(0, "installers"); import common; print(common.version())')"
APP=dist/palette-wizard
say "building palette-wizard $VERSION for Linux ($(uname -m)) into $APP"
rm -rf "$APP" build/pyinstaller
start=$(date +%s)
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller installers/linux/palette-wizard.spec
took=$(( $(date +%s) - start ))
say "built $APP in ${took}s ($(du -sh "$APP" | cut -f1))"
"$VENV/bin/python" installers/check_bundle.py "$APP" | grep -v '^note:' || true
"$VENV/bin/python" installers/check_bundle.py "$APP" >/dev/null

if [ "$SMOKE" = 1 ]; then
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  exe="$WIZARD_ROOT/$APP/palette-wizard"
  # From an empty folder, without the repository or the virtualenv on any path: only the bundle can answer.
  run_app() {
    (cd "$scratch" && env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV PALETTE_WIZARD_HOME="$scratch/home" \
      QT_QPA_PLATFORM=offscreen timeout 300 "$exe" "$@")
  }
  say "smoke test: --version"
  got="$(run_app --version)"
  [ "$got" = "palette-wizard $VERSION" ] || { echo "expected 'palette-wizard $VERSION', got '$got'" >&2; exit 1; }
  echo "$got"
  say "smoke test: the desktop wizard starts offscreen"
  PALETTE_WIZARD_SMOKE_TEST=3 run_app
  say "smoke test: the desktop wizard starts on the rehearsal lab"
  PALETTE_WIZARD_SMOKE_TEST=5 run_app --rehearse
  say "smoke test: the whole headless rehearsal (activation and packs included)"
  run_app run --rehearse --speed 600 > "$scratch/rehearsal.log" 2>&1 \
    || { tail -40 "$scratch/rehearsal.log" >&2; exit 1; }
  tail -3 "$scratch/rehearsal.log"
fi

if [ "$ARCHIVE" = 1 ]; then
  archive="dist/palette-wizard-$VERSION-linux-$(uname -m).tar.gz"
  tar -C dist -czf "$archive" palette-wizard
  say "archive: $archive ($(du -h "$archive" | cut -f1))"
fi
say "done: $APP/palette-wizard (build ${took}s)"
