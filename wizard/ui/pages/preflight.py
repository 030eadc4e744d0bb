"""The Preflight page: run the checks (nothing is touched), see each result, fix or override it.

Results come from the session's preflight report (``preflight-report.json`` beside the journal), written by the
engine's preflight step; the page reads it after a run and whenever it is shown, so a resumed session shows its last
results. A failed blocker keeps Next disabled and cannot be overridden; a failed warning can be accepted with a
reason, recorded in the journal through the core's ``override`` (only while no run is writing the journal). Each
failed result links to the page that fixes it (a refused login: the Credentials page, where the password is).

Failures are summed up by root cause (:mod:`wizard.core.checks.grouping`): a check that failed on several targets is
one line naming them all, and the checks that could not run because of it are folded under it (hidden in the table
until "Show the checks that could not run" is ticked).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wizard.core.checks.grouping import dependent, group_failures
from wizard.core.errors import WizardError
from wizard.core.journal import Journal, journal_path, project_id
from wizard.core.paths import app_paths
from wizard.core.progress import ProgressSnapshot
from wizard.core.redact import redact
from wizard.core.runner import ExitCode, RunFinished
from wizard.ui.bridge import RunController, SessionOpened
from wizard.ui.pages.live import BAR_SCALE, LivePage, announce, progress_bar
from wizard.ui.theme import Status, status_hex
from wizard.ui.units import preflight_report_paths as report_paths
from wizard.ui.widgets import Banner, Tone, button, heading, paragraph

log = logging.getLogger(__name__)

COLUMNS = ("Result", "Severity", "Check", "Target", "Message", "What to do", "Fix on")
COL_RESULT, COL_SEVERITY, COL_CHECK, COL_TARGET, COL_MESSAGE, COL_FIX, COL_PAGE = range(len(COLUMNS))

#: The catalog's ``step`` names → the page titles that fix them (the shell maps titles to pages).
FIX_PAGES = {
    "project": "Project",
    "credentials": "Credentials",
    "provider": "Provider",
    "nodes": "Nodes",
    "network": "Network",
    "files": "Files",
}


@dataclass(frozen=True)
class Row:
    """One check result as the page shows it."""

    check: str
    title: str
    severity: str  # blocker | warning
    outcome: str  # pass | fail | error
    target: str
    message: str
    remediation: str
    step: str
    overridden: str = ""  # the reason, when a failed warning was accepted

    @property
    def failed(self) -> bool:
        return self.outcome != "pass"

    @property
    def blocking(self) -> bool:
        return self.failed and self.severity == "blocker"

    @property
    def open_warning(self) -> bool:
        return self.failed and self.severity == "warning" and not self.overridden

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "title": self.title,
            "severity": self.severity,
            "outcome": self.outcome,
            "target": self.target,
            "message": self.message,
            "remediation": self.remediation,
            "step": self.step,
            "overridden": self.overridden,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], reasons: dict[str, str]) -> Row:
        check = str(d.get("check", ""))
        severity = str(d.get("severity", "blocker"))
        failed = str(d.get("outcome", "fail")) != "pass"
        reason = str(d.get("overridden") or (reasons.get(check, "") if failed and severity == "warning" else ""))
        return cls(
            check,
            str(d.get("title", check)),
            severity,
            str(d.get("outcome", "fail")),
            str(d.get("target", "")),
            str(d.get("message", "")),
            str(d.get("remediation", "")),
            str(d.get("step", "")),
            reason,
        )


def _order(row: Row) -> tuple[int, str]:
    rank = 0 if row.blocking else 1 if row.open_warning else 2 if row.failed else 3
    return rank, row.check


class PreflightPage(LivePage):
    title = "Preflight"

    #: The operator asked for the page with this title (from ``FIX_PAGES``) to fix a result.
    fix_requested = Signal(str)

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.title = self.tr("Preflight")
        tr = self.tr
        self.project_file: Path | None = None
        self.project_name = ""
        self.rows: list[Row] = []
        self.report_json: Path | None = None
        self.report_html: Path | None = None
        self._ran_here = False

        self.run_button = button(tr("&Run the checks"), tr("Run the preflight checks"), self)
        self.run_button.setToolTip(tr("Checks the jump host, the files, the network and the provider; changes nothing"))
        self.run_button.clicked.connect(self.run_checks)
        self.bar = progress_bar(tr("Preflight progress"), self)
        self.status = QLabel("", self)
        self.status.setAccessibleName(tr("Preflight status"))
        self.summary = Banner(Tone.INFO, self)
        self.report_button = button(tr("Open the re&port"), tr("Open the preflight report in a browser"), self)
        self.report_button.clicked.connect(self.open_report)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels([tr(c) for c in COLUMNS])
        self.table.setAccessibleName(tr("Preflight results"))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_MESSAGE, QHeaderView.ResizeMode.Stretch)
        # Long texts get fixed widths (elided, full text in the tooltip) so the message keeps the room; the
        # remediation is shown in full below the table for the selected row, so its column starts hidden.
        for col, width in ((COL_CHECK, 220), (COL_TARGET, 200)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        self.table.setColumnHidden(COL_FIX, True)
        self.table.setMinimumHeight(160)
        self.table.itemSelectionChanged.connect(self._selected)
        self.show_dependents = QCheckBox(tr("Show the checks that could not run because of another"), self)
        self.show_dependents.setAccessibleName(tr("Show the checks that could not run because another failed"))
        self.show_dependents.toggled.connect(self._hide_dependents)
        self.show_dependents.hide()
        self.hidden_rows: set[int] = set()

        self.detail = paragraph("", self)
        self.detail.setAccessibleName(tr("Selected result"))
        self.fix_button = button(tr("&Go to the page that fixes it"), tr("Go to the page that fixes it"), self)
        self.fix_button.clicked.connect(self._fix)
        self.reason_edit = QLineEdit(self)
        self.reason_edit.setAccessibleName(tr("Reason for overriding the selected warning"))
        self.reason_edit.setPlaceholderText(tr("why it is safe to go ahead (recorded in the journal and the report)"))
        self.reason_edit.textChanged.connect(self._update_buttons)
        self.reason_edit.returnPressed.connect(self.override_selected)
        self.override_button = button(tr("&Override warning"), tr("Override the selected warning"), self)
        self.override_button.clicked.connect(self.override_selected)
        self.override_message = Banner(Tone.ERROR, self)

        top = QHBoxLayout()
        top.addWidget(self.run_button)
        top.addWidget(self.bar, 1)
        top.addWidget(self.report_button)
        fix_row = QHBoxLayout()
        fix_row.addWidget(self.fix_button)
        fix_row.addSpacing(16)
        fix_row.addWidget(self.reason_edit, 1)
        fix_row.addWidget(self.override_button)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Preflight checks"), self))
        layout.addWidget(
            paragraph(
                tr(
                    "Everything that would make the install fail is checked before anything is touched. Blockers "
                    "must be fixed on the page named; a warning may be overridden with a reason. The install runs "
                    "these checks again first."
                ),
                self,
            )
        )
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.show_dependents)
        layout.addWidget(self.detail)
        layout.addLayout(fix_row)
        layout.addWidget(self.override_message)
        self._update_buttons()

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        count = sum(1 for g in group_failures([r.to_dict() for r in self.rows]) if g.blocking)
        if not count:
            return []
        return [self.tr("{count} preflight blocker(s) to fix").format(count=count)]

    def is_done(self) -> bool:
        return bool(self.rows) and not self.blockers()

    def set_project(self, path: Path | None, name: str = "") -> None:
        if self.controller.running:
            return
        if path != self.project_file or name != self.project_name:
            self.project_file, self.project_name = path, name
            self.load()

    def journal_path(self) -> Path | None:
        if self.project_file is None:
            return None
        state = (self.controller.paths or app_paths()).state
        return journal_path(state, project_id(self.project_file, self.project_name))

    def entered(self) -> None:
        if not self.controller.running:
            self.load()

    # -- loading -------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Read the session's last report and the journal's overrides."""
        self.rows = []
        self.report_json = self.report_html = None
        self.status.setText("")  # said of the last run; run_finished says it again when it applies
        journal = self.journal_path()
        data: dict[str, Any] = {}
        reasons: dict[str, str] = {}
        if journal is not None:
            self.report_json, self.report_html = report_paths(journal)
            try:
                data = json.loads(self.report_json.read_text(encoding="utf-8"))
            except FileNotFoundError:
                data = {}
            except (OSError, ValueError) as exc:
                log.warning("preflight report %s unreadable: %s", self.report_json, exc)
                self.summary.show_text(self.tr("⚠ The last report could not be read: {e}").format(e=exc), Tone.WARNING)
            try:
                raw = json.loads(journal.read_text(encoding="utf-8")) if journal.exists() else {}
                for entry in raw.get("overrides") or []:
                    reasons[str(entry.get("check", ""))] = str(entry.get("reason", ""))
            except (OSError, ValueError) as exc:
                log.warning("journal %s unreadable: %s", journal, exc)
        self.rows = sorted((Row.from_dict(d, reasons) for d in data.get("results") or []), key=_order)
        self._fill()
        self.changed.emit()

    def _fill(self) -> None:
        tr = self.tr
        self.table.setRowCount(0)
        groups = group_failures([r.to_dict() for r in self.rows])
        # A check that could not run because another failed is folded under that one (when there is one).
        folded = {(t, target) for g in groups for t, target in g.dependents}
        self.hidden_rows = {
            i for i, r in enumerate(self.rows) if dependent(r.to_dict()) and (r.title, r.target) in folded
        }
        warn, fail, done = (status_hex(k) for k in (Status.WARNING, Status.FAILED, Status.DONE))
        for row in self.rows:
            i = self.table.rowCount()
            self.table.insertRow(i)
            if row.overridden:
                result, colour = tr("↷ Overridden"), warn
            elif not row.failed:
                result, colour = tr("✓ Passed"), done
            elif row.outcome == "error":
                result, colour = tr("✗ Could not check"), fail if row.blocking else warn
            else:
                result, colour = tr("✗ Failed"), fail if row.blocking else warn
            message = row.message + (f" — {tr('overridden')}: {row.overridden}" if row.overridden else "")
            cells = [
                result,
                tr("Blocker") if row.severity == "blocker" else tr("Warning"),
                row.title,
                row.target,
                message,
                row.remediation if row.failed else "",
                FIX_PAGES.get(row.step, "") if row.failed else "",
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(redact(text))
                item.setToolTip(redact(text))
                if col == COL_RESULT and row.failed:
                    item.setForeground(QBrush(QColor(colour)))
                self.table.setItem(i, col, item)
        blockers = sum(1 for g in groups if g.blocking)
        warnings = sum(1 for r in self.rows if r.open_warning)
        overridden = sum(1 for r in self.rows if r.overridden)
        passed = sum(1 for r in self.rows if not r.failed)
        if not self.rows:
            if not self.controller.running:
                self.summary.show_text(
                    tr("No results yet. Press Run the checks (the install runs them first in any case)."), Tone.INFO
                )
        else:
            text = tr("{n} checks: {p} passed, {b} blocker(s), {w} warning(s), {o} overridden.").format(
                n=len(self.rows), p=passed, b=blockers, w=warnings, o=overridden
            )
            causes = [
                f"• {g.headline()}" + (f" ({g.dependents_text()})" if g.dependents else "")
                for g in groups
                if g.blocking
            ]
            tone = Tone.ERROR if blockers else Tone.WARNING if warnings else Tone.SUCCESS
            self.summary.show_text(
                "\n".join([("✗ " if blockers else "⚠ " if warnings else "✓ ") + text, *causes]), tone
            )
        self.show_dependents.setText(
            tr("Show the {n} checks that could not run because of another").format(n=len(self.hidden_rows))
        )
        self.show_dependents.setVisible(bool(self.hidden_rows))
        self._hide_dependents(self.show_dependents.isChecked())
        if self.rows:
            self.table.selectRow(0)
        self._selected()

    def _hide_dependents(self, shown: bool) -> None:
        for i in range(self.table.rowCount()):
            self.table.setRowHidden(i, i in self.hidden_rows and not shown)

    # -- selection, fixing, overriding ---------------------------------------------------------------------
    def selected(self) -> Row | None:
        index = self.table.currentRow()
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or not 0 <= index < len(self.rows):
            return None
        return self.rows[index]

    def _selected(self) -> None:
        row = self.selected()
        self.override_message.hide()
        if row is None:
            self.detail.setText("")
        else:
            parts = [f"{row.title}{f' — {row.target}' if row.target else ''}: {row.message}"]
            if row.failed and row.remediation:
                parts.append(self.tr("What to do: {fix}").format(fix=row.remediation))
            if row.blocking:
                parts.append(self.tr("A blocker cannot be overridden: the install would fail or damage something."))
            self.detail.setText(redact("\n".join(parts)))
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.controller.running
        row = self.selected()
        self.run_button.setEnabled(self.project_file is not None and not running)
        self.report_button.setEnabled(self.report_html is not None and self.report_html.exists())
        self.fix_button.setEnabled(row is not None and row.failed and row.step in FIX_PAGES)
        can_override = row is not None and row.open_warning and not running
        self.reason_edit.setEnabled(can_override)
        self.override_button.setEnabled(can_override and bool(self.reason_edit.text().strip()))
        if row is not None and row.blocking:
            self.override_button.setToolTip(self.tr("Blockers cannot be overridden"))
        elif running:
            self.override_button.setToolTip(self.tr("Wait until the run has ended"))
        else:
            self.override_button.setToolTip(self.tr("Accept this warning with a reason"))

    def _fix(self) -> None:
        row = self.selected()
        if row is not None and row.step in FIX_PAGES:
            self.fix_requested.emit(FIX_PAGES[row.step])

    def override_selected(self) -> None:
        row = self.selected()
        journal_file = self.journal_path()
        reason = self.reason_edit.text().strip()
        if row is None or journal_file is None or not row.open_warning or self.controller.running or not reason:
            return
        from wizard.core.checks.report import override  # the checks load with the engine, after the first window

        try:
            pid = project_id(self.project_file, self.project_name)
            journal = Journal.open(journal_file, pid, str(self.project_file))
            override(journal, row.check, reason)
        except WizardError as exc:
            self.override_message.show_text(f"✗ {exc.title}: {exc.message}", Tone.ERROR)
            return
        log.info("preflight warning %s overridden: %s", row.check, reason)
        self.reason_edit.clear()
        check = row.check
        self.rows = sorted(
            (replace(r, overridden=reason) if r.check == check and r.open_warning else r for r in self.rows),
            key=_order,
        )
        self._fill()
        self.changed.emit()

    def open_report(self) -> None:
        if self.report_html is not None and self.report_html.exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report_html)))

    # -- runs ----------------------------------------------------------------------------------------------
    def run_checks(self) -> None:
        if self.project_file is None or self.controller.running:
            return
        self._ran_here = True
        self.controller.start(self.project_file, until="preflight")

    def run_started(self) -> None:
        self.bar.setValue(0)
        if self._ran_here:
            announce(self.status, self.tr("Running the preflight checks…"))

    def running_changed(self, running: bool) -> None:
        self._update_buttons()

    def session_opened(self, info: SessionOpened) -> None:
        self.report_json, self.report_html = report_paths(info.journal)

    def draw(self, snap: ProgressSnapshot) -> None:
        tasks = [t for t in snap.tasks if t.step in ("credentials", "verify", "preflight")]
        if not tasks:
            return
        self.bar.setValue(round(sum(t.fraction for t in tasks) / len(tasks) * BAR_SCALE))

    def run_finished(self, ev: RunFinished) -> None:
        ran_here, self._ran_here = self._ran_here, False
        self.load()
        if ran_here:
            if ev.exit_code in (ExitCode.DONE, ExitCode.PREFLIGHT_BLOCKED):
                self.bar.setValue(BAR_SCALE)
            if ev.exit_code is ExitCode.DONE:
                announce(self.status, self.tr("The preflight checks finished: nothing blocks the install."))
            elif ev.exit_code is ExitCode.PREFLIGHT_BLOCKED:
                announce(self.status, self.tr("The preflight checks found blockers."))
            elif ev.exit_code is ExitCode.CANCELLED:
                announce(self.status, self.tr("The preflight checks were cancelled."))
            else:
                error = ev.error or {}
                announce(
                    self.status,
                    self.tr("The checks could not run: {title}: {message}").format(
                        title=error.get("title", ""), message=redact(error.get("message", ""))
                    ),
                )
        self._update_buttons()


__all__ = ["FIX_PAGES", "PreflightPage", "Row"]
