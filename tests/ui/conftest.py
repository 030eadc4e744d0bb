"""Fixtures for the desktop wizard's tests: offscreen Qt, a private wizard home and an in-memory keyring."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from pytestqt.qtbot import QtBot

from tests.ui.helpers import ISO_SIZE, InMemoryKeyring, random_file, valid_doc, write_project
from wizard.core.redact import REDACTOR
from wizard.ui.bridge import StepsFactory
from wizard.ui.shell import MainWindow


@pytest.fixture(autouse=True)
def ui_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Journals, logs and settings of each test live in a folder of its own."""
    home = tmp_path_factory.mktemp("ui-home")
    monkeypatch.setenv("PALETTE_WIZARD_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def ui_keyring() -> Iterator[InMemoryKeyring]:
    previous = keyring.get_keyring()
    kr = InMemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(previous)
    REDACTOR.clear()


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    return random_file(tmp_path / "appliance.iso", ISO_SIZE)


@pytest.fixture
def project_file(tmp_path: Path, iso: Path) -> Path:
    return write_project(tmp_path, valid_doc())


@pytest.fixture
def make_window(qtbot: QtBot) -> Iterator[Callable[..., MainWindow]]:
    """Builds shown main windows; any run still going at the end is cancelled and waited for."""
    windows: list[MainWindow] = []

    def make(steps: StepsFactory | None = None) -> MainWindow:
        window = MainWindow(steps=steps)
        # No modal question in tests: a test that fails mid-run is closed by pytest-qt, and must not hang there.
        window.confirm_quit_while_running = lambda: True  # type: ignore[method-assign]
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
