"""The desktop rehearsal (``palette-wizard --rehearse``): the wizard's window on a :class:`Rehearsal`'s lab and
project.

The window's runs open their sessions with the rehearsal's own paths and in-memory secrets, the rehearsal's operator
sees every engine event (on the worker's side; it powers the nodes on when the install step starts), and closing the
window stops the lab and removes the rehearsal's folder unless a run failed or ``keep`` was asked for.
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from wizard.core.runner import ExitCode, RunFinished
from wizard.rehearsal import BANNER, Rehearsal, pacing_for
from wizard.ui.shell import MainWindow, UpgradeDefaults


def rehearsal_window(rehearsal: Rehearsal, parent: QWidget | None = None) -> MainWindow:
    """A main window on a prepared ``rehearsal``, its project open on the Project page."""
    window = MainWindow(
        steps=rehearsal.steps,
        paths=rehearsal.paths,
        secrets=rehearsal.secrets,
        on_event=rehearsal.on_event,
        rehearsal=BANNER,
        upgrade=UpgradeDefaults(pacing_for(rehearsal.speed), rehearsal.upgrade_bundle),
        parent=parent,
    )

    def finished(ev: RunFinished) -> None:
        # A failed rehearsal keeps its folder: the journal and the log say what went wrong.
        if ev.exit_code != ExitCode.DONE:
            rehearsal.keep = True

    window.controller.finished.connect(finished)
    window.closed.connect(rehearsal.close)
    window.open_project(rehearsal.project_file, goto=MainWindow.PROJECT)
    return window
