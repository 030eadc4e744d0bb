"""Which projects say their nodes exist, and what the journal says the install changed (units behind preflight's
address checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.projects import base_doc
from wizard.core.journal import Journal
from wizard.core.project import parse_project
from wizard.install.checks.addresses import booted_by_session, cluster_claimed, nodes_exist


def _vsphere(mode: str) -> dict[str, Any]:
    doc = base_doc(
        provider={
            "type": "vsphere",
            "vsphere": {"server": "vc.example.com", "username": "administrator@vsphere.local",
                        "password": {"secret": "vc"}, "datacenter": "DC0", "cluster": "DC0_C0",
                        "datastore": "LocalDS_0", "network": "VM Network", "vm_mode": mode},
        },
        files={"iso": "appliance.iso"},
        appliance={"password": {"secret": "node-password"}},
    )  # fmt: skip
    for n in doc["nodes"]:
        n["vm"] = f"palette-{n['name']}"
    return doc


def test_projects_whose_nodes_may_exist(tmp_path: Path) -> None:
    (tmp_path / "appliance.iso").write_bytes(b"iso")
    assert "manual provider" in nodes_exist(parse_project(base_doc()).project)
    assert "existing VMs" in nodes_exist(parse_project(_vsphere("existing"), base=tmp_path).project)
    assert nodes_exist(parse_project(_vsphere("create"), base=tmp_path).project) == ""
    redfish = base_doc(
        provider={"type": "redfish"}, files={"iso": "appliance.iso"}, appliance={"password": {"secret": "node"}}
    )
    for i, n in enumerate(redfish["nodes"], 1):
        n["bmc"] = {"address": f"10.0.20.{i}", "username": "root", "password": {"secret": "bmc"}}
    assert nodes_exist(parse_project(redfish, base=tmp_path).project) == ""


def test_what_the_journal_says_the_install_changed(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.json", "p")
    assert booted_by_session(journal, "node-1") == "" and cluster_claimed(journal) == ""
    journal.job_started("boot/node-1", "f")
    assert booted_by_session(journal, "node-1") == ""  # a boot still under way proves nothing yet
    journal.job_done("boot/node-1", "f", {})
    assert "boot step brought node-1 up" in booted_by_session(journal, "node-1")
    journal.job_started("install/node-2", "f")
    assert "watched the install of node-2" in booted_by_session(journal, "node-2")
    journal.job_started("cluster/create", "f")
    assert cluster_claimed(journal) == "this session asked the leader for the cluster"
    journal.job_done("cluster/create", "f", {})
    assert cluster_claimed(journal) == "this session's cluster holds it"
