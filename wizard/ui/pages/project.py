"""The project page: what the project file describes, and every problem in it with the field and the fix."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wizard.core.errors import ProjectInvalid
from wizard.core.problems import Problem
from wizard.core.project import LoadedProject, Project, load_project
from wizard.ui.pages import WizardPage
from wizard.ui.theme import Status, status_hex
from wizard.ui.widgets import Banner, Tone, button, heading, paragraph
from wizard.ui.wording import humanize, where

NODE_COLUMNS = ("Name", "Hostname", "Addressing", "IP address", "Prefix", "Gateway")
PROBLEM_COLUMNS = ("Severity", "Field", "Problem", "Fix")
_NONE = "—"


def _table(columns: tuple[str, ...], name: str, parent: QWidget) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.setAccessibleName(name)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.verticalHeader().hide()
    table.setTabKeyNavigation(False)  # Tab moves on to the next control instead of cell by cell
    return table


def _item(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setToolTip(text)
    return item


class ProjectPage(WizardPage):
    title = "Project"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.loaded: LoadedProject | None = None
        self.problems: list[Problem] = []
        self._busy = False

        self.file_label = paragraph(self.tr("No project file is open."), self)
        self.reload_button = button(self.tr("&Reload"), self.tr("Reload the project file"), self)
        self.reload_button.setToolTip(self.tr("Read the project file again after editing it"))
        self.reload_button.clicked.connect(self.reload)
        self.reload_button.setEnabled(False)
        self.status = Banner(Tone.INFO, self)

        self.name_value = QLabel(_NONE, self)
        self.provider_value = QLabel(_NONE, self)
        self.vip_value = QLabel(_NONE, self)
        for value, name in (
            (self.name_value, self.tr("Project name")),
            (self.provider_value, self.tr("Provider")),
            (self.vip_value, self.tr("Virtual IP")),
        ):
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setAccessibleName(name)
        summary = QFormLayout()
        summary.addRow(self.tr("Name:"), self.name_value)
        summary.addRow(self.tr("Provider:"), self.provider_value)
        summary.addRow(self.tr("Virtual IP (VIP):"), self.vip_value)

        self.nodes = _table(NODE_COLUMNS, "Nodes", self)
        nh = self.nodes.horizontalHeader()
        nh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        nh.setStretchLastSection(True)

        self.problem_table = _table(PROBLEM_COLUMNS, "Problems", self)
        self.problem_table.setWordWrap(True)
        ph = self.problem_table.horizontalHeader()
        ph.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        ph.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        ph.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        ph.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.problem_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

        file_row = QHBoxLayout()
        file_row.addWidget(self.file_label, 1)
        file_row.addWidget(self.reload_button, 0, Qt.AlignmentFlag.AlignTop)

        self.nodes_label = QLabel("<b>{}</b>".format(self.tr("Nodes")), self)
        self.nodes_label.setBuddy(self.nodes)
        self.problems_label = QLabel("<b>{}</b>".format(self.tr("Problems")), self)
        self.problems_label.setBuddy(self.problem_table)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(self.tr("Project"), self))
        layout.addLayout(file_row)
        layout.addWidget(self.status)
        layout.addLayout(summary)
        layout.addWidget(self.nodes_label)
        layout.addWidget(self.nodes, 2)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.problem_table, 3)
        self._show()

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def project(self) -> Project | None:
        return self.loaded.project if self.loaded is not None else None

    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    def blockers(self) -> list[str]:
        if self.path is None:
            return ["open a project file"]
        errors = self.errors()
        if errors:
            return [f"{len(errors)} problem{'s' if len(errors) != 1 else ''} in the project file to fix"]
        return []

    def set_busy(self, busy: bool) -> None:
        """While a run is active the file it was started from must stay the one shown."""
        self._busy = busy
        self.reload_button.setEnabled(not busy and self.path is not None)

    # -- loading -------------------------------------------------------------------------------------------
    def load(self, path: Path) -> bool:
        """Read and validate ``path``; true when it has no errors. Reading is quick, so it happens right here."""
        self.path = path
        try:
            self.loaded = load_project(path)
            self.problems = list(self.loaded.warnings)
        except ProjectInvalid as exc:
            self.loaded = None
            self.problems = list(exc.problems)
        self._show()
        self.changed.emit()
        return self.loaded is not None

    def reload(self) -> None:
        if self.path is not None:
            self.load(self.path)

    # -- showing -------------------------------------------------------------------------------------------
    def _show(self) -> None:
        self.reload_button.setEnabled(self.path is not None and not self._busy)
        self.file_label.setText(f"Project file: {self.path}" if self.path else "No project file is open.")
        project = self.project
        self.name_value.setText(project.name if project else _NONE)
        self.provider_value.setText(project.provider.type.value if project else _NONE)
        self.vip_value.setText(project.network.vip if project else _NONE)

        self.nodes.setRowCount(0)
        for node in project.nodes if project else ():
            row = self.nodes.rowCount()
            self.nodes.insertRow(row)
            cells = (
                node.name,
                node.hostname,
                node.address_mode.value,
                node.ip or _NONE,
                str(node.prefix) if node.prefix is not None else _NONE,
                node.gateway or _NONE,
            )
            for col, text in enumerate(cells):
                self.nodes.setItem(row, col, _item(text))

        self.problem_table.setRowCount(0)
        for problem in self.problems:
            row = self.problem_table.rowCount()
            self.problem_table.insertRow(row)
            severity = _item(problem.severity.value.capitalize())
            kind = Status.FAILED if problem.is_error else Status.WARNING
            severity.setForeground(QBrush(QColor(status_hex(kind) or "")))
            severity.setData(Qt.ItemDataRole.UserRole, problem)
            self.problem_table.setItem(row, 0, severity)
            self.problem_table.setItem(row, 1, _item(where(problem.path, secret="keyring" in problem.message)))
            self.problem_table.setItem(row, 2, _item(humanize(problem.message)))
            self.problem_table.setItem(row, 3, _item(humanize(problem.fix) if problem.fix else _NONE))
        self.problem_table.setVisible(bool(self.problems))
        self.problems_label.setVisible(bool(self.problems))
        self.nodes.setVisible(project is not None)
        self.nodes_label.setVisible(project is not None)

        errors = self.errors()
        if self.path is None:
            self.status.hide()
        elif errors:
            self.status.show_text(
                (
                    self.tr("✗ 1 problem must be fixed before you can continue.")
                    if len(errors) == 1
                    else self.tr("✗ {count} problems must be fixed before you can continue.").format(count=len(errors))
                )
                + " "
                + self.tr("Edit the project file, then press Reload."),
                Tone.ERROR,
            )
        elif project is not None:
            warned = len(self.problems)
            extra = (
                ""
                if not warned
                else self.tr(" — 1 warning below")
                if warned == 1
                else self.tr(" — {count} warnings below").format(count=warned)
            )
            n = len(project.nodes)
            nodes = self.tr("1 node") if n == 1 else self.tr("{count} nodes").format(count=n)
            self.status.show_text(
                self.tr("✓ The project is valid: {nodes}, provider {provider}{extra}.").format(
                    nodes=nodes, provider=project.provider.type.value, extra=extra
                ),
                Tone.SUCCESS,
            )
