"""What the pages that watch a run share: snapshot polling while a run is active, and announcements.

A :class:`LivePage` never touches the engine's state: a 100 ms timer (running only while a run does) reads the
controller's thread-safe progress snapshot and redraws when its version changed; events and the end of the run arrive
through the controller's queued signals. Stage changes are announced to screen readers through one live label, not
every progress tick.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAccessible, QAccessibleEvent
from PySide6.QtWidgets import QLabel, QProgressBar, QWidget

from wizard.core.progress import ProgressSnapshot, TaskState, TaskStatus
from wizard.core.runner import RunFinished
from wizard.ui.bridge import RunController, SessionOpened
from wizard.ui.pages import WizardPage
from wizard.ui.units import human_duration

POLL_MS = 100
BAR_SCALE = 1000  # progress bars count in tenths of a percent


def progress_bar(name: str, parent: QWidget | None = None) -> QProgressBar:
    bar = QProgressBar(parent)
    bar.setRange(0, BAR_SCALE)
    bar.setValue(0)
    bar.setFormat("%p%")
    bar.setAccessibleName(name)
    return bar


def announce(label: QLabel, text: str) -> None:
    """Show ``text`` on a live-region label and tell assistive technology it changed."""
    if label.text() == text:
        return
    label.setText(text)
    label.setAccessibleName(text)
    QAccessible.updateAccessibility(QAccessibleEvent(label, QAccessible.Event.NameChanged))
    QAccessible.updateAccessibility(QAccessibleEvent(label, QAccessible.Event.Alert))


def eta_of(task: TaskState) -> float | None:
    """The task's own ETA (transfers), else one estimated from its pace so far; None when it cannot be told."""
    if task.status is not TaskStatus.RUNNING:
        return None
    if task.eta is not None:
        return task.eta
    elapsed = task.elapsed
    if elapsed is None or task.fraction < 0.05 or elapsed < 5:
        return None  # too early: an estimate from the first seconds would jump around
    return elapsed * (1.0 - task.fraction) / task.fraction


def elapsed_text(task: TaskState) -> str:
    elapsed = task.elapsed
    return human_duration(elapsed) if elapsed is not None else ""


def eta_text(task: TaskState) -> str:
    eta = eta_of(task)
    if eta is None:
        return ""
    return ("" if task.eta is not None else "≈ ") + human_duration(eta)


class LivePage(WizardPage):
    """A page that draws the controller's progress snapshots while a run is active."""

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._version = -1
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self.poll)
        controller.running_changed.connect(self._running_changed)
        controller.session_opened.connect(self.session_opened)
        controller.event_received.connect(self.event_received)
        controller.finished.connect(self._finished)

    def poll(self) -> None:
        snap = self.controller.snapshot()
        if snap is None or snap.version == self._version:
            return
        self._version = snap.version
        self.draw(snap)

    def _running_changed(self, running: bool) -> None:
        if running:
            self._version = -1
            self.run_started()
            self.poll_timer.start()
        self.running_changed(running)

    def _finished(self, ev: RunFinished) -> None:
        self.poll_timer.stop()
        snap = self.controller.snapshot()
        if snap is not None:
            self._version = snap.version
            self.draw(snap)  # the final state, even if it changed after the last tick
        self.run_finished(ev)
        self.changed.emit()

    # -- for subclasses --------------------------------------------------------------------------------------
    def run_started(self) -> None:
        """A run has started (before its first snapshot)."""

    def running_changed(self, running: bool) -> None:
        """A run started or ended."""

    def session_opened(self, info: SessionOpened) -> None:
        """The run's session is open: its journal is known."""

    def event_received(self, ev: object) -> None:
        """An engine event, on the GUI thread."""

    def draw(self, snap: ProgressSnapshot) -> None:
        """A newer snapshot than the last one drawn."""

    def run_finished(self, ev: RunFinished) -> None:
        """The run ended; the last snapshot has been drawn."""


def now_stamp() -> str:
    return time.strftime("%H:%M:%S")
