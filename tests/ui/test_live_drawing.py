"""How much the pages that follow a run draw: only what changed, nothing while hidden, new rows a batch at a time.

The pages are driven with a progress store of the test's (no engine) and their drawing is counted through the
methods that draw one row or one cell, so nothing here depends on timing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QStackedWidget, QTreeWidgetItem, QWidget
from pytestqt.qtbot import QtBot

from wizard.core.progress import Progress, ProgressSnapshot, TaskState, TaskStatus
from wizard.core.redact import REDACTOR
from wizard.core.runner import ExitCode, RunFinished
from wizard.ui.bridge import RunController
from wizard.ui.pages.bundles import BundlesPage
from wizard.ui.pages.install import COL_STAGE, InstallPage
from wizard.ui.pages.live import LivePage
from wizard.ui.pages.run import COL_MESSAGE, ROW_BATCH, RunPage

pytestmark = pytest.mark.ui


class _Controller(RunController):
    """A controller whose progress the test drives; no run, no engine."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def snapshot(self) -> ProgressSnapshot | None:
        return self.progress.snapshot()


class _Stack:
    """A page in a shown stack, behind a blank page (hidden) until ``show_page``."""

    def __init__(self, qtbot: QtBot, page: QWidget) -> None:
        self.stack = QStackedWidget()
        qtbot.addWidget(self.stack)
        self.blank = QWidget()
        self.stack.addWidget(self.blank)
        self.stack.addWidget(page)
        self.page = page
        self.stack.resize(1000, 600)
        self.stack.show()
        qtbot.waitExposed(self.stack)
        assert not page.isVisible()

    def show_page(self) -> None:
        self.stack.setCurrentWidget(self.page)
        assert self.page.isVisible()

    def hide_page(self) -> None:
        self.stack.setCurrentWidget(self.blank)


def _tasks(progress: Progress, count: int, step: str = "work", node: str = "") -> list[str]:
    keys = [f"{step}/job-{i:02d}" for i in range(count)]
    for i, key in enumerate(keys):
        progress.add_task(key, f"Job {i:02d}", step, node)
    return keys


def _count_rows(page: RunPage, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts RunPage row draws by task key."""
    drawn: Counter[str] = Counter()
    original = page._draw_row

    def counting(item: QTreeWidgetItem, task: TaskState) -> None:
        drawn[task.key] += 1
        original(item, task)

    monkeypatch.setattr(page, "_draw_row", counting)
    return drawn


def _count_cells(page: InstallPage | BundlesPage, monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """Counts cell writes of a live page by row."""
    written: Counter[int] = Counter()
    original = page._set

    def counting(row: int, col: int, text: str) -> None:
        written[row] += 1
        original(row, col, text)

    monkeypatch.setattr(page, "_set", counting)
    return written


def _row_keys(page: RunPage) -> list[str]:
    """The job rows in the order the tree shows them (steps in run order, each step's jobs in order)."""
    tree = page.tree
    out = []
    for s in range(tree.topLevelItemCount()):
        step = tree.topLevelItem(s)
        assert step is not None
        out += [tree.key(child) for j in range(step.childCount()) if (child := step.child(j)) is not None]
    return out


def _start_polling(page: RunPage | LivePage) -> None:
    page.poll_timer.start()  # as when a run starts: showEvent catches up only while a run is followed


# -- the Run page --------------------------------------------------------------------------------------------------


def test_a_hidden_run_page_draws_nothing_and_catches_up_when_shown(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress = Progress()
    page = RunPage(_Controller(progress))
    stack = _Stack(qtbot, page)
    drawn = _count_rows(page, monkeypatch)
    keys = _tasks(progress, 5)
    _start_polling(page)
    for i in range(3):
        progress.set_status(keys[i], TaskStatus.RUNNING, f"step {i}")
        page.poll()
    assert not page.tree.jobs and not drawn

    stack.show_page()  # showEvent draws the newest state at once, not at the next tick
    assert _row_keys(page) == keys and set(drawn) == set(keys) and set(drawn.values()) == {1}
    first = page.tree.jobs[keys[0]]
    assert first.text(COL_MESSAGE) == "step 0"

    stack.hide_page()
    progress.set_status(keys[0], TaskStatus.DONE, "finished")
    page.poll()
    assert drawn[keys[0]] == 1 and first.text(COL_MESSAGE) == "step 0"
    page.poll_timer.stop()


def test_only_the_jobs_that_changed_are_redrawn(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    progress = Progress()
    page = RunPage(_Controller(progress))
    stack = _Stack(qtbot, page)
    stack.show_page()
    keys = _tasks(progress, 6)
    page._draw(progress.snapshot(), batch=None)
    drawn = _count_rows(page, monkeypatch)

    REDACTOR.add("hunter2-secret")
    progress.set_status(keys[1], TaskStatus.RUNNING, "logging in with hunter2-secret")
    progress.set_status(keys[4], TaskStatus.FAILED, "password=swordfish")
    page.poll()
    assert drawn == Counter({keys[1]: 1, keys[4]: 1})
    texts = [page.tree.jobs[keys[r]].text(COL_MESSAGE) for r in (1, 4)]
    assert texts == ["logging in with «redacted»", "password=«redacted»"]

    page.poll()  # nothing new: nothing drawn
    page._draw(progress.snapshot())  # the same states again: nothing drawn either
    assert drawn == Counter({keys[1]: 1, keys[4]: 1})


def test_new_rows_are_added_a_batch_per_event_loop_turn_and_the_end_of_a_run_whole(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress = Progress()
    controller = _Controller(progress)
    page = RunPage(controller)
    stack = _Stack(qtbot, page)
    stack.show_page()
    keys = _tasks(progress, 3 * ROW_BATCH + 2)
    page.poll()
    assert len(page.tree.jobs) == ROW_BATCH  # the rest on the next turns
    qtbot.waitUntil(lambda: len(page.tree.jobs) == len(keys))
    assert _row_keys(page) == keys  # in the run's order

    # The end of a run is drawn whole at once, visible or not: what a test or the operator reads next is complete.
    stack.hide_page()
    more = _tasks(progress, 2 * ROW_BATCH, step="late")
    for key in more:
        progress.set_status(key, TaskStatus.DONE)
    controller.finished.emit(RunFinished(ExitCode.DONE))
    assert _row_keys(page) == keys + more
    # Progress is painted from a number in the cell (no widget per row): every row has where its job got.
    stack.show_page()
    fractions = [page.tree.fraction(page.tree.jobs[k]) for k in keys + more]
    assert fractions == [0.0] * len(keys) + [1.0] * len(more)


# -- the Install page ------------------------------------------------------------------------------------------------


def _install_page(qtbot: QtBot, tmp_path: Path, progress: Progress, nodes: list[str]) -> tuple[InstallPage, _Stack]:
    page = InstallPage(_Controller(progress))
    stack = _Stack(qtbot, page)
    page.set_project(tmp_path / "project.yaml", nodes)
    for node in nodes:
        progress.add_task(f"install/{node}", node, "install", node)
    return page, stack


def test_a_hidden_install_page_keeps_every_log_line_but_draws_no_cell(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress = Progress()
    page, stack = _install_page(qtbot, tmp_path, progress, ["node-1"])
    written = _count_cells(page, monkeypatch)
    _start_polling(page)
    progress.set_status("install/node-1", TaskStatus.RUNNING, "Partitioning")
    for batch in range(3):  # more lines in all than progress keeps: the hidden page takes them as they come
        progress.log("install/node-1", [f"line {batch}.{i}" for i in range(8)], keep=10)
        page.poll()
    progress.set_status("install/node-1", TaskStatus.RUNNING, "Copying the image")
    page.poll()
    assert not written
    lines = page.log_lines("node-1")
    assert [line.strip() for line in lines if line.startswith("    ")] == [
        f"line {b}.{i}" for b in range(3) for i in range(8)
    ]
    # Each stage line carries the job's percentage as its bar shows it then.
    assert [line.split("] ")[1] for line in lines if "[Install]" in line] == [
        "  0%  Partitioning",
        "  0%  Copying the image",
    ]

    stack.show_page()
    stage = page.table.item(0, COL_STAGE)
    assert written[0] > 0 and stage is not None and stage.text() == "Copying the image"
    assert "line 2.7" in page.log.toPlainText()
    page.poll_timer.stop()


def test_install_rows_whose_jobs_did_not_change_are_not_redrawn(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress = Progress()
    page, stack = _install_page(qtbot, tmp_path, progress, ["node-1", "node-2", "node-3"])
    stack.show_page()
    page.draw(progress.snapshot())
    written = _count_cells(page, monkeypatch)
    progress.set_status("install/node-2", TaskStatus.FAILED, "the installer stopped")
    page.draw(progress.snapshot())
    assert set(written) == {1} and page.failed_nodes == {"node-2"}

    # A running node's clock moves with time alone: only its elapsed and ETA cells are written again.
    progress.set_status("install/node-3", TaskStatus.RUNNING, "Installing")
    page.draw(progress.snapshot())
    written.clear()
    page.draw(progress.snapshot())
    assert written == Counter({2: 2})


# -- the Bundles page ------------------------------------------------------------------------------------------------


def test_a_hidden_bundles_page_draws_nothing_until_shown(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    progress = Progress()
    page = BundlesPage(_Controller(progress))
    stack = _Stack(qtbot, page)
    written = _count_cells(page, monkeypatch)
    keys = _tasks(progress, 2, step="content")
    _start_polling(page)
    progress.set_status(keys[0], TaskStatus.RUNNING, "uploading")
    page.poll()
    assert page.table.rowCount() == 0 and not written and page.tasks == []

    stack.show_page()
    assert page.table.rowCount() == 2 and written[0] > 0
    assert [t.key for t in page.tasks] == keys
    before = Counter(written)
    progress.set_status(keys[1], TaskStatus.RUNNING, "queued next")
    page.poll()
    changed = written - before
    assert changed[1] > 1 and changed[0] == 1  # row 0 only for its ETA, which moves with time
    page.poll_timer.stop()


def test_a_hidden_run_pages_activity_lines_wait_and_arrive_in_order_when_shown(qtbot: QtBot) -> None:
    progress = Progress()
    controller = _Controller(progress)
    page = RunPage(controller)
    stack = _Stack(qtbot, page)
    for i in range(3):
        controller.event_received.emit(RunFinished(ExitCode.INCOMPLETE, retried=(f"node-{i}",), held=("node-9",)))
    assert page.activity.toPlainText() == ""
    stack.show_page()
    lines = page.activity.toPlainText().splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert line.endswith(f"node-{i} retried; node-9 still needs a retry"), line
    controller.event_received.emit(RunFinished(ExitCode.DONE))
    assert page.activity.toPlainText().splitlines()[-1].endswith("Run ended: finished")  # no exit code


# -- the cells helper ------------------------------------------------------------------------------------------------


def test_cells_refit_a_column_only_when_a_text_changes_shape_and_write_colours_once(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

    from wizard.ui.pages.cells import LiveCells

    table = QTableWidget(2, 2)
    qtbot.addWidget(table)
    for r in range(2):
        for c in range(2):
            table.setItem(r, c, QTableWidgetItem(""))
    cells = LiveCells(table, [0])
    fitted: list[int] = []
    monkeypatch.setattr(table, "resizeColumnToContents", fitted.append)
    assert cells.set(0, 0, "1m 05s") and cells.set(0, 1, "other column")
    cells.fit()
    assert fitted == [0]
    assert cells.set(0, 0, "1m 06s") and not cells.set(0, 0, "1m 06s")  # digits only: same width
    cells.fit()
    assert fitted == [0]
    assert cells.set(0, 0, "10m 06s")
    cells.fit()
    assert fitted == [0, 0]

    item = table.item(0, 1)
    assert item is not None
    cells.set_colour(0, 1, "#a31515")
    assert item.foreground().color().name() == "#a31515"
    item.setForeground(QBrush(QColor("#000001")))  # written behind its back: proves the next call writes nothing
    cells.set_colour(0, 1, "#a31515")
    assert item.foreground().color().name() == "#000001"
    cells.set_colour(0, 1, None)
    assert item.foreground().style() == Qt.BrushStyle.NoBrush


def test_a_cell_removed_with_its_row_leaves_no_live_wrapper_behind(qtbot: QtBot) -> None:
    """A wrapper that outlives its item would be handed out again for the next Qt object at that address (a table's
    header came back as a table item): the items LiveCells makes must tell their wrappers when the table deletes
    them, whether rows go, the table is cleared or a cell is replaced."""
    import shiboken6
    from PySide6.QtWidgets import QTableWidget

    from wizard.ui.pages.cells import LiveCells

    table = QTableWidget(0, 2)
    qtbot.addWidget(table)
    cells = LiveCells(table, [0])

    def fill() -> list[object]:
        table.setRowCount(1)
        for col in range(2):
            table.setItem(0, col, cells.new_item(right=col == 1))
        return [table.item(0, col) for col in range(2)]

    held = fill()
    table.setRowCount(0)
    assert not any(shiboken6.isValid(item) for item in held)
    held = fill()
    table.clear()
    assert not any(shiboken6.isValid(item) for item in held)
    held = fill()
    table.setItem(0, 0, cells.new_item())
    assert not shiboken6.isValid(held[0])
    assert table.item(0, 1).textAlignment() & Qt.AlignmentFlag.AlignRight


def test_install_page_shows_each_booting_vms_console_screenshot(qtbot: QtBot, tmp_path: Path) -> None:
    import os

    from wizard.lab.screen import render_png
    from wizard.ui.bridge import SessionOpened

    progress = Progress()
    page, stack = _install_page(qtbot, tmp_path, progress, ["node-1", "node-2"])
    stack.show_page()
    journal = tmp_path / "sessions" / "p.json"
    screens = journal.with_suffix("") / "screens"
    page.session_opened(SessionOpened(tmp_path / "project.yaml", "p", journal, "", ()))
    assert not page.consoles.isVisible()  # nothing taken yet (another provider, or no screenshots)
    screens.mkdir(parents=True)
    (screens / "node-1.png").write_bytes(render_png(["GNU GRUB  version 2.06"]))
    page.consoles.refresh(force=True)
    assert page.consoles.isVisible() and page.consoles.nodes() == ["node-1"]
    image, caption = page.consoles._tiles["node-1"]
    first = image.pixmap().toImage()
    assert caption.text().startswith("node-1 — ") and not first.isNull() and first.width() == 320
    # A newer screenshot replaces the shown one; a half-written file is skipped until the next look.
    (screens / "node-1.png").write_bytes(render_png(["Palette Edge Interactive Installer"], frozenset({0})))
    os.utime(screens / "node-1.png", (1.0e9 + 10, 1.0e9 + 10))
    (screens / "node-2.png").write_bytes(b"\x89PNG half")
    page.consoles.refresh(force=True)
    assert page.consoles.nodes() == ["node-1"] and image.pixmap().toImage() != first
    # A new session starts with no screens.
    page.session_opened(SessionOpened(tmp_path / "project.yaml", "p", tmp_path / "other.json", "", ()))
    assert page.consoles.nodes() == [] and not page.consoles.isVisible()
