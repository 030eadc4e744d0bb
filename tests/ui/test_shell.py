"""The desktop shell against the real engine: loading projects, running, cancelling, failing, resuming."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QFileDialog,
    QPlainTextEdit,
    QProgressBar,
    QScrollArea,
    QTableWidget,
    QTextEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot

from tests.ui.helpers import ZERO_SHA, PacedStep, invalid_doc, valid_doc, write_project
from wizard.core.errors import ProjectInvalid
from wizard.core.integrity import hash_file
from wizard.core.journal import RUN_FAILED, SessionInfo
from wizard.core.logs import LOG_NAME, setup_logging
from wizard.core.paths import app_paths
from wizard.core.progress import TaskStatus
from wizard.core.project import load_project
from wizard.core.runner import ExitCode
from wizard.install.steps import pipeline
from wizard.ui.crash import CrashHandler
from wizard.ui.pages.project import PROBLEM_COLUMNS
from wizard.ui.pages.run import COL_JOB, COL_NODE, COL_STATUS, STATUS_TEXT, RunPage
from wizard.ui.shell import WINDOW_TITLE, MainWindow, StepState
from wizard.ui.wording import humanize, where

pytestmark = pytest.mark.ui

MakeWindow = Callable[..., MainWindow]
RUN_TIMEOUT_MS = 60_000
#: The preflight step's job rows for ``valid_doc``: one per check group or target, then the report.
PREFLIGHT_ROWS = {
    "Jump host",
    "Files and ISO",
    "What each node boots",
    *(f"Address of node-{i} [node-{i}]" for i in (1, 2, 3)),
    "Virtual IP",
    "Gateway",  # the nodes' gateway check
    "DNS",
    "NTP",
    "Appliance release",  # what is known of the appliance before its nodes answer
    "Preflight report",
}


def _statuses(page: RunPage) -> dict[str, TaskStatus]:
    """Job row → status, as the steps and jobs tree shows it."""
    out: dict[str, TaskStatus] = {}
    for item in page.tree.jobs.values():
        job, node = item.text(COL_JOB), item.text(COL_NODE)
        key = f"{job} [{node}]" if node else job
        out[key] = TaskStatus(page.tree.status(item))
        assert item.text(COL_STATUS) == STATUS_TEXT[out[key]]  # what the operator reads agrees
    return out


def _cells(table: QTableWidget) -> list[list[str]]:
    """Every row of a table as the operator reads it."""
    out: list[list[str]] = []
    for r in range(table.rowCount()):
        row: list[str] = []
        for c in range(table.columnCount()):
            item = table.item(r, c)
            row.append(item.text() if item is not None else "")
        out.append(row)
    return out


def _exit_code(page: RunPage) -> ExitCode | None:
    return page.last_result.exit_code if page.last_result is not None else None


def _run(qtbot: QtBot, window: MainWindow, *, click: QAbstractButton | None = None) -> None:
    """Press Start (or ``click``) and wait until the run has ended."""
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(click or window.run.start_button, Qt.MouseButton.LeftButton)


def _open_via_dialog(qtbot: QtBot, window: MainWindow, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}

    def fake_dialog(parent: object, caption: str, folder: str, filter: str) -> tuple[str, str]:
        seen["filter"] = filter
        return str(path), filter

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(fake_dialog))
    qtbot.mouseClick(window.welcome.open_button, Qt.MouseButton.LeftButton)
    assert seen["filter"] == "Project (*.yaml *.yml *.json)"


def test_window_starts_on_welcome_with_accessible_controls(make_window: MakeWindow) -> None:
    window = make_window()
    assert window.windowTitle() == WINDOW_TITLE
    assert window.current == MainWindow.WELCOME
    assert [window.sidebar.item(i).text().split()[-1] for i in range(window.sidebar.count())] == [
        "Welcome",
        "Project",
        "Provider",
        "Credentials",
        "Nodes",
        "Network",
        "Files",
        "Preflight",
        "Review",
        "Run",
        "Install",
        "Cluster",
        "Activation",
        "Bundles",
        "Summary",
        "Upgrade",
    ]
    assert [window.step_state(i) for i in range(16)] == [StepState.CURRENT] + [StepState.BLOCKED] * 15
    assert not window.next_button.isEnabled()  # no project yet
    assert not window.back_button.isEnabled()
    assert window.back_button.text() == "&Back" and window.next_button.text() == "&Next"
    assert len(window.pages) == 16  # every page built, so every page's controls are checked below
    # Every control the operator can reach has a name for screen readers. Qt's private helpers (the tables'
    # corner buttons) show up as bare QAbstractButton and are not ours to name.
    interactive = (QAbstractButton, QAbstractItemView, QTextEdit, QPlainTextEdit, QProgressBar)
    controls = [w for kind in interactive for w in window.findChildren(kind) if type(w) is not QAbstractButton]
    controls = [w for w in controls if type(w).__name__ not in ("QHeaderView", "QScrollBar")]
    assert len(controls) > 15
    assert [f"{type(w).__name__} {w.objectName()}" for w in controls if not w.accessibleName()] == []
    # Tab follows the screen: sidebar, the page's controls top to bottom, then Back / Next / Cancel.
    chain: list[QWidget] = []
    widget = window.sidebar
    while widget not in chain:
        chain.append(widget)
        widget = widget.nextInFocusChain()
    order = [
        window.sidebar,
        window.welcome.open_button,
        window.welcome.refresh_button,
        window.welcome.resume_button,
        window.save_button,
        window.back_button,
        window.next_button,
        window.cancel_button,
    ]
    positions = [chain.index(w) for w in order]
    assert positions == sorted(positions)


def _built(window: MainWindow) -> list[int]:
    """The pages that exist (each page's place in the stack is a scroll area; an empty one has no page yet)."""
    places = [window.stack.widget(i) for i in range(window.stack.count())]
    return [i for i, place in enumerate(places) if isinstance(place, QScrollArea) and place.widget() is not None]


def test_the_first_window_builds_only_the_pages_it_shows(qtbot: QtBot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    assert _built(window) == [MainWindow.WELCOME, MainWindow.PROJECT]
    # The sidebar names every step all the same, and the states do not need the missing pages.
    assert window.sidebar.item(MainWindow.SUMMARY).text() == "⊘  Summary"
    assert window.sidebar.item(MainWindow.NODES).toolTip() == "Nodes: blocked"
    assert [window.step_state(i) for i in range(16)] == [StepState.CURRENT] + [StepState.BLOCKED] * 15
    assert not window.go_to(MainWindow.NODES) and _built(window) == [MainWindow.WELCOME, MainWindow.PROJECT]
    # Asking for any missing page builds all of them, each in its own place in the stack.
    nodes = window.nodes
    assert _built(window) == list(range(16))
    assert window.stack.widget(MainWindow.NODES).widget() is nodes  # type: ignore[attr-defined]
    assert [window.sidebar.item(i).text() for i in range(16)] == [
        f"{'▶' if i == 0 else '⊘'}  {page.title}" for i, page in enumerate(window.pages)
    ]


def test_the_other_pages_are_built_once_the_window_has_painted(make_window: MakeWindow, qtbot: QtBot) -> None:
    window = make_window()
    qtbot.waitUntil(lambda: _built(window) == list(range(16)), timeout=10_000)
    assert window.secrets is window.credentials.store  # one store, found off the GUI thread meanwhile


def test_a_late_page_takes_its_place_in_the_tab_order(qtbot: QtBot, project_file: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_project(project_file)  # loading builds every page first
    assert window.go_to(MainWindow.NETWORK)
    chain: list[QWidget] = []
    widget: QWidget = window.sidebar
    while widget not in chain:
        chain.append(widget)
        widget = widget.nextInFocusChain()
    fields = [f.widget for f in window.network.fields]
    order = [window.sidebar, *fields, window.save_button, window.back_button, window.next_button]
    positions = [chain.index(w) for w in order]
    assert positions == sorted(positions)


def test_a_run_started_without_the_pages_builds_them_first(qtbot: QtBot, project_file: Path) -> None:
    """Whoever starts a run, every page sees it from its first event."""
    window = MainWindow(steps=lambda: pipeline(until="preflight"))
    qtbot.addWidget(window)
    assert _built(window) == [MainWindow.WELCOME, MainWindow.PROJECT]
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT_MS):
        window.controller.start(project_file)
    assert _built(window) == list(range(16))
    result = window.run.last_result
    assert result is not None and result.exit_code is ExitCode.DONE
    assert set(_statuses(window.run)) == {"Appliance ISO", *PREFLIGHT_ROWS}  # the Run page followed it all
    assert window.controller.wait(15.0)


def test_opening_a_valid_project_shows_its_nodes_and_enables_next(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window()
    _open_via_dialog(qtbot, window, project_file, monkeypatch)

    page = window.project
    assert window.current == MainWindow.PROJECT
    assert page.name_value.text() == "palette-mgmt"
    assert page.provider_value.text() == "manual"
    assert page.vip_value.text() == "127.0.10.50"
    assert _cells(page.nodes) == [
        [f"node-{i}", f"edge-node-{i}", "static", f"127.0.10.1{i}", "24", "127.0.10.1"] for i in (1, 2, 3)
    ]
    assert page.nodes.isVisible()
    assert window.next_button.isEnabled()
    # The input pages have nothing to fix in a valid project; the run is still ahead.
    assert [window.step_state(i) for i in range(8)] == [
        StepState.DONE,
        StepState.CURRENT,
        *[StepState.DONE] * 5,
        StepState.AHEAD,
    ]
    assert window.run.start_button.isEnabled()
    # Keyboard: Alt+N moves on, Alt+B comes back (mnemonics "animate" the click, so it lands a moment later).
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: window.current == MainWindow.PROVIDER)
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: window.current == MainWindow.PROJECT)


def test_an_invalid_project_lists_every_problem_and_keeps_next_disabled(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    path = write_project(tmp_path, invalid_doc())
    with pytest.raises(ProjectInvalid) as caught:
        load_project(path)
    expected = caught.value.problems
    assert len([p for p in expected if p.is_error]) >= 4

    window = make_window()
    assert window.open_project(path) is False
    page = window.project
    assert window.current == MainWindow.PROJECT
    table = page.problem_table
    assert table.isVisible()
    headers = [table.model().headerData(c, Qt.Orientation.Horizontal) for c in range(table.columnCount())]
    assert headers == list(PROBLEM_COLUMNS)
    shown = _cells(table)
    # In the window's words: the page and the field's label, rows counted from 1 as the tables show them.
    assert shown == [
        [p.severity.value.capitalize(), where(p.path), humanize(p.message), humanize(p.fix) if p.fix else "—"]
        for p in expected
    ]
    fields = {row[1] for row in shown if row[0] == "Error"}
    assert {
        "Nodes page, row 2, IP address",
        "Nodes page, row 3, Prefix",
        "Network page, Virtual IP (VIP)",
        "Files page, Appliance ISO",
    } <= fields
    assert not any("nodes[" in cell for row in shown for cell in row)
    # Every problem is in a field an input page edits: Next leads there, the run stays out of reach.
    assert "4 problem(s) to fix" in page.status.text() and "Next" in page.status.text()
    assert window.next_button.isEnabled()
    assert window.step_state(MainWindow.NODES) is StepState.AHEAD
    assert window.step_state(MainWindow.NETWORK) is StepState.BLOCKED  # the nodes have errors
    assert window.step_state(MainWindow.RUN) is StepState.BLOCKED
    assert not window.go_to(MainWindow.RUN)
    window.sidebar.setCurrentRow(MainWindow.RUN)  # a click on a blocked step goes nowhere
    assert window.current == MainWindow.PROJECT
    assert window.sidebar.currentRow() == MainWindow.PROJECT
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: window.current == MainWindow.PROVIDER)
    assert window.go_to(MainWindow.PROJECT)

    # A problem no page can fix (the cluster name) keeps Next disabled on the Project page.
    write_project(tmp_path, invalid_doc() | {"name": "Not A Name"})
    qtbot.mouseClick(page.reload_button, Qt.MouseButton.LeftButton)
    assert not window.next_button.isEnabled()
    assert "must be fixed" in page.status.text()
    assert window.step_state(MainWindow.PROVIDER) is StepState.BLOCKED

    # Fixing the file and pressing Reload clears the problems and enables Next.
    write_project(tmp_path, valid_doc())
    qtbot.mouseClick(page.reload_button, Qt.MouseButton.LeftButton)
    assert not page.errors()
    assert all(row[0] != "Error" for row in _cells(table))
    assert page.nodes.rowCount() == 3
    assert window.next_button.isEnabled()


def test_a_valid_run_finishes_every_job_without_blocking_the_gui(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window(steps=lambda: [*pipeline(until="preflight"), PacedStep(seconds=1.5)])
    assert window.open_project(project_file, goto=MainWindow.RUN)
    page = window.run
    ticks: list[float] = []
    page.poll_timer.timeout.connect(lambda: ticks.append(time.monotonic()))

    started = time.monotonic()
    _run(qtbot, window)
    ended = time.monotonic()

    assert _exit_code(page) is ExitCode.DONE
    statuses = _statuses(page)
    assert set(statuses) == {"Appliance ISO", *PREFLIGHT_ROWS, *(f"Test transfer [node-{i}]" for i in (1, 2, 3))}
    assert set(statuses.values()) == {TaskStatus.DONE}
    assert page.overall.value() == page.overall.maximum()
    assert page.overall.text() == "100%"
    assert all(page.tree.fraction(item) == 1.0 for item in page.tree.jobs.values())
    assert page.outcome.isVisible() and "Every step finished" in page.outcome.text()
    assert not page.error_panel.isVisible()
    assert window.step_state(MainWindow.RUN) is StepState.CURRENT and page.is_done()

    # The timer kept ticking all the while: the engine never ran on the GUI thread.
    marks = [started, *(t for t in ticks if started <= t <= ended), ended]
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    assert len(marks) - 2 >= 8, f"only {len(marks) - 2} timer ticks in {ended - started:.2f}s"
    assert max(gaps) < 0.5, f"the GUI thread stalled for {max(gaps):.3f}s"
    assert not page.poll_timer.isActive()  # no polling once the run has ended


def test_cancel_stops_the_run_and_leaves_it_resumable(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window(steps=lambda: [*pipeline(until="preflight"), PacedStep(seconds=60)])
    window.open_project(project_file, goto=MainWindow.RUN)
    page = window.run
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert not page.start_button.isEnabled()
    # Cancel once the transfers run (verify and preflight finish first).
    qtbot.waitUntil(lambda: _statuses(page).get("Test transfer [node-1]") is TaskStatus.RUNNING, timeout=RUN_TIMEOUT_MS)
    assert page.cancel_button.isEnabled()
    assert not window.welcome.open_button.isEnabled()  # no switching projects under a running install

    clicked = time.monotonic()
    with qtbot.waitSignal(window.controller.finished, timeout=10_000):
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    assert time.monotonic() - clicked < 5

    assert _exit_code(page) is ExitCode.CANCELLED
    statuses = _statuses(page)
    assert statuses["Appliance ISO"] is TaskStatus.DONE
    assert {statuses[f"Test transfer [node-{i}]"] for i in (1, 2, 3)} == {TaskStatus.CANCELLED}
    assert page.overall.value() < page.overall.maximum()
    assert page.outcome.isVisible() and "cancelled" in page.outcome.text()
    assert not page.error_panel.isVisible()
    assert page.start_button.isEnabled() and not page.cancel_button.isEnabled()
    assert window.welcome.open_button.isEnabled()


def test_a_failed_run_shows_the_error_panel_and_retry_runs_again(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    path = write_project(tmp_path, valid_doc(files={"iso": {"path": "appliance.iso", "sha256": ZERO_SHA}}))
    window = make_window()
    window.open_project(path, goto=MainWindow.RUN)
    page = window.run
    _run(qtbot, window)

    assert _exit_code(page) is ExitCode.PREFLIGHT_BLOCKED
    panel = page.error_panel
    assert panel.isVisible()
    assert panel.title_label.text() == "Verify files: Appliance ISO failed"
    assert "Checksum mismatch" in panel.message_label.text()
    assert ZERO_SHA in panel.message_label.text()
    assert panel.remediation_label.isVisible() and "download the file again" in panel.remediation_label.text()
    assert _statuses(page) == {"Appliance ISO": TaskStatus.FAILED}
    assert not page.outcome.isVisible()
    # Details are there, but collapsed until asked for.
    assert not panel.details.isVisible()
    qtbot.mouseClick(panel.details_toggle, Qt.MouseButton.LeftButton)
    assert panel.details.isVisible() and panel.details.isReadOnly()
    assert panel.retry_button.isVisible() and panel.retry_button.isEnabled()

    # Correct the checksum; Retry re-reads the project and runs again.
    digest = hash_file(iso).sha256
    write_project(tmp_path, valid_doc(files={"iso": {"path": "appliance.iso", "sha256": digest}}))
    _run(qtbot, window, click=panel.retry_button)
    assert _exit_code(page) is ExitCode.DONE
    assert not panel.isVisible()
    assert _statuses(page) == {"Appliance ISO": TaskStatus.DONE, **dict.fromkeys(PREFLIGHT_ROWS, TaskStatus.DONE)}
    assert "attempt 2" in page.activity.toPlainText()


def test_unfinished_sessions_are_listed_and_resumable(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    path = write_project(tmp_path, valid_doc(files={"iso": {"path": "appliance.iso", "sha256": ZERO_SHA}}))
    window = make_window()
    assert window.welcome.session_entries() == []
    assert window.welcome.sessions_slot.currentWidget() is window.welcome.empty_label
    window.open_project(path, goto=MainWindow.RUN)
    _run(qtbot, window)

    # A damaged journal beside it is shown as an error and left alone.
    broken = app_paths().state / "sessions" / "broken-0123456789ab.json"
    broken.write_text("{not json")

    for _ in range(MainWindow.RUN):
        qtbot.mouseClick(window.back_button, Qt.MouseButton.LeftButton)
    assert window.current == MainWindow.WELCOME
    welcome = window.welcome
    entries = welcome.session_entries()
    sessions = [e for e in entries if isinstance(e, SessionInfo)]
    assert len(sessions) == 1
    assert sessions[0].status == RUN_FAILED and sessions[0].step == "verify"
    assert Path(sessions[0].project_file) == path.resolve()
    texts = [welcome.sessions.item(i).text() for i in range(welcome.sessions.count())]
    assert any("palette-mgmt" in t and "failed" in t for t in texts)
    assert any(t.startswith("Journal corrupt") for t in texts)
    assert broken.exists()

    error_row = next(i for i, t in enumerate(texts) if t.startswith("Journal corrupt"))
    welcome.sessions.setCurrentRow(error_row)
    assert not welcome.resume_button.isEnabled()
    session_row = next(i for i, t in enumerate(texts) if "palette-mgmt" in t)
    welcome.sessions.setCurrentRow(session_row)
    assert welcome.resume_button.isEnabled()

    window.project.load(tmp_path / "elsewhere.yaml")  # forget the open project first
    qtbot.mouseClick(welcome.resume_button, Qt.MouseButton.LeftButton)
    assert window.current == MainWindow.RUN
    assert window.run.project_file == path.resolve()
    assert window.run.start_button.isEnabled()
    assert broken.read_text() == "{not json"  # still there, untouched


def test_the_secrets_notice_is_shown_without_a_secure_keyring(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    window = make_window()
    window.open_project(project_file, goto=MainWindow.RUN)
    _run(qtbot, window)
    notice = window.run.secrets_notice
    assert notice.isVisible()
    assert "No secure keyring is available" in notice.text()


def test_unexpected_exceptions_are_logged_and_shown_without_exiting(
    qtbot: QtBot, make_window: MakeWindow, wizard_home: Path
) -> None:
    window = make_window()
    logs = app_paths().ensure().logs
    setup_logging(logs)
    handler = CrashHandler(logs, lambda: window)
    try:
        raise ZeroDivisionError("boom in a slot")
    except ZeroDivisionError:
        handler(*sys.exc_info())
    dialog = handler.dialog
    assert dialog is not None and dialog.isVisible()
    assert str(logs / LOG_NAME) in dialog.informativeText()
    assert "ZeroDivisionError" in dialog.text()
    assert "boom in a slot" in (logs / LOG_NAME).read_text()
    assert window.isVisible()
    dialog.accept()
    qtbot.waitUntil(lambda: handler.dialog is None)


@pytest.mark.qt_no_exception_capture
def test_the_crash_hook_catches_exceptions_raised_in_slots(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    handler = CrashHandler(app_paths().ensure().logs, lambda: window).install()
    try:

        def explode() -> None:
            raise RuntimeError("raised inside a Qt slot")

        QTimer.singleShot(0, explode)
        qtbot.waitUntil(lambda: handler.dialog is not None and handler.dialog.isVisible())
        assert handler.dialog is not None and "raised inside a Qt slot" in handler.dialog.text()
        assert window.isVisible()
        handler.dialog.accept()
    finally:
        handler.uninstall()
    assert sys.excepthook is not handler


def test_main_opens_the_given_project_on_the_project_page(project_file: Path) -> None:
    from wizard.ui.app import main

    seen: dict[str, object] = {}

    def inspect() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        window = windows[-1]
        seen["page"] = window.current
        seen["nodes"] = window.project.nodes.rowCount()
        seen["next"] = window.next_button.isEnabled()
        window.close()

    QTimer.singleShot(0, inspect)
    assert main(project_file) == 0
    assert seen == {"page": MainWindow.PROJECT, "nodes": 3, "next": True}
    assert (app_paths().logs / LOG_NAME).is_file()


def test_closing_during_a_run_asks_then_cancels_and_closes_once_stopped(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window(steps=lambda: [*pipeline(until="preflight"), PacedStep(seconds=60)])
    window.open_project(project_file, goto=MainWindow.RUN)
    qtbot.mouseClick(window.run.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: TaskStatus.RUNNING in _statuses(window.run).values(), timeout=RUN_TIMEOUT_MS)

    answers = iter([False, True])
    monkeypatch.setattr(window, "confirm_quit_while_running", lambda: next(answers))
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)  # "No": keep going
    assert window.isVisible() and window.controller.running and not window.controller.cancelling

    with qtbot.waitSignal(window.controller.finished, timeout=10_000):
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)  # "Yes"
    qtbot.waitUntil(lambda: not window.isVisible())
    assert _exit_code(window.run) is ExitCode.CANCELLED
