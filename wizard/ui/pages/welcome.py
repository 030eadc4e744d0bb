"""The first page: what the wizard does, opening a project file, and resuming unfinished sessions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from wizard.core.errors import JournalError
from wizard.core.journal import RUN_FINISHED, SessionInfo, list_sessions
from wizard.core.paths import app_paths
from wizard.ui.pages import WizardPage
from wizard.ui.widgets import button, heading, paragraph

PROJECT_FILTER = "Project (*.yaml *.yml *.json)"

INTRO = (
    "This wizard installs self-hosted Palette from the Palette Management Appliance ISO. It boots your nodes "
    "from the appliance ISO, monitors the operating system install, forms the cluster through Local UI, "
    "activates Palette and uploads the content and pack bundles."
)
HOW = (
    "Everything it needs comes from a project file (YAML or JSON) that names the nodes, the network and the "
    "files to use. Progress is recorded as it happens, so an interrupted install resumes where it stopped."
)


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


class WelcomePage(WizardPage):
    title = "Welcome"

    #: The operator picked a project file to open.
    open_requested = Signal(Path)
    #: The operator chose to resume the session of this project file.
    resume_requested = Signal(Path)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.has_project = False

        self.open_button = button("&Open project file…", "Open project file", self)
        self.open_button.setToolTip("Choose a project file (YAML or JSON)")
        self.open_button.clicked.connect(self.choose_project)

        self.sessions = QListWidget(self)
        self.sessions.setAccessibleName("Unfinished sessions")
        self.sessions.setAccessibleDescription("Double-click a session, or select it and press Resume")
        self.sessions.setAlternatingRowColors(True)
        self.sessions.setWordWrap(True)
        self.sessions.itemDoubleClicked.connect(self._resume_item)
        self.sessions.currentItemChanged.connect(lambda *_: self._update_buttons())

        self.refresh_button = button("Re&fresh", "Refresh the session list", self)
        self.refresh_button.clicked.connect(self.refresh_sessions)
        self.resume_button = button("Res&ume", "Resume the selected session", self)
        self.resume_button.clicked.connect(self.resume_selected)
        self.empty_label = paragraph("No unfinished sessions.", self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # The list and its empty state share one slot, so the page keeps its shape either way.
        self.sessions_slot = QStackedWidget(self)
        self.sessions_slot.addWidget(self.empty_label)
        self.sessions_slot.addWidget(self.sessions)

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addStretch(1)

        session_buttons = QHBoxLayout()
        session_buttons.addStretch(1)
        session_buttons.addWidget(self.refresh_button)
        session_buttons.addWidget(self.resume_button)

        sessions_heading = QLabel("<b>Unfinished sessions</b>", self)
        sessions_heading.setBuddy(self.sessions)

        layout = QVBoxLayout(self)
        layout.addWidget(heading("Welcome", self))
        layout.addWidget(paragraph(INTRO, self))
        layout.addWidget(paragraph(HOW, self))
        layout.addSpacing(8)
        layout.addLayout(top)
        layout.addSpacing(12)
        layout.addWidget(sessions_heading)
        layout.addWidget(self.sessions_slot, 1)
        layout.addLayout(session_buttons)
        self._busy = False
        self.refresh_sessions()

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        return [] if self.has_project else ["open a project file, or resume a session"]

    def set_project_open(self, opened: bool) -> None:
        self.has_project = opened
        self.changed.emit()

    def set_busy(self, busy: bool) -> None:
        """While a run is active, opening another project would pull the ground from under it."""
        self._busy = busy
        self.open_button.setEnabled(not busy)
        self._update_buttons()

    def entered(self) -> None:
        self.refresh_sessions()

    # -- sessions ------------------------------------------------------------------------------------------
    def refresh_sessions(self) -> None:
        self.sessions.clear()
        error_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
        for entry in list_sessions(app_paths().state):
            if isinstance(entry, JournalError):
                # Shown, never deleted: a damaged journal may be the only record of what was created.
                text = f"{entry.title}: {entry.message}"
                if entry.remediation:
                    text += f"\nWhat to do: {entry.remediation}"
                item = QListWidgetItem(error_icon, text)
                item.setForeground(QBrush(QColor("#a31515")))
                item.setData(Qt.ItemDataRole.AccessibleTextRole, f"Error: {text}")
                item.setData(Qt.ItemDataRole.UserRole, entry)
                self.sessions.addItem(item)
                continue
            if entry.status == RUN_FINISHED:
                continue
            where = f" at step “{entry.step}”" if entry.step else ""
            text = f"{entry.project} — {entry.status}{where}, {_when(entry.updated)}\n{entry.project_file}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setData(
                Qt.ItemDataRole.AccessibleTextRole,
                f"Session {entry.project}, {entry.status}{where}, last updated {_when(entry.updated)}",
            )
            item.setToolTip(str(entry.path))
            self.sessions.addItem(item)
        has_items = self.sessions.count() > 0
        self.sessions_slot.setCurrentWidget(self.sessions if has_items else self.empty_label)
        if has_items:
            self.sessions.setCurrentRow(0)
        self._update_buttons()

    def session_entries(self) -> list[SessionInfo | JournalError]:
        out: list[SessionInfo | JournalError] = []
        for i in range(self.sessions.count()):
            out.append(self.sessions.item(i).data(Qt.ItemDataRole.UserRole))
        return out

    @staticmethod
    def _resumable(item: QListWidgetItem | None) -> Path | None:
        if item is None:
            return None
        entry = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(entry, SessionInfo) and entry.status != RUN_FINISHED and entry.project_file:
            return Path(entry.project_file)
        return None

    def _update_buttons(self) -> None:
        self.resume_button.setEnabled(not self._busy and self._resumable(self.sessions.currentItem()) is not None)

    def _resume_item(self, item: QListWidgetItem | None) -> None:
        path = self._resumable(item)
        if path is not None and not self._busy:
            self.resume_requested.emit(path)

    def resume_selected(self) -> None:
        self._resume_item(self.sessions.currentItem())

    # -- opening -------------------------------------------------------------------------------------------
    def choose_project(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open project file", str(Path.home()), PROJECT_FILTER)
        if name:
            self.open_requested.emit(Path(name))
