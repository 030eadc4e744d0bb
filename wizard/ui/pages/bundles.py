"""The Bundles page: the content bundle and pack bundles — the queue, each file's and the overall progress.

Rows are the jobs of the bundle steps (``content``, ``packs``) from the progress snapshots: queued, uploading (bytes,
throughput, ETA), syncing, done. Every bundle the project names has its row from the start (queued until its job
exists), so the overall bar and "done" count the pack bundles still to come too. The overall bar weighs files by
their size. A row is
redrawn only when its job changed (its ETA goes on while it runs), and nothing is drawn while the page is hidden: it
catches up when shown, and the end of a run is always drawn.
"""

from __future__ import annotations

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from wizard.core.progress import ProgressSnapshot, TaskState, TaskStatus
from wizard.core.project import Project
from wizard.core.runner import RunFinished
from wizard.ui.bridge import RunController
from wizard.ui.pages.cells import LiveCells
from wizard.ui.pages.live import BAR_SCALE, LivePage, announce, eta_text, progress_bar
from wizard.ui.units import human_bytes, human_duration
from wizard.ui.widgets import heading, paragraph

BUNDLE_STEPS: tuple[str, ...] = ("content", "packs")
COLUMNS = ("Bundle", "Status", "Progress", "Transferred", "Throughput", "ETA", "Message")
COL_NAME, COL_STATUS, COL_PROGRESS, COL_BYTES, COL_RATE, COL_ETA, COL_MESSAGE = range(len(COLUMNS))
STATUS_TEXT: dict[TaskStatus, str] = {
    TaskStatus.PENDING: "○ Queued",
    TaskStatus.RUNNING: "● Working",
    TaskStatus.DONE: "✓ Done",
    TaskStatus.SKIPPED: "✓ Done before",
    TaskStatus.FAILED: "✗ Failed",
    TaskStatus.CANCELLED: "■ Cancelled",
    TaskStatus.HELD: "◌ Not retried",
}


def overall(tasks: list[TaskState]) -> float:
    """Byte-weighted progress where sizes are known; each other job counts as an average file."""
    if not tasks:
        return 0.0
    sized = [t for t in tasks if t.bytes_total]
    average = (sum(t.bytes_total or 0 for t in sized) / len(sized)) if sized else 1.0
    weights = [float(t.bytes_total) if t.bytes_total else average for t in tasks]
    total = sum(weights) or 1.0
    return sum(w * t.fraction for w, t in zip(weights, tasks, strict=True)) / total


class BundlesPage(LivePage):
    title = "Bundles"

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.title = self.tr("Bundles")
        tr = self.tr
        self._rows: dict[str, int] = {}
        self._announced: dict[str, TaskStatus] = {}
        self._drawn: dict[str, TaskState] = {}  # the state each row shows
        self.tasks: list[TaskState] = []
        #: The bundles the project names, as rows before their jobs exist (job key → a queued state).
        self.planned: dict[str, TaskState] = {}

        self.overall = progress_bar(tr("Overall bundle progress"), self)
        self.summary = QLabel("", self)
        self.summary.setAccessibleName(tr("Bundle status"))
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels([tr(c) for c in COLUMNS])
        self.table.setAccessibleName(tr("Bundle queue"))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setTabKeyNavigation(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_PROGRESS, 140)
        header.setSectionResizeMode(COL_MESSAGE, QHeaderView.ResizeMode.Stretch)
        self.cells = LiveCells(self.table, (c for c in range(len(COLUMNS)) if c not in (COL_PROGRESS, COL_MESSAGE)))

        top = QHBoxLayout()
        top.addWidget(QLabel(tr("Overall:"), self))
        top.addWidget(self.overall, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Content and pack bundles"), self))
        layout.addWidget(
            paragraph(
                tr(
                    "The content bundle goes to the leader's Local UI and is synced to every node; pack bundles go "
                    "to the system console and its registry. Each is verified before it is sent."
                ),
                self,
            )
        )
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)

    def blockers(self) -> list[str]:
        return []

    def set_project(self, project: Project | None) -> None:
        """The bundles ``project`` uploads: the content bundle, and the pack bundles when it has a console."""
        planned: dict[str, TaskState] = {}
        if project is not None:
            files = project.files
            refs = [("content/upload", "content", files.content_bundle)] if files.content_bundle else []
            if project.console is not None:
                refs += [(f"packs/{ref.path.name}", "packs", ref) for ref in files.pack_bundles]
            for key, step, ref in refs:
                if ref is None:
                    continue
                try:
                    size: int | None = ref.path.stat().st_size
                except OSError:
                    size = None
                planned[key] = TaskState(key=key, label=ref.path.name, step=step, bytes_done=0, bytes_total=size)
        if planned != self.planned and not self.controller.running:
            self.planned = planned
            self.run_started()
            self.draw(ProgressSnapshot(0.0, "", (), -1))

    def is_done(self) -> bool:
        """Every bundle of the project (and every bundle job the run had) is uploaded."""
        return bool(self.tasks) and all(t.status in (TaskStatus.DONE, TaskStatus.SKIPPED) for t in self.tasks)

    def run_started(self) -> None:
        self.table.setRowCount(0)
        self.cells.clear()
        self._rows.clear()
        self._announced.clear()
        self._drawn.clear()
        self.tasks = []
        self.overall.setValue(0)
        self.summary.setText("")

    def _row(self, t: TaskState) -> int:
        row = self._rows.get(t.key)
        if row is not None:
            return row
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._rows[t.key] = row
        for col in range(len(COLUMNS)):
            if col != COL_PROGRESS:
                self.table.setItem(row, col, self.cells.new_item(right=col in (COL_BYTES, COL_RATE, COL_ETA)))
        name = t.label + (f" [{t.node}]" if t.node else "")
        self.table.setCellWidget(row, COL_PROGRESS, progress_bar(self.tr("Progress of {name}").format(name=name)))
        self.cells.row_added()
        return row

    def _set(self, row: int, col: int, text: str) -> None:
        self.cells.set(row, col, text)

    def bar(self, key: str) -> QProgressBar | None:
        row = self._rows.get(key)
        widget = self.table.cellWidget(row, COL_PROGRESS) if row is not None else None
        return widget if isinstance(widget, QProgressBar) else None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.poll_timer.isActive():
            self.poll()  # hidden, the page drew nothing: catch up now rather than at the next tick

    def poll(self) -> None:
        if self.isVisible():  # nobody sees a hidden page: drawn when shown, and the end of a run always is
            super().poll()

    def draw(self, snap: ProgressSnapshot) -> None:
        seen = [t for t in snap.tasks if t.step in BUNDLE_STEPS]
        keys = {t.key for t in seen}
        self.tasks = seen + [t for key, t in self.planned.items() if key not in keys]
        for t in self.tasks:
            row = self._row(t)
            running = t.status is TaskStatus.RUNNING
            drawn = self._drawn.get(t.key)
            if drawn is t or drawn == t:
                if running:
                    self._set(row, COL_ETA, eta_text(t))  # an estimate from its pace moves with time alone
                continue
            self._drawn[t.key] = t
            self._set(row, COL_NAME, t.label + (f" [{t.node}]" if t.node else ""))
            self._set(row, COL_STATUS, self.tr(STATUS_TEXT[t.status]))
            bar = self.bar(t.key)
            value = round(t.fraction * BAR_SCALE)
            if bar is not None and bar.value() != value:
                bar.setValue(value)
            if t.bytes_total:
                self._set(row, COL_BYTES, f"{human_bytes(t.bytes_done or 0)} / {human_bytes(t.bytes_total)}")
            self._set(row, COL_RATE, f"{human_bytes(t.rate)}/s" if t.rate and running else "")
            self._set(row, COL_ETA, eta_text(t))
            self._set(row, COL_MESSAGE, t.message + (f" — warning: {t.warning}" if t.warning else ""))
            if self._announced.get(t.key) is not t.status and t.status is not TaskStatus.PENDING:
                self._announced[t.key] = t.status
                announce(self.summary, f"{t.label}: {self.tr(STATUS_TEXT[t.status])[2:].lower()}")
        self.cells.fit()
        value = round(overall(self.tasks) * BAR_SCALE)
        if self.overall.value() != value:
            self.overall.setValue(value)
        queued = sum(1 for t in self.tasks if t.status is TaskStatus.PENDING)
        rate = sum(t.rate or 0 for t in self.tasks if t.status is TaskStatus.RUNNING)
        if self.tasks:
            tip = (
                self.tr("{q} queued · {r}/s").format(q=queued, r=human_bytes(rate))
                if rate
                else self.tr("{q} queued").format(q=queued)
            )
            if self.overall.toolTip() != tip:
                self.overall.setToolTip(tip)

    def run_finished(self, ev: RunFinished) -> None:
        if self.tasks and self.is_done():
            announce(self.summary, self.tr("Every bundle is uploaded and synced."))


__all__ = ["BUNDLE_STEPS", "BundlesPage", "human_duration", "overall"]
