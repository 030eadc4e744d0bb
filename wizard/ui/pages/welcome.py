"""The first page: what the wizard does, opening a project file, and resuming unfinished sessions."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from PySide6.QtCore import QT_TRANSLATE_NOOP, Qt, Signal
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
from wizard.ui.theme import Status, status_hex
from wizard.ui.widgets import button, heading, paragraph

PROJECT_FILTER = "Project (*.yaml *.yml *.json)"

# What an install needs, from Spectro Cloud's appliance installation prerequisites and port list (source:
# docs.spectrocloud.com, enterprise-version/install-palette/appliance-framework, as summarised in the project's
# reference notes palette-appliance.md §1.4 and §6). The preflight step checks each of these before anything is
# touched; this list is what to gather first.
PREREQUISITES: tuple[str, ...] = tuple(
    str(text)  # QT_TRANSLATE_NOOP only marks the text for the catalogue; its stubs say object
    for text in (
        QT_TRANSLATE_NOOP(
            "WelcomePage",
            "The appliance ISO on this machine, and for an air-gapped install its content bundle and pack bundles.",
        ),
        QT_TRANSLATE_NOOP(
            "WelcomePage",
            "1 or 3 nodes (3 for production), each with 8 CPUs, 16 GB of memory and two disks: 300 GB or more for the "
            "operating system (500 GB recommended) and 500 GB or more for the storage pool, which the install wipes.",
        ),
        QT_TRANSLATE_NOOP(
            "WelcomePage",
            "UEFI boot on every node (Secure Boot only where the docs support it).",
        ),
        QT_TRANSLATE_NOOP(
            "WelcomePage",
            "A free virtual IP (VIP) in the nodes' subnet, and DNS and NTP servers the nodes can reach.",
        ),
        QT_TRANSLATE_NOOP(
            "WelcomePage",
            "From this machine to each node: TCP 22 (SSH) and 5080 (Local UI); between the nodes and from users: "
            "TCP 443; from the nodes to workload clusters: TCP 6443.",
        ),
        QT_TRANSLATE_NOOP(
            "WelcomePage",
            "A way to boot the nodes: vCenter credentials, each server's BMC (Redfish) address and account, or a "
            "MAAS API key — or hands on each console for a manual boot.",
        ),
    )
)


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


class WelcomePage(WizardPage):
    title = "Welcome"

    #: The operator picked a project file to open.
    open_requested = Signal(Path)
    #: The operator chose to resume the session of this project file.
    resume_requested = Signal(Path)
    #: The operator chose to upgrade the open project's installed appliance (day 2).
    upgrade_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.has_project = False

        self.open_button = button(self.tr("&Open project file…"), self.tr("Open project file"), self)
        self.open_button.setToolTip(self.tr("Choose a project file (YAML or JSON)"))
        self.open_button.clicked.connect(self.choose_project)
        self.installed = False
        self.upgrade_button = button(self.tr("Up&grade…"), self.tr("Upgrade the installed appliance"), self)
        self.upgrade_button.setToolTip(
            self.tr("Day 2: upgrade the appliance this project installed with a newer release's content bundle")
        )
        self.upgrade_button.clicked.connect(self.upgrade_requested)

        self.sessions = QListWidget(self)
        self.sessions.setAccessibleName(self.tr("Unfinished sessions"))
        self.sessions.setAccessibleDescription(self.tr("Double-click a session, or select it and press Resume"))
        self.sessions.setAlternatingRowColors(True)
        self.sessions.setWordWrap(True)
        self.sessions.itemDoubleClicked.connect(self._resume_item)
        self.sessions.currentItemChanged.connect(lambda *_: self._update_buttons())

        self.refresh_button = button(self.tr("Re&fresh"), self.tr("Refresh the session list"), self)
        self.refresh_button.clicked.connect(self.refresh_sessions)
        self.resume_button = button(self.tr("Res&ume"), self.tr("Resume the selected session"), self)
        self.resume_button.clicked.connect(self.resume_selected)
        self.empty_label = paragraph(self.tr("No unfinished sessions."), self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # The list and its empty state share one slot, so the page keeps its shape either way.
        self.sessions_slot = QStackedWidget(self)
        self.sessions_slot.addWidget(self.empty_label)
        self.sessions_slot.addWidget(self.sessions)

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.upgrade_button)
        top.addStretch(1)

        session_buttons = QHBoxLayout()
        session_buttons.addStretch(1)
        session_buttons.addWidget(self.refresh_button)
        session_buttons.addWidget(self.resume_button)

        sessions_heading = QLabel("<b>{}</b>".format(self.tr("Unfinished sessions")), self)
        sessions_heading.setBuddy(self.sessions)

        intro = self.tr(
            "This wizard installs self-hosted Palette from the Palette Management Appliance ISO. It boots your nodes "
            "from the appliance ISO, monitors the operating system install, forms the cluster through Local UI, "
            "activates Palette and uploads the content and pack bundles."
        )
        how = self.tr(
            "Everything it needs comes from a project file (YAML or JSON) that names the nodes, the network and the "
            "files to use. Progress is recorded as it happens, so an interrupted install resumes where it stopped."
        )
        needs_heading = QLabel("<b>{}</b>".format(self.tr("What you need")), self)
        items = "".join(f"<li>{html.escape(self.tr(text))}</li>" for text in PREREQUISITES)
        self.prerequisites = QLabel(f"<ul style='margin-left: -20px'>{items}</ul>", self)
        self.prerequisites.setWordWrap(True)
        self.prerequisites.setTextFormat(Qt.TextFormat.RichText)
        self.prerequisites.setAccessibleName(self.tr("What you need"))
        self.prerequisites.setAccessibleDescription(" ".join(self.tr(text) for text in PREREQUISITES))
        needs_heading.setBuddy(self.prerequisites)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(self.tr("Welcome"), self))
        layout.addWidget(paragraph(intro, self))
        layout.addWidget(paragraph(how, self))
        layout.addWidget(needs_heading)
        layout.addWidget(self.prerequisites)
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

    def set_installed(self, installed: bool) -> None:
        """The open project's appliance was installed by this wizard: it can be upgraded."""
        self.installed = installed
        self._update_buttons()

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
                item.setForeground(QBrush(QColor(status_hex(Status.FAILED) or "")))
                item.setData(Qt.ItemDataRole.AccessibleTextRole, f"Error: {text}")
                item.setData(Qt.ItemDataRole.UserRole, entry)
                self.sessions.addItem(item)
                continue
            if entry.status == RUN_FINISHED or "." in entry.path.stem:
                continue  # finished, or a day-2 action's own session (the Upgrade page resumes an upgrade)
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
        self.upgrade_button.setEnabled(not self._busy and self.has_project and self.installed)

    def _resume_item(self, item: QListWidgetItem | None) -> None:
        path = self._resumable(item)
        if path is not None and not self._busy:
            self.resume_requested.emit(path)

    def resume_selected(self) -> None:
        self._resume_item(self.sessions.currentItem())

    # -- opening -------------------------------------------------------------------------------------------
    def choose_project(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, self.tr("Open project file"), str(Path.home()), PROJECT_FILTER)
        if name:
            self.open_requested.emit(Path(name))
