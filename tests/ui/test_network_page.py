"""The Network page's node networking: a bond and a VLAN per node, written to the project, checked by the core, with
the bond options the node itself offers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot

from tests.ui.helpers import valid_doc, write_project
from wizard.lab import Lab
from wizard.ui.shell import MainWindow

MakeWindow = Callable[..., MainWindow]


def test_a_bond_and_a_vlan_are_written_to_the_node(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    window = make_window()
    window.open_project(write_project(tmp_path, valid_doc(appliance={"configure": "localui"})))
    assert window.go_to(MainWindow.NETWORK)
    editor = window.network.node_network
    assert [editor.node.itemText(i) for i in range(editor.node.count())] == ["node-1", "node-2", "node-3"]
    assert "Documented values" in editor.source.text() and editor.mode.findData("802.3ad") >= 0
    editor.enabled.setChecked(True)
    # No members yet: the core's own problem is shown beside the form, and Next waits for it.
    assert editor.message.text() == (
        "nodes[0].network.bonds[0].members: ✗ is required — list the bond's NICs, e.g. [eth0, eth1]"
    )
    assert window.network.blockers()
    qtbot.keyClicks(editor.members, "eth0, eth1")
    editor.mode.setCurrentIndex(editor.mode.findData("802.3ad"))
    editor.mode.activated.emit(editor.mode.currentIndex())
    editor.lacp_rate.setCurrentIndex(editor.lacp_rate.findData("fast"))
    editor.lacp_rate.activated.emit(editor.lacp_rate.currentIndex())
    qtbot.keyClicks(editor.mii, "100")
    qtbot.keyClicks(editor.vlan, "100")
    assert window.document.get(("nodes", 0, "network")) == {
        "bonds": [{"members": ["eth0", "eth1"], "name": "bond0", "mode": "802.3ad", "lacp_rate": "fast", "mii": 100,
                   "addressing": "none"}],
        "vlans": [{"parent": "bond0", "addressing": "static", "id": 100}],
        "management": "bond0.100",
    }  # fmt: skip
    assert not editor.message.isVisibleTo(editor) and not window.network.blockers()
    project = window.document.project
    assert project is not None and project.nodes[0].network is not None
    assert project.nodes[0].network.management == "bond0.100"
    editor.node.setCurrentIndex(1)  # another node: its own (empty) network
    assert not editor.enabled.isChecked() and editor.members.text() == ""


def test_the_bond_options_come_from_the_node(qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path) -> None:
    with Lab(1, tmp_path / "lab") as lab:
        node = lab.nodes[0]
        doc = valid_doc(appliance={"configure": "localui"})
        where = {"ip": node.state.ip, "prefix": 8, "gateway": "127.0.0.254"}
        where |= {"localui_port": node.server.port, "localui_fingerprint": node.fingerprint}
        doc["nodes"] = [{**doc["nodes"][0], **where}]
        window = make_window()
        window.open_project(write_project(tmp_path, doc))
        assert window.go_to(MainWindow.NETWORK)
        editor = window.network.node_network
        editor.read_options()
        qtbot.waitUntil(lambda: editor.options_from == "node-1", timeout=20_000)
        assert editor.source.text() == "Offered by node-1." and "offers 7 bond modes" in editor.result.text()
        assert [editor.lacp_rate.itemData(i) for i in range(editor.lacp_rate.count())] == ["", "slow", "fast"]
