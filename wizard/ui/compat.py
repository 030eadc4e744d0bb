"""Refuse to start on a Qt binding build known to crash the interpreter.

PySide6 6.12.0's wheels return ``None`` from void methods without taking a reference for the caller. From Python
3.12 on ``None`` is immortal and nothing happens; on 3.11 every such call drops a reference, and after a few
thousand calls CPython aborts with "none_dealloc: deallocating None" — minutes into a run of the wizard. The
project pins that release out; this check catches an environment that installed it anyway, before any work starts.
"""

from __future__ import annotations

import sys

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QObject

_PROBE_CALLS = 64


def binding_drops_none_references() -> bool:
    """True when a void Qt call costs ``None`` a reference (measured, not guessed from version numbers)."""
    if sys.version_info >= (3, 12):
        return False  # None is immortal
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")
    return sys.getrefcount(None) <= before - _PROBE_CALLS // 2


def binding_problem() -> str | None:
    """Why this Qt binding cannot run the wizard, or None."""
    if binding_drops_none_references():
        return (
            f"PySide6 {pyside_version} has a reference-counting bug on Python "
            f"{sys.version_info.major}.{sys.version_info.minor} that crashes long-running windows. "
            "Install another release: pip install 'PySide6!=6.12.0' (or use Python 3.12 or newer)."
        )
    return None
