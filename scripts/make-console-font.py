"""Render the lab's console font: printable ASCII from DejaVu Sans Mono as 8x16 one-bit glyphs.

The rehearsal lab draws each simulated node's console (GRUB's menu, the installer) into the PNG that vcsim's
CreateScreenshot_Task returns, in pure Python; it needs a bitmap font and the lab may not load Qt. This script, run
once by a developer with the desktop wizard's PySide6, writes ``wizard/lab/data/console-font.txt``: one line per
character, its code and 16 rows as hex bytes (bit 7 = leftmost pixel).

Usage: QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make-console-font.py
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QImage, QPainter

FONT_FILE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")  # Debian's fonts-dejavu-core
OUT = Path(__file__).resolve().parents[1] / "wizard" / "lab" / "data" / "console-font.txt"
WIDTH, HEIGHT = 8, 16


def main() -> None:
    app = QGuiApplication([])
    family = QFontDatabase.applicationFontFamilies(QFontDatabase.addApplicationFont(str(FONT_FILE)))[0]
    font = QFont(family)
    font.setPixelSize(13)
    font.setHintingPreference(QFont.HintingPreference.PreferFullHinting)
    font.setStyleStrategy(QFont.StyleStrategy.NoAntialias)
    lines = [
        "# The lab's console font: printable ASCII rendered from DejaVu Sans Mono (Debian fonts-dejavu-core,",
        "# Bitstream Vera / DejaVu license) by scripts/make-console-font.py. One glyph a line: the character code,",
        f"# then {HEIGHT} rows of {WIDTH} pixels as hex bytes, bit 7 the leftmost pixel.",
    ]
    for code in range(0x20, 0x7F):
        image = QImage(WIDTH, HEIGHT, QImage.Format.Format_Grayscale8)
        image.fill(QColor(0, 0, 0))
        painter = QPainter(image)
        painter.setFont(font)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(0, 0, WIDTH, HEIGHT, Qt.AlignmentFlag.AlignCenter, chr(code))
        painter.end()
        rows = []
        for y in range(HEIGHT):
            bits = 0
            for x in range(WIDTH):
                if image.pixelColor(x, y).value() > 96:
                    bits |= 0x80 >> x
            rows.append(f"{bits:02x}")
        lines.append(f"{code:02x} {''.join(rows)}")
    OUT.write_text("\n".join(lines) + "\n")
    del app


if __name__ == "__main__":
    main()
