"""The application's icon and metadata from ``resources/``, found beside the source tree or in a frozen bundle.

Everything here is optional: a missing or unreadable file leaves Qt's defaults, never stops the wizard.
"""

from __future__ import annotations

import json
import logging
import sys
from functools import cache
from pathlib import Path
from typing import Any

from PySide6.QtGui import QIcon

log = logging.getLogger(__name__)

ICON_STEM = "palette-wizard"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def resource_dirs() -> list[Path]:
    """Where ``resources/`` may be: a PyInstaller bundle's folder first, then the repository beside the package."""
    out: list[Path] = []
    bundle = getattr(sys, "_MEIPASS", None)
    if isinstance(bundle, str):
        out.append(Path(bundle) / "resources")
    out.append(Path(__file__).resolve().parents[2] / "resources")
    return [p for p in out if p.is_dir()]


def find_resource(*names: str) -> Path | None:
    """The first of ``names`` (relative to ``resources/``) that exists."""
    for folder in resource_dirs():
        for name in names:
            path = folder / name
            if path.is_file():
                return path
    return None


@cache
def app_metadata() -> dict[str, Any]:
    path = find_resource("app.json")
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("application metadata %s unreadable: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def window_icon() -> QIcon | None:
    """Every size of the icon there is (PNG renditions, else the SVG, else the single PNG); None when none is."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = find_resource(f"icons/{ICON_STEM}-{size}.png")
        if path is not None:
            icon.addFile(str(path))
    if icon.isNull():
        path = find_resource(f"icons/{ICON_STEM}.svg", f"{ICON_STEM}.svg", f"{ICON_STEM}.png")
        if path is not None:
            icon = QIcon(str(path))
    return None if icon.isNull() else icon
