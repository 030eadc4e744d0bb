"""The wizard's pages. Each page shows engine state and reports what blocks moving on; none runs install logic."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget


class WizardPage(QWidget):
    """A page of the wizard. The shell asks ``blockers()`` to decide whether Next is enabled."""

    #: The page's name in the step sidebar.
    title = ""
    #: Emitted whenever ``blockers()`` or ``is_done()`` may have changed.
    changed = Signal()

    def blockers(self) -> list[str]:
        """Why the operator cannot move past this page yet; empty means Next is enabled."""
        return []

    def is_done(self) -> bool:
        return not self.blockers()

    def entered(self) -> None:
        """Called each time the page becomes the current one."""
