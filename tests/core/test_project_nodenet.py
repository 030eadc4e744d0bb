"""A node's network beyond one NIC in the project file: bonds, VLANs, per-interface addressing, the management
interface — validated like the rest, each problem at its field path with the fix."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.projects import base_doc
from wizard.core.errors import ProjectInvalid
from wizard.core.project import parse_project, project_to_dict

BONDED: dict[str, Any] = {
    "management": "bond0.100",
    "reach": "127.0.10.71",
    "bonds": [
        {"name": "bond0", "members": ["eth0", "eth1"], "mode": "802.3ad", "hash_policy": "layer3+4",
         "lacp_rate": "fast", "mii": 100},
    ],
    "vlans": [{"parent": "bond0", "id": 100, "addressing": "static"}],
    "interfaces": [{"name": "eth2", "addressing": "static", "ip": "192.168.50.11", "prefix": 24}],
}  # fmt: skip


def doc(network: dict[str, Any], configure: str = "localui") -> dict[str, Any]:
    d = base_doc(appliance={"configure": configure})
    d["nodes"][0]["network"] = network
    return d


def errors(d: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ProjectInvalid) as info:
        parse_project(d)
    return {p.path: f"{p.message} — {p.fix}" for p in info.value.problems if p.is_error}


def test_a_bonded_vlan_tagged_management_network() -> None:
    loaded = parse_project(doc(BONDED))
    net = loaded.project.nodes[0].network
    assert net is not None and net.management == "bond0.100" and net.reach == "127.0.10.71"
    (bond,) = net.bonds
    assert bond.members == ("eth0", "eth1") and bond.mode == "802.3ad" and bond.mii == 100
    assert bond.addressing.kind == "none"  # a bond that only carries VLANs
    (vlan,) = net.vlans
    assert (vlan.name, vlan.parent, vlan.vlan_id, vlan.addressing.kind) == ("bond0.100", "bond0", 100, "static")
    assert net.interfaces[0].addressing.netmask == "255.255.255.0"
    assert net.kind_of("bond0") == "bond" and net.kind_of("bond0.100") == "vlan" and net.kind_of("eth2") == "nic"
    again = parse_project(project_to_dict(loaded.project)).project
    assert again.nodes[0].network == net


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"bonds": [{"name": "bond0", "members": ["eth0"], "mode": "fastest"}]}, "bonds[0].mode", "802.3ad"),
        ({"bonds": [{"name": "bond0", "members": ["eth0"], "lacp_rate": "fast"}]}, "bonds[0].lacp_rate",
         "only applies to mode 802.3ad"),
        ({"vlans": [{"parent": "bond0", "id": 5000}]}, "vlans[0].id", "4094"),
        ({"vlans": [{"parent": "eth0", "id": 100}]}, "vlans[0].parent", "put the VLAN on bond0"),
        ({"management": "eth1"}, "management", "eth1 is a member of bond0"),
        ({"management": ""}, "management", "is required with bonds or VLANs"),
        ({"interfaces": [{"name": "eth1", "addressing": "dhcp"}]}, "interfaces[0]", "member of bond0"),
        ({"vlans": [{"parent": "bond0", "id": 100, "addressing": "static", "ip": "10.9.9.9", "prefix": 24}]},
         "management", "carries the node's address 127.0.10.11"),
        ({"reach": "not-an-ip"}, "reach", "IPv4"),
        ({"interfaces": [{"name": "this-name-is-far-too-long"}]}, "interfaces[0].name", "at most 15"),
    ],
)  # fmt: skip
def test_mistakes_are_named_at_their_field(change: dict[str, Any], path: str, fragment: str) -> None:
    found = errors(doc({**BONDED, **change}))
    assert fragment in found[f"nodes[0].network.{path}"], found


def test_bonds_need_the_local_ui() -> None:
    found = errors(doc(BONDED, configure="seed"))
    assert "set appliance.configure: localui" in found["nodes[0].network"]
    # Per-interface addressing alone is what a seed can carry.
    parse_project(doc({"interfaces": [{"name": "eth2", "addressing": "dhcp"}]}, configure="seed"))
