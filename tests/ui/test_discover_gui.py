"""The Nodes page's "Discover…" dialog against real peers (MAAS fake, sushy-tools) and with injected discoveries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.integration.sushy_peer import SushyEmulator
from tests.ui.helpers import valid_doc, write_project
from tests.ui.test_pages_input import _unnamed
from wizard.core.cancel import CancelToken
from wizard.core.project import ProviderType, SecretRef
from wizard.core.secrets import SecretStore
from wizard.core.trust import normalize
from wizard.install.discovery import Candidate, Discovery
from wizard.lab.certs import create_node_certificate
from wizard.lab.maas import MaasState, Status
from wizard.lab.maasserver import MaasServer
from wizard.ui.pages.discover import DiscoverDialog
from wizard.ui.shell import MainWindow

pytestmark = pytest.mark.ui

MakeWindow = Callable[..., MainWindow]
KEY = "maas-key"


def _maas_doc(url: str) -> dict[str, Any]:
    doc = valid_doc()
    doc["provider"] = {"type": "maas", "maas": {"url": url, "api_key": {"secret": KEY}}}
    for i, node in enumerate(doc["nodes"], 1):
        node["maas"] = f"taken-{i}"
    doc["nodes"][0]["maas"] = "pma-1"  # already in the table, by host name
    return doc


def _open_dialog(qtbot: QtBot, window: MainWindow) -> DiscoverDialog:
    page = window.nodes
    assert page.discover_button.isEnabled(), page.discover_button.toolTip()
    qtbot.mouseClick(page.discover_button, Qt.MouseButton.LeftButton)
    dialog = page.discover_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def _wait_done(qtbot: QtBot, dialog: DiscoverDialog) -> None:
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)


def _node(window: MainWindow, row: int) -> dict[str, Any]:
    node = window.document.get(("nodes", row))
    assert isinstance(node, dict)
    return node


@pytest.mark.maas
def test_maas_machines_are_picked_through_the_trust_dialog_and_added_as_nodes(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    cert = create_node_certificate(tmp_path / "tls", ip="127.0.0.1", hostname="maas.lab")
    state = MaasState()
    admin = state.add_user("admin", admin=True)
    state.add_user("bob")
    for i in (1, 2, 3):
        state.add_machine(f"pma-{i}", system_id=f"abc{i}de", zone=f"rack-{i}", cpu_count=16, memory=32768)
    state.add_machine("pma-4", system_id="abc4de", cpu_count=16, memory=32768)
    state.machine("abc4de").status = Status.ALLOCATED
    state.machine("abc4de").owner = "bob"
    with MaasServer(state, tls=cert.server_context()) as server:
        SecretStore().set(SecretRef(KEY), admin.api_key)
        window = make_window()
        window.open_project(write_project(tmp_path, _maas_doc(server.url)), goto=MainWindow.NODES)
        dialog = _open_dialog(qtbot, window)
        # First contact with the region: the trust dialog asks on the GUI thread while discovery waits.
        qtbot.waitUntil(lambda: window.trust.dialog is not None, timeout=20_000)
        trust_dialog = window.trust.dialog
        assert trust_dialog is not None and trust_dialog.what_label.text() == "MAAS region certificate"
        assert trust_dialog.fingerprint_label.text().replace("\n", ":") == normalize(cert.fingerprint)
        qtbot.mouseClick(trust_dialog.trust_button, Qt.MouseButton.LeftButton)
        _wait_done(qtbot, dialog)

    assert not dialog.error.isVisible(), dialog.error.title_label.text()
    assert dialog.table.rowCount() == 4
    assert "4 found" in dialog.status.text() and "3 can be nodes" in dialog.status.text()
    labels = [dialog.table.item(r, 0).text() for r in range(4)]
    assert labels == ["pma-1 (abc1de)", "pma-2 (abc2de)", "pma-3 (abc3de)", "pma-4 (abc4de)"]
    bobs = dialog.table.item(3, 0)
    assert not bobs.flags() & Qt.ItemFlag.ItemIsEnabled and not bobs.flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert "belongs to bob" in bobs.toolTip()
    assert "belongs to bob" in str(bobs.data(Qt.ItemDataRole.AccessibleDescriptionRole))
    assert "zone rack-2" in dialog.table.item(1, 1).text()
    assert not dialog.add_button.isEnabled()  # nothing checked yet

    # Keyboard: Space on the current row checks it; "Check all usable" checks the rest.
    dialog.table.setFocus()
    dialog.table.setCurrentCell(1, 0)
    qtbot.keyClick(dialog.table, Qt.Key.Key_Space)
    assert dialog.table.item(1, 0).checkState() == Qt.CheckState.Checked
    qtbot.mouseClick(dialog.select_button, Qt.MouseButton.LeftButton)
    dialog.set_checked(3)  # cannot be checked: unusable
    assert [c.key for c in dialog.chosen()] == ["abc1de", "abc2de", "abc3de"]
    assert dialog.add_button.isEnabled()
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()

    page = window.nodes
    nodes = window.document.get(("nodes",))
    assert len(nodes) == 5
    assert _node(window, 0)["maas"] == "pma-1" and _node(window, 0)["name"] == "node-1"  # untouched
    assert _node(window, 3) == {"name": "node-4", "maas": "abc2de", "hostname": "pma-2"}
    assert _node(window, 4) == {"name": "node-5", "maas": "abc3de", "hostname": "pma-3"}
    report = "\n".join(page.import_lines)
    assert "Added 2 node(s)" in report and "pma-1 (abc1de) skipped: it is already node node-1" in report
    assert page.table.rowCount() == 5 and page.table.currentRow() == 3
    assert page.table.item(3, page.column_index("maas")).text() == "abc2de"


@pytest.mark.maas
def test_a_wrong_maas_key_shows_the_error_with_what_to_do(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    state = MaasState()
    admin = state.add_user("admin", admin=True)
    state.add_machine("pma-1")
    with MaasServer(state) as server:
        consumer, token, _ = admin.api_key.split(":")
        SecretStore().set(SecretRef(KEY), f"{consumer}:{token}:wrongsecret")
        window = make_window()
        window.open_project(write_project(tmp_path, _maas_doc(server.url)), goto=MainWindow.NODES)
        dialog = _open_dialog(qtbot, window)
        _wait_done(qtbot, dialog)
    assert dialog.error.isVisible() and dialog.table.rowCount() == 0
    assert dialog.error.title_label.text()
    assert dialog.error.remediation_label.text().startswith("What to do:")
    assert "wrongsecret" not in dialog.error.message_label.text()
    # Try again from the error panel: the same answer, asked again on a worker.
    qtbot.mouseClick(dialog.error.retry_button, Qt.MouseButton.LeftButton)
    _wait_done(qtbot, dialog)
    assert dialog.error.isVisible()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and len(window.document.get(("nodes",))) == 3


@pytest.fixture
def bmc() -> Iterator[SushyEmulator]:
    with SushyEmulator(tls=True, auth=True, systems=3) as emu:
        yield emu


@pytest.mark.redfish
def test_redfish_lists_the_systems_of_the_current_rows_bmc(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path, bmc: SushyEmulator
) -> None:
    doc = valid_doc()
    doc["provider"] = {"type": "redfish"}
    doc["nodes"] = doc["nodes"][:1]
    doc["nodes"][0]["bmc"] = {
        "address": bmc.address(0),
        "username": bmc.username,
        "password": {"secret": "bmc"},
        "tls_fingerprint": bmc.fingerprint,
    }
    SecretStore().set(SecretRef("bmc"), bmc.password)
    window = make_window()
    window.open_project(write_project(tmp_path, doc), goto=MainWindow.NODES)
    dialog = _open_dialog(qtbot, window)
    # Prefilled from the row (the BMC, not its System), so the listing starts at once; the pin is the project's.
    assert dialog.address_edit.text() == bmc.base_url and dialog.bmc_box.isVisible()
    _wait_done(qtbot, dialog)
    assert window.trust.dialog is None
    assert dialog.table.rowCount() == 3, dialog.status.text()
    assert [dialog.table.item(r, 0).text().split()[0] for r in range(3)] == ["node-0", "node-1", "node-2"]
    assert "power Off" in dialog.table.item(0, 1).text()
    qtbot.mouseClick(dialog.select_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)

    page = window.nodes
    assert len(window.document.get(("nodes",))) == 3
    for row, system in ((1, 1), (2, 2)):
        assert _node(window, row)["bmc"] == {
            "address": bmc.address(system),
            "username": bmc.username,
            "password": {"secret": "bmc"},
            "tls_fingerprint": bmc.fingerprint,
        }
    assert _node(window, 1)["name"] == "node-2" and _node(window, 2)["name"] == "node-3"
    assert "skipped: it is already node node-1" in "\n".join(page.import_lines)
    assert page.table.item(2, page.column_index("bmc_address")).text() == bmc.address(2)

    # A typed BMC with an empty field is not asked; the dialog says what is missing.
    dialog = _open_dialog(qtbot, window)
    _wait_done(qtbot, dialog)
    dialog.user_edit.clear()
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    assert not dialog.running and "user" in dialog.status.text()
    dialog.reject()


class Blocking:
    """A discovery that answers only when cancelled (a slow vCenter): proves Cancel reaches the worker."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def __call__(self, provider: Any, secrets: Any, trust: Any, confirm: Any, cancel: CancelToken, **kw: Any) -> Any:
        self.thread = threading.current_thread()
        self.started.set()
        try:
            cancel.sleep(120)
        finally:
            self.stopped.set()
        return Discovery(ProviderType.VSPHERE, ())


def _vsphere_doc(mode: str) -> dict[str, Any]:
    doc = valid_doc()
    doc["provider"] = {
        "type": "vsphere",
        "vsphere": {
            "server": "127.0.0.1",
            "username": "administrator@vsphere.local",
            "password": {"secret": "vc"},
            "datacenter": "DC0",
            "cluster": "DC0_C0",
            "datastore": "LocalDS_0",
            "network": "VM Network",
            "vm_mode": mode,
        },
    }
    for i, node in enumerate(doc["nodes"], 1):
        node["vm"] = f"pma-{i}"
    return doc


def test_cancel_stops_the_worker_and_the_gui_thread_never_runs_discovery(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    window = make_window()
    window.open_project(write_project(tmp_path, _vsphere_doc("existing")), goto=MainWindow.NODES)
    blocking = Blocking()
    window.nodes.discover_function = blocking
    dialog = _open_dialog(qtbot, window)
    assert blocking.started.wait(10) and blocking.thread is not threading.main_thread()
    assert dialog.running and "Asking vCenter" in dialog.status.text()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert blocking.stopped.wait(10)  # woke from its wait at once: cancellation is cooperative, not abandoned
    qtbot.waitUntil(lambda: dialog.background.pending == 0, timeout=10_000)
    assert len(window.document.get(("nodes",))) == 3


def test_an_injected_discovery_is_listed_and_create_mode_is_explained(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    window = make_window()
    # Create mode: a real discover() says there is nothing to pick, without connecting anywhere.
    window.open_project(write_project(tmp_path, _vsphere_doc("create")), goto=MainWindow.NODES)
    dialog = _open_dialog(qtbot, window)
    _wait_done(qtbot, dialog)
    assert dialog.table.rowCount() == 0 and "vm_mode: create" in dialog.status.text()
    assert not dialog.error.isVisible() and not dialog.add_button.isEnabled()
    dialog.reject()

    found = Discovery(
        ProviderType.VSPHERE,
        (
            Candidate("vm-1", "pma-1", "powered off, 8 vCPU", True, "", {"vm": "pma-1"}),
            Candidate("vm-9", "spare", "powered off, 8 vCPU", True, "", {"vm": "spare"}),
            Candidate("vm-2", "old", "powered on, 1 vCPU", False, "firmware is bios", {"vm": "old"}),
        ),
        "vCenter 127.0.0.1:443, datacenter DC0",
    )
    window.open_project(write_project(tmp_path, _vsphere_doc("existing"), "existing.yaml"), goto=MainWindow.NODES)
    window.nodes.discover_function = lambda *args, **kw: found
    dialog = _open_dialog(qtbot, window)
    _wait_done(qtbot, dialog)
    assert dialog.table.rowCount() == 3 and "2 can be nodes" in dialog.status.text()
    assert "firmware is bios" in dialog.table.item(2, 2).text()
    assert _unnamed(dialog) == []
    assert dialog.accessibleName() == "Discover VMs"
    qtbot.mouseClick(dialog.select_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert [n.get("vm") for n in window.document.get(("nodes",))] == ["pma-1", "pma-2", "pma-3", "spare"]
    assert _node(window, 3)["name"] == "node-4"


def test_the_discover_button_is_named_keyboard_reachable_and_only_where_it_can_work(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    window = make_window()
    window.open_project(write_project(tmp_path, valid_doc()), goto=MainWindow.NODES)  # the manual provider
    page = window.nodes
    assert page.discover_button.accessibleName() == "Discover nodes from the provider's inventory"
    assert "&" in page.discover_button.text()
    assert not page.discover_button.isEnabled() and "Only vSphere" in page.discover_button.toolTip()
    window.open_project(write_project(tmp_path, _vsphere_doc("create"), "v.yaml"), goto=MainWindow.NODES)
    assert page.discover_button.isEnabled()
    assert page.discover_button.focusPolicy() & Qt.FocusPolicy.TabFocus
    # Tab from the CSV import button lands on it.
    page.import_button.setFocus()
    qtbot.keyClick(page.import_button, Qt.Key.Key_Tab)
    qtbot.waitUntil(page.discover_button.hasFocus, timeout=5_000)
    assert _unnamed(page) == []
