"""Unexpected exceptions: logged in full, shown to the operator with where the log is, and survived.

PySide6 hands exceptions raised in slots and event handlers to ``sys.excepthook``; the default hook only prints
them to a console the operator may not have. This hook logs them and opens a non-modal dialog, so the wizard
keeps running (a run in progress carries on) and no nested event loop starts inside the hook.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from wizard.core.logs import LOG_NAME
from wizard.core.redact import redact

log = logging.getLogger("wizard.ui.crash")

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]


def _tr(text: str) -> str:
    return QCoreApplication.translate("CrashHandler", text)


class CrashHandler:
    """A ``sys.excepthook`` (and ``threading.excepthook``) for the desktop wizard."""

    def __init__(self, log_dir: Path, parent: Callable[[], QWidget | None] | None = None) -> None:
        self.log_dir = log_dir
        self._parent = parent or (lambda: None)
        self._previous: ExceptHook | None = None
        self._previous_thread: Callable[[threading.ExceptHookArgs], object] | None = None
        self.dialog: QMessageBox | None = None

    @property
    def log_file(self) -> Path:
        return self.log_dir / LOG_NAME

    def install(self) -> CrashHandler:
        self._previous = sys.excepthook
        self._previous_thread = threading.excepthook
        sys.excepthook = self
        threading.excepthook = self._thread_hook
        return self

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook = self._previous
        if self._previous_thread is not None:
            threading.excepthook = self._previous_thread

    def __call__(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.critical("unexpected error in the desktop wizard", exc_info=(exc_type, exc, tb))
        on_gui_thread = threading.current_thread() is threading.main_thread()
        if QApplication.instance() is None or not on_gui_thread:
            return
        try:
            self.show_dialog(exc_type, exc, tb)
        except Exception:  # a failing crash dialog must not recurse into this hook
            log.exception("could not show the crash dialog")

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        # Worker threads never touch widgets: log only. The run controller reports engine failures itself.
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread else "?"
        if args.exc_value is None:
            log.critical("unexpected %s in thread %s", args.exc_type.__name__, name)
        else:
            log.critical(
                "unexpected error in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
            )

    def show_dialog(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            return  # one dialog at a time; an error repeating on every tick must not stack windows
        box = QMessageBox(self._parent())
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle(_tr("Unexpected error"))
        box.setText(
            redact(_tr("Something went wrong inside the wizard: {error}").format(error=f"{exc_type.__name__}: {exc}"))
        )
        box.setInformativeText(
            _tr(
                "The wizard is still running; you can carry on or close it. The full report is in the log:\n"
                "{log}\n\nPlease include that file when you report this problem."
            ).format(log=self.log_file)
        )
        box.setDetailedText(redact("".join(traceback.format_exception(exc_type, exc, tb))))
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setAccessibleName(_tr("Unexpected error"))
        box.finished.connect(self._dialog_closed)
        self.dialog = box
        box.open()

    def _dialog_closed(self) -> None:
        self.dialog = None
