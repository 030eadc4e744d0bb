"""The installed Qt binding survives a long run: void calls must not cost None references."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject

from wizard.ui import compat

pytestmark = pytest.mark.ui


def test_many_void_qt_calls_do_not_exhaust_none() -> None:
    # Far more calls than None has references in a fresh interpreter: on an affected build CPython aborts the
    # whole test run here with "deallocating None".
    probe = QObject()
    for _ in range(200_000):
        probe.setObjectName("probe")
    assert sys.getrefcount(None) > 0
    assert compat.binding_problem() is None
