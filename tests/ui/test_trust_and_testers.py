"""Trust dialogs asked from worker threads, and the Credentials page's connection tests against real peers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QLineEdit, QMessageBox
from pytestqt.qtbot import QtBot

from tests.integration.sushy_peer import SushyEmulator
from tests.integration.vcsim_peer import DATACENTER, USER, VcsimServer, vcsim_binary_fixture, vcsim_tls_fixture  # noqa: F401
from tests.ui.helpers import valid_doc, write_project
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled
from wizard.core.paths import app_paths
from wizard.core.project import SecretRef, load_project
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustKind, TrustRequest, TrustStore, normalize
from wizard.lab.certs import create_node_certificate
from wizard.lab.maas import MaasState
from wizard.lab.maasserver import MaasServer
from wizard.ui.shell import MainWindow
from wizard.ui.trust import TrustDialog, TrustPrompter, what_is

pytestmark = pytest.mark.ui

MakeWindow = Callable[..., MainWindow]
HEX = "AB:" * 31 + "CD"
OTHER = "12:" * 31 + "34"


def _ask_in_thread(prompter: TrustPrompter, request: TrustRequest, cancel: CancelToken | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def work() -> None:
        try:
            out["trusted"] = prompter.ask(request, cancel)
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    out["thread"] = thread
    thread.start()
    return out


def test_first_contact_is_asked_on_the_gui_thread_and_the_answer_reaches_the_worker(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    window.open_project(project_file)
    request = TrustRequest(TrustKind.SSH, "127.0.10.12", 22, "SHA256:" + "A" * 43, None, "ssh-ed25519")
    out = _ask_in_thread(window.trust, request)
    qtbot.waitUntil(lambda: window.trust.dialog is not None)
    dialog = window.trust.dialog
    assert isinstance(dialog, TrustDialog) and dialog.isVisible()
    assert dialog.what_label.text() == "SSH host key of node node-2"
    assert dialog.address_label.text() == "127.0.10.12:22"
    assert dialog.fingerprint_label.text() == "SHA256:" + "A" * 43
    assert dialog.stop_button.isDefault() and not dialog.trust_button.isDefault()  # Enter never trusts
    assert out["thread"].is_alive()  # the worker waits for the operator
    # Every control of the dialog has a name for screen readers.
    controls = [*dialog.findChildren(QAbstractButton), *dialog.findChildren(QLineEdit)]
    assert controls and [w for w in controls if not w.accessibleName()] == []
    qtbot.mouseClick(dialog.trust_button, Qt.MouseButton.LeftButton)
    out["thread"].join(5)
    assert out == {"thread": out["thread"], "trusted": True}
    assert window.trust.dialog is None

    out = _ask_in_thread(window.trust, request)
    qtbot.waitUntil(lambda: window.trust.dialog is not None)
    qtbot.keyClick(window.trust.dialog, Qt.Key.Key_Return)  # the default answer: not trusted
    out["thread"].join(5)
    assert out["trusted"] is False


def test_a_changed_certificate_needs_the_host_name_typed_and_stop_is_the_default(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    doc = valid_doc()
    doc["provider"] = {"type": "redfish"}
    for i, node in enumerate(doc["nodes"], 1):
        node["bmc"] = {"address": f"https://10.20.0.{i}:8443", "username": "root", "password": {"secret": "bmc"}}
    window = make_window()
    window.open_project(write_project(tmp_path, doc))
    request = TrustRequest(TrustKind.TLS, "10.20.0.3", 8443, OTHER, HEX)
    out = _ask_in_thread(window.trust, request)
    qtbot.waitUntil(lambda: window.trust.dialog is not None)
    dialog = window.trust.dialog
    assert dialog is not None and dialog.warning.isVisible() and "not the one trusted before" in dialog.warning.text()
    assert dialog.what_label.text() == "BMC certificate of node node-3"
    assert dialog.pinned_label.text().replace("\n", ":") == normalize(HEX)
    assert dialog.fingerprint_label.text().replace("\n", ":") == normalize(OTHER)
    assert not dialog.trust_button.isEnabled()
    dialog.accept()  # not even a programmatic accept trusts before the deliberate act
    assert dialog.isVisible()
    assert dialog.confirm_edit is not None
    qtbot.keyClicks(dialog.confirm_edit, "10.20.0.")
    assert not dialog.trust_button.isEnabled()
    qtbot.keyClicks(dialog.confirm_edit, "3")
    assert dialog.trust_button.isEnabled()
    qtbot.mouseClick(dialog.trust_button, Qt.MouseButton.LeftButton)
    out["thread"].join(5)
    assert out["trusted"] is True

    out = _ask_in_thread(window.trust, request)
    qtbot.waitUntil(lambda: window.trust.dialog is not None)
    qtbot.mouseClick(window.trust.dialog.stop_button, Qt.MouseButton.LeftButton)
    out["thread"].join(5)
    assert out["trusted"] is False


def test_cancelling_the_run_withdraws_the_question(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    cancel = CancelToken()
    out = _ask_in_thread(window.trust, TrustRequest(TrustKind.TLS, "vc.example.com", 443, HEX, None), cancel)
    qtbot.waitUntil(lambda: window.trust.dialog is not None)
    dialog = window.trust.dialog
    assert dialog is not None and dialog.what_label.text() == "TLS certificate"  # no project: nothing to match
    cancel.cancel("the operator cancelled the run")
    out["thread"].join(5)
    assert isinstance(out.get("error"), Cancelled)
    qtbot.waitUntil(lambda: window.trust.dialog is None)  # closed (and deleted) by the withdrawal


def test_what_is_names_every_kind_of_host(tmp_path: Path, iso: Path) -> None:
    doc = valid_doc()
    doc["provider"] = {
        "type": "vsphere",
        "vsphere": {
            "server": "vc.example.com",
            "username": "u",
            "password": {"secret": "vc"},
            "datacenter": "DC0",
            "cluster": "C",
            "datastore": "DS",
            "network": "VM Network",
        },
    }
    for i, node in enumerate(doc["nodes"], 1):
        node["vm"] = f"vm-{i}"
    project = load_project(write_project(tmp_path, doc)).project
    assert (
        what_is(TrustRequest(TrustKind.TLS, "VC.example.com", 443, HEX, None), project) == "vCenter server certificate"
    )
    node = project.nodes[0]
    ui = TrustRequest(TrustKind.TLS, node.ip, node.localui_port, HEX, None)
    assert what_is(ui, project) == "Local UI certificate of node node-1"
    vip = TrustRequest(TrustKind.TLS, project.network.vip, 443, HEX, None)
    assert what_is(vip, project) == "Palette system console certificate (the VIP)"
    assert what_is(TrustRequest(TrustKind.SSH, "10.9.9.9", 22, "SHA256:x", None), project) == (
        "SSH host key of an appliance node"
    )


# -- connection tests against real peers -------------------------------------------------------------------------


@pytest.fixture
def bmc() -> Iterator[SushyEmulator]:
    with SushyEmulator(systems=3) as emulator:
        yield emulator


def _answer(qtbot: QtBot, window: MainWindow, *, trust: bool, host: str = "") -> TrustDialog:
    page = window.credentials
    qtbot.waitUntil(lambda: window.trust.dialog is not None or not page.testing, timeout=20_000)
    assert window.trust.dialog is not None, page.test_result.text()
    dialog = window.trust.dialog
    assert dialog is not None
    if trust and dialog.confirm_edit is not None:
        qtbot.keyClicks(dialog.confirm_edit, host)
    qtbot.mouseClick(dialog.trust_button if trust else dialog.stop_button, Qt.MouseButton.LeftButton)
    return dialog


def _test(qtbot: QtBot, window: MainWindow) -> None:
    page = window.credentials
    assert page.test_button.isEnabled(), page.test_hint.text()
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)


def _result(qtbot: QtBot, window: MainWindow) -> str:
    page = window.credentials
    qtbot.waitUntil(lambda: not page.testing, timeout=60_000)
    return page.test_result.text()


@pytest.mark.redfish
def test_redfish_connection_test_logs_in_to_every_bmc_through_the_trust_dialog(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path, bmc: SushyEmulator
) -> None:
    doc = valid_doc()
    doc["provider"] = {"type": "redfish"}
    for i, node in enumerate(doc["nodes"]):
        node["bmc"] = {"address": bmc.address(i), "username": bmc.username, "password": {"secret": "bmc"}}
    SecretStore().set(SecretRef("bmc"), bmc.password)
    window = make_window()
    window.open_project(write_project(tmp_path, doc), goto=MainWindow.CREDENTIALS)
    _test(qtbot, window)
    dialog = _answer(qtbot, window, trust=True)
    assert dialog.what_label.text() == "BMC certificate of node node-1"
    assert dialog.fingerprint_label.text().replace("\n", ":") == normalize(bmc.fingerprint)
    text = _result(qtbot, window)
    assert text.startswith("✓ 3 BMCs answered and accepted the login"), text
    assert window.credentials.test_result.tone.value == "success"
    pinned = TrustStore(app_paths().config).pinned(TrustKind.TLS, bmc.host, bmc.port)
    assert pinned is not None and pinned["fingerprint"] == normalize(bmc.fingerprint)

    # The BMC comes back with another certificate: the operator is warned, with both fingerprints, and stops.
    old = bmc.fingerprint
    bmc.restart(new_certificate=True)
    assert bmc.fingerprint != old
    _test(qtbot, window)
    dialog = _answer(qtbot, window, trust=False)
    assert dialog.request.changed and dialog.request.pinned == normalize(old)
    assert dialog.request.presented == normalize(bmc.fingerprint)
    text = _result(qtbot, window)
    assert window.credentials.test_result.tone.value == "error" and "Certificate changed" in text, text
    assert TrustStore(app_paths().config).pinned(TrustKind.TLS, bmc.host, bmc.port)["fingerprint"] == normalize(old)

    # With a wrong password, and the new certificate trusted deliberately (the host name typed).
    SecretStore().set(SecretRef("bmc"), "not-the-password")
    _test(qtbot, window)
    _answer(qtbot, window, trust=True, host=bmc.host)
    text = _result(qtbot, window)
    assert window.credentials.test_result.tone.value == "error" and "node-1" in text, text
    assert "not-the-password" not in text
    pinned = TrustStore(app_paths().config).pinned(TrustKind.TLS, bmc.host, bmc.port)
    assert pinned is not None and pinned["fingerprint"] == normalize(bmc.fingerprint)


@pytest.mark.maas
def test_maas_connection_test_lists_the_machines_over_pinned_https(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    cert = create_node_certificate(tmp_path / "tls", ip="127.0.0.1", hostname="maas.lab")
    state = MaasState()
    admin = state.add_user("admin", admin=True)
    for i in (1, 2, 3):
        state.add_machine(f"pma-{i}")
    with MaasServer(state, tls=cert.server_context()) as server:
        doc = valid_doc()
        doc["provider"] = {"type": "maas", "maas": {"url": server.url, "api_key": {"secret": "maas-key"}}}
        for i, node in enumerate(doc["nodes"], 1):
            node["maas"] = f"pma-{i}"
        SecretStore().set(SecretRef("maas-key"), admin.api_key)
        window = make_window()
        window.open_project(write_project(tmp_path, doc), goto=MainWindow.CREDENTIALS)
        _test(qtbot, window)
        dialog = _answer(qtbot, window, trust=True)
        assert dialog.what_label.text() == "MAAS region certificate"
        text = _result(qtbot, window)
        assert window.credentials.test_result.tone.value == "success", text
        assert "accepts the key of admin; 3 machines visible" in text

        # Pinned now: a second test asks nothing.
        _test(qtbot, window)
        assert _result(qtbot, window) == text
        assert window.trust.dialog is None


@pytest.mark.vsphere
def test_vsphere_connection_test_logs_in_to_vcenter(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path, vcsim_tls: VcsimServer
) -> None:
    doc = valid_doc()
    doc["provider"] = {
        "type": "vsphere",
        "vsphere": {
            "server": vcsim_tls.host,
            "port": vcsim_tls.port,
            "username": USER,
            "password": {"secret": "vc"},
            "datacenter": DATACENTER,
            "cluster": "DC0_C0",
            "datastore": "LocalDS_0",
            "network": "VM Network",
        },
    }
    for i, node in enumerate(doc["nodes"], 1):
        node["vm"] = f"palette-node-{i}"
    SecretStore().set(SecretRef("vc"), "vcsim-Pass1")
    window = make_window()
    window.open_project(write_project(tmp_path, doc), goto=MainWindow.CREDENTIALS)
    _test(qtbot, window)
    dialog = _answer(qtbot, window, trust=True)
    assert dialog.what_label.text() == "vCenter server certificate"
    text = _result(qtbot, window)
    assert window.credentials.test_result.tone.value == "success", text
    assert f"as {USER}" in text and DATACENTER in text


def test_closing_with_unsaved_edits_asks_and_cancel_keeps_the_window(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    window.open_project(project_file)
    window.document.set(("network", "vip"), "127.0.10.51")
    assert window.document.dirty
    asked: list[str] = []

    def answer(choice: QMessageBox.StandardButton) -> Callable[[], QMessageBox.StandardButton]:
        def ask() -> QMessageBox.StandardButton:
            asked.append(choice.name)
            return choice

        return ask

    window.confirm_discard_edits = answer(QMessageBox.StandardButton.Cancel)  # type: ignore[method-assign]
    assert not window.close() and window.isVisible()
    window.confirm_discard_edits = answer(QMessageBox.StandardButton.Save)  # type: ignore[method-assign]
    assert window.close()
    assert asked == ["Cancel", "Save"]
    assert "127.0.10.51" in project_file.read_text()
