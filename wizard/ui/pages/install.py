"""The Install page: every node's boot and install, live — stage, percent, elapsed, ETA and its log.

One row per node, showing the node's current job across the node steps (machines, media, boot, install, eject,
password): which step, what stage the job reports, its progress, how long it has taken and how long it should still
take. Selecting a node shows its log: every distinct stage message in order, plus the node's own log lines (its
installer's journal, then its agent's log) as the job publishes them in its progress. Only the lines added since the
last tick are appended, so following a long log costs no more than its new lines. Stage changes are announced once
each, not every tick. A node's row is redrawn only when one of its jobs changed (its clock and ETA go on while it
runs); while the page is hidden it only takes the nodes' new log lines, and draws the rest when shown.

What each node shows agrees: the stage is the job's message without the installer's own percentage, the bar is the
job's progress and each log line carries the bar's percentage when it was written; Elapsed is the node's whole time
so far, from its first job's start to its last job's end. Where the operator boots the nodes (the manual provider,
MAAS machines without a BMC route), a checklist says what to do on each node — what to attach, which boot entry,
where the seed goes — wrapped to the page and copyable, and ticks a node off once it answers.

"Retry selected node" reruns the install for the selected node only: the other nodes' unfinished jobs are held (not
run, not journaled) and the run stops after the step that held them, saying which nodes still need a retry. "Retry
all failed" reruns the whole install: the journal skips every job that finished, so every failed node runs again.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from wizard.core.progress import ProgressSnapshot, TaskState, TaskStatus
from wizard.core.project import Project
from wizard.core.redact import redact
from wizard.core.runner import ExitCode, RunFinished, StepStarted
from wizard.ui.bridge import RunController, SessionOpened
from wizard.ui.pages.cells import LiveCells
from wizard.ui.pages.consoles import ConsoleScreensView
from wizard.ui.pages.live import BAR_SCALE, LivePage, announce, eta_text, now_stamp, progress_bar
from wizard.ui.theme import Status, status_hex
from wizard.ui.units import human_duration
from wizard.ui.widgets import button, heading, paragraph

#: The steps whose jobs belong to one node each, in run order.
NODE_STEPS: tuple[str, ...] = ("machines", "media", "boot", "install", "eject", "password")
STEP_TITLES = {
    "machines": "Machines",
    "media": "Media",
    "boot": "Boot",
    "install": "Install",
    "eject": "Eject",
    "password": "Password",
}

COLUMNS = ("Node", "Step", "Stage", "Progress", "Elapsed", "ETA", "Status")
COL_NODE, COL_STEP, COL_STAGE, COL_PROGRESS, COL_ELAPSED, COL_ETA, COL_STATUS = range(len(COLUMNS))

STATUS_TEXT: dict[TaskStatus, str] = {
    TaskStatus.PENDING: "○ Waiting",
    TaskStatus.RUNNING: "● Running",
    TaskStatus.DONE: "✓ Done",
    TaskStatus.SKIPPED: "✓ Done before",
    TaskStatus.FAILED: "✗ Failed",
    TaskStatus.CANCELLED: "■ Cancelled",
    TaskStatus.HELD: "◌ Needs a retry",
}
#: A node with a task in one of these still needs a retry.
NEEDS_RETRY = (TaskStatus.FAILED, TaskStatus.HELD)
STATUS_KIND: dict[TaskStatus, Status] = {
    TaskStatus.DONE: Status.DONE,
    TaskStatus.SKIPPED: Status.DONE,
    TaskStatus.FAILED: Status.FAILED,
    TaskStatus.CANCELLED: Status.WARNING,
    TaskStatus.HELD: Status.WARNING,
}
LOG_LINES = 400
#: The installer's own percentage in a stage message ("Copying the system image (43%)"): the bar says how far the
#: node's job is, so the page shows one number, the bar's.
_PERCENT = re.compile(r"\s*\(\d{1,3}%\)")


def stage_text(message: str) -> str:
    """A job's message as the Stage column and the log show it: without a percentage of its own."""
    return _PERCENT.sub("", message)


def checklist_steps(instruction: str) -> list[str]:
    """A boot instruction as the checklist lists it: one line per thing to do (its sentences, and the parts a colon
    or a semicolon separates)."""
    parts = re.split(r"(?<=[.;:])\s+(?=[A-Za-z“])", instruction.strip())
    return [p.rstrip(";:").strip() for p in parts if p.strip()]


def node_elapsed(tasks: Sequence[TaskState]) -> float | None:
    """The node's whole time so far: from its first job's start to its last job's end (now, while one runs)."""
    starts = [t.started for t in tasks if t.started is not None]
    if not starts:
        return None
    running = any(t.status is TaskStatus.RUNNING for t in tasks)
    ends = [t.finished for t in tasks if t.finished is not None]
    end = time.monotonic() if running or not ends else max(ends)
    return max(0.0, end - min(starts))


def current_task(tasks: Sequence[TaskState]) -> TaskState | None:
    """The task that says where a node is: a failed, running or held one, else the latest step's that has started."""
    for wanted in (TaskStatus.FAILED, TaskStatus.RUNNING, TaskStatus.HELD):
        for t in tasks:
            if t.status is wanted:
                return t
    started = [t for t in tasks if t.status is not TaskStatus.PENDING]
    if started:
        return max(started, key=lambda t: NODE_STEPS.index(t.step) if t.step in NODE_STEPS else -1)
    return tasks[0] if tasks else None


class InstallPage(LivePage):
    title = "Install"

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.title = self.tr("Install")
        tr = self.tr
        self.project_file: Path | None = None
        self.project: Project | None = None
        self.nodes: list[str] = []
        self._boot_seen: dict[str, bool] = {}  # node -> answered (its boot job done) for the checklist
        self._instructions: dict[str, str] = {}  # node -> what to do, as its boot job says it
        self._rows: dict[str, int] = {}
        # Each node's log (newest LOG_LINES) and how many lines it has received in all; the widget shows one node's
        # and remembers up to which count, so a tick appends only what came since.
        self._logs: dict[str, deque[str]] = {}
        self._log_count: dict[str, int] = {}
        self._shown: tuple[str | None, int] = (None, 0)
        self._published: dict[str, int] = {}  # task key -> how many of its published log lines were taken
        self._last_message: dict[str, str] = {}
        self._stage: dict[str, str] = {}
        #: Each node's jobs as its row last showed them, and the one the row shows: unchanged, only the clock moves.
        self._drawn: dict[str, tuple[TaskState, ...]] = {}
        self._current: dict[str, TaskState] = {}
        self._logged_version = -1  # the newest snapshot whose log lines a hidden page took
        #: Nodes that still need a retry: a job failed, or a run limited to other nodes held it back.
        self.failed_nodes: set[str] = set()

        self.announcer = QLabel("", self)
        self.announcer.setAccessibleName(tr("Install status"))
        self.announcer.setWordWrap(True)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels([tr(c) for c in COLUMNS])
        self.table.setAccessibleName(tr("Nodes being installed"))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_PROGRESS, 140)
        header.setSectionResizeMode(COL_STAGE, QHeaderView.ResizeMode.Stretch)
        self.cells = LiveCells(self.table, (c for c in range(len(COLUMNS)) if c not in (COL_PROGRESS, COL_STAGE)))
        self.table.setMinimumHeight(120)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.currentCellChanged.connect(lambda *_: self._selection_changed())

        # What the operator does on each node, where the wizard cannot boot them itself.
        self.checklist = QGroupBox(tr("Boot each node from the ISO"), self)
        self.checklist.setAccessibleName(tr("What to do on each node"))
        self.checklist_layout = QVBoxLayout(self.checklist)
        self.copy_checklist = button(tr("Cop&y the instructions"), tr("Copy what to do on each node"), self.checklist)
        self.copy_checklist.clicked.connect(self.copy_instructions)
        self.checklist_rows: dict[str, QLabel] = {}
        self.checklist.hide()

        self.log_title = QLabel(tr("Log"), self)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setAccessibleName(tr("Log of the selected node"))
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setPlaceholderText(tr("Select a node to follow its log."))
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)

        self.retry_button = button(tr("&Retry selected node"), tr("Retry the selected failed node"), self)
        self.retry_button.setToolTip(
            tr("Run the install again for the selected node only; the other nodes wait for a later retry")
        )
        self.retry_button.clicked.connect(self.retry)
        self.retry_all_button = button(tr("Retry &all failed"), tr("Retry every failed node"), self)
        self.retry_all_button.setToolTip(
            tr("Run the install again; finished jobs are skipped, so every failed node's jobs run again")
        )
        self.retry_all_button.clicked.connect(self.retry_all)
        self.cancel_button = button(tr("Cancel r&un"), tr("Cancel the install run"), self)
        self.cancel_button.clicked.connect(self._cancel)

        log_box = QWidget(self)
        log_layout = QVBoxLayout(log_box)
        log_layout.setContentsMargins(0, 0, 0, 0)
        log_layout.addWidget(self.log_title)
        log_layout.addWidget(self.log, 1)
        # vSphere: each booting VM's console screenshot (hidden until there is one).
        self.consoles = ConsoleScreensView(self)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(self.consoles)
        split.addWidget(log_box)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setChildrenCollapsible(False)

        buttons = QHBoxLayout()
        buttons.addWidget(self.announcer, 1)
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.retry_all_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Boot and install the nodes"), self))
        layout.addWidget(
            paragraph(
                tr(
                    "Each node boots from the appliance ISO and installs itself; the wizard watches over SSH and "
                    "through the Local UI. Start the install on the Run page."
                ),
                self,
            )
        )
        layout.addLayout(buttons)
        layout.addWidget(self.checklist)
        layout.addWidget(split, 1)
        self._update_buttons()

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        return []  # a view of the run: the Run page decides what happens next

    def is_done(self) -> bool:
        return bool(self._rows) and not self.failed_nodes and all(self._stage.get(n) == "done" for n in self._rows)

    def set_project(self, path: Path | None, nodes: Sequence[str] = (), project: Project | None = None) -> None:
        if self.controller.running:
            return
        self.project = project
        if path != self.project_file or list(nodes) != self.nodes:
            self.project_file = path
            self.nodes = list(nodes)
            self._reset()

    def _reset(self) -> None:
        self.table.setRowCount(0)
        self.cells.clear()
        self._rows.clear()
        self._logs.clear()
        self._log_count.clear()
        self._published.clear()
        self._shown = (None, 0)
        self._last_message.clear()
        self._stage.clear()
        self._drawn.clear()
        self._current.clear()
        self.failed_nodes.clear()
        self.log.clear()
        self._boot_seen.clear()
        self._instructions.clear()
        self._draw_checklist()
        for node in self.nodes:
            self._row(node)
        self.cells.fit()
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.controller.running
        can = not running and self.project_file is not None
        selected = self.selected_node()
        self.retry_button.setEnabled(can and selected in self.failed_nodes)
        self.retry_button.setAccessibleName(
            self.tr("Retry {node}").format(node=selected) if selected else self.tr("Retry the selected failed node")
        )
        self.retry_all_button.setEnabled(can and bool(self.failed_nodes))
        self.cancel_button.setEnabled(running and not self.controller.cancelling)

    # -- drawing -------------------------------------------------------------------------------------------
    def _row(self, node: str) -> int:
        row = self._rows.get(node)
        if row is not None:
            return row
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._rows[node] = row
        for col in range(len(COLUMNS)):
            if col != COL_PROGRESS:
                self.table.setItem(row, col, self.cells.new_item(right=col in (COL_ELAPSED, COL_ETA)))
        self._set(row, COL_NODE, node)
        self._set(row, COL_STATUS, self.tr(STATUS_TEXT[TaskStatus.PENDING]))
        self.table.setCellWidget(row, COL_PROGRESS, progress_bar(self.tr("Progress of node {node}").format(node=node)))
        self.cells.row_added()
        if self.table.currentRow() < 0:
            self.table.selectRow(0)
        return row

    def _set(self, row: int, col: int, text: str) -> None:
        self.cells.set(row, col, text)

    def bar(self, node: str) -> QProgressBar | None:
        row = self._rows.get(node)
        widget = self.table.cellWidget(row, COL_PROGRESS) if row is not None else None
        return widget if isinstance(widget, QProgressBar) else None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.poll_timer.isActive():
            self.poll()  # hidden, the page drew nothing: catch up now rather than at the next tick

    def poll(self) -> None:
        if self.isVisible():
            super().poll()
            return
        # Hidden: no drawing, but the nodes' logs keep every stage message and line (progress keeps only the
        # newest lines, and a message replaced before the page is shown again would be lost).
        snap = self.controller.snapshot()
        if snap is None or snap.version == self._logged_version:
            return
        self._logged_version = snap.version
        for t in snap.tasks:
            if t.node and t.step in NODE_STEPS:
                self._log_task(t.node, t)
        if self._operator_boots():  # the checklist is above the table: it follows while hidden too (cheap)
            by_node: dict[str, list[TaskState]] = {}
            for t in snap.tasks:
                if t.node and t.step == "boot":
                    by_node.setdefault(t.node, []).append(t)
            for node, tasks in by_node.items():
                self._follow_boot(node, tasks)

    def session_opened(self, info: SessionOpened) -> None:
        self.consoles.set_folder(info.journal.with_suffix("") / "screens")

    def draw(self, snap: ProgressSnapshot) -> None:
        self.consoles.refresh()
        by_node: dict[str, list[TaskState]] = {}
        for t in snap.tasks:
            if t.node and t.step in NODE_STEPS:
                by_node.setdefault(t.node, []).append(t)
        for node, tasks in by_node.items():
            row = self._row(node)
            drawn = tuple(tasks)
            if self._drawn.get(node) == drawn:  # compares each job by identity first: cheap when unchanged
                shown = self._current.get(node)
                if shown is not None and shown.status is TaskStatus.RUNNING:
                    self._draw_clock(row, shown, tasks)
                continue
            task = current_task(tasks)
            if task is None:
                continue
            self._drawn[node] = drawn
            self._current[node] = task
            self._follow_boot(node, tasks)
            self._set(row, COL_STEP, self.tr(STEP_TITLES.get(task.step, task.step)))
            if task.step == "boot" and node in self._instructions and task.status is TaskStatus.RUNNING:
                message = self.tr("waiting for the node to boot from the ISO (see what to do above)")
            else:
                message = stage_text(task.message)
            message += f" — warning: {task.warning}" if task.warning else ""
            self._set(row, COL_STAGE, message)
            bar = self.bar(node)
            value = round(task.fraction * BAR_SCALE)
            if bar is not None and bar.value() != value:
                bar.setValue(value)
            self._draw_clock(row, task, tasks)
            self._set(row, COL_STATUS, self.tr(STATUS_TEXT[task.status]))
            self.cells.set_colour(row, COL_STATUS, status_hex(STATUS_KIND.get(task.status)))
            if any(t.status in NEEDS_RETRY for t in tasks):
                self.failed_nodes.add(node)
            else:
                self.failed_nodes.discard(node)
            for t in tasks:
                self._log_task(node, t)
            finished = all(t.status in (TaskStatus.DONE, TaskStatus.SKIPPED) for t in tasks)
            stage = "done" if finished and any(t.step == "install" for t in tasks) else f"{task.step}:{task.status}"
            self._stage_changed(node, stage, task)
        self.cells.fit()
        self._show_log()
        self._update_buttons()

    def _draw_clock(self, row: int, task: TaskState, tasks: Sequence[TaskState]) -> None:
        """The cells that change with time alone: the node's whole time so far, and its current job's ETA."""
        elapsed = node_elapsed(tasks)
        self._set(row, COL_ELAPSED, human_duration(elapsed) if elapsed is not None else "")
        self._set(row, COL_ETA, eta_text(task))

    def _log_task(self, node: str, t: TaskState) -> None:
        """Adds the task's new message, and the log lines its job published since the last tick, to the node's log."""
        new: list[str] = []
        key = f"{node}/{t.key}"
        message = stage_text(t.message)
        if message and self._last_message.get(key) != message:
            self._last_message[key] = message
            # The percentage is the job's, as its bar shows it when the line is written.
            new.append(
                f"{now_stamp()}  [{STEP_TITLES.get(t.step, t.step)}] {t.fraction * 100:3.0f}%  {redact(message)}"
            )
        taken = self._published.get(t.key, 0)
        if t.log_total != taken:
            # Progress masks secrets already; the page masks again because it must never rely on a writer for that.
            new.extend(f"    {redact(line)}" for line in t.log_since(taken))
            self._published[t.key] = t.log_total
        if new:
            self._logs.setdefault(node, deque(maxlen=LOG_LINES)).extend(new)
            self._log_count[node] = self._log_count.get(node, 0) + len(new)

    def log_lines(self, node: str) -> list[str]:
        """The node's log as the page keeps it (the newest lines)."""
        return list(self._logs.get(node, ()))

    def _stage_changed(self, node: str, stage: str, task: TaskState) -> None:
        if self._stage.get(node) == stage:
            return
        self._stage[node] = stage
        step = self.tr(STEP_TITLES.get(task.step, task.step))
        if stage == "done":
            text = self.tr("{node}: installed").format(node=node)
        elif task.status is TaskStatus.FAILED:
            text = self.tr("{node}: {step} failed").format(node=node, step=step)
        else:
            text = self.tr("{node}: {step} — {status}").format(
                node=node, step=step, status=self.tr(STATUS_TEXT[task.status])[2:].lower()
            )
        announce(self.announcer, text)

    def selected_node(self) -> str | None:
        # The selection, not the current cell: a click selects a row before it moves the current cell, so the
        # current row would still name the node selected before.
        rows = self.table.selectionModel().selectedRows()
        row = rows[0].row() if rows else self.table.currentRow()
        for node, r in self._rows.items():
            if r == row:
                return node
        return None

    # -- the operator's part --------------------------------------------------------------------------------
    def _follow_boot(self, node: str, tasks: Sequence[TaskState]) -> None:
        """Keeps the checklist's line of a node the operator boots: what its boot job asks, ticked once it is seen."""
        boot = next((t for t in tasks if t.step == "boot" and t.key == f"boot/{node}"), None)
        if boot is None or not self._operator_boots():
            return
        changed = False
        waiting = boot.status is TaskStatus.RUNNING and boot.fraction == 0.0  # what it asks, not how it ended
        if waiting and boot.message and self._instructions.get(node) != boot.message:
            self._instructions[node] = boot.message
            changed = True
        seen = boot.status in (TaskStatus.DONE, TaskStatus.SKIPPED)
        if seen != self._boot_seen.get(node, False):
            self._boot_seen[node] = seen
            changed = True
        if changed:
            self._draw_checklist()

    def _operator_boots(self) -> bool:
        project = self.project
        return project is None or project.provider.type.value in ("manual", "maas")

    def _draw_checklist(self) -> None:
        nodes = [n for n in self.nodes if n in self._instructions]
        self.checklist.setVisible(bool(nodes))
        for node, label in list(self.checklist_rows.items()):
            if node not in nodes:
                self.checklist_layout.removeWidget(label)
                label.hide()  # gone from the tab order at once, deleted later
                label.deleteLater()
                del self.checklist_rows[node]
        for node in nodes:
            found = self.checklist_rows.get(node)
            if found is None:
                label = paragraph("", self.checklist)
                # Wrapped to the page, never widening it: the label takes the width it is given.
                label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
                label.setMinimumWidth(120)
                self.checklist_rows[node] = label
                self.checklist_layout.insertWidget(len(self.checklist_rows) - 1, label)
            else:
                label = found
            seen = self._boot_seen.get(node, False)
            mark = "☑" if seen else "☐"
            state = self.tr("seen — it answered") if seen else self.tr("waiting for you")
            # A node that answered is done with: one line; the ones still waiting keep their steps in full.
            steps = "" if seen else "\n" + "\n".join(f"    • {p}" for p in checklist_steps(self._instructions[node]))
            text = f"{mark} {node} — {state}{steps}"
            if label.text() != text:
                label.setText(text)
                label.setAccessibleName(text)
        self.checklist_layout.removeWidget(self.copy_checklist)
        self.checklist_layout.addWidget(self.copy_checklist, 0, Qt.AlignmentFlag.AlignLeft)

    def instructions_text(self) -> str:
        """The checklist as plain text, one node per paragraph."""
        return "\n\n".join(
            f"{'[x]' if self._boot_seen.get(n) else '[ ]'} {n}: {self._instructions[n]}"
            for n in self.nodes
            if n in self._instructions
        )

    def copy_instructions(self) -> None:
        QGuiApplication.clipboard().setText(self.instructions_text())
        announce(self.announcer, self.tr("The instructions are on the clipboard"))

    def _selection_changed(self) -> None:
        self._show_log()
        self._update_buttons()  # "Retry selected node" follows the selection

    def _show_log(self) -> None:
        """Shows the selected node's log: all of it when the selection changed, else only the lines added since."""
        node = self.selected_node()
        count = self._log_count.get(node or "", 0)
        shown_node, shown = self._shown
        if node == shown_node and count == shown:
            return
        lines = self._logs.get(node or "", deque())
        bar = self.log.verticalScrollBar()
        at_end = bar.value() == bar.maximum()
        if node != shown_node or count < shown:
            self.log_title.setText(self.tr("Log of {node}").format(node=node) if node else self.tr("Log"))
            self.log.setPlainText("\n".join(lines))
            at_end = True  # a node just selected shows its newest lines
        else:
            new = min(count - shown, len(lines))
            self.log.appendPlainText("\n".join(list(lines)[-new:]))
        self._shown = (node, count)
        if at_end:
            bar.setValue(bar.maximum())

    # -- runs ----------------------------------------------------------------------------------------------
    def event_received(self, ev: object) -> None:
        if isinstance(ev, StepStarted) and ev.step in NODE_STEPS:
            for _, _, node in ev.jobs:
                if node:
                    self._row(node)

    def run_started(self) -> None:
        # Every run has a fresh progress whose tasks count their log lines from zero again.
        self._published.clear()
        self._logged_version = -1

    def running_changed(self, running: bool) -> None:
        self._update_buttons()

    def run_finished(self, ev: RunFinished) -> None:
        if ev.held:
            retried, held = ", ".join(ev.retried), ", ".join(ev.held)
            if ev.exit_code is ExitCode.INCOMPLETE:
                text = self.tr("{retried} retried; {held} still {needs} a retry")
            else:
                text = self.tr("{retried} failed again; {held} still {needs} a retry")
            needs = self.tr("needs") if len(ev.held) == 1 else self.tr("need")
            announce(self.announcer, text.format(retried=retried, held=held, needs=needs))
        elif ev.exit_code is ExitCode.INSTALL_FAILED and self.failed_nodes:
            # The last stage change may be another node finishing: say which nodes need the operator.
            nodes = ", ".join(sorted(self.failed_nodes))
            announce(
                self.announcer,
                self.tr("{nodes}: failed — select a node for its log, then retry it").format(nodes=nodes),
            )
        self._update_buttons()

    def _cancel(self) -> None:
        self.controller.cancel()
        self._update_buttons()

    def retry(self) -> None:
        """Retry the selected node only (it must need a retry); the other nodes wait for a later retry."""
        node = self.selected_node()
        if self.project_file is None or self.controller.running or node not in self.failed_nodes:
            return
        assert node is not None
        announce(self.announcer, self.tr("Retrying {node}…").format(node=node))
        self.controller.start(self.project_file, only_nodes=frozenset({node}))

    def retry_all(self) -> None:
        """Rerun the whole install: every node that needs a retry runs again, finished jobs are skipped."""
        if self.project_file is not None and not self.controller.running and self.failed_nodes:
            nodes = ", ".join(sorted(self.failed_nodes))
            announce(self.announcer, self.tr("Retrying {nodes}…").format(nodes=nodes))
            self.controller.start(self.project_file)
