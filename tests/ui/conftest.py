"""Fixtures for the desktop wizard's tests (the wizard home and in-memory keyring come from tests/conftest.py)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from tests.support.projects import appliance_iso
from tests.ui.helpers import ISO_SIZE, valid_doc, write_project
from wizard.install.steps import pipeline
from wizard.ui.bridge import StepsFactory
from wizard.ui.shell import MainWindow


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    return appliance_iso(tmp_path / "appliance.iso", ISO_SIZE)


@pytest.fixture
def project_file(tmp_path: Path, iso: Path) -> Path:
    return write_project(tmp_path, valid_doc())


@pytest.fixture
def make_window(qtbot: QtBot) -> Iterator[Callable[..., MainWindow]]:
    """Builds shown main windows; any run still going at the end is cancelled and waited for."""
    windows: list[MainWindow] = []

    def make(steps: StepsFactory | None = None) -> MainWindow:
        # The sample projects name nodes that do not exist: by default a run stops after the preflight checks.
        window = MainWindow(steps=steps or (lambda: pipeline(until="preflight")))
        # No modal question in tests: a test that fails mid-run is closed by pytest-qt, and must not hang there.
        window.confirm_quit_while_running = lambda: True  # type: ignore[method-assign]
        window.confirm_discard_edits = lambda: QMessageBox.StandardButton.Discard  # type: ignore[method-assign]
        window.run.confirm_cancel = lambda: True  # type: ignore[method-assign]
        # What a project touches is confirmed as it is opened, so Start starts (the Review page's own tests ask).
        opened = window.open_project

        def open_and_confirm(path: Path, **options: Any) -> bool:
            valid = opened(path, **options)
            window.review.confirm()
            return valid

        window.open_project = open_and_confirm  # type: ignore[method-assign]
        qtbot.addWidget(window)
        window.show()
        window.activateWindow()  # mnemonics (Alt+N …) only fire in the active window
        qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
        windows.append(window)
        return window

    yield make
    # pytest-qt may already have closed and deleted the windows; the worker threads are what must be gone.
    for window in windows:
        controller = window.controller
        controller.cancel("test teardown")
        assert controller.wait(15.0), "a run was still going 15 s after it was cancelled"
