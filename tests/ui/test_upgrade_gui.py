"""The Upgrade page (day 2): reached from Welcome for an installed project, it shows the installed release, the one
the chosen bundle spells and whether that hop is supported, and runs the upgrade with its progress."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.integration.kept import install_kept
from wizard.core.runner import ExitCode
from wizard.rehearsal import Rehearsal
from wizard.ui.rehearsal import rehearsal_window
from wizard.ui.shell import MainWindow, StepState
from wizard.ui.widgets import Tone

pytestmark = [pytest.mark.ui, pytest.mark.lab, pytest.mark.upgrade]


def test_a_project_not_installed_offers_no_upgrade(make_window, project_file: Path) -> None:  # type: ignore[no-untyped-def]
    window: MainWindow = make_window()
    window.open_project(project_file)
    assert not window.welcome.upgrade_button.isEnabled()
    assert window.go_to(MainWindow.UPGRADE)  # reachable once a project is open, independent of the install pages
    page = window.upgrade
    assert not page.installed and "has not been installed by this wizard yet" in page.installed_label.text()
    assert not page.start_button.isEnabled()


@pytest.mark.timeout(240)
def test_the_upgrade_page_upgrades_a_kept_rehearsal(qtbot: QtBot, tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    rehearsal = Rehearsal.reopen(folder)
    rehearsal.prepare()
    try:
        window = rehearsal_window(rehearsal)
        window.confirm_quit_while_running = lambda: True  # type: ignore[method-assign]
        qtbot.addWidget(window)
        window.show()
        assert window.go_to(MainWindow.WELCOME)
        assert window.welcome.upgrade_button.isEnabled()
        qtbot.mouseClick(window.welcome.upgrade_button, Qt.MouseButton.LeftButton)
        assert window.current == MainWindow.UPGRADE
        assert window.step_state(MainWindow.UPGRADE) is StepState.CURRENT
        page = window.upgrade
        assert page.current == "4.9.38" and "4.9.38" in page.installed_label.text()
        assert page.bundle() == rehearsal.upgrade_bundle  # the bundle the rehearsal wrote is offered
        assert "spells 4.9.44" in page.target_label.text() and "core-content-4.9.44" in page.signature_label.text()
        assert page.path_banner.isVisible() and page.path_banner.tone is Tone.SUCCESS
        assert "4.9.38 → 4.9.44" in page.path_banner.text()
        # A 4.8 appliance would be refused before the run, with the path to take.
        page.current = "4.8.47"
        page._judge()
        assert page.path_refused() and "4.8.47 → 4.9.14 → 4.9.44" in page.path_banner.text()
        assert not page.start_button.isEnabled()
        page.refresh()
        assert page.start_button.isEnabled()

        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page.last_result is not None and not window.controller.running, timeout=180_000)
        assert page.last_result is not None and page.last_result.exit_code is ExitCode.DONE, page.last_result
        assert page.overall.value() == page.overall.maximum()
        assert page.done_banner.isVisible() and "4.9.44" in page.done_banner.text()
        assert page.current == "4.9.44" and page.is_done()
        lines = [page.jobs.item(i).text() for i in range(page.jobs.count())]
        assert any(line.startswith("✓ Upgrade") for line in lines) and not any(line.startswith("✗") for line in lines)
        window.close()
    finally:
        rehearsal.close()
