"""The main window: a step sidebar, the pages, and Back / Next / Save / Cancel.

The shell owns navigation and the project document the input pages edit. Which page may be left is each page's
``blockers()`` (for the Project page: the problems no input page can fix); the sidebar shows every step as done,
current, blocked or still ahead. Edits live in the document until Next (or Save) writes the project file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QCloseEvent, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from wizard.core.paths import AppPaths, app_paths
from wizard.core.problems import Problem
from wizard.core.runner import Event
from wizard.core.secrets import SecretStore
from wizard.ui.bridge import RunController, StepsFactory
from wizard.ui.forms import InputPage, ProjectDocument
from wizard.ui.pages import WizardPage
from wizard.ui.pages.activation import ActivationPage
from wizard.ui.pages.bundles import BundlesPage
from wizard.ui.pages.cluster import ClusterPage
from wizard.ui.pages.credentials import CredentialsPage
from wizard.ui.pages.files import FilesPage
from wizard.ui.pages.install import InstallPage
from wizard.ui.pages.network import NetworkPage
from wizard.ui.pages.nodes import NodesPage
from wizard.ui.pages.preflight import PreflightPage
from wizard.ui.pages.project import ProjectPage
from wizard.ui.pages.provider import ProviderPage
from wizard.ui.pages.run import RunPage
from wizard.ui.pages.summary import SummaryPage
from wizard.ui.pages.welcome import WelcomePage
from wizard.ui.resources import window_icon
from wizard.ui.testers import register_all
from wizard.ui.trust import TrustPrompter
from wizard.ui.widgets import Banner, Tone, button

log = logging.getLogger(__name__)

WINDOW_TITLE = "Palette Appliance Wizard"
REHEARSAL_TITLE_SUFFIX = " — REHEARSAL (simulated nodes)"


class StepState(StrEnum):
    DONE = "done"
    CURRENT = "current"
    BLOCKED = "blocked"
    AHEAD = "not reached yet"


STEP_MARK: dict[StepState, str] = {
    StepState.DONE: "✓",
    StepState.CURRENT: "▶",
    StepState.BLOCKED: "⊘",
    StepState.AHEAD: "○",
}


class MainWindow(QMainWindow):
    (
        WELCOME,
        PROJECT,
        PROVIDER,
        CREDENTIALS,
        NODES,
        NETWORK,
        FILES,
        PREFLIGHT,
        RUN,
        INSTALL,
        CLUSTER,
        ACTIVATION,
        BUNDLES,
        SUMMARY,
    ) = range(14)

    #: The window has accepted a close (no run is active any more).
    closed = Signal()

    def __init__(
        self,
        *,
        steps: StepsFactory | None = None,
        paths: AppPaths | None = None,
        secrets: SecretStore | None = None,
        on_event: Callable[[Event], None] | None = None,
        rehearsal: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``paths``, ``secrets`` and ``on_event`` go to the :class:`RunController`; ``rehearsal`` is the banner
        text of a rehearsal, shown above every page, with the window title saying so too."""
        super().__init__(parent)
        title = WINDOW_TITLE + (REHEARSAL_TITLE_SUFFIX if rehearsal else "")
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        icon = window_icon()
        if icon is not None:
            self.setWindowIcon(icon)
        self.resize(1100, 720)
        self.setMinimumSize(QSize(860, 560))
        self._close_after_run = False

        # One store for the Credentials page and every run, so secrets kept in memory (no secure keyring) reach the run.
        self.secrets = secrets if secrets is not None else SecretStore()
        self.document = ProjectDocument(self)
        # Fingerprints are confirmed in a dialog over this window, whichever thread asks.
        self.trust = TrustPrompter(self, lambda: self.document.project or self.project.project)
        self.controller = RunController(
            steps, self, paths=paths, secrets=self.secrets, on_event=on_event, ask=self.trust.ask
        )
        register_all()
        self.save_banner = Banner(Tone.ERROR, self)
        self.rehearsal_banner = Banner(Tone.WARNING, self)
        if rehearsal:
            self.rehearsal_banner.show_text(f"⚠ {rehearsal}")

        # Created in visual order, so the default tab order runs sidebar → page → Back → Next → Cancel.
        self.sidebar = QListWidget(self)
        self.sidebar.setAccessibleName("Wizard steps")
        self.sidebar.setFixedWidth(190)
        self.sidebar.setSpacing(2)
        self.sidebar.setFrameShape(QFrame.Shape.NoFrame)
        self.sidebar.setStyleSheet("QListWidget { font-size: 11pt; padding-top: 8px; }")

        self.stack = QStackedWidget(self)
        self.stack.setAccessibleName("Wizard page")
        self.welcome = WelcomePage(self.stack)
        self.project = ProjectPage(self.stack)
        self.provider = ProviderPage(self.document, self.stack)
        self.credentials = CredentialsPage(
            self.document,
            self.secrets,
            self.stack,
            config_dir=lambda: (self.controller.paths or app_paths()).ensure().config,
            ask=self.trust.ask,
        )
        self.nodes = NodesPage(self.document, self.stack)
        self.network = NetworkPage(self.document, self.stack)
        self.files = FilesPage(self.document, self.stack)
        self.preflight = PreflightPage(self.controller, self.stack)
        self.run = RunPage(self.controller, self.stack)
        self.install = InstallPage(self.controller, self.stack)
        self.cluster = ClusterPage(self.document, self.controller, self.secrets, self.stack, ask=self.trust.ask)
        self.activation = ActivationPage(self.document, self.controller, self.secrets, self.stack)
        self.bundles = BundlesPage(self.controller, self.stack)
        self.summary = SummaryPage(self.controller, self.secrets, self.stack)
        self.pages: list[WizardPage] = [
            self.welcome,
            self.project,
            self.provider,
            self.credentials,
            self.nodes,
            self.network,
            self.files,
            self.preflight,
            self.run,
            self.install,
            self.cluster,
            self.activation,
            self.bundles,
            self.summary,
        ]
        self.input_pages: list[InputPage] = [
            self.provider,
            self.credentials,
            self.nodes,
            self.network,
            self.files,
        ]
        for page in self.pages:
            # A window smaller than a page's content scrolls instead of squeezing text until it is cut off.
            scroller = QScrollArea(self.stack)
            scroller.setWidgetResizable(True)
            scroller.setFrameShape(QFrame.Shape.NoFrame)
            scroller.setWidget(page)
            self.stack.addWidget(scroller)
            self.sidebar.addItem(QListWidgetItem(page.title))
            page.changed.connect(self._refresh)

        self.save_button = button(self.tr("Sa&ve"), self.tr("Save the project file"), self)
        self.save_button.setToolTip(self.tr("Write your changes to the project file (Ctrl+S); Next saves them too"))
        self.back_button = button("&Back", "Back", self)
        self.next_button = button("&Next", "Next", self)
        self.cancel_button = button("&Cancel", "Cancel and close the wizard", self)
        self.save_button.clicked.connect(self.save)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.cancel_button.clicked.connect(self.close)

        self.welcome.open_requested.connect(self.open_project)
        self.welcome.resume_requested.connect(self.resume)
        self.preflight.fix_requested.connect(self.go_to_title)
        self.project.changed.connect(self._project_changed)
        self.project.reload_button.clicked.connect(self._reload_document)
        self.document.validated.connect(self._document_validated)
        self.document.saved.connect(self._document_saved)
        self.controller.running_changed.connect(self._running_changed)
        self.controller.finished.connect(self._run_finished)
        self.controller.aborting_changed.connect(self._running_changed)
        self.controller.abort_finished.connect(self._run_finished)
        self.sidebar.currentRowChanged.connect(self._sidebar_clicked)
        QShortcut(QKeySequence.StandardKey.Open, self, self.welcome.choose_project)
        QShortcut(QKeySequence.StandardKey.Save, self, self.save)

        nav = QHBoxLayout()
        nav.addWidget(self.save_button)
        nav.addStretch(1)
        nav.addWidget(self.back_button)
        nav.addWidget(self.next_button)
        nav.addSpacing(16)
        nav.addWidget(self.cancel_button)

        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)

        body = QHBoxLayout()
        body.addWidget(self.sidebar)
        body.addWidget(self.stack, 1)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.addWidget(self.rehearsal_banner)
        layout.addWidget(self.save_banner)
        layout.addLayout(body, 1)
        layout.addWidget(line)
        layout.addLayout(nav)
        self.setCentralWidget(central)
        self.go_to(self.WELCOME)

    # -- navigation ----------------------------------------------------------------------------------------
    @property
    def current(self) -> int:
        return self.stack.currentIndex()

    def blockers(self, index: int) -> list[str]:
        """Why the operator cannot move past page ``index`` yet."""
        if index == self.PROJECT:
            return self._project_blockers()
        return self.pages[index].blockers()

    def _project_blockers(self) -> list[str]:
        # The Project page stops only what no later page can fix: an unreadable file, the name, the appliance and
        # cluster sections. Everything else is fixed on the page that owns it, so the wizard must get there.
        if self.project.path is None:
            return self.project.blockers()
        errors = self.unowned_errors()
        if errors:
            return [f"{len(errors)} problem{'s' if len(errors) != 1 else ''} in the project file to fix"]
        return []

    def unowned_errors(self) -> list[Problem]:
        """Errors in the project document that none of the input pages shows."""
        owned = [prefix for page in self.input_pages for prefix in page.prefixes]
        return [p for p in self.document.problems if p.is_error and p not in self.document.problems_under(owned)]

    def reachable(self, index: int) -> bool:
        """A page is reachable when nothing on the pages before it blocks."""
        return all(not self.blockers(i) for i in range(index))

    def go_to(self, index: int) -> bool:
        if not 0 <= index < len(self.pages) or not self.reachable(index):
            self._refresh()
            return False
        # Moving on writes what was typed; going back keeps it in the document, unsaved.
        if index > self.current and self.document.dirty and not self.save():
            return False
        self.stack.setCurrentIndex(index)
        self.pages[index].entered()
        self._refresh()
        return True

    def go_to_title(self, title: str) -> bool:
        """Show the page with this (untranslated) title; the Preflight page's "fix it" links use it."""
        for i, page in enumerate(self.pages):
            if type(page).title == title:
                return self.go_to(i)
        return False

    def next(self) -> None:
        if self.next_button.isEnabled():
            self.go_to(self.current + 1)

    def back(self) -> None:
        if self.current > 0:
            self.go_to(self.current - 1)

    def _sidebar_clicked(self, row: int) -> None:
        if row >= 0 and row != self.current:
            self.go_to(row)  # refused moves put the selection back via _refresh

    def step_state(self, index: int) -> StepState:
        if index == self.current:
            return StepState.CURRENT
        if not self.reachable(index):
            return StepState.BLOCKED
        if index == self.PROJECT:
            return StepState.AHEAD if self.blockers(index) else StepState.DONE
        return StepState.DONE if self.pages[index].is_done() else StepState.AHEAD

    def _refresh(self) -> None:
        current = self.current
        for i, page in enumerate(self.pages):
            state = self.step_state(i)
            item = self.sidebar.item(i)
            item.setText(f"{STEP_MARK[state]}  {page.title}")
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{page.title}, {state.value}")
            item.setData(Qt.ItemDataRole.UserRole, state)
            blockers = self.blockers(i)
            item.setToolTip(f"{page.title}: {state.value}" + (f" — {'; '.join(blockers)}" if blockers else ""))
            flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            item.setFlags(flags if state is not StepState.BLOCKED else Qt.ItemFlag.NoItemFlags)
            item.setForeground(QBrush(QColor("#1d6b22")) if state is StepState.DONE else QBrush())
        self.sidebar.blockSignals(True)
        self.sidebar.setCurrentRow(current)
        self.sidebar.blockSignals(False)
        blockers = self.blockers(current)
        last = current == len(self.pages) - 1
        self.back_button.setEnabled(current > 0)
        self.save_button.setEnabled(self.document.dirty and not self.controller.running)
        self.next_button.setEnabled(not last and not blockers)
        self.next_button.setToolTip("" if last or not blockers else "First: " + "; ".join(blockers))

    # -- projects ------------------------------------------------------------------------------------------
    def open_project(self, path: Path, *, goto: int = PROJECT) -> bool:
        """Load ``path`` and show it; ``goto`` is the page to show when it is valid. True when valid."""
        if self.controller.running:
            log.warning("not opening %s: a run is active", path)
            return False
        log.info("opening project %s", path)
        self.save_banner.hide()
        self.document.load(path)
        valid = self.project.load(path)
        self._explain_project_problems()
        self.go_to(goto if valid else self.PROJECT)
        return valid

    def save(self) -> bool:
        """Write the edited project file (atomically); true when it is saved or there was nothing to save."""
        if not self.document.dirty or self.controller.running:
            return not self.document.dirty
        try:
            self.document.save()
        except OSError as exc:
            log.warning("project not saved: %s", exc)
            self.save_banner.show_text(
                self.tr(
                    "✗ The project file could not be saved: {error}. Your changes are kept here; fix the cause "
                    "and press Save again."
                ).format(error=exc)
            )
            self._refresh()
            return False
        self.save_banner.hide()
        return True

    def _reload_document(self) -> None:
        if self.project.path is not None and not self.controller.running:
            self.document.load(self.project.path)
            self._explain_project_problems()
            self._refresh()

    def _document_saved(self) -> None:
        # The Project page and the Run page read the file itself: show them what was just written.
        if self.project.path is not None:
            self.project.load(self.project.path)
            self._explain_project_problems()
        self._refresh()

    def _document_validated(self) -> None:
        self._refresh()

    def _explain_project_problems(self) -> None:
        errors = [p for p in self.project.problems if p.is_error]
        if errors and not self.unowned_errors() and self.document.doc is not None:
            count = len(errors)
            self.project.status.show_text(
                self.tr(
                    "✗ {count} problem(s) to fix. Press Next to correct each on its page (Provider, Nodes, Network, "
                    "Files), or edit the project file and press Reload."
                ).format(count=count),
                Tone.ERROR,
            )

    def resume(self, path: Path) -> None:
        self.open_project(path, goto=self.RUN)

    def _project_changed(self) -> None:
        self.welcome.set_project_open(self.project.path is not None)
        project = self.project.project
        path = self.project.path
        if project is not None and path is not None:
            self.run.set_project(path, project.name, project.provider.type.value)
            self.preflight.set_project(path, project.name)
            self.install.set_project(path, [n.name for n in project.nodes])
            self.summary.set_project(path, project)
        else:
            self.run.set_project(None)
            self.preflight.set_project(None)
            self.install.set_project(None)
            self.summary.set_project(None)

    # -- runs ----------------------------------------------------------------------------------------------
    def _running_changed(self, running: bool) -> None:
        self.welcome.set_busy(running)
        self.project.set_busy(running)
        for page in self.input_pages:
            page.set_busy(running)
        self.cluster.set_busy(running)
        self._refresh()

    def _run_finished(self, ev: object) -> None:
        """After a run (:class:`RunFinished`) or an abort."""
        self.welcome.refresh_sessions()  # a failed or cancelled run is now an unfinished session
        if self._close_after_run:
            self.close()

    def confirm_quit_while_running(self) -> bool:
        answer = QMessageBox.question(
            self,
            "Cancel the install?",
            "An install is running. Cancel it and close the wizard?\n\n"
            "What has finished is recorded; opening the project again resumes from there.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def confirm_discard_edits(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel for edits not yet written to the project file."""
        return QMessageBox.question(
            self,
            self.tr("Save your changes?"),
            self.tr("The project has changes that are not saved to {path}.").format(path=self.document.path),
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.controller.running:
            if self.document.dirty:
                answer = self.confirm_discard_edits()
                if answer == QMessageBox.StandardButton.Cancel or (
                    answer == QMessageBox.StandardButton.Save and not self.save()
                ):
                    event.ignore()
                    return
            self.credentials.cancel_test()
            self.summary.cancel_export()
            event.accept()
            self.closed.emit()
            return
        # Close only once the worker has stopped, so the journal records the cancellation.
        event.ignore()
        if self._close_after_run or self.confirm_quit_while_running():
            self._close_after_run = True
            self.controller.cancel("cancelled: the wizard was closed")
            self.run.overall_label.setText("Cancelling… the wizard closes when the jobs have stopped.")
