#!/usr/bin/env bash
# Build the macOS app bundle into "dist/Palette Appliance Wizard.app" and smoke-test it; run on a Mac:
#   installers/macos/build.sh [--no-smoke] [--dmg]
# Environment: PYTHON (default python3.11), TARGET_ARCH (arm64 | x86_64 | universal2; default: this Mac's),
# CODESIGN_IDENTITY ("Developer ID Application: …") to sign with the hardened runtime, and NOTARY_PROFILE (a
# `xcrun notarytool store-credentials` profile) to notarise and staple the signed app.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
SMOKE=1 DMG=0
for arg in "$@"; do
  case "$arg" in
    --no-smoke) SMOKE=0 ;;
    --dmg) DMG=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-python3.11}"
VENV="$ROOT/build/venv-macos"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e "$ROOT" -r installers/requirements-build.txt
VERSION="$("$VENV/bin/python" -c 'import sys; sys.path.insert(0, "installers"); import common; print(common.version())')"
NAME="$("$VENV/bin/python" -c 'import sys; sys.path.insert(0, "installers"); import common; print(common.app_info().display_name)')"
APP="dist/$NAME.app"

if [ -n "${CODESIGN_IDENTITY:-}" ]; then export CODESIGN_ENTITLEMENTS="$ROOT/installers/macos/entitlements.plist"; fi
start=$(date +%s)
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller-macos \
  installers/macos/palette-wizard.spec
echo "built $APP in $(( $(date +%s) - start ))s"

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
  codesign --force --options runtime --timestamp --entitlements "$CODESIGN_ENTITLEMENTS" \
    --sign "$CODESIGN_IDENTITY" "$APP"
  codesign --verify --deep --strict "$APP"
  if [ -n "${NOTARY_PROFILE:-}" ]; then
    ditto -c -k --keepParent "$APP" "build/notarise.zip"
    xcrun notarytool submit "build/notarise.zip" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$APP"
  fi
fi

if [ "$SMOKE" = 1 ]; then
  scratch="$(mktemp -d)"; trap 'rm -rf "$scratch"' EXIT
  exe="$ROOT/$APP/Contents/MacOS/palette-wizard"
  run_app() { (cd "$scratch" && PALETTE_WIZARD_HOME="$scratch/home" QT_QPA_PLATFORM=offscreen "$exe" "$@"); }
  got="$(run_app --version)"
  [ "$got" = "palette-wizard $VERSION" ] || { echo "expected 'palette-wizard $VERSION', got '$got'" >&2; exit 1; }
  echo "$got"
  PALETTE_WIZARD_SMOKE_TEST=5 run_app
  PALETTE_WIZARD_SMOKE_TEST=8 run_app --rehearse
  run_app run --rehearse --speed 600 --until cluster | tail -3
fi

if [ "$DMG" = 1 ]; then
  dmg="dist/palette-wizard-$VERSION-macos-$(uname -m).dmg"
  rm -f "$dmg"
  hdiutil create -volname "$NAME" -srcfolder "$APP" -ov -format UDZO "$dmg"
  [ -n "${CODESIGN_IDENTITY:-}" ] && codesign --sign "$CODESIGN_IDENTITY" --timestamp "$dmg"
  echo "disk image: $dmg"
fi
