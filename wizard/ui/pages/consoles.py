"""The booting nodes' consoles on the Install page: the latest vSphere screenshot of each VM, refreshed while it
boots, so an operator sees GRUB's menu or the installer without opening the vSphere client.

The run writes them as plain files (``<session>/screens/<node>.png``, :class:`wizard.providers.vsphere.console.
ConsoleScreens`); this widget only looks at the files' modification times, at most once a second, and reloads the
ones that changed. It stays hidden while there is nothing to show (other providers, or a vCenter without
screenshots).
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

THUMB_WIDTH = 320
CHECK_EVERY = 1.0  # seconds between looks at the folder


class ConsoleScreensView(QWidget):
    """A row of the nodes' console screenshots, each with its node's name and the time it was taken."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder: Path | None = None
        self._seen: dict[str, float] = {}  # node -> modification time shown
        self._tiles: dict[str, tuple[QLabel, QLabel]] = {}
        self._boxes: list[QWidget] = []
        self._checked = 0.0
        self.title = QLabel(self.tr("Consoles (vSphere screenshots)"), self)
        self.strip = QWidget(self)
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(0, 0, 0, 0)
        self.strip_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(self.strip)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setAccessibleName(self.tr("Consoles of the booting nodes"))
        # A thumbnail (consoles are 8:5) and its caption, with room for the scroll bar.
        line = self.fontMetrics().height()
        scroll.setMinimumHeight(THUMB_WIDTH * 5 // 8 + 3 * line + 12)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(scroll)
        self.setVisible(False)

    def set_folder(self, folder: Path | None) -> None:
        """The session's screenshot folder (a new session forgets the old session's screens)."""
        if folder == self.folder:
            return
        self.folder = folder
        self._seen.clear()
        for box in self._boxes:
            box.deleteLater()
        self._boxes.clear()
        self._tiles.clear()
        self._checked = 0.0
        self.setVisible(False)
        self.refresh(force=True)

    def nodes(self) -> list[str]:
        return sorted(self._tiles)

    def refresh(self, *, force: bool = False) -> None:
        """Reload the screenshots whose files changed (at most once a second unless ``force``)."""
        now = time.monotonic()
        if self.folder is None or (not force and now - self._checked < CHECK_EVERY):
            return
        self._checked = now
        try:
            files = sorted(self.folder.glob("*.png"))
        except OSError:
            return
        for path in files:
            node = path.stem
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self._seen.get(node) == mtime:
                continue
            pixmap = QPixmap()
            if not pixmap.loadFromData(path.read_bytes(), "PNG"):
                continue  # being replaced right now: the next look gets it
            self._seen[node] = mtime
            image, caption = self._tile(node)
            image.setPixmap(pixmap.scaledToWidth(THUMB_WIDTH, Qt.TransformationMode.SmoothTransformation))
            taken = time.strftime("%H:%M:%S", time.localtime(mtime))
            caption.setText(self.tr("{node} — {time}").format(node=node, time=taken))
            image.setToolTip(self.tr("Console of {node}, taken at {time}").format(node=node, time=taken))
        if self._tiles and not self.isVisible():
            self.setVisible(True)

    def _tile(self, node: str) -> tuple[QLabel, QLabel]:
        if node in self._tiles:
            return self._tiles[node]
        box = QWidget(self.strip)
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        image = QLabel(box)
        image.setAccessibleName(self.tr("Console of {node}").format(node=node))
        image.setMinimumWidth(THUMB_WIDTH)
        caption = QLabel(node, box)
        box_layout.addWidget(image, 0, Qt.AlignmentFlag.AlignTop)
        box_layout.addWidget(caption, 0, Qt.AlignmentFlag.AlignTop)
        box_layout.addStretch(1)  # the caption right under its console, whatever the row's height
        self.strip_layout.insertWidget(len(self._tiles), box)
        self._boxes.append(box)
        self._tiles[node] = (image, caption)
        return image, caption
