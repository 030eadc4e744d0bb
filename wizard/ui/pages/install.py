"""The Install page: every node's boot and install, live — stage, percent, elapsed, ETA and its log.

One row per node, showing the node's current job across the node steps (machines, media, boot, install, eject,
password): which step, what stage the job reports, its progress, how long it has taken and how long it should still
take. Selecting a node shows its log: every distinct stage message in order, plus the node's own log lines when the
job publishes them in its progress. Stage changes are announced once each, not every tick.

"Retry" reruns the install: the journal skips every job that finished, so only the failed nodes' jobs run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wizard.core.progress import ProgressSnapshot, TaskState, TaskStatus
from wizard.core.redact import redact
from wizard.core.runner import RunFinished, StepStarted
from wizard.ui.bridge import RunController
from wizard.ui.pages.live import BAR_SCALE, LivePage, announce, elapsed_text, eta_text, now_stamp, progress_bar
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
}
STATUS_COLOUR: dict[TaskStatus, str] = {
    TaskStatus.DONE: "#1d6b22",
    TaskStatus.SKIPPED: "#1d6b22",
    TaskStatus.FAILED: "#a31515",
    TaskStatus.CANCELLED: "#8a5a00",
}
LOG_LINES = 400


def current_task(tasks: Sequence[TaskState]) -> TaskState | None:
    """The task that says where a node is: a failed or running one, else the latest step's that has started."""
    for wanted in (TaskStatus.FAILED, TaskStatus.RUNNING):
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
        self.nodes: list[str] = []
        self._rows: dict[str, int] = {}
        self._logs: dict[str, list[str]] = {}
        self._last_message: dict[str, str] = {}
        self._stage: dict[str, str] = {}
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
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_PROGRESS, 140)
        header.setSectionResizeMode(COL_STAGE, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(120)
        self.table.itemSelectionChanged.connect(self._show_log)

        self.log_title = QLabel(tr("Log"), self)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setAccessibleName(tr("Log of the selected node"))
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setPlaceholderText(tr("Select a node to follow its log."))
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)

        self.retry_button = button(tr("&Retry failed node"), tr("Retry the failed node"), self)
        self.retry_button.setToolTip(
            tr("Run the install again; finished jobs are skipped, so only the failed node's jobs run")
        )
        self.retry_button.clicked.connect(self.retry)
        self.cancel_button = button(tr("Cancel r&un"), tr("Cancel the install run"), self)
        self.cancel_button.clicked.connect(self._cancel)

        log_box = QWidget(self)
        log_layout = QVBoxLayout(log_box)
        log_layout.setContentsMargins(0, 0, 0, 0)
        log_layout.addWidget(self.log_title)
        log_layout.addWidget(self.log, 1)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(log_box)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setChildrenCollapsible(False)

        buttons = QHBoxLayout()
        buttons.addWidget(self.announcer, 1)
        buttons.addWidget(self.retry_button)
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
        layout.addWidget(split, 1)
        self._update_buttons()

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        return []  # a view of the run: the Run page decides what happens next

    def is_done(self) -> bool:
        return bool(self._rows) and not self.failed_nodes and all(self._stage.get(n) == "done" for n in self._rows)

    def set_project(self, path: Path | None, nodes: Sequence[str] = ()) -> None:
        if self.controller.running:
            return
        if path != self.project_file or list(nodes) != self.nodes:
            self.project_file = path
            self.nodes = list(nodes)
            self._reset()

    def _reset(self) -> None:
        self.table.setRowCount(0)
        self._rows.clear()
        self._logs.clear()
        self._last_message.clear()
        self._stage.clear()
        self.failed_nodes.clear()
        self.log.clear()
        for node in self.nodes:
            self._row(node)
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.controller.running
        self.retry_button.setEnabled(not running and self.project_file is not None and bool(self.failed_nodes))
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
                item = QTableWidgetItem("")
                if col in (COL_ELAPSED, COL_ETA):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self._set(row, COL_NODE, node)
        self._set(row, COL_STATUS, self.tr(STATUS_TEXT[TaskStatus.PENDING]))
        self.table.setCellWidget(row, COL_PROGRESS, progress_bar(self.tr("Progress of node {node}").format(node=node)))
        if self.table.currentRow() < 0:
            self.table.selectRow(0)
        return row

    def _set(self, row: int, col: int, text: str) -> None:
        item = self.table.item(row, col)
        if item is None:
            return
        text = redact(text)
        if item.text() != text:
            item.setText(text)
            item.setToolTip(text)

    def bar(self, node: str) -> QProgressBar | None:
        row = self._rows.get(node)
        widget = self.table.cellWidget(row, COL_PROGRESS) if row is not None else None
        return widget if isinstance(widget, QProgressBar) else None

    def draw(self, snap: ProgressSnapshot) -> None:
        by_node: dict[str, list[TaskState]] = {}
        for t in snap.tasks:
            if t.node and t.step in NODE_STEPS:
                by_node.setdefault(t.node, []).append(t)
        for node, tasks in by_node.items():
            row = self._row(node)
            task = current_task(tasks)
            if task is None:
                continue
            self._set(row, COL_STEP, self.tr(STEP_TITLES.get(task.step, task.step)))
            message = task.message + (f" — warning: {task.warning}" if task.warning else "")
            self._set(row, COL_STAGE, message)
            bar = self.bar(node)
            if bar is not None:
                bar.setValue(round(task.fraction * BAR_SCALE))
            self._set(row, COL_ELAPSED, elapsed_text(task))
            self._set(row, COL_ETA, eta_text(task))
            self._set(row, COL_STATUS, self.tr(STATUS_TEXT[task.status]))
            status = self.table.item(row, COL_STATUS)
            if status is not None:
                colour = STATUS_COLOUR.get(task.status)
                status.setForeground(QBrush(QColor(colour)) if colour else QBrush())
            if any(t.status is TaskStatus.FAILED for t in tasks):
                self.failed_nodes.add(node)
            else:
                self.failed_nodes.discard(node)
            for t in tasks:
                self._log_task(node, t)
            finished = all(t.status in (TaskStatus.DONE, TaskStatus.SKIPPED) for t in tasks)
            stage = "done" if finished and any(t.step == "install" for t in tasks) else f"{task.step}:{task.status}"
            self._stage_changed(node, stage, task)
        self._show_log()
        self._update_buttons()

    def _log_task(self, node: str, t: TaskState) -> None:
        """Adds the task's new message (and any log lines its job publishes) to the node's log."""
        lines = self._logs.setdefault(node, [])
        key = f"{node}/{t.key}"
        if t.message and self._last_message.get(key) != t.message:
            self._last_message[key] = t.message
            lines.append(f"{now_stamp()}  [{STEP_TITLES.get(t.step, t.step)}] {redact(t.message)}")
        published = getattr(t, "log", None)  # jobs that stream their node's log lines publish them here
        if isinstance(published, (tuple, list)):
            seen = set(lines)
            lines.extend(f"    {redact(str(line))}" for line in published if f"    {redact(str(line))}" not in seen)
        if len(lines) > LOG_LINES:
            del lines[: len(lines) - LOG_LINES]

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
        row = self.table.currentRow()
        for node, r in self._rows.items():
            if r == row:
                return node
        return None

    def _show_log(self) -> None:
        node = self.selected_node()
        self.log_title.setText(self.tr("Log of {node}").format(node=node) if node else self.tr("Log"))
        lines = self._logs.get(node or "", [])
        text = "\n".join(lines)
        if self.log.toPlainText() != text:
            at_end = self.log.verticalScrollBar().value() == self.log.verticalScrollBar().maximum()
            self.log.setPlainText(text)
            if at_end:
                self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())

    # -- runs ----------------------------------------------------------------------------------------------
    def event_received(self, ev: object) -> None:
        if isinstance(ev, StepStarted) and ev.step in NODE_STEPS:
            for _, _, node in ev.jobs:
                if node:
                    self._row(node)

    def running_changed(self, running: bool) -> None:
        self._update_buttons()

    def run_finished(self, ev: RunFinished) -> None:
        self._update_buttons()

    def _cancel(self) -> None:
        self.controller.cancel()
        self._update_buttons()

    def retry(self) -> None:
        if self.project_file is not None and not self.controller.running and self.failed_nodes:
            nodes = ", ".join(sorted(self.failed_nodes))
            announce(self.announcer, self.tr("Retrying {nodes}…").format(nodes=nodes))
            self.controller.start(self.project_file)
