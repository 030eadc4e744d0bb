"""Keyboard, scale and theme: Tab follows the reading order on every page and stops only where something shows, the
focus is visible (the step list too), Enter presses Next where the page allows it, Reload and the close dialog do not
drop or save edits by reflex, the window fits the screen at 150 %, and status colours read in light and dark."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox, QScrollArea, QWidget
from pytestqt.qtbot import QtBot

from tests.ui.test_pages_input import edit_cell
from wizard.ui.shell import MainWindow
from wizard.ui.theme import MIN_CONTRAST, Status, banner_colours, contrast, status_colour

pytestmark = pytest.mark.ui

MakeWindow = Callable[..., MainWindow]
ROOT = Path(__file__).resolve().parents[2]


def _chain(window: MainWindow) -> list[QWidget]:
    """Where Tab goes, from the step list round to it again: enabled, shown widgets that take Tab."""
    out: list[QWidget] = []
    widget: QWidget = window.sidebar
    while widget not in out:
        out.append(widget)
        widget = widget.nextInFocusChain()
    return [w for w in out if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(window) and w.isEnabled()]


def _out_of_order(window: MainWindow, page: QWidget) -> list[str]:
    """Consecutive tab stops on ``page`` where the second comes before the first in reading order (above it, or
    on the same line to its left)."""
    stops = [w for w in _chain(window) if page.isAncestorOf(w)]
    bad = []
    for a, b in itertools.pairwise(stops):
        pa, pb = a.mapTo(window, QPoint(0, 0)), b.mapTo(window, QPoint(0, 0))
        a_mid, b_mid = pa.y() + a.height() // 2, pb.y() + b.height() // 2
        same_line = pa.y() <= b_mid < pa.y() + a.height() or pb.y() <= a_mid < pb.y() + b.height()
        if (same_line and pb.x() < pa.x()) or (not same_line and pb.y() < pa.y()):
            bad.append(f"{a.accessibleName() or type(a).__name__} → {b.accessibleName() or type(b).__name__}")
    return bad


def test_tab_follows_the_reading_order_on_every_page_and_stops_only_where_something_shows(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    window.resize(1100, 900)
    assert window.open_project(project_file)
    for index in range(len(window.pages)):
        assert window.go_to(index), index
        qtbot.wait(10)  # the order is settled once the page's layout is
        page = window.page(index)
        assert _out_of_order(window, page) == [], page.title
        stops = _chain(window)
        # No invisible stop: no scroll area of the window's own, and every stop shows something.
        assert not [w for w in stops if type(w) is QScrollArea], page.title
        hidden = [w.accessibleName() or type(w).__name__ for w in stops if w.visibleRegion().isEmpty()]
        assert hidden == [], (page.title, hidden)
        # The page's stops come after the step list and before the buttons at the bottom.
        order = [stops.index(window.sidebar), stops.index(window.support_button)]
        page_stops = [stops.index(w) for w in stops if page.isAncestorOf(w)]
        assert all(order[0] < i < order[1] for i in page_stops), page.title


def test_the_step_list_shows_its_focus(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    sidebar = window.sidebar
    window.support_button.setFocus()
    qtbot.waitUntil(lambda: not sidebar.hasFocus())
    without = sidebar.grab().toImage()
    sidebar.setFocus()
    qtbot.waitUntil(sidebar.hasFocus)
    with_focus = sidebar.grab().toImage()
    assert without != with_focus  # a focus frame is drawn around it


def test_enter_presses_next_where_the_page_allows_it(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path, tmp_path: Path
) -> None:
    window = make_window()
    assert window.open_project(project_file, goto=MainWindow.NETWORK)
    field = window.network.vip.widget
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_Return)  # in a field: Enter is Next
    assert window.current == MainWindow.FILES
    # A page whose input blocks: Enter does nothing.
    window.go_to(MainWindow.NETWORK)
    field.setFocus()
    field.selectAll()
    qtbot.keyClicks(field, "not-an-address")
    assert not window.next_button.isEnabled()
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert window.current == MainWindow.NETWORK
    # In a table, Enter is the table's own (edit a cell), never Next.
    window.document.load(project_file)
    window.go_to(MainWindow.NODES)
    table = window.nodes.table
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert window.current == MainWindow.NODES


def test_reload_asks_before_it_drops_unsaved_table_edits(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    assert window.open_project(project_file)
    window.go_to(MainWindow.NODES)
    edit_cell(qtbot, window, 0, "hostname", "edited-node-1")
    assert window.document.dirty
    asked: list[bool] = []
    window.confirm_reload = lambda: asked.append(True) or False  # type: ignore[method-assign]
    window.go_to(MainWindow.PROJECT)  # back: the edit stays in the document, unsaved
    window.project.reload_button.click()
    assert asked == [True] and window.document.dirty
    assert window.document.get(("nodes", 0, "hostname")) == "edited-node-1"
    window.confirm_reload = lambda: True  # type: ignore[method-assign]
    window.project.reload_button.click()
    assert not window.document.dirty and window.document.get(("nodes", 0, "hostname")) == "edge-node-1"


def test_the_close_dialog_does_not_default_to_saving_an_invalid_project(
    make_window: MakeWindow, project_file: Path, tmp_path: Path
) -> None:
    window = make_window()
    assert window.open_project(project_file)
    window.document.set(("network", "vip"), "127.0.10.60")  # valid, unsaved
    assert window.discard_default() is QMessageBox.StandardButton.Save
    window.document.set(("network", "vip"), "not-an-address")
    assert window.discard_default() is QMessageBox.StandardButton.Cancel


def test_a_yes_no_question_answers_no_to_a_reflexive_enter(qtbot: QtBot) -> None:
    """Cancel the install, cancel the run, give back the machines, drop the edits: Enter keeps things as they are."""
    from PySide6.QtCore import QTimer
    from PySide6.QtTest import QTest

    from wizard.ui.widgets import ask_yes_no

    parent = QWidget()
    qtbot.addWidget(parent)
    seen: list[str] = []

    def press(key: Qt.Key) -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, lambda: press(key))  # not shown yet
            return
        seen.append(box.text())
        QTest.keyClick(box, key)

    QTimer.singleShot(0, lambda: press(Qt.Key.Key_Return))
    assert ask_yes_no(parent, "Cancel the run?", "The running jobs stop.") is False
    QTimer.singleShot(0, lambda: press(Qt.Key.Key_Y))  # Yes only when asked for
    assert ask_yes_no(parent, "Cancel the run?", "The running jobs stop.") is True
    assert seen == ["The running jobs stop."] * 2


def test_status_colours_and_banners_read_in_light_and_dark_palettes() -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    original = app.palette()
    dark = QPalette(original)
    for role, colour in (
        (QPalette.ColorRole.Window, "#1e1e1e"),
        (QPalette.ColorRole.Base, "#121212"),
        (QPalette.ColorRole.Text, "#e8e8e8"),
        (QPalette.ColorRole.WindowText, "#e8e8e8"),
    ):
        dark.setColor(role, QColor(colour))
    try:
        for palette in (original, dark):
            app.setPalette(palette)
            base = app.palette().color(QPalette.ColorRole.Base)
            for status in Status:
                assert contrast(status_colour(status), base) >= MIN_CONTRAST, (status, base.name())
                text, fill, _border = banner_colours(status)
                assert contrast(text, fill) >= MIN_CONTRAST, (status, fill.name())
    finally:
        app.setPalette(original)


def test_the_window_fits_a_1280_by_800_screen_at_150_percent(tmp_path: Path, project_file: Path) -> None:
    """A 1280×800 screen at 150 % is 853×533 for the window: it opens inside it, Back and Next on screen."""
    config = tmp_path / "screen.json"
    config.write_text(
        json.dumps({"screens": [{"name": "s", "x": 0, "y": 0, "width": 1280, "height": 800, "logicalDpi": 96}]})
    )
    script = """
import json, sys
from PySide6.QtCore import QPoint, QRect
from wizard.ui.app import application
from wizard.ui.shell import MainWindow
app = application()
window = MainWindow()
window.show()
window.open_project(__import__("pathlib").Path(sys.argv[1]))
app.processEvents()
room = window.screen().availableGeometry()
def on_screen(w):
    top_left = w.mapToGlobal(QPoint(0, 0))
    return room.contains(QRect(top_left, w.size())) and w.isVisible()
print(json.dumps({
    "room": [room.width(), room.height()],
    "window": [window.frameGeometry().width(), window.frameGeometry().height()],
    "inside": room.contains(window.geometry()),
    "buttons": all(on_screen(b) for b in (window.back_button, window.next_button, window.cancel_button)),
}))
"""
    env = {**os.environ, "QT_SCALE_FACTOR": "1.5", "QT_QPA_PLATFORM": f"offscreen:configfile={config}"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(project_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["room"] == [853, 533]
    assert seen["inside"] and seen["buttons"], seen
