#!/usr/bin/env bash
# Set up and start the desktop wizard. Without arguments it opens on the built-in rehearsal lab
# (`palette-wizard --rehearse`); arguments go to `palette-wizard` instead (for example `gui project.yaml`).
# On a machine without a desktop display it starts on a virtual screen and says so.
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"
cd "$WIZARD_ROOT"

ensure_debs "${QT_DEBS[@]}"
ensure_venv test

if [ "$#" -eq 0 ]; then
  set -- --rehearse
fi

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ "$(uname)" = "Linux" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
  ensure_debs xvfb xauth
  say "no desktop display: starting the wizard on a virtual X screen (xvfb-run); close it with Ctrl+C"
  exec xvfb-run -a -s "-screen 0 1280x800x24" "$VENV/bin/palette-wizard" "$@"
fi
exec "$VENV/bin/palette-wizard" "$@"
