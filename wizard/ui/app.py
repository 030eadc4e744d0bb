"""Entry point of the desktop wizard."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication

from wizard import __version__
from wizard.core.logs import setup_logging
from wizard.core.paths import AppPaths, app_paths
from wizard.core.runner import Event
from wizard.core.secrets import SecretStore
from wizard.ui.bridge import StepsFactory
from wizard.ui.compat import binding_problem
from wizard.ui.crash import CrashHandler
from wizard.ui.resources import app_metadata, window_icon
from wizard.ui.shell import WINDOW_TITLE, MainWindow

if TYPE_CHECKING:
    from wizard.lab.rehearsal import Rehearsal

log = logging.getLogger(__name__)


def application() -> QApplication:
    """The process's QApplication, created on first use."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    app = QApplication(sys.argv[:1])
    meta = app_metadata()
    app.setApplicationName(str(meta.get("name") or "palette-wizard"))
    app.setApplicationDisplayName(str(meta.get("display_name") or WINDOW_TITLE))
    app.setApplicationVersion(__version__)
    if meta.get("organisation"):
        app.setOrganizationName(str(meta["organisation"]))
    if meta.get("organisation_domain"):
        app.setOrganizationDomain(str(meta["organisation_domain"]))
    app.setDesktopFileName(str(meta.get("name") or "palette-wizard"))  # Wayland matches the .desktop file by it
    icon = window_icon()
    if icon is not None:
        app.setWindowIcon(icon)
    return app


def main(
    project: Path | None = None,
    *,
    steps: StepsFactory | None = None,
    paths: AppPaths | None = None,
    secrets: SecretStore | None = None,
    on_event: Callable[[Event], None] | None = None,
    rehearsal: Rehearsal | None = None,
) -> int:
    """Open the wizard (on the Project page when ``project`` is given); returns the event loop's exit code.

    ``paths`` and ``secrets`` replace the operator's home and keyring, ``on_event`` sees every engine event (on the
    worker's side). A prepared ``rehearsal`` brings all of these and its project; its lab stops when the window
    closes."""
    if rehearsal is not None:
        project, steps, paths = rehearsal.project_file, rehearsal.steps, rehearsal.paths
    paths = (paths or app_paths()).ensure()
    log_file = setup_logging(paths.logs)
    log.info("desktop wizard %s starting; log %s", __version__, log_file)
    problem = binding_problem()
    if problem is not None:
        log.error("%s", problem)
        print(f"error: {problem}", file=sys.stderr)
        return 1
    app = application()
    if rehearsal is not None:
        from wizard.ui.rehearsal import rehearsal_window

        window = rehearsal_window(rehearsal)
    else:
        window = MainWindow(steps=steps, paths=paths, secrets=secrets, on_event=on_event)
    crash = CrashHandler(paths.logs, lambda: window).install()
    try:
        window.show()
        if project is not None and rehearsal is None:
            window.open_project(project)
        return int(app.exec())
    finally:
        crash.uninstall()
        window.controller.cancel("cancelled: the wizard exited")
        window.controller.wait(10.0)
        window.deleteLater()
        log.info("desktop wizard exiting")
