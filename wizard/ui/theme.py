"""Colours from the palette's roles, readable in light and dark themes alike.

A status colour (done, failed, warning) or a banner's tone starts from a hue and is then made as light or as dark as
it must be to keep a contrast of at least 4.5:1 (WCAG AA for text) against the background it is drawn on — the
palette's Base for table cells, Window for the step list, the banner's own tinted background for banners. So "done"
is a dark green on white and a light green on near-black, never dark green on near-black.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtGui import QColor, QGuiApplication, QPalette

#: WCAG AA for normal text.
MIN_CONTRAST = 4.5


class Status(StrEnum):
    DONE = "done"
    FAILED = "failed"
    WARNING = "warning"
    INFO = "info"


#: The hue each status starts from (the light theme's colour).
HUES: dict[Status, str] = {
    Status.DONE: "#1d6b22",
    Status.FAILED: "#a31515",
    Status.WARNING: "#8a5a00",
    Status.INFO: "#0b4f8a",
}


def luminance(colour: QColor) -> float:
    """Relative luminance (WCAG 2)."""

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast(a: QColor, b: QColor) -> float:
    la, lb = luminance(a), luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def is_dark(background: QColor) -> bool:
    return luminance(background) < 0.2


def readable(hue: QColor | str, background: QColor, minimum: float = MIN_CONTRAST) -> QColor:
    """``hue`` made lighter (on a dark background) or darker (on a light one) until it reads on ``background``."""
    colour = QColor(hue)
    dark = is_dark(background)
    h, s, lightness, a = colour.hslHueF(), colour.hslSaturationF(), colour.lightnessF(), colour.alphaF()
    h = max(h, 0.0)  # achromatic colours report -1
    for _ in range(40):
        if contrast(colour, background) >= minimum:
            return colour
        lightness = min(1.0, lightness + 0.03) if dark else max(0.0, lightness - 0.03)
        colour = QColor.fromHslF(h, s, lightness, a)
    return QColor("white") if dark else QColor("black")


def palette() -> QPalette:
    app = QGuiApplication.instance()
    return QGuiApplication.palette() if app is not None else QPalette()


def status_colour(status: Status, role: QPalette.ColorRole = QPalette.ColorRole.Base) -> QColor:
    """The text colour of a status on the palette's ``role`` background."""
    return readable(HUES[status], palette().color(role))


_HEX: dict[tuple[Status, QPalette.ColorRole, int], str] = {}


def status_hex(status: Status | None, role: QPalette.ColorRole = QPalette.ColorRole.Base) -> str | None:
    """:func:`status_colour` as ``#rrggbb`` (None for None: the style's own text colour); computed once per
    palette, as pages ask for it on every redraw."""
    if status is None:
        return None
    key = (status, role, palette().color(role).rgba())
    made = _HEX.get(key)
    if made is None:
        made = _HEX[key] = status_colour(status, role).name()
    return made


def tinted(hue: QColor | str, background: QColor, amount: float = 0.12) -> QColor:
    """A background of ``hue`` faintly over ``background`` (a banner's fill in either theme)."""
    h = QColor(hue)
    mix = 0.28 if is_dark(background) else amount
    return QColor.fromRgbF(
        background.redF() * (1 - mix) + h.redF() * mix,
        background.greenF() * (1 - mix) + h.greenF() * mix,
        background.blueF() * (1 - mix) + h.blueF() * mix,
    )


def banner_colours(status: Status) -> tuple[QColor, QColor, QColor]:
    """(text, fill, border) of a banner in the current palette."""
    window = palette().color(QPalette.ColorRole.Window)
    fill = tinted(HUES[status], window)
    border = readable(HUES[status], fill, 2.0)
    return readable(HUES[status], fill), fill, border


def dark_palette() -> QPalette:
    """A dark palette for every role the wizard draws with (a desktop in dark mode gives its own; the screenshots
    and tests use this one to show the pages in the dark)."""
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#26282b",
        QPalette.ColorRole.ToolTipBase: "#2d2f31",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2d2f31",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Light: "#3c4043",
        QPalette.ColorRole.Midlight: "#34373a",
        QPalette.ColorRole.Mid: "#2a2c2f",
        QPalette.ColorRole.Dark: "#111214",
        QPalette.ColorRole.Shadow: "#000000",
        QPalette.ColorRole.Highlight: "#3d6fb6",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#8ab4f8",
        QPalette.ColorRole.LinkVisited: "#c58af9",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7b7f83"))
    return palette
