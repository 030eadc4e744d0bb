"""The main window: a step sidebar, the pages, and Back / Next (Finish on the last page) / Save / Support / Cancel.

The shell owns navigation and the project document the input pages edit. Which page may be left is each page's
``blockers()`` (for the Project page: the problems no input page can fix); the sidebar shows every step as done,
current, blocked or still ahead. Edits live in the document until Next (or Save) writes the project file. The pages
that follow a run (Review, Run, Install, Bundles, Summary) can be seen whenever the project's input is valid, also
after a failed run; Support (a support bundle, the last error's details) is reachable from every page.

Keyboard: Enter presses Next where the page allows it (not in a table or a text box, where Enter means something
there); the sidebar and every control show their focus; scroll areas take no focus of their own; the tab order is
the reading order (sidebar, page, then the buttons at the bottom). The window opens no larger than the screen's
available area at any scale.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QCloseEvent, QColor, QGuiApplication, QKeyEvent, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QScrollArea,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from wizard.core.paths import AppPaths, app_paths
from wizard.core.problems import Problem
from wizard.core.secrets import SecretStore
from wizard.ui.bridge import RunController, StepsFactory
from wizard.ui.forms import InputPage, ProjectDocument
from wizard.ui.pages import WizardPage
from wizard.ui.pages.project import ProjectPage
from wizard.ui.pages.welcome import WelcomePage
from wizard.ui.resources import window_icon
from wizard.ui.shellparts import (
    FIRST_PAGES,
    PAGES,
    STEP_MARK,
    Keyring,
    PageSlot,
    StepState,
    UpgradeDefaults,
    WindowController,
    WindowDocument,
    ask_cancel_run,
    ask_save_changes,
    fit_window,
    focus_chain,
    reading_order,
    support_button,
)
from wizard.ui.theme import Status, status_hex
from wizard.ui.trust import TrustPrompter
from wizard.ui.widgets import Banner, Tone, ask_yes_no, button, error_text, focus_style

if TYPE_CHECKING:
    from wizard.core.runner import Event
    from wizard.ui.pages.activation import ActivationPage
    from wizard.ui.pages.bundles import BundlesPage
    from wizard.ui.pages.cluster import ClusterPage
    from wizard.ui.pages.credentials import CredentialsPage
    from wizard.ui.pages.files import FilesPage
    from wizard.ui.pages.install import InstallPage
    from wizard.ui.pages.network import NetworkPage
    from wizard.ui.pages.nodes import NodesPage
    from wizard.ui.pages.preflight import PreflightPage
    from wizard.ui.pages.provider import ProviderPage
    from wizard.ui.pages.review import ReviewPage
    from wizard.ui.pages.run import RunPage
    from wizard.ui.pages.summary import SummaryPage
    from wizard.ui.pages.upgrade import UpgradePage

log = logging.getLogger(__name__)

#: Widgets where Enter does something of their own, so it does not press Next there.
ENTER_TAKERS = (QAbstractButton, QAbstractItemView, QPlainTextEdit, QTextEdit, QComboBox, QAbstractSpinBox)

WINDOW_TITLE = "Palette Appliance Wizard"
REHEARSAL_TITLE_SUFFIX = " — REHEARSAL (simulated nodes)"
#: The size the window opens at where the screen has room for it.
PREFERRED_SIZE = QSize(1100, 720)
MINIMUM_SIZE = QSize(860, 560)

__all__ = ["REHEARSAL_TITLE_SUFFIX", "WINDOW_TITLE", "MainWindow", "StepState", "UpgradeDefaults"]


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
        REVIEW,
        RUN,
        INSTALL,
        CLUSTER,
        ACTIVATION,
        BUNDLES,
        SUMMARY,
        UPGRADE,
    ) = range(16)
    #: Pages that show a run and what it did: seen whenever the input is valid, also after a failed run.
    VIEWS = frozenset({REVIEW, RUN, INSTALL, BUNDLES, SUMMARY})

    welcome: PageSlot[WelcomePage] = PageSlot(WELCOME)
    project: PageSlot[ProjectPage] = PageSlot(PROJECT)
    provider: PageSlot[ProviderPage] = PageSlot(PROVIDER)
    credentials: PageSlot[CredentialsPage] = PageSlot(CREDENTIALS)
    nodes: PageSlot[NodesPage] = PageSlot(NODES)
    network: PageSlot[NetworkPage] = PageSlot(NETWORK)
    files: PageSlot[FilesPage] = PageSlot(FILES)
    preflight: PageSlot[PreflightPage] = PageSlot(PREFLIGHT)
    review: PageSlot[ReviewPage] = PageSlot(REVIEW)
    run: PageSlot[RunPage] = PageSlot(RUN)
    install: PageSlot[InstallPage] = PageSlot(INSTALL)
    cluster: PageSlot[ClusterPage] = PageSlot(CLUSTER)
    activation: PageSlot[ActivationPage] = PageSlot(ACTIVATION)
    bundles: PageSlot[BundlesPage] = PageSlot(BUNDLES)
    summary: PageSlot[SummaryPage] = PageSlot(SUMMARY)
    upgrade: PageSlot[UpgradePage] = PageSlot(UPGRADE)

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
        upgrade: UpgradeDefaults | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``paths``, ``secrets`` and ``on_event`` go to the :class:`RunController`; ``rehearsal`` is the banner
        text of a rehearsal, shown above every page, with the window title saying so too; ``upgrade`` the Upgrade
        page's polling and bundle (a rehearsal's).

        The first window holds the sidebar, the Welcome and Project pages and empty places for the others: those
        are built one per event-loop turn once the window has painted, or all at once when one is first needed
        (a page asked for, a project loaded, a run started) — before any of them could have seen a project or a
        run, so a late page misses nothing."""
        super().__init__(parent)
        title = WINDOW_TITLE + (REHEARSAL_TITLE_SUFFIX if rehearsal else "")
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        icon = window_icon()
        if icon is not None:
            self.setWindowIcon(icon)
        self.fit_to_screen()
        self._close_after_run = False
        self._all_built = False
        self._upgrade = upgrade or UpgradeDefaults()
        # Builds the pages not needed yet after the first paint; a child of the window, so it dies with it.
        self._builder = QTimer(self)
        self._builder.setSingleShot(True)
        self._builder.timeout.connect(self._build_next)
        # Puts the shown page's controls in reading order once its layout has settled (see order_tabs).
        self._order_tabs = QTimer(self)
        self._order_tabs.setSingleShot(True)
        self._order_tabs.setInterval(0)
        self._order_tabs.timeout.connect(self.order_tabs)

        # One store for the Credentials page and every run, so secrets kept in memory (no secure keyring) reach the run.
        self._keyring = Keyring(secrets)
        self.document: ProjectDocument = WindowDocument(self._build_all, self)
        # Fingerprints are confirmed in a dialog over this window, whichever thread asks.
        self.trust = TrustPrompter(self, lambda: self.document.project or self.project.project)
        self.controller: RunController = WindowController(
            self._before_run, steps, self, paths=paths, secrets=secrets, on_event=on_event, ask=self.trust.ask
        )
        self.save_banner = Banner(Tone.ERROR, self)
        self.notice = Banner(Tone.INFO, self)  # what Support did (a bundle written, details copied)
        self.rehearsal_banner = Banner(Tone.WARNING, self)
        if rehearsal:
            self.rehearsal_banner.show_text(f"⚠ {rehearsal}")

        # Created in visual order, so the default tab order runs sidebar → page → Back → Next → Cancel (a page
        # built later is put back in that place, see _install).
        self.sidebar = QListWidget(self)
        self.sidebar.setAccessibleName(self.tr("Wizard steps"))
        self.sidebar.setFixedWidth(190)
        self.sidebar.setSpacing(2)
        self.sidebar.setFrameShape(QFrame.Shape.NoFrame)
        self.sidebar.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.sidebar.setStyleSheet(focus_style("QListWidget", "font-size: 11pt; padding-top: 8px;"))

        self.stack = QStackedWidget(self)
        self.stack.setAccessibleName(self.tr("Wizard page"))
        self._pages: list[WizardPage | None] = [None] * len(PAGES)
        self._scrollers: list[QScrollArea] = []
        for spec in PAGES:
            # A window smaller than a page's content scrolls instead of squeezing text until it is cut off.
            scroller = QScrollArea(self.stack)
            scroller.setWidgetResizable(True)
            scroller.setFrameShape(QFrame.Shape.NoFrame)
            scroller.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # a tab stop that shows nothing: the page's own come
            self.stack.addWidget(scroller)
            self._scrollers.append(scroller)
            self.sidebar.addItem(QListWidgetItem(spec.display_title))
        for index in FIRST_PAGES:
            self._install(index)

        self.save_button = button(self.tr("Sa&ve"), self.tr("Save the project file"), self)
        self.save_button.setToolTip(self.tr("Write your changes to the project file (Ctrl+S); Next saves them too"))
        self.back_button = button(self.tr("&Back"), self.tr("Back"), self)
        self.next_button = button(self.tr("&Next"), self.tr("Next"), self)
        self.next_button.setDefault(True)  # Enter presses it (see keyPressEvent for where Enter means something else)
        self.cancel_button = button(self.tr("&Cancel"), self.tr("Cancel and close the wizard"), self)
        self.support_button, self.export_action, self.copy_error_action = support_button(
            self, self.export_support_bundle, self.copy_error_details, self._update_support
        )
        self.save_button.clicked.connect(self.save)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.cancel_button.clicked.connect(self.close)

        self.sidebar.currentRowChanged.connect(self._sidebar_clicked)
        QShortcut(QKeySequence.StandardKey.Open, self, self.welcome.choose_project)
        QShortcut(QKeySequence.StandardKey.Save, self, self.save)

        QWidget.setTabOrder(self.save_button, self.support_button)  # made last, shown second: read in that order
        QWidget.setTabOrder(self.support_button, self.back_button)
        nav = QHBoxLayout()
        nav.addWidget(self.save_button)
        nav.addWidget(self.support_button)
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
        layout.addWidget(self.notice)
        layout.addLayout(body, 1)
        layout.addWidget(line)
        layout.addLayout(nav)
        self.setCentralWidget(central)
        self.installEventFilter(self)  # for the first paint, see eventFilter
        self.go_to(self.WELCOME)

    def fit_to_screen(self) -> None:
        """The preferred size where the screen has room, else the screen's available area (the pages scroll)."""
        fit_window(self, PREFERRED_SIZE, MINIMUM_SIZE)

    # -- pages ---------------------------------------------------------------------------------------------
    @property
    def secrets(self) -> SecretStore:
        """The store the Credentials page and every run share (made on first use)."""
        return self._keyring.get()

    @property
    def pages(self) -> list[WizardPage]:
        """Every page, in wizard order (all are built)."""
        self._build_all()
        return [p for p in self._pages if p is not None]

    @property
    def input_pages(self) -> list[InputPage]:
        """The pages that edit the project document (all are built)."""
        self._build_all()
        return [self.provider, self.credentials, self.nodes, self.network, self.files]

    def page(self, index: int) -> WizardPage:
        """Page ``index``; asking for one not built yet builds every page still missing."""
        page = self._pages[index]
        if page is None:
            self._build_all()
            page = self._pages[index]
            assert page is not None
        return page

    def _built(self, index: int) -> WizardPage | None:
        return self._pages[index]

    def _build_all(self) -> None:
        if self._all_built:
            return
        for index in range(len(PAGES)):
            if self._pages[index] is None:
                self._install(index)
        self._all_built = True
        self._connect_shell()
        self._refresh()  # the pages' own titles and states

    def _needs_review(self) -> bool:
        review = self._pages[self.REVIEW]
        return review is not None and not review.is_done()

    def _before_run(self) -> SecretStore:
        self._build_all()
        return self.secrets

    def _make(self, index: int, parent: QWidget) -> WizardPage:
        spec = PAGES[index]
        cls: Any = getattr(importlib.import_module(spec.module), spec.cls)
        if index in (self.WELCOME, self.PROJECT, self.REVIEW):
            return cls(parent)  # type: ignore[no-any-return]
        if index == self.NETWORK:  # its node networking reads a node's bond options, asking to trust it first
            return cls(  # type: ignore[no-any-return]
                self.document, parent, secrets=self.secrets, ask=self.trust.ask, paths=lambda: self.controller.paths
            )
        if index in (self.PROVIDER, self.NODES, self.FILES):
            return cls(self.document, parent)  # type: ignore[no-any-return]
        if index in (self.PREFLIGHT, self.RUN, self.INSTALL, self.BUNDLES):
            return cls(self.controller, parent)  # type: ignore[no-any-return]
        if index == self.CREDENTIALS:
            from wizard.ui.testers import register_all

            register_all()
            return cls(  # type: ignore[no-any-return]
                self.document,
                self.secrets,
                parent,
                config_dir=lambda: (self.controller.paths or app_paths()).ensure().config,
                ask=self.trust.ask,
            )
        if index == self.CLUSTER:
            return cls(self.document, self.controller, self.secrets, parent, ask=self.trust.ask)  # type: ignore[no-any-return]
        if index == self.ACTIVATION:
            return cls(self.document, self.controller, self.secrets, parent)  # type: ignore[no-any-return]
        if index == self.SUMMARY:
            return cls(self.controller, self.secrets, parent)  # type: ignore[no-any-return]
        if index == self.UPGRADE:
            u = self._upgrade
            paths = lambda: self.controller.paths  # noqa: E731
            return cls(self.controller, parent, pacing=u.pacing, bundle=u.bundle, paths=paths)  # type: ignore[no-any-return]
        raise IndexError(index)

    def _install(self, index: int) -> None:
        """Build page ``index`` into its place in the stack and wire it to the shell."""
        scroller = self._scrollers[index]
        page = self._make(index, scroller)
        scroller.setWidget(page)
        self._pages[index] = page
        page.changed.connect(self._refresh)
        page.changed.connect(self._order_tabs.start)  # rows may have come or gone
        if index == self.WELCOME:
            assert isinstance(page, WelcomePage)
            page.open_requested.connect(self.open_project)
            page.resume_requested.connect(self.resume)
            page.upgrade_requested.connect(lambda: self.go_to(self.UPGRADE))
        elif index == self.PROJECT:
            assert isinstance(page, ProjectPage)
            page.changed.connect(self._project_changed)
            page.reload_button.clicked.connect(self._reload_document)
        elif index == self.PREFLIGHT:
            page.fix_requested.connect(self.go_to_title)  # type: ignore[attr-defined]
        elif index == self.SUMMARY:
            page.notice.connect(self.show_notice)  # type: ignore[attr-defined]
        elif index == self.RUN:
            page.review_requested.connect(lambda: self.go_to(self.REVIEW))  # type: ignore[attr-defined]
            page.needs_review = self._needs_review  # type: ignore[attr-defined]
        if hasattr(self, "save_button"):
            # Built after the buttons: its controls would come after Cancel in the tab order. Only the shown page
            # takes focus, so right after the sidebar is its place whichever page it is.
            focusable = [
                w for w in focus_chain(self) if page.isAncestorOf(w) and w.focusPolicy() != Qt.FocusPolicy.NoFocus
            ]
            previous: QWidget = self.sidebar
            for widget in focusable:
                QWidget.setTabOrder(previous, widget)
                previous = widget

    def _connect_shell(self) -> None:
        # After every page has connected its own slots, as the pages' state is what the shell's slots read.
        self.document.validated.connect(self._document_validated)
        self.document.saved.connect(self._document_saved)
        self.controller.running_changed.connect(self._running_changed)
        self.controller.finished.connect(self._run_finished)
        self.controller.aborting_changed.connect(self._running_changed)
        self.controller.abort_finished.connect(self._run_finished)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self and event.type() == QEvent.Type.Paint:
            # The first window is on screen: make the rest while the operator reads it. (A filter, removed now,
            # rather than an event() override every later event of the window would pass through.)
            self.removeEventFilter(self)
            self._keyring.warm_up()
            self._builder.start(0)
        return False

    def _build_next(self) -> None:
        """Build one more page (one per event-loop turn keeps the window responsive meanwhile)."""
        if self._all_built:
            return
        missing = [i for i, p in enumerate(self._pages) if p is None]
        # A page that needs the secret store waits for the keyring worker rather than blocking the GUI thread.
        ready = [i for i in missing if not PAGES[i].secrets or self._keyring.ready]
        if not missing:
            self._build_all()  # only connects the shell
        elif ready:
            self._install(ready[0])
            self._refresh()
            if len(missing) == 1:
                self._build_all()
            else:
                self._builder.start(0)
        else:
            self._builder.start(20)

    # -- navigation ----------------------------------------------------------------------------------------
    @property
    def current(self) -> int:
        return self.stack.currentIndex()

    def blockers(self, index: int) -> list[str]:
        """Why the operator cannot move past page ``index`` yet."""
        if index == self.PROJECT:
            return self._project_blockers()
        page = self._pages[index]
        # A page not built yet has seen no project and no run (those build every page first): nothing of its own
        # blocks; the Welcome page before it does.
        return page.blockers() if page is not None else []

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
        """A page is reachable when nothing on the pages before it blocks; a page that shows a run (and what it
        did) once the input pages are valid, so a failed preflight or a cluster question never hides the run; the
        Upgrade page (day 2) once a project is open."""
        if index == self.UPGRADE:
            return self.project.path is not None
        gate = min(index, self.PREFLIGHT) if index in self.VIEWS else index
        return all(not self.blockers(i) for i in range(gate))

    def _upgradable(self, index: int) -> bool:
        return index == self.UPGRADE and self.reachable(index)

    def go_to(self, index: int) -> bool:
        if not 0 <= index < len(PAGES) or not self.reachable(index):
            self._refresh()
            return False
        # Moving on writes what was typed; going back keeps it in the document, unsaved.
        if index > self.current and self.document.dirty and not self.save():
            return False
        page = self.page(index)
        self.stack.setCurrentIndex(index)
        page.entered()
        self._refresh()
        self._order_tabs.start()
        return True

    def order_tabs(self) -> None:
        """The shown page's controls in reading order between the sidebar and the buttons below: its content may
        have been built in another order (rows added later, a button beside a field made before it)."""
        page = self._pages[self.current]
        if page is None:
            return
        focusable = [
            w
            for w in page.findChildren(QWidget)
            if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(page) and w.focusProxy() is None
        ]
        previous: QWidget = self.sidebar
        for widget in reading_order(focusable, page):
            QWidget.setTabOrder(previous, widget)
            previous = widget
        QWidget.setTabOrder(previous, self.save_button)

    def go_to_title(self, title: str) -> bool:
        """Show the page with this (untranslated) title; the Preflight page's "fix it" links use it."""
        for i, spec in enumerate(PAGES):
            if spec.title == title:
                return self.go_to(i)
        return False

    def next(self) -> None:
        if not self.next_button.isEnabled():
            return
        if self.current >= self.SUMMARY:
            self.close()  # Finish: the install ends on Summary; Upgrade (day 2) is reached from Welcome
            return
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
        return StepState.DONE if self.page(index).is_done() else StepState.AHEAD

    def _states(self) -> list[tuple[StepState, list[str]]]:
        """Every page's state and blockers, each asked once (step_state() for each page asks the pages before it
        again: this runs on every page change, during runs too)."""
        out: list[tuple[StepState, list[str]]] = []
        current, reachable, inputs_ok = self.current, True, True
        for index in range(len(PAGES)):
            if index == self.PREFLIGHT:
                inputs_ok = reachable
            blockers = self.blockers(index)
            if index == current:
                state = StepState.CURRENT
            elif not (inputs_ok if index in self.VIEWS else reachable or self._upgradable(index)):
                state = StepState.BLOCKED
            elif index == self.PROJECT:
                state = StepState.AHEAD if blockers else StepState.DONE
            else:
                state = StepState.DONE if self.page(index).is_done() else StepState.AHEAD
            out.append((state, blockers))
            reachable = reachable and not blockers
        return out

    def _refresh(self) -> None:
        current = self.current
        states = self._states()
        for i, spec in enumerate(PAGES):
            state, blockers = states[i]
            page = self._pages[i]
            title = page.title if page is not None else spec.display_title
            item = self.sidebar.item(i)
            item.setText(f"{STEP_MARK[state]}  {title}")
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{title}, {state.value}")
            item.setData(Qt.ItemDataRole.UserRole, state)
            item.setToolTip(f"{title}: {state.value}" + (f" — {'; '.join(blockers)}" if blockers else ""))
            flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            item.setFlags(flags if state is not StepState.BLOCKED else Qt.ItemFlag.NoItemFlags)
            done = status_hex(Status.DONE, QPalette.ColorRole.Base) if state is StepState.DONE else None
            item.setForeground(QBrush(QColor(done)) if done else QBrush())
        self.sidebar.blockSignals(True)
        self.sidebar.setCurrentRow(current)
        self.sidebar.blockSignals(False)
        blockers = states[current][1]
        last = current >= self.SUMMARY  # Summary ends the install; Upgrade is a page of its own, off the path
        self.back_button.setEnabled(current > 0)
        self.save_button.setEnabled(self.document.dirty and not self.controller.running)
        self.next_button.setText(self.tr("&Finish") if last else self.tr("&Next"))
        self.next_button.setAccessibleName(self.tr("Finish and close the wizard") if last else self.tr("Next"))
        self.next_button.setEnabled(last or not blockers)
        self.next_button.setToolTip(
            self.tr("Close the wizard")
            if last
            else ""
            if not blockers
            else self.tr("First: {what}").format(what="; ".join(blockers))
        )
        self.cancel_button.setVisible(not last)  # Finish closes; a second way out says nothing more

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

    def confirm_reload(self) -> bool:
        """Reload drops the edits not written to the file yet: ask first."""
        return ask_yes_no(
            self,
            self.tr("Drop your changes?"),
            self.tr(
                "Reloading reads {path} again and drops the changes made here that are not saved yet (table edits "
                "too). Reload anyway?"
            ).format(path=self.document.path),
        )

    def _reload_document(self) -> None:
        if self.project.path is not None and not self.controller.running:
            if self.document.dirty and not self.confirm_reload():
                self.project.reload()  # the page re-read the file; the document keeps the edits
                return
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
            self.review.set_project(project)
            self.run.set_project(path, project.name, project.provider.type.value)
            self.preflight.set_project(path, project.name)
            self.install.set_project(path, [n.name for n in project.nodes], project)
            self.bundles.set_project(project)
            self.summary.set_project(path, project)
            self.upgrade.set_project(path, project)
        else:
            self.review.set_project(None)
            self.run.set_project(None)
            self.preflight.set_project(None)
            self.install.set_project(None)
            self.bundles.set_project(None)
            self.summary.set_project(None)
            self.upgrade.set_project(None)
        self.welcome.set_installed(self.upgrade.installed)

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
        self.upgrade.refresh()  # an install that finished makes the project upgradable
        self.welcome.set_installed(self.upgrade.installed)
        if self._close_after_run:
            self.close()

    def confirm_quit_while_running(self) -> bool:
        return ask_cancel_run(self)

    def confirm_discard_edits(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel for edits not yet written to the project file. Save is the default only for
        a valid project: an invalid one is not saved by a reflexive Enter."""
        return ask_save_changes(self, self.document, self.discard_default())

    def discard_default(self) -> QMessageBox.StandardButton:
        """What Enter answers in the close dialog: Save for a valid project, Cancel (stay) for an invalid one."""
        errors = any(p.is_error for p in self.document.problems)
        return QMessageBox.StandardButton.Cancel if errors else QMessageBox.StandardButton.Save

    # -- support -------------------------------------------------------------------------------------------
    def last_error(self) -> dict[str, str] | None:
        """The last run's error, as the Run page shows it (None after a run that did not fail)."""
        page = self._pages[self.RUN]
        return getattr(page, "error", None) if page is not None else None

    def _update_support(self) -> None:
        self.copy_error_action.setEnabled(self.last_error() is not None)
        self.export_action.setEnabled(not self.summary.exporting)

    def export_support_bundle(self) -> None:
        """Ask where, then write the bundle on a worker (the Summary page's export); a banner above the page says
        how it went."""
        self.summary.export_support_bundle()

    def copy_error_details(self) -> None:
        error = self.last_error()
        if error is None:
            self.show_notice(self.tr("There is no error to copy: the last run did not fail."), Tone.INFO)
            return
        QGuiApplication.clipboard().setText(error_text(error))
        self.show_notice(self.tr("✓ The error's details are on the clipboard."), Tone.SUCCESS)

    def show_notice(self, text: str, tone: Tone) -> None:
        """Said above every page (the Summary page says it in its own place too)."""
        self.notice.show_text(text, tone)

    # -- keyboard ------------------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter presses Next where the page allows it, unless the focus is where Enter means something there (a
        button, a table, a text box, a list)."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            focus = QGuiApplication.focusObject()
            if not isinstance(focus, ENTER_TAKERS) and self.next_button.isEnabled() and self.current < self.SUMMARY:
                self.next()
                event.accept()
                return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.controller.running:
            if self.document.dirty:
                answer = self.confirm_discard_edits()
                if answer == QMessageBox.StandardButton.Cancel or (
                    answer == QMessageBox.StandardButton.Save and not self.save()
                ):
                    event.ignore()
                    return
            # Only a built page can have a test or an export going.
            credentials, summary = self._pages[self.CREDENTIALS], self._pages[self.SUMMARY]
            if credentials is not None:
                credentials.cancel_test()  # type: ignore[attr-defined]
            if summary is not None:
                summary.cancel_export()  # type: ignore[attr-defined]
            event.accept()
            self.closed.emit()
            return
        # Close only once the worker has stopped, so the journal records the cancellation.
        event.ignore()
        if self._close_after_run or self.confirm_quit_while_running():
            self._close_after_run = True
            self.controller.cancel("cancelled: the wizard was closed")
            self.run.overall_label.setText(self.tr("Cancelling… the wizard closes when the jobs have stopped."))
