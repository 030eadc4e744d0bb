"""Node networking through the lab's Local UI network API: every exchange spec-checked, 202 then poll, 429 waited
out, the session's interface changed last and the node found again at its new address."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.integration.releases import RELEASES
from tests.integration.test_localui_client import Harness, make_harness
from wizard.appliance.network import P_BONDS, P_CONFIG_OPTIONS, ApplyNetworkJob, NetworkPlan, phases
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.progress import Progress
from wizard.core.project import Addressing, BondConfig, NicConfig, VlanConfig
from wizard.lab import Lab, ManualClock
from wizard.lab.network import BOND_OPTIONS, network_of
from wizard.lab.versions import ApplianceProfile

pytestmark = pytest.mark.lab

OLD, NEW = "127.0.10.61", "127.0.10.62"
MODES = tuple(BOND_OPTIONS["mode"])
BOND = BondConfig("bond0", ("eth0", "eth1"), "802.3ad", "layer3+4", "fast", 100)
VLAN = VlanConfig("bond0.100", "bond0", 100, Addressing("static"))


def plan(address: str = NEW, **kw: object) -> NetworkPlan:
    fields: dict[str, object] = {
        "node": "edge-node-1", "address": address, "prefix": 8, "gateway": "127.0.0.254", "dhcp": False,
        "management": "bond0.100", "bonds": (BOND,), "vlans": (VLAN,),
        "nics": (NicConfig("eth2", Addressing("static", "192.168.50.11", 24)),), "dns": ("10.0.0.2",),
    }  # fmt: skip
    fields.update(kw)
    return NetworkPlan(**fields)  # type: ignore[arg-type]


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    profile: ApplianceProfile = getattr(request, "param", RELEASES["4.9.46"])
    with Lab(1, tmp_path / "lab", ip=OLD, tick_interval=0.02, socket_timeout=10.0, appliance=profile) as started:
        started.nodes[0].state.configure_seconds = 0.3
        yield started


@pytest.fixture
def harness(lab: Lab, tmp_path: Path) -> Harness:
    return make_harness(lab, ManualClock(), tmp_path / "config")  # the client's token clock only


def job(h: Harness, lab: Lab, p: NetworkPlan) -> ApplyNetworkJob:
    reach = replace(h.endpoint(0), host=OLD)
    return ApplyNetworkJob(reach, replace(reach, host=p.address), p, h.connector, poll_interval=0.05, timeout=60.0)


def run(j: ApplyNetworkJob) -> dict:
    progress = Progress()
    progress.add_task("t", j.name, "network")
    return dict(j.run(progress.root().child(0.0, 1.0, task="t"), CancelToken()) or {})


def test_the_session_interface_changes_last() -> None:
    first, last = phases(plan(), "eth0")
    assert [(w.kind, w.name) for w in first] == [("bond", "bond0"), ("vlan", "bond0.100"), ("nic", "eth2")]
    assert first[0].body["members"] == ["eth1"]  # the bond exists before the session's NIC joins it
    assert first[1].body == {
        "parentName": "bond0",
        "parentType": "bond",
        "vlanID": "100",
        "type": "static",
        "ip": NEW,
        "subnet": "255.0.0.0",
        "gateway": "127.0.0.254",
        "nameservers": ["10.0.0.2"],
    }
    assert [(w.kind, w.name) for w in last] == [("bond", "bond0"), ("management", "bond0.100")]
    assert last[0].body["members"] == ["eth0", "eth1"] and last[0].body["miiMonitorSec"] == "100ms"


def test_the_node_moves_to_its_new_address_and_is_found_there(harness: Harness, lab: Lab) -> None:
    facts = run(job(harness, lab, plan()))
    net = network_of(lab.nodes[0].state)
    assert lab.nodes[0].state.ip == NEW and not net.lost and net.management == "bond0.100"
    assert facts["reconnected"] is True and facts["session_interface"] == "eth0" and facts["address"] == NEW
    assert net.ifaces["eth2"].ip == "192.168.50.11"
    # Every exchange (the new address's included) was checked against the spec; the writes were 202s.
    puts = [e for e in harness.seen if e.method == "PUT"]
    assert puts and all(e.status == 202 for e in puts)
    assert {e.path for e in puts} >= {f"{P_BONDS}/bond0", "/v1/edge-mgmt/network/management-interface"}
    # A rerun sends nothing: everything is already so.
    harness.seen.clear()
    again = job(harness, lab, plan())
    again.reach = again.final  # the node now answers only at its new address
    assert run(again)["sent"] == []


def test_a_busy_node_answers_429_and_the_write_waits(harness: Harness, lab: Lab) -> None:
    net = network_of(lab.nodes[0].state)
    state = lab.nodes[0].state
    with state.lock:  # an earlier change is still being applied (someone else's, or a slow one)
        net.busy_until = state.clock() + 1.0
    facts = run(job(harness, lab, plan(address=OLD, nics=())))
    assert 429 in {e.status for e in harness.seen if e.method == "PUT"}
    assert facts["sent"][0] == "bond bond0" and state.ip == OLD


def test_a_mode_the_node_does_not_offer_is_refused_before_anything_is_sent(harness: Harness, lab: Lab) -> None:
    with lab.nodes[0].state.lock:
        BOND_OPTIONS["mode"] = ["active-backup"]  # this node offers one mode only
    try:
        with pytest.raises(WizardError) as err:
            run(job(harness, lab, plan(address=OLD)))
    finally:
        BOND_OPTIONS["mode"] = list(MODES)
    assert err.value.title == "Bond option not offered"
    assert "does not offer mode '802.3ad' for bond0 (it offers active-backup)" in err.value.message
    assert not [e for e in harness.seen if e.method == "PUT"]


@pytest.mark.parametrize("lab", [RELEASES["4.9.36"]], ids=["4.9.36"], indirect=True)
def test_a_release_without_the_network_api_says_so(harness: Harness, lab: Lab) -> None:
    with pytest.raises(WizardError) as err:
        run(job(harness, lab, plan(address=OLD)))
    assert err.value.title == "No network configuration on this appliance"
    assert [e.status for e in harness.seen if e.path == P_CONFIG_OPTIONS] == [404]
