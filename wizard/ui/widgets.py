"""Small widgets the pages share: headings, banners and the error panel."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from wizard.core.redact import redact
from wizard.ui.theme import Status, banner_colours


def heading(text: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * 1.5)
    font.setBold(True)
    label.setFont(font)
    label.setAccessibleName(text)
    return label


def paragraph(text: str = "", parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)  # paths and engine messages may contain '<'
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def focus_style(selector: str, base: str = "") -> str:
    """A style sheet for ``selector`` that keeps a visible focus frame (a style sheet replaces the native one)."""
    return (
        f"{selector} {{ {base} border: 2px solid transparent; }}"
        f"{selector}:focus {{ border: 2px solid palette(highlight); }}"
    )


def ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    """A question whose safe answer is No: Enter or Escape keeps things as they are. Title and text come translated."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def error_text(error: Mapping[str, str]) -> str:
    """An error as plain text for the clipboard or a support request: title, message, what to do, details."""
    parts = [error.get("title", "") or "Error", error.get("message", "")]
    if error.get("remediation"):
        parts.append(f"What to do: {error['remediation']}")
    if error.get("details"):
        parts.append(f"Details:\n{error['details']}")
    return redact("\n".join(p for p in parts if p))


def button(text: str, accessible_name: str, parent: QWidget | None = None) -> QPushButton:
    b = QPushButton(text, parent)
    b.setAccessibleName(accessible_name)
    return b


class Tone(StrEnum):
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


#: Each tone's colours come from the palette (see wizard.ui.theme): tinted from the window's own background and
#: at least 4.5:1 for the text, so a banner reads as well in a dark theme as in a light one.
_STATUS: dict[Tone, Status] = {
    Tone.INFO: Status.INFO,
    Tone.SUCCESS: Status.DONE,
    Tone.WARNING: Status.WARNING,
    Tone.ERROR: Status.FAILED,
}


def _tone_style(selector: str, tone: Tone) -> str:
    fg, bg, border = (c.name() for c in banner_colours(_STATUS[tone]))
    return (
        f"{selector} {{ background: {bg}; border: 1px solid {border}; border-radius: 4px; }}"
        f"{selector} QLabel {{ color: {fg}; background: transparent; border: none; }}"
    )


class Banner(QFrame):
    """A one-paragraph coloured notice; hidden until it has something to say."""

    def __init__(self, tone: Tone = Tone.INFO, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = paragraph("", self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.label)
        self.set_tone(tone)
        self.hide()

    def set_tone(self, tone: Tone) -> None:
        self.tone = tone
        self.setStyleSheet(_tone_style("QFrame#banner", tone))

    def show_text(self, text: str, tone: Tone | None = None) -> None:
        if tone is not None:
            self.set_tone(tone)
        self.label.setText(redact(text))
        self.setAccessibleName(f"{self.tone.value}: {redact(text)}")
        self.show()

    def text(self) -> str:
        return self.label.text()


class ErrorPanel(QFrame):
    """What went wrong, what to do about it, the details on request, and a way to try again."""

    retry_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorPanel")
        self.setStyleSheet(_tone_style("QFrame#errorPanel", Tone.ERROR))
        self.title_label = paragraph("", self)
        font = QFont(self.title_label.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title_label.setFont(font)
        self.message_label = paragraph("", self)
        self.remediation_label = paragraph("", self)

        self.details_toggle = QToolButton(self)
        self.details_toggle.setText(self.tr("Show &details"))
        self.details_toggle.setAccessibleName(self.tr("Show error details"))
        self.details_toggle.setCheckable(True)
        self.details_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.details_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_toggle.toggled.connect(self._toggle_details)

        self.copy_button = button(self.tr("C&opy details"), self.tr("Copy the error's details"), self)
        self.copy_button.setToolTip(self.tr("The title, message, what to do and the details, for a support request"))
        self.copy_button.clicked.connect(self.copy)
        self.retry_button = button(self.tr("Re&try"), self.tr("Retry the run"), self)
        self.retry_button.setToolTip(self.tr("Run again; the steps that already finished are skipped"))
        self.retry_button.clicked.connect(self.retry_requested)

        self.details = QTextEdit(self)
        self.details.setReadOnly(True)
        self.details.setAccessibleName(self.tr("Error details"))
        self.details.setLineWrapMode(QTextEdit.LineWrapMode.NoWrap)
        self.details.setMaximumHeight(130)
        self.details.setTabChangesFocus(True)
        self.details.hide()
        self.error: dict[str, str] = {}

        row = QHBoxLayout()
        row.addWidget(self.details_toggle)
        row.addStretch(1)
        row.addWidget(self.copy_button)
        row.addWidget(self.retry_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(6)
        layout.addWidget(self.title_label)
        layout.addWidget(self.message_label)
        layout.addWidget(self.remediation_label)
        layout.addLayout(row)
        layout.addWidget(self.details)
        self.hide()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(error_text(self.error))
        self.copy_button.setText(self.tr("C&opied"))

    def show_error(self, error: Mapping[str, str]) -> None:
        self.error = dict(error)
        self.copy_button.setText(self.tr("C&opy details"))
        title = redact(error.get("title", "") or self.tr("The run failed"))
        self.title_label.setText(title)
        self.message_label.setText(redact(error.get("message", "")))
        self.message_label.setVisible(bool(error.get("message")))
        remediation = error.get("remediation", "")
        self.remediation_label.setText(
            self.tr("What to do: {text}").format(text=redact(remediation)) if remediation else ""
        )
        self.remediation_label.setVisible(bool(remediation))
        details = redact(error.get("details", ""))
        self.details.setPlainText(details)
        self.details_toggle.setVisible(bool(details))
        self.details_toggle.setChecked(False)  # collapsed by default, every time
        self.setAccessibleName(self.tr("Error: {title}").format(title=title))
        self.show()

    def _toggle_details(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.details_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.details_toggle.setText(self.tr("Hide &details") if shown else self.tr("Show &details"))
