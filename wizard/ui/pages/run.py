"""The run page: starts the engine in the background and shows what runs now, the overall progress and the outcome.

Steps are collapsible groups (:mod:`wizard.ui.pages.runtree`): the running step is expanded and its running job kept
in view, done steps collapse to one row with the time they took. The overall bar is the engine's plan for the whole
install (never backwards; from one run of the session to the next it starts where the last one ended) with an ETA.
The activity log gets the latest line of each running job as it changes, not only job starts and ends.

Start asks for the review first (the Review page: what the install will touch) and Cancel asks before stopping.

Nothing here waits on the engine. A 100 ms timer reads progress snapshots; events arrive through the controller's
queued signals; the only blocking thing on this page is drawing, so it draws as little as it can: only the jobs whose
state changed since they were last drawn, nothing while the page is hidden (it catches up when shown, and the end of
a run is always drawn), and new rows a batch per event-loop turn.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wizard.core.paths import app_paths
from wizard.core.progress import ProgressSnapshot, TaskState, TaskStatus
from wizard.core.redact import redact
from wizard.core.runner import (
    ExitCode,
    JobStarted,
    RunFinished,
    RunStarted,
    StepBlocked,
    StepFinished,
    StepStarted,
)
from wizard.ui.bridge import AbortFinished, RunController, SessionOpened
from wizard.ui.pages import WizardPage
from wizard.ui.pages.runlog import STATUS_KIND, STATUS_TEXT, describe, held_text, who
from wizard.ui.pages.runtree import (
    BAR_SCALE,
    COL_BYTES,
    COL_ETA,
    COL_JOB,
    COL_MESSAGE,
    COL_NODE,
    COL_PROGRESS,
    COL_RATE,
    COL_STATUS,
    COLUMNS,
    JobTree,
)
from wizard.ui.theme import Status, status_hex
from wizard.ui.units import human_bytes, human_duration
from wizard.ui.widgets import Banner, ErrorPanel, Tone, ask_yes_no, button, heading, paragraph
from wizard.ui.wording import humanize_lines, outcome_text, problem_text

__all__ = [
    "BAR_SCALE",
    "COLUMNS",
    "COL_JOB",
    "COL_MESSAGE",
    "COL_NODE",
    "COL_PROGRESS",
    "COL_STATUS",
    "ROW_BATCH",
    "STATUS_TEXT",
    "RunPage",
    "describe",
]

POLL_MS = 100
#: Providers whose install takes something an abort can give back (MAAS machines, BMC virtual media).
ABORTABLE_PROVIDERS = frozenset({"maas", "redfish"})
#: New job rows created per event-loop turn while a run is followed live.
ROW_BATCH = 8
ACTIVITY_LINES = 2000
#: A running job's changing message goes to the activity log at most this often (its latest one then).
LINE_EVERY = 3.0


def _bar(name: str, parent: QWidget | None = None) -> QProgressBar:
    bar = QProgressBar(parent)
    bar.setRange(0, BAR_SCALE)
    bar.setValue(0)
    bar.setFormat("%p%")
    bar.setAccessibleName(name)
    return bar


@dataclass
class _Step:
    """What the page knows of a step from the run's events (times on this clock)."""

    title: str
    started: float | None = None
    finished: float | None = None
    ok: bool | None = None
    worked: bool = False  # a job ran (not only skipped)


class RunPage(WizardPage):
    title = "Run"

    #: Start was pressed before the operator confirmed what the install touches: show the Review page.
    review_requested = Signal()

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.project_file: Path | None = None
        self.project_name = ""
        self.provider = ""
        self.last_result: RunFinished | None = None
        self.last_abort: AbortFinished | None = None
        #: Asked before a run starts: True while what the install touches still needs the operator's confirmation.
        self.needs_review: Callable[[], bool] = lambda: False
        #: The state each job row shows: a job whose state is the same object (or equal) is not drawn again.
        self._drawn: dict[str, TaskState] = {}
        self._latest: ProgressSnapshot | None = None  # the newest snapshot drawn, maybe not all its rows yet
        # Activity lines that came while the page was hidden (the log keeps no more than these either).
        self._activity_backlog: deque[str] = deque(maxlen=ACTIVITY_LINES)
        self._logged: dict[str, tuple[str, float]] = {}  # job -> (message logged last, when)
        self._steps: dict[str, _Step] = {}
        self._running: tuple[str, ...] = ()  # the jobs that ran when the view last followed them
        self._version = -1
        self._started = 0.0
        self._journal: Path | None = None
        self._starting = False
        self.error: dict[str, str] | None = None  # the last run's error, as shown

        self.project_label = paragraph(self.tr("No project is open."), self)
        self.session_label = paragraph("", self)
        self.session_label.hide()
        self.secrets_notice = Banner(Tone.WARNING, self)
        self.warnings_banner = Banner(Tone.WARNING, self)
        self.review_label = paragraph("", self)

        self.start_button = button(self.tr("&Start"), self.tr("Start the install"), self)
        self.start_button.setToolTip(self.tr("Run every step; steps that already finished are skipped"))
        self.start_button.clicked.connect(self.start)
        self.cancel_button = button(self.tr("Cancel r&un…"), self.tr("Cancel the run"), self)
        self.cancel_button.setToolTip(
            self.tr("Asks first; the jobs stop at their next checkpoint and a later run resumes")
        )
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

        self.overall = _bar(self.tr("Overall progress of the install"), self)
        self.overall.setMinimumWidth(240)
        self.overall_label = QLabel("", self)
        self.overall_label.setAccessibleName(self.tr("Overall status"))
        self.overall_label.setWordWrap(True)
        self.overall_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.outcome = Banner(Tone.SUCCESS, self)
        self.error_panel = ErrorPanel(self)
        self.error_panel.retry_requested.connect(self.start)

        self.tree = JobTree(self)
        self.tree.setMinimumHeight(140)

        self.activity = QPlainTextEdit(self)
        self.activity.setReadOnly(True)
        self.activity.setAccessibleName(self.tr("Activity log"))
        self.activity.setMaximumBlockCount(ACTIVITY_LINES)
        self.activity.setPlaceholderText(self.tr("What the run does appears here."))
        self.activity.setMinimumHeight(70)
        self.activity.setTabChangesFocus(True)

        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.tree)
        split.addWidget(self.activity)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)

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

        layout = QVBoxLayout(self)
        layout.addWidget(heading(self.tr("Run"), self))
        layout.addWidget(self.project_label)
        layout.addWidget(self.review_label)
        layout.addWidget(self.session_label)
        layout.addWidget(self.secrets_notice)
        layout.addWidget(self.warnings_banner)
        layout.addLayout(buttons)
        layout.addWidget(self.overall_label)
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
        return []  # a view of the run: nothing here stops the operator from looking at the pages after it

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
            self._set_overall(0.0)  # another install: its progress is its own
        self.project_file = path
        self.project_name = name
        self.provider = provider
        self.project_label.setText(
            self.tr("Project “{name}” from {path}").format(name=name, path=path)
            if path
            else self.tr("Open a valid project file before starting.")
        )
        self.refresh_review()
        self._update_buttons()

    def refresh_review(self) -> None:
        """Say whether Start still asks for the review."""
        if self.project_file is None:
            self.review_label.hide()
            return
        self.review_label.setText(
            self.tr("Start first shows what this install will touch, for you to confirm (the Review page).")
            if self.needs_review()
            else self.tr("✓ You confirmed what this install will touch (the Review page).")
        )
        self.review_label.show()

    def _reset(self) -> None:
        """A new run (or project): the steps and jobs start over. The overall bar is left where it is: a run of the
        same install goes on from there (the engine plans it so), and it never shows less in between."""
        self.last_result = None
        self.error = None
        self._journal = None
        self.tree.reset_rows()
        self._drawn.clear()
        self._logged.clear()
        self._steps.clear()
        self._running = ()
        self._latest = None
        self._more_rows.stop()
        self._version = -1
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
        self.cancel_button.setText(self.tr("Cancelling…") if self.controller.cancelling else self.tr("Cancel r&un…"))
        self.error_panel.retry_button.setEnabled(not running and self.project_file is not None)

    # -- actions -------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.project_file is None or self.controller.running:
            return
        if self.needs_review():
            self.review_requested.emit()
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
            self.overall_label.setText(
                self.tr("Starting (up to the {until} step)…").format(until=until) if until else self.tr("Starting…")
            )
            self.poll_timer.start()
        self._update_buttons()

    def confirm_cancel(self) -> bool:
        return ask_yes_no(
            self,
            self.tr("Cancel the run?"),
            self.tr(
                "The running jobs stop at their next checkpoint. What has finished is recorded; press Start later "
                "to go on from there.\n\nA node that is installing goes on installing by itself."
            ),
        )

    def cancel(self) -> None:
        if not self.controller.running or self.controller.cancelling or not self.confirm_cancel():
            return
        self.controller.cancel()
        self.overall_label.setText(self.tr("Cancelling… the jobs stop at their next checkpoint."))
        self._update_buttons()

    def confirm_abort(self) -> bool:
        return ask_yes_no(
            self,
            self.tr("Give back the machines?"),
            self.tr(
                "This releases the MAAS machines this session allocated and ejects the installer ISO it inserted "
                "through BMCs. Machines allocated before the wizard ran, and anyone else's, are left alone.\n\n"
                "A later run starts again from the machines step."
            ),
        )

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
                self._set_overall(0.0)  # what the progress counted is undone; the next run plans anew
        stamp = time.strftime("%H:%M:%S")
        ended = lines or ["abort ended: " + ((ev.error or {}).get("title") or "nothing to give back")]
        self._log_activity([f"{stamp}  {redact(line)}" for line in ended])
        self._flush_activity()
        self._update_buttons()
        self.changed.emit()

    # -- progress ------------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh_review()
        # Hidden, the page drew nothing: catch up at once rather than at the next tick.
        self._flush_activity()
        if self.poll_timer.isActive():
            self.poll()
        if self._latest is not None and len(self.tree.jobs) < len(self._latest.tasks):
            self._more_rows.start()  # rows a batched draw left while the page was hidden

    def poll(self) -> None:
        if self.controller.aborting:
            abort = self.controller.abort_snapshot()
            if abort is not None and abort.message and self.isVisible():
                self.overall_label.setText(redact(abort.message))
            return
        snap = self.controller.snapshot()
        if snap is None:
            return
        self._log_running(snap)  # the log keeps every job's latest line, also while the page is hidden
        if not self.isVisible():
            return  # nobody sees it: drawn when shown (showEvent), and the end of a run always is
        if self.controller.running:
            self.overall_label.setText(redact(self._status_line(snap)))
        if snap.version == self._version:
            return
        self._version = snap.version
        self._draw(snap)

    def _status_line(self, snap: ProgressSnapshot) -> str:
        elapsed = human_duration(time.monotonic() - self._started)
        what = self.tr("Cancelling…") if self.controller.cancelling else (snap.message or self.tr("Working…"))
        text = self.tr("{what}  ·  elapsed {elapsed}").format(what=what, elapsed=elapsed)
        if snap.planned and snap.eta is not None and snap.eta >= 1:
            text += self.tr("  ·  about {left} left").format(left=human_duration(snap.eta))
        return text

    def _set_overall(self, fraction: float) -> None:
        value = round(fraction * BAR_SCALE)
        if self.overall.value() != value:
            self.overall.setValue(value)

    def _draw(self, snap: ProgressSnapshot, *, batch: int | None = ROW_BATCH) -> None:
        """Draws the jobs that changed since they were last drawn; creates at most ``batch`` new rows (all when
        None) and leaves the rest to the next event-loop turns."""
        self._latest = snap
        self._more_rows.stop()
        if snap.planned:  # before the engine plans, the snapshot knows nothing of the install: keep what is shown
            self._set_overall(snap.fraction)
        budget = batch
        left = False
        tree = self.tree
        for task in snap.tasks:
            item = tree.jobs.get(task.key)
            if item is None:
                if budget is not None:
                    if budget <= 0:
                        left = True
                        continue
                    budget -= 1
                item = tree.job(task.key, task.step, task.label, task.node)
                if task.step not in self._steps:
                    self._steps[task.step] = _Step(task.step)
            else:
                drawn = self._drawn.get(task.key)
                if drawn is task or drawn == task:
                    if task.status is TaskStatus.RUNNING and task.eta is None:
                        self._draw_clock(item, task)
                    continue
            self._draw_row(item, task)
            self._drawn[task.key] = task
        self._draw_steps(snap)
        self._follow(snap)
        tree.fit()
        if left:
            self._more_rows.start()

    def _draw_more(self) -> None:
        if self._latest is not None and self.isVisible():
            self._draw(self._latest)

    def _draw_row(self, item: QTreeWidgetItem, t: TaskState) -> None:
        tree = self.tree
        running = t.status is TaskStatus.RUNNING
        tree.set(item, COL_STATUS, self.tr(STATUS_TEXT[t.status]))
        tree.set_status(item, t.status.value)
        tree.set_colour(item, COL_STATUS, status_hex(STATUS_KIND.get(t.status)))
        tree.set_fraction(item, t.fraction)
        if t.bytes_total:
            tree.set(item, COL_BYTES, f"{human_bytes(t.bytes_done or 0)} / {human_bytes(t.bytes_total)}")
        tree.set(item, COL_RATE, f"{human_bytes(t.rate)}/s" if t.rate and running else "")
        self._draw_clock(item, t)
        message = t.message
        if t.warning:
            message = f"{message} — warning: {t.warning}" if message else f"warning: {t.warning}"
        tree.set(item, COL_MESSAGE, message)

    def _draw_clock(self, item: QTreeWidgetItem, t: TaskState) -> None:
        """The ETA cell: a transfer's own, else one from the job's pace so far; a finished job's time taken."""
        if t.status is TaskStatus.RUNNING:
            if t.eta is not None:
                text = human_duration(t.eta)
            else:
                elapsed = t.elapsed or 0.0
                text = (
                    "≈ " + human_duration(elapsed * (1 - t.fraction) / t.fraction)
                    if t.fraction >= 0.05 and elapsed >= 5
                    else ""
                )
        elif t.status is TaskStatus.DONE and t.elapsed is not None:
            text = self.tr("took {t}").format(t=human_duration(t.elapsed))
        else:
            text = ""
        self.tree.set(item, COL_ETA, text)

    def _draw_steps(self, snap: ProgressSnapshot) -> None:
        """Each step's row: its share done (the plan's), its state and, once done, how long it took."""
        fractions = dict(snap.steps)
        tree = self.tree
        now = time.monotonic()
        for step, info in self._steps.items():
            item = tree.step(step, info.title)
            fraction = fractions.get(step)
            children = [self._drawn.get(tree.key(child)) for i in range(item.childCount()) if (child := item.child(i))]
            tasks = [t for t in children if t is not None]
            if fraction is None and tasks:
                fraction = sum(t.fraction for t in tasks) / len(tasks)
            if info.ok is True:
                if info.worked and info.started is not None and info.finished is not None:
                    status = self.tr("✓ Done in {t}").format(t=human_duration(info.finished - info.started))
                elif item.childCount():
                    status = self.tr("✓ Done before")  # every job finished in an earlier run
                else:
                    status = self.tr("✓ Done")  # nothing to do here for this project
                kind: Status | None = Status.DONE
            elif info.ok is False:
                failed = any(t.status is TaskStatus.FAILED for t in tasks)
                status = self.tr("✗ Failed") if failed else self.tr("■ Stopped")
                kind = Status.FAILED if failed else Status.WARNING
            elif info.started is not None:
                status = self.tr("● Running · {t}").format(t=human_duration(now - info.started))
                kind = None
            else:
                status = self.tr("○ Waiting")
                kind = None
                fraction = fraction if info.started is not None else None
            tree.set(item, COL_STATUS, status)
            tree.set_colour(item, COL_STATUS, status_hex(kind))
            tree.set_colour(item, COL_JOB, status_hex(kind))
            tree.set_fraction(item, 1.0 if info.ok else fraction)
            running = [t for t in tasks if t.status is TaskStatus.RUNNING]
            tree.set(item, COL_MESSAGE, running[0].message if len(running) == 1 else "")
            if running:
                rates = sum(t.rate or 0 for t in running)
                tree.set(item, COL_RATE, f"{human_bytes(rates)}/s" if rates else "")

    def _follow(self, snap: ProgressSnapshot) -> None:
        """The running step open, done steps closed, and the running job in view whenever the running set
        changes (between changes, the operator may scroll and open or close steps as they like)."""
        running = tuple(t.key for t in snap.tasks if t.status is TaskStatus.RUNNING and t.key in self.tree.jobs)
        if running == self._running:
            return
        self._running = running
        tree = self.tree
        active = {self._drawn[k].step for k in running if k in self._drawn}
        for step, item in tree.steps.items():
            info = self._steps.get(step)
            if step in active:
                item.setExpanded(True)
            elif info is not None and info.ok is True:
                item.setExpanded(False)
        if running:
            tree.scrollToItem(tree.jobs[running[0]], QAbstractItemView.ScrollHint.EnsureVisible)

    def running_rows_visible(self) -> bool:
        """Every running job's row is on screen (what the operator should see without scrolling)."""
        return bool(self._running) and all(self.tree.visible(self.tree.jobs[k]) for k in self._running[:1])

    def _log_running(self, snap: ProgressSnapshot) -> None:
        """The latest line of each running job, when it changed, at most every :data:`LINE_EVERY` seconds."""
        now = time.monotonic()
        lines: list[str] = []
        for t in snap.tasks:
            if t.status is not TaskStatus.RUNNING or not t.message:
                continue
            last = self._logged.get(t.key)
            if last is not None and (last[0] == t.message or now - last[1] < LINE_EVERY):
                continue
            self._logged[t.key] = (t.message, now)
            lines.append(f"{time.strftime('%H:%M:%S')}    · {who(t.label, t.node)}: {redact(t.message)}")
        if lines:
            self._log_activity(lines)

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
            lines = "\n".join(f"• {problem_text(p)}" for p in info.warnings)
            count = len(info.warnings)
            head = self.tr("1 warning:") if count == 1 else self.tr("{count} warnings:").format(count=count)
            self.warnings_banner.show_text(f"{head}\n{lines}")

    def _on_event(self, ev: object) -> None:
        now = time.monotonic()
        if isinstance(ev, RunStarted):
            for step, title in ev.steps:
                self._steps[step] = _Step(title)
                self.tree.step(step, title)
        elif isinstance(ev, StepStarted):
            info = self._steps.setdefault(ev.step, _Step(ev.title))
            info.title, info.started = ev.title, now
            self.tree.step(ev.step, ev.title)
        elif isinstance(ev, JobStarted):
            self._steps.setdefault(ev.step, _Step(ev.step)).worked = True
        elif isinstance(ev, StepFinished):
            info = self._steps.setdefault(ev.step, _Step(ev.step))
            info.finished, info.ok = now, ev.ok
            self._running = ()  # re-follow on the next draw
        elif isinstance(ev, StepBlocked):
            self._steps.setdefault(ev.step, _Step(ev.step)).ok = False
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
            bar = self.activity.verticalScrollBar()
            following = bar.value() >= bar.maximum() - 2  # the operator had not scrolled back to read
            self.activity.appendPlainText("\n".join(self._activity_backlog))
            self._activity_backlog.clear()
            if following:  # also when the page was just shown and its layout is not done yet
                QTimer.singleShot(0, self.activity, self._activity_to_end)

    def _activity_to_end(self) -> None:
        bar = self.activity.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _error_for(self, ev: RunFinished) -> dict[str, str]:
        """The engine's error, with the details support asks for first: outcome, journal and log."""
        error = {k: humanize_lines(v) if isinstance(v, str) else v for k, v in (ev.error or {}).items()}
        error.setdefault("title", "The run failed")
        error.setdefault("remediation", "see the activity log and the log file")
        if ev.exit_code is ExitCode.INVALID_INPUT and error.get("details"):
            # "3 problems" says little on its own: the problems themselves, each where the window shows it.
            error["message"] = f"{error.get('message', '')}:\n{error['details']}".lstrip(":\n")
            error["details"] = ""
        context = [f"Outcome: {outcome_text(ev.exit_code)}", f"Project file: {self.project_file}"]
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
            self._log_running(snap)
            self._version = snap.version
            self._draw(snap, batch=None)  # the final state, whole, even if it changed after the last tick
        self._set_overall(max(ev.fraction, self.overall.value() / BAR_SCALE))
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
                self.tr("Stopped after {took}: {outcome}.").format(took=took, outcome=outcome_text(ev.exit_code))
            )
            self.error = self._error_for(ev)
            self.error_panel.show_error(self.error)
            if ev.held:
                self.outcome.show_text(f"⚠ {held_text(ev)}.", Tone.WARNING)
        self._update_buttons()
        self.changed.emit()
