"""What the main window is made of besides itself: the pages in wizard order (as the sidebar names them before
they are built), the sidebar's step states, and the window's lazily made keyring, run controller and document."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from PySide6.QtCore import QCoreApplication, QObject, QPoint, QSize, Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QMenu, QMessageBox, QToolButton, QWidget

from wizard.core.secrets import SecretStore
from wizard.ui.bridge import RunController
from wizard.ui.forms import ProjectDocument
from wizard.ui.pages import WizardPage
from wizard.ui.widgets import ask_yes_no

if TYPE_CHECKING:
    from wizard.install.steps.nodes import Pacing
    from wizard.ui.shell import MainWindow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpgradeDefaults:
    """The Upgrade page's polling and the bundle it offers first (a rehearsal's); none for a real install."""

    pacing: Pacing | None = None
    bundle: Path | None = None


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


@dataclass(frozen=True)
class PageSpec:
    """A page as the sidebar names it before the page exists: its class (module, name) and untranslated title."""

    module: str
    cls: str
    title: str
    #: The page is built with the window's secret store (so its build waits for the keyring).
    secrets: bool = False

    @property
    def display_title(self) -> str:
        return QCoreApplication.translate(self.cls, self.title)  # what the page's own self.tr(title) gives


#: Every page in wizard order (the index is the page's number, MainWindow.WELCOME … SUMMARY).
PAGES: tuple[PageSpec, ...] = (
    PageSpec("wizard.ui.pages.welcome", "WelcomePage", "Welcome"),
    PageSpec("wizard.ui.pages.project", "ProjectPage", "Project"),
    PageSpec("wizard.ui.pages.provider", "ProviderPage", "Provider"),
    PageSpec("wizard.ui.pages.credentials", "CredentialsPage", "Credentials", secrets=True),
    PageSpec("wizard.ui.pages.nodes", "NodesPage", "Nodes"),
    PageSpec("wizard.ui.pages.network", "NetworkPage", "Network"),
    PageSpec("wizard.ui.pages.files", "FilesPage", "Files"),
    PageSpec("wizard.ui.pages.preflight", "PreflightPage", "Preflight"),
    PageSpec("wizard.ui.pages.review", "ReviewPage", "Review"),
    PageSpec("wizard.ui.pages.run", "RunPage", "Run"),
    PageSpec("wizard.ui.pages.install", "InstallPage", "Install"),
    PageSpec("wizard.ui.pages.cluster", "ClusterPage", "Cluster", secrets=True),
    PageSpec("wizard.ui.pages.activation", "ActivationPage", "Activation", secrets=True),
    PageSpec("wizard.ui.pages.bundles", "BundlesPage", "Bundles"),
    PageSpec("wizard.ui.pages.summary", "SummaryPage", "Summary", secrets=True),
    PageSpec("wizard.ui.pages.upgrade", "UpgradePage", "Upgrade"),  # day 2, reachable once a project is open
)
#: The pages the first window is built with; the others are built after it has painted, or when first needed.
FIRST_PAGES = (0, 1)

P = TypeVar("P", bound=WizardPage)


class PageSlot(Generic[P]):
    """``window.run`` and friends: the page, built (with every other page) the first time it is asked for."""

    def __init__(self, index: int) -> None:
        self.index = index

    @overload
    def __get__(self, window: None, owner: type) -> PageSlot[P]: ...
    @overload
    def __get__(self, window: MainWindow, owner: type) -> P: ...
    def __get__(self, window: MainWindow | None, owner: type) -> P | PageSlot[P]:
        if window is None:
            return self
        return window.page(self.index)  # type: ignore[return-value]


class Keyring:
    """The window's secret store, made on first use: asking the OS for its keyring backend (loading every backend
    keyring knows, a D-Bus round trip) is a large share of a cold start, and the first window shows no secret."""

    def __init__(self, store: SecretStore | None) -> None:
        self._store = store
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._store is not None

    def get(self) -> SecretStore:
        with self._lock:
            if self._store is None:
                self._store = SecretStore()
            return self._store

    def warm_up(self) -> None:
        """Make the store on a worker, so no page build on the GUI thread waits for the keyring."""
        if self._store is not None:
            return

        def make() -> None:
            try:
                self.get()
            except Exception:  # the page or run that needs the store asks again and reports it where it is seen
                log.debug("the keyring could not be opened in the background", exc_info=True)

        threading.Thread(target=make, name="keyring", daemon=True).start()


class WindowController(RunController):
    """The window's run controller: before a run or an abort starts (whoever starts it) every page exists, so each
    sees the run from its first event, and the run uses the window's secret store."""

    def __init__(self, prepare: Callable[[], SecretStore], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare = prepare

    def start(self, project_file: Path, **options: Any) -> None:
        if not self.running:
            self.secrets = self._prepare()
        super().start(project_file, **options)

    def abort(self, project_file: Path, **options: Any) -> None:
        if not self.running:
            self.secrets = self._prepare()
        super().abort(project_file, **options)


class WindowDocument(ProjectDocument):
    """The window's project document: every page exists before a file is loaded, so each sees it."""

    def __init__(self, prepare: Callable[[], object], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._prepare = prepare

    def load(self, path: Path) -> None:
        self._prepare()
        super().load(path)


def focus_chain(window: QWidget) -> list[QWidget]:
    """The window's widgets in tab order."""
    out: list[QWidget] = []
    seen: set[QWidget] = set()
    widget = window.nextInFocusChain()
    while widget is not None and widget is not window and widget not in seen:
        out.append(widget)
        seen.add(widget)
        widget = widget.nextInFocusChain()
    return out


def reading_order(widgets: list[QWidget], origin: QWidget) -> list[QWidget]:
    """``widgets`` as a reader meets them: rows top to bottom (a widget whose middle lies within a row's height
    belongs to it), each row left to right; positions taken in ``origin``'s coordinates."""
    placed = []
    for w in widgets:
        top_left = w.mapTo(origin, QPoint(0, 0))
        placed.append((top_left.y(), top_left.y() + max(1, w.height()), top_left.x(), w))
    placed.sort(key=lambda p: (p[0], p[2]))
    rows: list[list[tuple[int, int, int, QWidget]]] = []
    for entry in placed:
        top, bottom, _x, _w = entry
        middle = (top + bottom) // 2
        if rows and rows[-1][0][0] <= middle < rows[-1][0][1]:
            rows[-1].append(entry)
        else:
            rows.append([entry])
    return [w for row in rows for _t, _b, _x, w in sorted(row, key=lambda p: p[2])]


def fit_window(window: QWidget, preferred: QSize, minimum: QSize) -> None:
    """Size ``window`` to ``preferred`` where its screen has room, else to the screen's available area, with a
    minimum no larger than that area, and place it on the screen: at 150 % a 1280×800 screen is 853×533 for the
    window, and Back and Next must stay on it (every control remains reachable: the pages scroll)."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        window.resize(preferred)
        window.setMinimumSize(minimum)
        return
    room = screen.availableGeometry()
    # The window manager's frame takes a little of it (the title bar most): leave room for it.
    frame_w, frame_h = 16, 48
    width = min(preferred.width(), max(320, room.width() - frame_w))
    height = min(preferred.height(), max(240, room.height() - frame_h))
    window.setMinimumSize(QSize(min(minimum.width(), width), min(minimum.height(), height)))
    window.resize(width, height)
    window.move(room.x() + (room.width() - width - frame_w) // 2, room.y() + max(0, (room.height() - height) // 3))


def support_button(
    window: QWidget, export: Callable[[], None], copy_error: Callable[[], None], about_to_show: Callable[[], None]
) -> tuple[QToolButton, QAction, QAction]:
    """The Support button at the bottom of every page and its menu: (button, export action, copy-error action)."""
    tr = window.tr
    support = QToolButton(window)
    support.setText(tr("Suppor&t"))
    support.setAccessibleName(tr("Support: a support bundle or the last error's details"))
    support.setToolTip(tr("Export a support bundle, or copy the last error's details"))
    support.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    support.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    menu = QMenu(support)
    export_action = menu.addAction(tr("Export a support bundle…"))
    export_action.triggered.connect(export)
    copy_action = menu.addAction(tr("Copy the last error's details"))
    copy_action.triggered.connect(copy_error)
    menu.aboutToShow.connect(about_to_show)
    support.setMenu(menu)
    return support, export_action, copy_action


def ask_cancel_run(window: QWidget) -> bool:
    """Closing the window while an install runs: cancel it (Yes) or keep it running (No, the default)."""
    return ask_yes_no(
        window,
        window.tr("Cancel the install?"),
        window.tr(
            "An install is running. Cancel it and close the wizard?\n\n"
            "What has finished is recorded; opening the project again resumes from there."
        ),
    )


def ask_save_changes(
    window: QWidget, document: ProjectDocument, default: QMessageBox.StandardButton
) -> QMessageBox.StandardButton:
    """Save, Discard or Cancel for edits not yet written to the project file (saying how many problems remain)."""
    errors = [p for p in document.problems if p.is_error]
    text = window.tr("The project has changes that are not saved to {path}.").format(path=document.path)
    if errors:
        text += " " + window.tr("It still has {count} problem(s) to fix.").format(count=len(errors))
    return QMessageBox.question(
        window,
        window.tr("Save your changes?"),
        text,
        QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        default,
    )
