"""Cell writes for the tables a run redraws every tick (Run, Install, Bundles).

While a run goes, a dozen worker threads want the interpreter and hand it over every millisecond, so each call the
GUI thread makes costs far more than on an idle machine — most of all the ones that re-measure or restyle. Two
things cost most:

* A column in ``ResizeToContents`` mode re-measures every row each time any of its cells changes: about a
  millisecond and a half per cell on a visible 45-row table. These tables size such columns themselves instead,
  once per draw and only where a cell's text changed shape (:meth:`LiveCells.fit`) — the same widths for a
  fraction of the work. A text whose digits alone changed ("1m 05s" → "1m 06s") keeps its width: UI fonts draw
  digits at one width.
* Writing a colour or a data role that is already there still goes through the model; :class:`LiveCells`
  remembers what each cell holds and writes only what differs.
* Constructing a Qt object from Python (an item, a brush, a colour) lets other threads run and waits for the
  interpreter again — a fraction of a millisecond each under load. Brushes are therefore made once per colour.
  Items are not cloned in C++ although that would be cheaper: a C++-made item's Python wrapper is not told when the
  table deletes the item (rows removed, a cell replaced), so a wrapper still referenced somewhere outlives it, and a
  later Qt object allocated at the same address comes back from PySide as that stale wrapper (a header that is a
  table item). Items made in Python are.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from wizard.core.redact import redact

_BRUSHES: dict[str | None, QBrush] = {}
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def brush(colour: str | None) -> QBrush:
    """The brush for a text colour (``None``: the style's), made once."""
    made = _BRUSHES.get(colour)
    if made is None:
        made = _BRUSHES[colour] = QBrush(QColor(colour)) if colour else QBrush()
    return made


def _shape(text: str) -> str:
    """``text`` with every digit made a zero: two texts with one shape take the same width."""
    return text.translate(_DIGITS_TO_ZERO)


class LiveCells:
    """Writes redacted text into ``table``'s cells and keeps ``fitted`` columns as wide as their contents."""

    def __init__(self, table: QTableWidget, fitted: Iterable[int]) -> None:
        self.table = table
        self.fitted = frozenset(fitted)
        self._dirty: set[int] = set()
        self._colours: dict[tuple[int, int], str | None] = {}
        self._data: dict[tuple[int, int, Qt.ItemDataRole], object] = {}
        header = table.horizontalHeader()
        for col in self.fitted:
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        self._dirty |= self.fitted
        self.fit()  # the headers' widths until the first rows arrive

    def new_item(self, *, right: bool = False) -> QTableWidgetItem:
        """An empty cell, left-aligned or (numbers) right-aligned."""
        item = QTableWidgetItem("")
        if right:
            item.setTextAlignment(_RIGHT)
        return item

    def clear(self) -> None:
        """The table's rows were removed."""
        self._colours.clear()
        self._data.clear()
        self._dirty |= self.fitted

    def set(self, row: int, col: int, text: str) -> bool:
        """Show ``text`` (redacted) in the cell and as its tooltip; False when the cell already showed it."""
        item = self.table.item(row, col)
        if item is None:
            return False
        text = redact(text)
        old = item.text()
        if old == text:  # untouched cells keep the table from re-laying out
            return False
        item.setText(text)
        item.setToolTip(text)
        if col in self.fitted and (len(old) != len(text) or _shape(old) != _shape(text)):
            self._dirty.add(col)
        return True

    def set_colour(self, row: int, col: int, colour: str | None) -> None:
        """The cell's text colour (``None``: the style's)."""
        key = (row, col)
        if key in self._colours and self._colours[key] == colour:
            return
        item = self.table.item(row, col)
        if item is not None:
            item.setForeground(brush(colour))
            self._colours[key] = colour

    def set_data(self, row: int, col: int, value: object, role: Qt.ItemDataRole = Qt.ItemDataRole.UserRole) -> None:
        key = (row, col, role)
        if key in self._data and self._data[key] == value:
            return
        item = self.table.item(row, col)
        if item is not None:
            item.setData(role, value)
            self._data[key] = value

    def row_added(self) -> None:
        """A new row: every fitted column may have to grow."""
        self._dirty |= self.fitted

    def fit(self) -> None:
        """Size the fitted columns whose text changed shape since the last call to their contents (and header)."""
        for col in sorted(self._dirty):
            self.table.resizeColumnToContents(col)
        self._dirty.clear()
