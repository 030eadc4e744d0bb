"""The Run page's steps and jobs: one collapsible group per step, its jobs inside.

A step's row says where the step is (waiting, running with its share done, done with how long it took) and its jobs
hang below it; the page expands the step that runs and collapses the ones that are done. Progress is painted by a
delegate from a number in the cell, not by a progress-bar widget per row: a widget per job costs the GUI thread far
more to create, lay out and update, and this table is redrawn every tick of a run. Cells are written only when their
text changes, and columns sized to their contents only when a text changed shape (see :mod:`wizard.ui.pages.cells`).
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from wizard.core.redact import redact
from wizard.ui.pages.cells import brush

COLUMNS = ("Step / job", "Node", "Status", "Progress", "Transferred", "Throughput", "ETA", "Message")
COL_JOB, COL_NODE, COL_STATUS, COL_PROGRESS, COL_BYTES, COL_RATE, COL_ETA, COL_MESSAGE = range(len(COLUMNS))
#: Columns as wide as their contents (the message takes the rest, the progress a fixed width).
FITTED = (COL_JOB, COL_NODE, COL_STATUS, COL_BYTES, COL_RATE, COL_ETA)
KEY_ROLE = Qt.ItemDataRole.UserRole
FRACTION_ROLE = Qt.ItemDataRole.UserRole + 1
BAR_SCALE = 1000
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class ProgressDelegate(QStyledItemDelegate):
    """Paints a cell's fraction (``FRACTION_ROLE``) as the style's progress bar."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        value = index.data(FRACTION_ROLE)
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, widget)
        if value is None:
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(3, 3, -3, -3)
        bar.minimum = 0
        bar.maximum = BAR_SCALE
        bar.progress = round(float(value) * BAR_SCALE)
        bar.text = f"{float(value) * 100:.0f}%"
        bar.textVisible = True
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        bar.palette = option.palette
        bar.fontMetrics = option.fontMetrics
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)


class JobTree(QTreeWidget):
    """Steps as top-level rows, their jobs as children; every write goes through :meth:`set`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels([self.tr(c) for c in COLUMNS])
        self.setAccessibleName(self.tr("Steps and jobs"))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)  # lets the view skip measuring every row
        self.setWordWrap(False)  # one line per job; the full message is in the tooltip and the activity log
        self.setItemDelegateForColumn(COL_PROGRESS, ProgressDelegate(self))
        header = self.header()
        header.setStretchLastSection(True)
        for col in FITTED:
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_PROGRESS, 130)
        self.steps: dict[str, QTreeWidgetItem] = {}
        self.jobs: dict[str, QTreeWidgetItem] = {}
        self._colours: dict[tuple[int, int], str | None] = {}
        self._dirty: set[int] = set(FITTED)
        self.fit()

    # -- rows ----------------------------------------------------------------------------------------------
    def reset_rows(self) -> None:
        """Every row gone (not ``reset``: that is the view's own, which ``clear`` calls)."""
        self.clear()
        self.steps.clear()
        self.jobs.clear()
        self._colours.clear()
        self._dirty |= set(FITTED)

    def step(self, step: str, title: str = "") -> QTreeWidgetItem:
        """The step's row, made (after the existing ones) when it is new."""
        item = self.steps.get(step)
        if item is None:
            item = QTreeWidgetItem(self)
            item.setData(COL_JOB, KEY_ROLE, step)
            font = item.font(COL_JOB)
            font.setBold(True)
            item.setFont(COL_JOB, font)
            self._align(item)
            self.steps[step] = item
            self.set(item, COL_JOB, title or step)
            self._dirty |= set(FITTED)
        elif title:
            self.set(item, COL_JOB, title)
        return item

    def job(self, key: str, step: str, label: str, node: str) -> QTreeWidgetItem:
        item = self.jobs.get(key)
        if item is None:
            item = QTreeWidgetItem(self.step(step))
            item.setData(COL_JOB, KEY_ROLE, key)
            self._align(item)
            self.jobs[key] = item
            self.set(item, COL_JOB, label)
            self.set(item, COL_NODE, node)
            self._dirty |= set(FITTED)
        return item

    @staticmethod
    def _align(item: QTreeWidgetItem) -> None:
        for col in (COL_BYTES, COL_RATE, COL_ETA):
            item.setTextAlignment(col, _RIGHT)

    def key(self, item: QTreeWidgetItem) -> str:
        return str(item.data(COL_JOB, KEY_ROLE) or "")

    # -- cells ---------------------------------------------------------------------------------------------
    def set(self, item: QTreeWidgetItem, col: int, text: str) -> bool:
        """Show ``text`` (redacted) and as its tooltip; False when the cell already showed it."""
        text = redact(text)
        old = item.text(col)
        if old == text:
            return False
        item.setText(col, text)
        item.setToolTip(col, text)
        if col in FITTED and old.translate(_DIGITS_TO_ZERO) != text.translate(_DIGITS_TO_ZERO):
            self._dirty.add(col)
        return True

    def set_fraction(self, item: QTreeWidgetItem, fraction: float | None) -> None:
        value = None if fraction is None else round(fraction * BAR_SCALE) / BAR_SCALE
        if item.data(COL_PROGRESS, FRACTION_ROLE) != value:
            item.setData(COL_PROGRESS, FRACTION_ROLE, value)
            text = "" if value is None else f"{value * 100:.0f}%"
            item.setData(COL_PROGRESS, Qt.ItemDataRole.AccessibleTextRole, text)

    def set_status(self, item: QTreeWidgetItem, status: str) -> None:
        """The job's status as data (what the status text says, for code that reads the table)."""
        if item.data(COL_STATUS, KEY_ROLE) != status:
            item.setData(COL_STATUS, KEY_ROLE, status)

    def status(self, item: QTreeWidgetItem) -> str:
        return str(item.data(COL_STATUS, KEY_ROLE) or "")

    def fraction(self, item: QTreeWidgetItem) -> float | None:
        value = item.data(COL_PROGRESS, FRACTION_ROLE)
        return None if value is None else float(value)

    def set_colour(self, item: QTreeWidgetItem, col: int, colour: str | None) -> None:
        key = (id(item), col)
        if key in self._colours and self._colours[key] == colour:
            return
        item.setForeground(col, brush(colour))
        self._colours[key] = colour

    def fit(self) -> None:
        """Size the fitted columns whose text changed shape since the last call."""
        for col in sorted(self._dirty):
            self.resizeColumnToContents(col)
        self._dirty.clear()

    def visible(self, item: QTreeWidgetItem) -> bool:
        """The row is on screen: its parent is expanded and it lies inside the viewport."""
        parent = item.parent()
        if parent is not None and not parent.isExpanded():
            return False
        rect = self.visualItemRect(item)
        return rect.isValid() and self.viewport().rect().intersects(rect)
