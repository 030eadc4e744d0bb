"""The input pages (Provider, Credentials, Nodes, Network, Files): editing the project document, the core's problems
inline, Next gating, saving, CSV import, secrets in the keyring, the connection test and accessible names."""

from __future__ import annotations

import copy
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot

from tests.support.keyrings import MemoryKeyring
from tests.ui.helpers import valid_doc, write_project
from wizard import APP_NAME
from wizard.core.errors import ProjectInvalid, WizardError
from wizard.core.problems import Problem
from wizard.core.project import Project, ProviderType, parse_project
from wizard.core.secrets import SecretStore
from wizard.ui.pages import credentials as credentials_module
from wizard.ui.pages.credentials import ConnectionContext
from wizard.ui.shell import MainWindow
from wizard.ui.wording import problem_text

pytestmark = pytest.mark.ui

MakeWindow = Callable[..., MainWindow]


def core_problems(doc: dict[str, Any], base: Path) -> list[Problem]:
    """What the core says about ``doc``: the pages must show exactly these messages."""
    with pytest.raises(ProjectInvalid) as caught:
        parse_project(copy.deepcopy(doc), base=base)
    return list(caught.value.problems)


def read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def type_into(qtbot: QtBot, widget: QLineEdit, text: str) -> None:
    """Replace a field's text the way the operator does: select all, type."""
    widget.setFocus()
    widget.selectAll()
    if text:
        qtbot.keyClicks(widget, text)
    else:
        qtbot.keyClick(widget, Qt.Key.Key_Delete)


def edit_cell(qtbot: QtBot, window: MainWindow, row: int, key: str, text: str) -> None:
    table = window.nodes.table
    table.setCurrentCell(row, window.nodes.column_index(key))
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit), editor
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    # The delegate commits Return on the next turn of the event loop.
    qtbot.waitUntil(lambda: table.state() != QAbstractItemView.State.EditingState)


def vsphere_doc() -> dict[str, Any]:
    doc = valid_doc()
    doc["provider"] = {
        "type": "vsphere",
        "vsphere": {
            "server": "vcenter.example.com",
            "username": "administrator@vsphere.local",
            "password": {"secret": "vcenter-admin"},
            "datacenter": "DC0",
            "cluster": "C0",
            "datastore": "ds0",
            "network": "VM Network",
        },
    }
    for i, node in enumerate(doc["nodes"], 1):
        node["vm"] = f"palette-node-{i}"
    return doc


def redfish_doc() -> dict[str, Any]:
    doc = valid_doc()
    doc["provider"] = {"type": "redfish"}
    for i, node in enumerate(doc["nodes"], 1):
        node["bmc"] = {"address": f"127.0.20.{i}", "username": "root", "password": {"secret": "bmc-root"}}
    doc["appliance"] = {"password": {"secret": "node-password"}}
    return doc


# -- nodes ---------------------------------------------------------------------------------------------------------
def test_an_invalid_ip_shows_the_core_message_on_its_cell_and_disables_next(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    assert window.open_project(project_file)
    assert window.go_to(MainWindow.NODES)
    page = window.nodes
    assert page.table.rowCount() == 3
    assert window.next_button.isEnabled()
    ip = page.column_index("ip")

    edit_cell(qtbot, window, 1, "ip", "127.0.10.300")
    bad = valid_doc()
    bad["nodes"][1]["ip"] = "127.0.10.300"
    expected = next(p for p in core_problems(bad, project_file.parent) if p.path == "nodes[1].ip")
    assert window.document.get(("nodes", 1, "ip")) == "127.0.10.300"
    assert expected.message in page.cell_problems(1, ip)
    assert expected.fix in page.cell_problems(1, ip)
    assert page.table.item(1, ip).toolTip() == page.cell_problems(1, ip)
    assert page.cell_problems(0, ip) == "" and page.cell_problems(1, page.column_index("name")) == ""
    # Next to the cell: the message under the table speaks of the current cell, the list names row and column.
    assert page.cell_message.isVisible() and expected.message in page.cell_message.text()
    entries = [page.problem_list.item(i).text() for i in range(page.problem_list.count())]
    assert entries == [f"Row 2 (node-2), IP address: ✗ {expected.message} — {expected.fix}"]
    assert not window.next_button.isEnabled()
    assert window.step_state(MainWindow.NETWORK).value == "blocked"
    before = project_file.read_text()
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    qtbot.wait(200)
    assert window.current == MainWindow.NODES and project_file.read_text() == before  # nothing saved

    edit_cell(qtbot, window, 1, "ip", "127.0.10.22")
    assert page.cell_problems(1, ip) == ""
    assert not page.cell_message.isVisible() and page.problem_list.count() == 0
    assert window.next_button.isEnabled()
    qtbot.mouseClick(window.next_button, Qt.MouseButton.LeftButton)
    assert window.current == MainWindow.NETWORK
    assert read(project_file)["nodes"][1]["ip"] == "127.0.10.22"  # Next saved it
    assert stat.S_IMODE(project_file.stat().st_mode) == 0o600


def test_rows_can_be_added_duplicated_and_removed(qtbot: QtBot, make_window: MakeWindow, project_file: Path) -> None:
    window = make_window()
    window.open_project(project_file, goto=MainWindow.NODES)
    page = window.nodes
    assert window.current == MainWindow.NODES

    page.table.setCurrentCell(2, 0)
    qtbot.mouseClick(page.duplicate_button, Qt.MouseButton.LeftButton)
    nodes = window.document.get(("nodes",))
    assert len(nodes) == 4 and page.table.rowCount() == 4
    assert nodes[3] == {"name": "node-4", "prefix": 24, "gateway": "127.0.10.1"}  # identity fields left empty
    # Four nodes cannot keep a quorum, and the copy has no hostname or address: the core says so, Next waits.
    assert "is required" in page.cell_problems(3, page.column_index("hostname"))
    assert "is required" in page.cell_problems(3, page.column_index("ip"))
    assert "quorum" in page.page_message.text()
    assert not window.next_button.isEnabled()

    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    assert window.document.get(("nodes", 4)) == {"name": "node-5"}
    assert page.table.currentRow() == 4
    for row, (host, ip) in ((3, ("edge-node-4", "127.0.10.14")), (4, ("edge-node-5", "127.0.10.15"))):
        edit_cell(qtbot, window, row, "hostname", host)
        edit_cell(qtbot, window, row, "ip", ip)
    edit_cell(qtbot, window, 4, "prefix", "24")
    edit_cell(qtbot, window, 4, "gateway", "127.0.10.1")
    assert window.document.get(("nodes", 4, "prefix")) == 24  # digits are written as a number
    assert window.blockers(MainWindow.NODES) == []
    assert window.next_button.isEnabled()

    page.table.setCurrentCell(0, 0)
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    assert [n["name"] for n in window.document.get(("nodes",))] == ["node-2", "node-3", "node-4", "node-5"]
    assert "quorum" in page.page_message.text() and not window.next_button.isEnabled()


def test_csv_import_reports_each_bad_row_and_imports_the_good_ones(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window()
    window.open_project(project_file, goto=MainWindow.NODES)
    page = window.nodes
    csv_file = tmp_path / "nodes.csv"
    csv_file.write_text(
        "Name,Hostname,IP address,Prefix,Gateway\n"
        "n1,edge-1,127.0.10.21,24,127.0.10.1\n"
        "n2,edge-2,127.0.10.300,24,127.0.10.1\n"
        "n3,Edge_3,127.0.10.23,24\n"
        "\n"
        "n4,edge-4,127.0.10.24,24,127.0.10.1\n"
        "n5,edge-5,127.0.10.25,24,127.0.10.1\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a: (str(csv_file), "")))
    qtbot.mouseClick(page.import_button, Qt.MouseButton.LeftButton)

    # n3 has 4 values for 5 columns: skipped with its line; n2's address and quorum problems come from the core.
    assert [n["name"] for n in window.document.get(("nodes",))] == ["n1", "n2", "n4", "n5"]
    assert page.table.rowCount() == 4
    report = page.import_lines
    assert report[0] == "Imported 4 node(s) from nodes.csv."
    assert "line 4: 4 values, but the header has 5; row skipped" in report
    assert any(line.startswith("line 3 (n2), IP address: ✗ ") and "is not an IPv4 address" in line for line in report)
    assert any(line.startswith("All rows: ✗ 4 control-plane nodes cannot keep an etcd quorum") for line in report)
    assert not any(line.startswith(("line 2 ", "line 6 ", "line 7 ")) for line in report)  # the good rows
    assert page.import_report.isVisible() and page.import_report.tone.value == "error"
    assert "is not an IPv4 address" in page.cell_problems(1, page.column_index("ip"))
    assert not window.next_button.isEnabled()

    # A good file replaces the table and reports success.
    csv_file.write_text(
        "name,hostname,ip,prefix,gateway,ssh_port\n"
        + "".join(f"node-{i},edge-{i},127.0.10.3{i},24,127.0.10.1,22{i}\n" for i in (1, 2, 3))
    )
    assert page.import_csv(csv_file)
    assert page.import_lines == ["Imported 3 node(s) from nodes.csv."]
    assert page.import_report.tone.value == "success"
    assert window.document.get(("nodes", 2)) == {
        "name": "node-3",
        "hostname": "edge-3",
        "ip": "127.0.10.33",
        "prefix": 24,
        "gateway": "127.0.10.1",
        "ssh_port": 223,
    }
    assert window.next_button.isEnabled()

    # An unknown column refuses the whole file and leaves the table alone.
    csv_file.write_text("name,colour\nnode-9,blue\n")
    assert not page.import_csv(csv_file)
    assert page.import_lines[0] == "Nothing was imported from nodes.csv:"
    assert "unknown column 'colour'" in page.import_lines[1]
    assert page.table.rowCount() == 3


def test_provider_columns_follow_the_provider(make_window: MakeWindow, tmp_path: Path, iso: Path) -> None:
    window = make_window()
    window.open_project(write_project(tmp_path, redfish_doc()), goto=MainWindow.NODES)
    page = window.nodes
    headers = [page.table.horizontalHeaderItem(c).text() for c in range(page.table.columnCount())]
    assert headers[-4:] == ["BMC address", "BMC user", "BMC password keyring name", "BMC TLS fingerprint"]
    assert page.table.item(0, page.column_index("bmc_password")).text() == "bmc-root"
    window.go_to(MainWindow.PROVIDER)
    window.provider.set_provider_type("vsphere")
    window.go_to(MainWindow.PROJECT)
    window.nodes.entered()
    headers = [page.table.horizontalHeaderItem(c).text() for c in range(page.table.columnCount())]
    assert headers[-1] == "VM name"
    assert "is required for vSphere" in page.cell_problems(0, page.column_index("vm"))


# -- provider, network, files ----------------------------------------------------------------------------------------
def test_provider_settings_are_validated_inline_and_kept_across_type_switches(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    window.open_project(project_file)
    qtbot.mouseClick(window.next_button, Qt.MouseButton.LeftButton)
    assert window.current == MainWindow.PROVIDER
    page = window.provider
    assert page.type_combo.currentData() == "manual"
    assert window.next_button.isEnabled()

    page.type_combo.setCurrentIndex(page.type_combo.findData("vsphere"))
    page.type_combo.activated.emit(page.type_combo.currentIndex())
    assert page.stack.currentWidget() is page.panels["vsphere"]
    fields = {f.name: f for f in page.fields}
    server = fields["Server"]
    assert server.message.isVisible() and "is required" in server.message.text()
    assert not window.next_button.isEnabled()

    values = {
        "Server": "https://vcenter",
        "User": "administrator@vsphere.local",
        "Password keyring name": "vcenter-admin",
        "Datacenter": "DC0",
        "Compute cluster": "C0",
        "Datastore": "ds0",
        "Network": "VM Network",
    }
    for name, text in values.items():
        widget = fields[name].widget
        assert isinstance(widget, QLineEdit)
        type_into(qtbot, widget, text)
    doc = copy.deepcopy(window.document.doc)
    assert doc is not None
    expected = next(p for p in core_problems(doc, project_file.parent) if p.path == "provider.vsphere.server")
    assert server.message.text() == f"✗ {expected.message} — {expected.fix}"
    assert server.widget.accessibleDescription() == server.message.text()
    # Node VMs are a Nodes-page matter; this page's own fields are what gate its Next.
    # In the window's words: the page and the field's label, not the file's field path.
    assert [b for b in window.blockers(MainWindow.PROVIDER)] == [problem_text(expected)]
    assert window.blockers(MainWindow.PROVIDER)[0].startswith("Provider page, Server: ")
    type_into(qtbot, server.widget, "vcenter.example.com")  # type: ignore[arg-type]
    assert not server.message.isVisible()
    assert window.blockers(MainWindow.PROVIDER) == []
    assert window.document.get(("provider", "vsphere", "password")) == {"secret": "vcenter-admin"}

    # Switching away and back keeps what was typed; the file never gets both sections.
    page.set_provider_type("manual")
    assert window.document.get(("provider",)) == {"type": "manual"}
    page.set_provider_type("vsphere")
    assert window.document.get(("provider", "vsphere", "server")) == "vcenter.example.com"
    assert fields["Datastore"].widget.text() == "ds0"  # type: ignore[union-attr]


def test_network_fields_gate_next_and_back_keeps_edits_unsaved(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    window.open_project(project_file, goto=MainWindow.NETWORK)
    page = window.network
    assert page.vip.widget.text() == "127.0.10.50"  # type: ignore[union-attr]
    before = project_file.read_text()

    type_into(qtbot, page.dns.widget, "127.0.0.53, 10.0.0.999")  # type: ignore[arg-type]
    assert window.document.get(("network", "dns")) == ["127.0.0.53", "10.0.0.999"]
    assert page.dns.message.isVisible() and "is not an IPv4 address" in page.dns.message.text()
    assert not window.next_button.isEnabled()
    type_into(qtbot, page.dns.widget, "127.0.0.53")  # type: ignore[arg-type]
    type_into(qtbot, page.vip.widget, "127.0.10.60")  # type: ignore[arg-type]
    type_into(qtbot, page.https.widget, "http://proxy.example.com:3128")  # type: ignore[arg-type]
    assert window.next_button.isEnabled() and window.save_button.isEnabled()

    # Back keeps everything typed, in memory: nothing is written until Next or Save.
    qtbot.mouseClick(window.back_button, Qt.MouseButton.LeftButton)
    assert window.current == MainWindow.NODES
    assert project_file.read_text() == before
    qtbot.mouseClick(window.back_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.next_button, Qt.MouseButton.LeftButton)  # Credentials → Nodes saves
    assert window.current == MainWindow.NODES
    saved = read(project_file)
    assert saved["network"]["vip"] == "127.0.10.60" and saved["network"]["dns"] == ["127.0.0.53"]
    qtbot.mouseClick(window.next_button, Qt.MouseButton.LeftButton)
    assert window.current == MainWindow.NETWORK
    assert page.vip.widget.text() == "127.0.10.60"  # type: ignore[union-attr]
    assert page.https.widget.text() == "http://proxy.example.com:3128"  # type: ignore[union-attr]

    # An emptied proxy leaves no empty section behind; Save (Ctrl+S) writes it.
    type_into(qtbot, page.https.widget, "")  # type: ignore[arg-type]
    assert "proxy" not in window.document.get(("network",))
    qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert "proxy" not in read(project_file)["network"]
    assert not window.save_button.isEnabled()
    # The Project page shows the file as saved.
    assert window.project.vip_value.text() == "127.0.10.60"


def test_files_are_picked_and_their_size_and_problems_shown(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window()
    window.open_project(project_file, goto=MainWindow.FILES)
    page = window.files
    assert page.iso.widget.text() == "appliance.iso"  # type: ignore[union-attr]
    assert page.sizes[page.iso].text() == "20.0 MiB"

    bundle = tmp_path / "content.tar.zst"
    bundle.write_bytes(b"x" * 2048)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a: (str(bundle), "")))
    qtbot.mouseClick(page.browse_buttons[page.content], Qt.MouseButton.LeftButton)
    assert window.document.get(("files", "content_bundle")) == "content.tar.zst"  # relative to the project
    assert page.sizes[page.content].text() == "2.0 KiB"
    # A bundle needs the public key; the core's message shows at the key's field and Next waits.
    assert page.public_key.message.isVisible() and "is required" in page.public_key.message.text()
    assert not window.next_button.isEnabled()

    type_into(qtbot, page.public_key.widget, "missing.pem")  # type: ignore[arg-type]
    assert page.sizes[page.public_key].text() == "not found"
    assert "does not exist" in page.public_key.message.text()
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\n")
    type_into(qtbot, page.public_key.widget, str(key))  # type: ignore[arg-type]
    assert "no signature file next to content.tar.zst" in page.content.message.text()
    signature = tmp_path / "elsewhere.sig"
    signature.write_bytes(b"s" * 10)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a: (str(signature), "")))
    qtbot.mouseClick(page.browse_buttons[page.content_signature], Qt.MouseButton.LeftButton)
    assert window.document.get(("files", "content_bundle")) == {
        "path": "content.tar.zst",
        "signature": "elsewhere.sig",
    }
    assert window.blockers(MainWindow.FILES) == [] and window.next_button.isEnabled()

    packs = [tmp_path / "a.zst", tmp_path / "b.zst"]
    for p in packs:
        p.write_bytes(b"p")
        p.with_suffix(".sig.bin").write_bytes(b"s")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a: ([str(p) for p in packs], "")))
    qtbot.mouseClick(page.add_pack_button, Qt.MouseButton.LeftButton)
    assert window.document.get(("files", "pack_bundles")) == ["a.zst", "b.zst"]
    assert page.packs.count() == 2 and page.packs.item(0).text() == "a.zst  (1 B)"
    page.packs.setCurrentRow(0)
    qtbot.mouseClick(page.remove_pack_button, Qt.MouseButton.LeftButton)
    assert window.document.get(("files", "pack_bundles")) == ["b.zst"]

    qtbot.mouseClick(window.next_button, Qt.MouseButton.LeftButton)
    assert window.current == MainWindow.PREFLIGHT
    assert read(project_file)["files"]["pack_bundles"] == ["b.zst"]
    assert window.run.start_button.isEnabled()


# -- credentials -----------------------------------------------------------------------------------------------------
def test_secrets_go_to_the_keyring_never_to_the_project_file(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path, memory_keyring: MemoryKeyring
) -> None:
    path = write_project(tmp_path, redfish_doc())
    memory_keyring.set_password(APP_NAME, "node-password", "already-stored-1")
    window = make_window()
    window.open_project(path, goto=MainWindow.CREDENTIALS)
    page = window.credentials
    assert set(page.rows) == {"bmc-root", "node-password"}
    assert page.rows["bmc-root"].uses == [f"nodes[{i}].bmc.password" for i in range(3)]  # one row per secret
    qtbot.waitUntil(lambda: page.rows["bmc-root"].status_label.text() == "✗ not stored")
    assert page.rows["node-password"].status_label.text() == "✓ stored"
    assert not window.next_button.isEnabled()
    assert window.blockers(MainWindow.CREDENTIALS) == ["secret bmc-root is not in the keyring: type it and press Store"]

    row = page.rows["bmc-root"]
    row.edit.setFocus()
    qtbot.keyClicks(row.edit, "abc")
    qtbot.keyClick(row.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not row.storing)
    assert row.message.isVisible() and "at least" in row.message.text()  # the store's own rule, shown inline
    assert (APP_NAME, "bmc-root") not in memory_keyring.store

    secret = "s3cret-bmc-password"
    row.edit.clear()
    qtbot.keyClicks(row.edit, secret)
    qtbot.mouseClick(row.store_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.status_label.text() == "✓ stored")
    assert memory_keyring.store[(APP_NAME, "bmc-root")] == secret
    assert row.edit.text() == ""  # the value leaves the window once stored
    assert row.message.isVisible() and row.message.text() == "✓ bmc-root is stored in the keyring."
    assert window.next_button.isEnabled()
    # An existing password (the BMC's) is typed once; one the install sets (the nodes' new one) twice.
    assert row.again is None
    new = page.rows["node-password"]
    assert new.again is not None and new.again.isVisible() and new.again.accessibleName()
    qtbot.keyClicks(new.edit, "a-new-node-password")
    assert not new.store_button.isEnabled()  # not confirmed yet
    page.store_secret("node-password")
    assert "again" in new.message.text() and memory_keyring.store[(APP_NAME, "node-password")] == "already-stored-1"
    qtbot.keyClicks(new.again, "a-new-node-passwort")
    assert new.message.text() == "✗ The two entries differ." and not new.store_button.isEnabled()
    new.again.clear()
    qtbot.keyClicks(new.again, "a-new-node-password")
    qtbot.keyClick(new.again, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: memory_keyring.store[(APP_NAME, "node-password")] == "a-new-node-password")
    qtbot.waitUntil(lambda: not new.storing)
    assert new.edit.text() == new.again.text() == "" and "is stored" in new.message.text()

    # Renaming the reference on the Nodes page makes a new row, checked against the keyring again.
    window.go_to(MainWindow.NODES)
    edit_cell(qtbot, window, 0, "bmc_password", "bmc-node-1")
    window.back()
    assert window.current == MainWindow.CREDENTIALS
    qtbot.waitUntil(lambda: "bmc-node-1" in page.rows and page.rows["bmc-node-1"].status == "missing")
    assert not window.next_button.isEnabled()
    page.rows["bmc-node-1"].edit.setText("another-long-secret")
    page.store_secret("bmc-node-1")
    qtbot.waitUntil(window.next_button.isEnabled)

    qtbot.mouseClick(window.next_button, Qt.MouseButton.LeftButton)
    text = path.read_text()
    assert secret not in text and "another-long-secret" not in text
    assert read(path)["nodes"][0]["bmc"]["password"] == {"secret": "bmc-node-1"}


def test_connection_test_runs_off_the_gui_thread_and_shows_its_result(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    release = threading.Event()

    def fake_test(project: Project, secrets: SecretStore, conn: ConnectionContext) -> str:
        seen["thread"] = threading.current_thread()
        seen["server"] = project.provider.vsphere.server if project.provider.vsphere else None
        release.wait(10)
        if seen.get("fail"):
            raise WizardError("vCenter login failed", "the password was refused", remediation="store it again")
        return "connected to vCenter 8.0 as administrator"

    monkeypatch.setitem(credentials_module.CONNECTION_TESTS, ProviderType.VSPHERE, fake_test)
    window = make_window()
    window.open_project(write_project(tmp_path, vsphere_doc()), goto=MainWindow.CREDENTIALS)
    page = window.credentials
    assert page.test_button.isEnabled()
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    # The GUI stays live while the test is still running.
    assert not page.test_button.isEnabled() and "Testing" in page.test_result.text()
    qtbot.waitUntil(lambda: "thread" in seen)
    release.set()
    qtbot.waitUntil(lambda: page.test_result.tone.value == "success")
    assert page.test_result.text() == "✓ connected to vCenter 8.0 as administrator"
    assert seen["thread"] is not threading.main_thread() and seen["server"] == "vcenter.example.com"
    assert page.test_button.isEnabled() and page.test_button.text() == page._test_text

    seen["fail"] = True
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.test_result.tone.value == "error")
    assert page.test_result.text() == ("✗ vCenter login failed: the password was refused — what to do: store it again")

    # No test for the manual provider.
    window.go_to(MainWindow.PROVIDER)
    window.provider.set_provider_type("manual")
    for i in range(3):
        window.document.set(("nodes", i, "vm"), None)
    window.go_to(MainWindow.CREDENTIALS)
    assert not page.test_button.isEnabled()
    assert "nothing to connect to" in page.test_hint.text()


# -- the whole window ------------------------------------------------------------------------------------------------
INTERACTIVE = (QAbstractButton, QAbstractItemView, QLineEdit, QComboBox, QTextEdit, QPlainTextEdit)


def _unnamed(page: QWidget) -> list[str]:
    out = []
    for kind in INTERACTIVE:
        for w in page.findChildren(kind):
            if type(w).__name__ in ("QHeaderView", "QScrollBar") or type(w) is QAbstractButton:
                continue  # Qt's private helpers (a table's corner button)
            if not w.accessibleName().strip():
                out.append(f"{type(w).__name__} {w.objectName()} {getattr(w, 'text', lambda: '')()}")
    return out


def test_every_control_on_every_page_has_an_accessible_name_and_a_unique_mnemonic(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    window = make_window()
    for doc in (vsphere_doc(), redfish_doc(), valid_doc()):
        doc_path = write_project(tmp_path, doc, f"{doc['provider']['type']}.yaml")
        window.open_project(doc_path)
        for index in range(len(window.pages)):
            assert window.go_to(index)
            page = window.pages[index]
            if page is window.nodes:  # open an editor too: they are created on demand
                window.nodes.table.setCurrentCell(0, window.nodes.column_index("address_mode"))
                window.nodes.table.editItem(window.nodes.table.currentItem())
                qtbot.waitUntil(lambda: isinstance(QApplication.focusWidget(), QComboBox))
            assert _unnamed(page) == [], f"{page.title} ({doc['provider']['type']})"
            if page is window.nodes:
                window.nodes.table.setFocus()
            # Alt+letter: no two visible labels or buttons of this page and the window's buttons share one.
            letters: list[str] = []
            for w in [*page.findChildren(QLabel), *page.findChildren(QAbstractButton), window.save_button]:
                text = w.text() if hasattr(w, "text") else ""
                if w.isVisible() and "&" in text.replace("&&", "") and not text.lstrip().startswith("<"):
                    letters.append(text[text.index("&") + 1].lower())
            letters += ["b", "n", "c"]
            assert len(letters) == len(set(letters)), f"{page.title}: {sorted(letters)}"
    assert _unnamed(window) == []


def test_keyboard_only_through_the_input_pages(qtbot: QtBot, make_window: MakeWindow, project_file: Path) -> None:
    window = make_window()
    window.open_project(project_file)
    for page in (MainWindow.PROVIDER, MainWindow.CREDENTIALS, MainWindow.NODES, MainWindow.NETWORK, MainWindow.FILES):
        qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
        qtbot.waitUntil(lambda p=page: window.current == p)
    # A field's mnemonic focuses it; typing edits the document.
    window.go_to(MainWindow.NETWORK)
    qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.AltModifier)  # "&Search domains"
    assert QApplication.focusWidget() is window.network.search.widget
    qtbot.keyClicks(window.network.search.widget, "example.com")
    assert window.document.get(("network", "search_domains")) == ["example.com"]
    # Tab walks the page's fields in order of appearance.
    window.network.vip.widget.setFocus()
    order = [window.network.vip.widget]
    for _ in range(3):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        order.append(QApplication.focusWidget())
    assert order == [
        f.widget for f in (window.network.vip, window.network.dns, window.network.search, window.network.ntp)
    ]
