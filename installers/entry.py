"""Entry point of the desktop bundles: exactly ``palette-wizard`` (wizard.cli), plus a smoke test for the builds.

``PALETTE_WIZARD_SMOKE_TEST=SECONDS`` makes a GUI start quit by itself after that many seconds, exiting 0 only
when the main window was shown: the build scripts use it with ``QT_QPA_PLATFORM=offscreen`` to prove the bundle
carries everything the desktop wizard loads (Qt plugins, data files, the rehearsal lab with ``--rehearse``).
"""

from __future__ import annotations

import os
import sys

SMOKE_ENV = "PALETTE_WIZARD_SMOKE_TEST"


def _smoke(seconds: float, argv: list[str]) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    from wizard.cli import main as cli_main
    from wizard.ui.app import application

    app = application()
    verdict: dict[str, str] = {}

    def check() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow) and w.isVisible()]
        if windows:
            verdict["ok"] = windows[0].windowTitle()
            app.exit(0)
        else:
            verdict["error"] = "no main window was shown"
            app.exit(1)
        # The windows close with the loop; a rehearsal's lab stops when its window does.
        for w in QApplication.topLevelWidgets():
            w.close()

    QTimer.singleShot(int(seconds * 1000), check)
    code = cli_main(argv)
    if "ok" in verdict and code == 0:
        print(f"smoke test: main window {verdict['ok']!r} shown; exit {code}", flush=True)
        return 0
    print(f"smoke test failed: {verdict.get('error', 'the wizard exited before the check')}; exit {code}", flush=True)
    return code or 1


def main() -> int:
    smoke = os.environ.get(SMOKE_ENV)
    if smoke:
        return _smoke(float(smoke), sys.argv[1:])
    from wizard.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
