"""The Review page: what the install will touch — machines created, booted or allocated, disks erased, passwords
replaced — with an explicit confirmation before Start.

The list comes from the project alone (:func:`wizard.install.review.review`), so nothing is contacted to show it.
The confirmation belongs to that very list: edit the project so that it touches something else and it is asked for
again. The page never blocks moving on (a run started elsewhere can be watched without it); Start on the Run page
sends the operator here until it is given.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QGroupBox, QLabel, QVBoxLayout, QWidget

from wizard.core.project import Project
from wizard.install.review import KINDS, Touch, digest, review
from wizard.ui.pages import WizardPage
from wizard.ui.theme import Status, status_hex
from wizard.ui.widgets import Banner, Tone, heading, paragraph

TITLES = {
    "machines": "Machines",
    "disks": "Disks erased",
    "nodes": "Nodes",
    "cluster": "Cluster",
    "console": "System console",
}


class ReviewPage(WizardPage):
    title = "Review"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = self.tr("Review")
        tr = self.tr
        self.project: Project | None = None
        self.touches: list[Touch] = []
        self._digest = ""
        self._confirmed = ""  # the digest of the list the operator confirmed

        self.intro = paragraph(
            tr(
                "Nothing has been touched yet: the checks so far only looked. When you press Start on the Run page, "
                "the install does what is listed here. Read it through, then confirm."
            ),
            self,
        )
        self.groups = QWidget(self)
        self.group_layout = QVBoxLayout(self.groups)
        self.group_layout.setContentsMargins(0, 0, 0, 0)
        self.confirm_box = QCheckBox(tr("I have checked these machines: the install may &erase their disks"), self)
        self.confirm_box.setAccessibleName(tr("Confirm what the install will touch"))
        self.confirm_box.toggled.connect(self._toggled)
        self.status = Banner(Tone.INFO, self)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Review what the install will touch"), self))
        layout.addWidget(self.intro)
        layout.addWidget(self.groups)
        layout.addWidget(self.confirm_box)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.set_project(None)

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        return []  # Start asks for the confirmation; watching a run never needs it

    def is_done(self) -> bool:
        return self.confirmed()

    def confirmed(self) -> bool:
        """The operator confirmed the list the project gives now."""
        return bool(self._digest) and self._confirmed == self._digest

    def confirm(self) -> None:
        self.confirm_box.setChecked(True)

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.touches = review(project) if project is not None else []
        self._digest = digest(self.touches) if self.touches else ""
        self._draw()
        self.confirm_box.blockSignals(True)
        self.confirm_box.setChecked(self.confirmed())
        self.confirm_box.blockSignals(False)
        self._say()
        self.changed.emit()

    def _toggled(self, on: bool) -> None:
        self._confirmed = self._digest if on else ""
        self._say()
        self.changed.emit()

    # -- drawing -------------------------------------------------------------------------------------------
    def _draw(self) -> None:
        while self.group_layout.count():
            item = self.group_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.hide()  # gone from the tab order at once, deleted later
                widget.deleteLater()
        if not self.touches:
            self.group_layout.addWidget(paragraph(self.tr("Open a valid project to see what it will touch."), self))
        for kind in KINDS:
            touches = [t for t in self.touches if t.kind == kind]
            if not touches:
                continue
            box = QGroupBox(self.tr(TITLES[kind]), self.groups)
            box.setAccessibleName(self.tr(TITLES[kind]))
            column = QVBoxLayout(box)
            for touch in touches:
                column.addWidget(self._line(touch, box))
            self.group_layout.addWidget(box)
        self.confirm_box.setEnabled(bool(self.touches))

    def _line(self, touch: Touch, parent: QWidget) -> QLabel:
        text = f"• {touch.what}"
        if touch.items:
            text += "\n" + "\n".join(f"      {item}" for item in touch.items)
        label = paragraph(text, parent)
        label.setAccessibleName(touch.text())
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if touch.destructive:
            font = label.font()
            font.setBold(True)
            label.setFont(font)
            label.setStyleSheet(f"color: {status_hex(Status.FAILED, label.backgroundRole())};")
        return label

    def _say(self) -> None:
        if not self.touches:
            self.status.hide()
        elif self.confirmed():
            self.status.show_text(self.tr("✓ Confirmed. Start the install on the Run page."), Tone.SUCCESS)
        else:
            self.status.show_text(
                self.tr("Confirm above before the install can start; it is asked again if the project changes."),
                Tone.INFO,
            )

    def lines(self) -> list[str]:
        """What the page lists, one line per change (for tests and the support record)."""
        return [t.text() for t in self.touches]
