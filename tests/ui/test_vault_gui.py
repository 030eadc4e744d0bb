"""The desktop wizard on a jump host without a working keyring: a vault opened for it, or a backend that fails."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.core.test_vault import CHEAP, PASSPHRASE, assert_no_plaintext
from tests.support.keyrings import BrokenKeyring
from tests.ui.helpers import valid_doc, write_project
from wizard.core.secrets import SecretStore
from wizard.core.vault import Vault
from wizard.install.steps import pipeline
from wizard.ui.shell import MainWindow

pytestmark = pytest.mark.ui


def _doc() -> dict[str, object]:
    return valid_doc(appliance={"password": {"secret": "node-password"}})


def _window(qtbot: QtBot, secrets: SecretStore | None) -> MainWindow:
    window = MainWindow(steps=lambda: pipeline(until="preflight"), secrets=secrets)
    qtbot.addWidget(window)
    window.show()
    return window


def test_secrets_typed_in_the_wizard_go_to_the_vault(qtbot: QtBot, tmp_path: Path) -> None:
    vault = Vault.open(tmp_path / "jump.vault", PASSPHRASE, create=True, n=CHEAP)
    window = _window(qtbot, SecretStore(vault=vault))
    window.open_project(write_project(tmp_path, _doc()), goto=MainWindow.CREDENTIALS)
    page = window.credentials
    key = next(iter(page.rows))
    row = page.rows[key]
    qtbot.waitUntil(lambda: row.status_label.text() == "✗ not stored")
    secret = "typed-into-the-wizard-1"
    qtbot.keyClicks(row.edit, secret)
    qtbot.mouseClick(row.store_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.status_label.text() == "✓ stored")
    assert Vault.open(vault.path, PASSPHRASE).get(key) == secret
    assert_no_plaintext(vault.path, [secret])


def test_a_keyring_backend_that_raises_is_shown_not_a_crash(qtbot: QtBot, tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    try:
        window = _window(qtbot, None)
        window.open_project(write_project(tmp_path, _doc()), goto=MainWindow.CREDENTIALS)
        row = next(iter(window.credentials.rows.values()))
        qtbot.waitUntil(lambda: "Keyring backend failed" in row.message.text())
        assert row.status_label.text() == "⚠ cannot check" and not row.message.isHidden()
        qtbot.keyClicks(row.edit, "typed-into-the-wizard-1")
        qtbot.mouseClick(row.store_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not row.storing)
        assert "failed to store secret" in row.message.text() and "--vault" in row.message.text()
        assert window.isVisible()
    finally:
        keyring.set_keyring(previous)


def test_the_credentials_page_names_the_vault(qtbot: QtBot, tmp_path: Path) -> None:
    vault = Vault.open(tmp_path / "jump.vault", PASSPHRASE, create=True, n=CHEAP)
    window = _window(qtbot, SecretStore(vault=vault))
    window.open_project(write_project(tmp_path, _doc()), goto=MainWindow.CREDENTIALS)
    from PySide6.QtWidgets import QLabel

    texts = [label.text() for label in window.credentials.findChildren(QLabel)]
    assert f"Encrypted vault: {vault.path}" in texts
