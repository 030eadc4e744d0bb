"""The run page: starts the engine in the background and shows its progress, outcome and errors.

Nothing here waits on the engine. A 100 ms timer reads progress snapshots; events arrive through the
controller's queued signals; the only blocking thing on this page is drawing, so it draws as little as it can: only
the jobs whose state changed since they were last drawn, nothing while the page is hidden (it catches up when shown,
and the end of a run is always drawn), and new rows a batch per event-loop turn, so a step that adds dozens of jobs
at once does not hold the GUI thread for all of them.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wizard.core.paths import app_paths
from wizard.core.progress import ProgressSnapshot, TaskState, TaskStatus
from wizard.core.redact import redact
from wizard.core.runner import (
    ExitCode,
    JobFinished,
    JobStarted,
    RunFinished,
    RunStarted,
    StepBlocked,
    StepFinished,
    StepStarted,
)
from wizard.ui.bridge import AbortFinished, RunController, SessionOpened
from wizard.ui.pages import WizardPage
from wizard.ui.pages.cells import LiveCells
from wizard.ui.units import human_bytes, human_duration
from wizard.ui.widgets import Banner, ErrorPanel, Tone, button, heading, paragraph

POLL_MS = 100
#: Providers whose install takes something an abort can give back (MAAS machines, BMC virtual media).
ABORTABLE_PROVIDERS = frozenset({"maas", "redfish"})
BAR_SCALE = 1000  # progress bars count in tenths of a percent
#: New job rows created per event-loop turn while a run is followed live (each has a progress bar widget).
ROW_BATCH = 8
ACTIVITY_LINES = 2000

COLUMNS = ("Job", "Node", "Status", "Progress", "Transferred", "Throughput", "ETA", "Message")
COL_JOB, COL_NODE, COL_STATUS, COL_PROGRESS, COL_BYTES, COL_RATE, COL_ETA, COL_MESSAGE = range(len(COLUMNS))

STATUS_TEXT: dict[TaskStatus, str] = {
    TaskStatus.PENDING: "○ Pending",
    TaskStatus.RUNNING: "● Running",
    TaskStatus.DONE: "✓ Done",
    TaskStatus.SKIPPED: "↷ Skipped",
    TaskStatus.FAILED: "✗ Failed",
    TaskStatus.CANCELLED: "■ Cancelled",
    TaskStatus.HELD: "◌ Not retried",
}
STATUS_COLOUR: dict[TaskStatus, str] = {
    TaskStatus.DONE: "#1d6b22",
    TaskStatus.SKIPPED: "#1d6b22",
    TaskStatus.FAILED: "#a31515",
    TaskStatus.CANCELLED: "#8a5a00",
    TaskStatus.HELD: "#8a5a00",
}


def _who(name: str, node: str) -> str:
    return f"{name} [{node}]" if node else name


def describe(ev: object) -> str | None:
    """One line for the activity log, or None for events that add nothing the table does not show."""
    if isinstance(ev, RunStarted):
        return "Run started: " + " → ".join(title for _, title in ev.steps)
    if isinstance(ev, StepStarted):
        count = f" ({len(ev.jobs)} job{'s' if len(ev.jobs) != 1 else ''})" if ev.jobs else ""
        return f"▶ {ev.title}{count}"
    if isinstance(ev, JobStarted):
        again = f" (attempt {ev.attempt})" if ev.attempt > 1 else ""
        return f"  … {_who(ev.name, ev.node)} started{again}"
    if isinstance(ev, JobFinished):
        who = _who(ev.name, ev.node)
        if ev.status is TaskStatus.DONE:
            return f"  ✓ {who} done"
        if ev.status is TaskStatus.SKIPPED:
            return f"  ↷ {who}: already done"
        if ev.status is TaskStatus.CANCELLED:
            return f"  ■ {who}: cancelled"
        if ev.status is TaskStatus.HELD:
            return f"  ◌ {who}: {(ev.error or {}).get('message', 'not retried in this run')}"
        err = ev.error or {}
        return f"  ✗ {who}: {err.get('title', 'failed')}: {err.get('message', '')}"
    if isinstance(ev, StepBlocked):
        lines = [f"✗ {ev.step} blocked by {len(ev.problems)} problem{'s' if len(ev.problems) != 1 else ''}:"]
        lines.extend(f"    {p}" for p in ev.problems)
        return "\n".join(lines)
    if isinstance(ev, StepFinished):
        return None
    if isinstance(ev, RunFinished):
        ended = f"Run ended: {ev.exit_code.name.lower().replace('_', ' ')} (exit code {int(ev.exit_code)})"
        if ev.held:
            ended += f"; {held_text(ev)}"
        return ended
    return None


def held_text(ev: RunFinished) -> str:
    """What a run limited to some nodes says about the others: "node-2 retried; node-3 still needs a retry"."""
    needs = "needs" if len(ev.held) == 1 else "need"
    retried = ", ".join(ev.retried)
    done = "retried" if ev.exit_code is ExitCode.INCOMPLETE else "failed again"
    return f"{retried} {done}; {', '.join(ev.held)} still {needs} a retry"


def _set_bar(bar: QProgressBar, fraction: float) -> None:
    value = round(fraction * BAR_SCALE)
    if bar.value() != value:  # the same value still costs a trip through the binding and its signal
        bar.setValue(value)


def _bar(name: str, parent: QWidget | None = None) -> QProgressBar:
    bar = QProgressBar(parent)
    bar.setRange(0, BAR_SCALE)
    bar.setValue(0)
    bar.setFormat("%p%")
    bar.setAccessibleName(name)
    return bar


class RunPage(WizardPage):
    title = "Run"

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.project_file: Path | None = None
        self.project_name = ""
        self.provider = ""
        self.last_result: RunFinished | None = None
        self.last_abort: AbortFinished | None = None
        self._rows: dict[str, int] = {}
        #: The state each row shows: a job whose state is the same object (or equal) is not drawn again.
        self._drawn: dict[str, TaskState] = {}
        self._latest: ProgressSnapshot | None = None  # the newest snapshot drawn, maybe not all its rows yet
        # Activity lines that came while the page was hidden (the log keeps no more than these either).
        self._activity_backlog: deque[str] = deque(maxlen=ACTIVITY_LINES)
        self._barless: list[tuple[int, str, str]] = []  # (row, task key, bar name) of rows without their bar yet
        self._version = -1
        self._started = 0.0
        self._journal: Path | None = None
        self._starting = False

        self.project_label = paragraph(self.tr("No project is open."), self)
        self.session_label = paragraph("", self)
        self.session_label.hide()
        self.secrets_notice = Banner(Tone.WARNING, self)
        self.warnings_banner = Banner(Tone.WARNING, self)

        self.start_button = button(self.tr("&Start"), self.tr("Start the install"), self)
        self.start_button.setToolTip(self.tr("Run every step; steps that already finished are skipped"))
        self.start_button.clicked.connect(self.start)
        self.cancel_button = button(self.tr("Cancel &run"), self.tr("Cancel the run"), self)
        self.cancel_button.setToolTip(self.tr("Stop after the current chunk of work; a later run resumes from there"))
        self.cancel_button.clicked.connect(self.cancel)

        self.abort_button = button(
            self.tr("&Give back the machines"), self.tr("Give back the machines this install took"), self
        )
        self.abort_button.setToolTip(
            self.tr(
                "Release the MAAS machines this session allocated and eject the ISO it inserted through BMCs; "
                "a later run starts again from the machines step"
            )
        )
        self.abort_button.clicked.connect(self.abort)
        self.abort_outcome = Banner(Tone.INFO, self)

        self.overall = _bar("Overall progress", self)
        self.overall.setMinimumWidth(300)
        self.overall_label = QLabel("", self)
        self.overall_label.setAccessibleName(self.tr("Overall status"))
        self.overall_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.outcome = Banner(Tone.SUCCESS, self)
        self.error_panel = ErrorPanel(self)
        self.error_panel.retry_requested.connect(self.start)

        self.jobs = QTableWidget(0, len(COLUMNS), self)
        self.jobs.setHorizontalHeaderLabels(list(COLUMNS))
        self.jobs.setAccessibleName(self.tr("Jobs"))
        self.jobs.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.jobs.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.jobs.setAlternatingRowColors(True)
        self.jobs.setTabKeyNavigation(False)
        self.jobs.setWordWrap(False)  # one line per job; the full message is in the tooltip and the log
        self.jobs.verticalHeader().hide()
        header = self.jobs.horizontalHeader()
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_PROGRESS, 130)
        header.setSectionResizeMode(COL_MESSAGE, QHeaderView.ResizeMode.Stretch)
        self.cells = LiveCells(self.jobs, (c for c in range(len(COLUMNS)) if c not in (COL_PROGRESS, COL_MESSAGE)))

        self.activity = QPlainTextEdit(self)
        self.activity.setReadOnly(True)
        self.activity.setAccessibleName(self.tr("Activity log"))
        self.activity.setMaximumBlockCount(ACTIVITY_LINES)
        self.activity.setPlaceholderText(self.tr("What the run does appears here."))

        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.jobs)
        split.addWidget(self.activity)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        self.jobs.setMinimumHeight(110)  # header and a few rows, however small the window
        self.activity.setMinimumHeight(70)

        # Drives all progress drawing; it runs only while a run does.
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self.poll)
        # The rows a draw left for later (ROW_BATCH at a time), on the next event-loop turn.
        self._more_rows = QTimer(self)
        self._more_rows.setSingleShot(True)
        self._more_rows.setInterval(0)
        self._more_rows.timeout.connect(self._draw_more)

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.overall, 1)
        status_row = QHBoxLayout()
        status_row.addWidget(self.overall_label, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(self.tr("Run"), self))
        layout.addWidget(self.project_label)
        layout.addWidget(self.session_label)
        layout.addWidget(self.secrets_notice)
        layout.addWidget(self.warnings_banner)
        layout.addLayout(buttons)
        layout.addLayout(status_row)
        layout.addWidget(self.outcome)
        layout.addWidget(self.error_panel)
        abort_row = QHBoxLayout()
        abort_row.addWidget(self.abort_button)
        abort_row.addStretch(1)
        layout.addLayout(abort_row)
        layout.addWidget(self.abort_outcome)
        layout.addWidget(split, 1)

        controller.session_opened.connect(self._on_session)
        controller.event_received.connect(self._on_event)
        controller.finished.connect(self._on_finished)
        controller.running_changed.connect(self._running_changed)
        controller.aborting_changed.connect(lambda _aborting: self._update_buttons())
        controller.abort_finished.connect(self._on_abort_finished)
        self._update_buttons()

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        return []  # the last page: nothing comes after it

    def is_done(self) -> bool:
        result = self.last_result
        return result is not None and result.exit_code is ExitCode.DONE and self.controller.until is None

    def set_project(self, path: Path | None, name: str = "", provider: str = "") -> None:
        """The project the next run uses; ``None`` while no valid project is open. ``provider`` (the project's
        provider type) decides whether a failed or cancelled run offers to give the machines back."""
        if self.controller.running:
            return
        if path != self.project_file:
            self._reset()
        self.project_file = path
        self.project_name = name
        self.provider = provider
        self.project_label.setText(
            f"Project “{name}” from {path}" if path else "Open a valid project file before starting."
        )
        self._update_buttons()

    def _reset(self) -> None:
        self.last_result = None
        self._journal = None
        self.jobs.setRowCount(0)
        self.cells.clear()
        self._rows.clear()
        self._drawn.clear()
        self._latest = None
        self._barless.clear()
        self._more_rows.stop()
        self._version = -1
        self.overall.setValue(0)
        self.overall_label.setText("")
        self.outcome.hide()
        self.error_panel.hide()
        self.session_label.hide()
        self.secrets_notice.hide()
        self.warnings_banner.hide()
        self.abort_outcome.hide()
        self.last_abort = None
        self.activity.clear()
        self._activity_backlog.clear()
        self.changed.emit()

    def can_abort(self) -> bool:
        """After a failed or cancelled run of a project whose provider took machines or inserted media."""
        result = self.last_result
        return (
            self.provider in ABORTABLE_PROVIDERS
            and self.project_file is not None
            and result is not None
            and result.exit_code is not ExitCode.DONE
        )

    def _update_buttons(self) -> None:
        running = self.controller.running
        self.start_button.setEnabled(not running and self.project_file is not None)
        self.abort_button.setVisible(self.can_abort() or self.controller.aborting)
        self.abort_button.setEnabled(not running and self.can_abort())
        self.cancel_button.setEnabled(running and not self.controller.cancelling)
        self.cancel_button.setText("Cancelling…" if self.controller.cancelling else "Cancel &run")
        self.error_panel.retry_button.setEnabled(not running and self.project_file is not None)

    # -- actions -------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.project_file is None or self.controller.running:
            return
        self._reset()
        self._started = time.monotonic()
        self.overall_label.setText(self.tr("Starting…"))
        self._starting = True
        try:
            self.controller.start(self.project_file)
        finally:
            self._starting = False
        self.poll_timer.start()
        self._update_buttons()
        self.changed.emit()

    def _running_changed(self, running: bool) -> None:
        # Another page (Preflight, Install's retry) started a run: follow it here too.
        if running and not self._starting:
            self._reset()
            self._started = time.monotonic()
            until = self.controller.until
            self.overall_label.setText(f"Starting (up to the {until} step)…" if until else "Starting…")
            self.poll_timer.start()
        self._update_buttons()

    def confirm_abort(self) -> bool:
        answer = QMessageBox.question(
            self,
            self.tr("Give back the machines?"),
            self.tr(
                "This releases the MAAS machines this session allocated and ejects the installer ISO it inserted "
                "through BMCs. Machines allocated before the wizard ran, and anyone else's, are left alone.\n\n"
                "A later run starts again from the machines step."
            ),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def abort(self) -> None:
        """Give back what the session took, on a worker (see :meth:`RunController.abort`)."""
        if not self.can_abort() or self.controller.running or self.project_file is None:
            return
        if not self.confirm_abort():
            return
        self.last_abort = None
        self.abort_outcome.hide()
        self.overall_label.setText(self.tr("Giving back the machines…"))
        self._log_activity([f"{time.strftime('%H:%M:%S')}  Giving back what this session took…"])
        self.controller.abort(self.project_file)
        self.poll_timer.start()
        self._update_buttons()

    def _on_abort_finished(self, ev: AbortFinished) -> None:
        self.poll_timer.stop()
        self.last_abort = ev
        lines: list[str] = []
        if ev.result is None:
            error = ev.error or {}
            self.overall_label.setText(self.tr("Nothing was given back."))
            text = f"✗ {error.get('title', 'Abort failed')}: {error.get('message', '')}"
            if error.get("remediation"):
                text += f"\n{error['remediation']}"
            self.abort_outcome.show_text(redact(text), Tone.ERROR)
        else:
            result = ev.result
            lines += [f"released MAAS machine {s}" for s in result.released]
            lines += [f"ejected the ISO from {n}" for n in result.ejected]
            lines += [f"left {s} alone: {why}" for s, why in result.skipped.items()]
            lines += [f"could not undo: {e}" for e in result.errors]
            head = (
                "✓ Everything this session took is given back."
                if result.ok
                else "⚠ Some of what this session took could not be given back; fix the cause and press again."
            )
            body = "\n".join(f"• {line}" for line in lines) or "• nothing was left to give back"
            self.overall_label.setText(self.tr("Machines given back.") if result.ok else self.tr("Abort incomplete."))
            self.abort_outcome.show_text(redact(f"{head}\n{body}"), Tone.SUCCESS if result.ok else Tone.WARNING)
            # Until the next run, the abort is what happened last: nothing to give back twice.
            if result.ok:
                self.last_result = None
        stamp = time.strftime("%H:%M:%S")
        ended = lines or ["abort ended: " + ((ev.error or {}).get("title") or "nothing to give back")]
        self._log_activity([f"{stamp}  {redact(line)}" for line in ended])
        self._flush_activity()
        self._update_buttons()
        self.changed.emit()

    def cancel(self) -> None:
        self.controller.cancel()
        self.overall_label.setText(self.tr("Cancelling… the jobs stop at their next checkpoint."))
        self._update_buttons()

    # -- progress ------------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # Hidden, the page drew nothing: catch up at once rather than at the next tick.
        self._add_bars()
        self._flush_activity()
        if self.poll_timer.isActive():
            self.poll()
        if self._latest is not None and len(self._rows) < len(self._latest.tasks):
            self._more_rows.start()  # rows a batched draw left while the page was hidden

    def poll(self) -> None:
        if not self.isVisible():
            return  # nobody sees it: drawn when shown (showEvent), and the end of a run always is
        if self.controller.aborting:
            abort = self.controller.abort_snapshot()
            if abort is not None and abort.message:
                self.overall_label.setText(redact(abort.message))
            return
        snap = self.controller.snapshot()
        if snap is None:
            return
        if self.controller.running:
            elapsed = human_duration(time.monotonic() - self._started)
            what = "Cancelling…" if self.controller.cancelling else (snap.message or "Working…")
            self.overall_label.setText(redact(f"{what}  ·  elapsed {elapsed}"))
        if snap.version == self._version:
            return
        self._version = snap.version
        self._draw(snap)

    def _draw(self, snap: ProgressSnapshot, *, batch: int | None = ROW_BATCH) -> None:
        """Draws the jobs that changed since they were last drawn; creates at most ``batch`` new rows (all when
        None) and leaves the rest to the next event-loop turns."""
        self._latest = snap
        self._more_rows.stop()
        _set_bar(self.overall, snap.fraction)
        budget = batch
        left = False
        for task in snap.tasks:
            row = self._rows.get(task.key)
            if row is None:
                if budget is not None:
                    if budget <= 0:
                        left = True
                        continue
                    budget -= 1
                row = self._add_row(task)
            else:
                drawn = self._drawn.get(task.key)
                if drawn is task or drawn == task:
                    continue
            self._draw_row(row, task)
            self._drawn[task.key] = task
        self.cells.fit()
        if left:
            self._more_rows.start()

    def _draw_more(self) -> None:
        if self._latest is not None and self.isVisible():
            self._draw(self._latest)

    def _add_row(self, task: TaskState) -> int:
        row = self.jobs.rowCount()
        self.jobs.insertRow(row)
        self._rows[task.key] = row
        for col in range(len(COLUMNS)):
            if col != COL_PROGRESS:
                self.jobs.setItem(row, col, self.cells.new_item(right=col in (COL_BYTES, COL_RATE, COL_ETA)))
        self._cell(row, COL_JOB).setData(Qt.ItemDataRole.UserRole, task.key)
        name = f"Progress of {_who(task.label, task.node)}"
        if self.isVisible():
            self.jobs.setCellWidget(row, COL_PROGRESS, _bar(name))
        else:  # the end of a run drawn on a hidden page: bars (widgets, slow to make) wait until it is shown
            self._barless.append((row, task.key, name))
        self.cells.row_added()
        return row

    def _add_bars(self) -> None:
        """The progress bars of the rows made while the page was hidden."""
        for row, key, name in self._barless:
            bar = _bar(name)
            drawn = self._drawn.get(key)
            if drawn is not None:
                _set_bar(bar, drawn.fraction)
            self.jobs.setCellWidget(row, COL_PROGRESS, bar)
        self._barless.clear()

    def _cell(self, row: int, col: int) -> QTableWidgetItem:
        item = self.jobs.item(row, col)
        assert item is not None  # every text cell is created with its row
        return item

    def _set(self, row: int, col: int, text: str) -> None:
        self.cells.set(row, col, text)

    def _draw_row(self, row: int, t: TaskState) -> None:
        running = t.status is TaskStatus.RUNNING
        self._set(row, COL_JOB, t.label)
        self._set(row, COL_NODE, t.node)
        self._set(row, COL_STATUS, STATUS_TEXT[t.status])
        self.cells.set_data(row, COL_STATUS, t.status)
        self.cells.set_colour(row, COL_STATUS, STATUS_COLOUR.get(t.status))
        bar = self.jobs.cellWidget(row, COL_PROGRESS)
        if isinstance(bar, QProgressBar):
            _set_bar(bar, t.fraction)
        if t.bytes_total:
            self._set(row, COL_BYTES, f"{human_bytes(t.bytes_done or 0)} / {human_bytes(t.bytes_total)}")
        self._set(row, COL_RATE, f"{human_bytes(t.rate)}/s" if t.rate and running else "")
        self._set(row, COL_ETA, human_duration(t.eta) if t.eta is not None and running else "")
        message = t.message
        if t.warning:
            message = f"{message} — warning: {t.warning}" if message else f"warning: {t.warning}"
        self._set(row, COL_MESSAGE, message)

    # -- controller signals (GUI thread) -------------------------------------------------------------------
    def _on_session(self, info: SessionOpened) -> None:
        self._journal = info.journal
        logs = (self.controller.paths or app_paths()).logs
        self.session_label.setText(
            self.tr("Journal: {journal}   ·   Log: {logs}").format(journal=info.journal, logs=logs)
        )
        self.session_label.show()
        if info.secrets_notice:
            self.secrets_notice.show_text(f"⚠ {info.secrets_notice}")
        if info.warnings:
            lines = "\n".join(f"• {p}" for p in info.warnings)
            count = len(info.warnings)
            head = self.tr("1 warning:") if count == 1 else self.tr("{count} warnings:").format(count=count)
            self.warnings_banner.show_text(f"{head}\n{lines}")

    def _on_event(self, ev: object) -> None:
        line = describe(ev)
        if line:
            self._log_activity([f"{time.strftime('%H:%M:%S')}  {redact(line)}"])

    def _log_activity(self, lines: list[str]) -> None:
        """Appends to the activity log; while the page is hidden the lines wait, to be appended in one go."""
        self._activity_backlog.extend(lines)
        if self.isVisible():
            self._flush_activity()

    def _flush_activity(self) -> None:
        if self._activity_backlog:
            self.activity.appendPlainText("\n".join(self._activity_backlog))
            self._activity_backlog.clear()

    def _error_for(self, ev: RunFinished) -> dict[str, str]:
        """The engine's error, with the details support asks for first: outcome, journal and log."""
        error = dict(ev.error or {})
        error.setdefault("title", "The run failed")
        error.setdefault("remediation", "see the activity log and the log file")
        context = [
            f"Outcome: {ev.exit_code.name.lower().replace('_', ' ')} (exit code {int(ev.exit_code)})",
            f"Project file: {self.project_file}",
        ]
        if self._journal is not None:
            context.append(f"Journal: {self._journal}")
        context.append(f"Log folder: {(self.controller.paths or app_paths()).logs}")
        details = error.get("details", "").strip()
        error["details"] = "\n".join(context) + (f"\n\n{details}" if details else "")
        return error

    def _on_finished(self, ev: RunFinished) -> None:
        self.poll_timer.stop()
        snap = self.controller.snapshot()
        if snap is not None:
            self._version = snap.version
            self._draw(snap, batch=None)  # the final state, whole, even if it changed after the last tick
        self._flush_activity()
        self.last_result = ev
        took = human_duration(time.monotonic() - self._started)
        if ev.exit_code is ExitCode.DONE:
            self.overall_label.setText(self.tr("Finished in {took}.").format(took=took))
            until = self.controller.until
            self.outcome.show_text(
                self.tr("✓ Every step up to {until} finished; press Start to go on.").format(until=until)
                if until
                else self.tr("✓ Every step finished."),
                Tone.SUCCESS,
            )
        elif ev.exit_code is ExitCode.INCOMPLETE:
            # Not a failure: the run did what it was asked (retry some nodes) and stopped where the others wait.
            self.overall_label.setText(self.tr("Stopped after {took}: {held}.").format(took=took, held=held_text(ev)))
            self.outcome.show_text(
                self.tr(
                    "⚠ {held}. Retry them on the Install page, or press Start to retry every failed node; "
                    "finished jobs are not repeated."
                ).format(held=held_text(ev)),
                Tone.WARNING,
            )
        elif ev.exit_code is ExitCode.CANCELLED:
            self.overall_label.setText(self.tr("Cancelled after {took}.").format(took=took))
            self.outcome.show_text(
                self.tr("■ The run was cancelled. Press Start to resume; finished jobs are not repeated."), Tone.INFO
            )
        else:
            self.overall_label.setText(
                self.tr("Stopped after {took} (exit code {code}).").format(took=took, code=int(ev.exit_code))
            )
            self.error_panel.show_error(self._error_for(ev))
            if ev.held:
                self.outcome.show_text(f"⚠ {held_text(ev)}.", Tone.WARNING)
        self._update_buttons()
        self.changed.emit()
