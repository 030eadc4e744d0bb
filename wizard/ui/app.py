"""Entry point of the desktop wizard."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from wizard import __version__
from wizard.core.logs import setup_logging
from wizard.core.paths import AppPaths, app_paths
from wizard.ui.compat import binding_problem
from wizard.ui.crash import CrashHandler
from wizard.ui.resources import app_metadata, window_icon
from wizard.ui.shell import WINDOW_TITLE, MainWindow

if TYPE_CHECKING:
    from wizard.core.runner import Event
    from wizard.core.secrets import SecretStore
    from wizard.rehearsal import Rehearsal
    from wizard.ui.bridge import StepsFactory

log = logging.getLogger(__name__)

#: Set (to anything) to print :data:`SHOWN_MARKER` once the main window has painted, then quit: how the cold-start
#: benchmark and build smoke tests time a start from process spawn to a window on screen.
EXIT_WHEN_SHOWN_ENV = "PALETTE_WIZARD_EXIT_WHEN_SHOWN"
SHOWN_MARKER = "palette-wizard: main window shown"

# What a run needs but the first window does not; imported on a worker once the window is up (see warm_up). The
# check catalog imports every provider's checks (pyVmomi among them) the first time a preflight reads it: half a
# second of interpreter time that would otherwise compete with the window at the start of the first run.
ENGINE_MODULES = (
    "wizard.install.session",
    "wizard.install.steps",
    "wizard.install.abort",
    "wizard.core.checks.catalog",
)

#: The interpreter's thread switch interval while the window is up (the default is 5 ms). The GUI thread gives up
#: the interpreter around Qt calls and waits for it again each time; with engine and job threads busy, every wait
#: could last a whole interval, and a slot making a few dozen Qt calls would then stall the window for a frame or
#: more. A shorter interval hands it back sooner, at the price of a little more switching on the workers.
SWITCH_INTERVAL_S = 0.001

#: Collection thresholds once the window is up (the default is 700, 10, 10). A collection runs on whichever thread
#: happens to allocate, holding the interpreter for as long as it takes, so a full one started by a worker stalls the
#: window too; fewer, with the start-up heap frozen out of them (``gc.freeze``), keeps each short and rare. The
#: youngest generation's collections stay frequent and cheap (a few thousand objects each).
GC_THRESHOLDS = (5000, 20, 50)


def settle_heap() -> None:
    """Keep collections off the GUI thread's critical path: everything loaded so far (Qt bindings, the engine, the
    check modules, the pages) is long-lived, so it is moved out of the collector's sight, and full collections of
    what remains become rarer."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log.debug("heap settled: %d objects frozen, thresholds %s", gc.get_freeze_count(), GC_THRESHOLDS)


class _FirstPaint(QObject):
    """Calls ``then`` once, on the event-loop pass after ``widget`` first painted."""

    def __init__(self, widget: QWidget, then: Callable[[], object]) -> None:
        super().__init__(widget)
        self._then: Callable[[], object] | None = then
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self._then is not None:
            then, self._then = self._then, None
            QTimer.singleShot(0, then)  # after the paint has been flushed to the screen
        return False


def warm_up(modules: tuple[str, ...] = ENGINE_MODULES) -> threading.Thread:
    """Import the engine on a worker, so neither the first window nor the first Start waits for it on the GUI
    thread (a Start before it is done waits only for what is still loading)."""

    def load() -> None:
        import importlib

        started = time.perf_counter()
        for name in modules:
            try:
                module = importlib.import_module(name)
                catalog = getattr(module, "CATALOG", None)
                if catalog is not None:
                    len(catalog)  # loads the check modules it lists
            except Exception:  # the run that needs it reports the same error where the operator sees it
                log.exception("loading %s in the background failed", name)
        log.debug("engine modules loaded in %.2f s", time.perf_counter() - started)
        settle_heap()  # what loaded is there for good: out of every later collection

    thread = threading.Thread(target=load, name="warm-up", daemon=True)
    thread.start()
    return thread


def application() -> QApplication:
    """The process's QApplication, created on first use."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    app = QApplication(sys.argv[:1])
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
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
        if os.environ.get(EXIT_WHEN_SHOWN_ENV):

            def shown() -> None:
                print(SHOWN_MARKER, flush=True)
                app.quit()

            _FirstPaint(window, shown)
        else:
            _FirstPaint(window, warm_up)
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
