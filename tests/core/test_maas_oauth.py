"""Pure tests of the MAAS client's request signing, key handling, selection rules and boot plan (no network)."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from wizard.core.errors import WizardError
from wizard.lab.maas import MaasState
from wizard.providers.maas import (
    MaasClient,
    Machine,
    MachineStatus,
    ManualInstruction,
    RedfishTarget,
    api_base,
    boot_route,
    machine_problem,
    parse_api_key,
    zone_labels,
)

KEY = "Cons1:Tok2:SecretValue3"


def _params(header: str) -> dict[str, str]:
    assert header.startswith("OAuth ")
    return {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header)}


def test_header_is_plaintext_oauth_with_a_fresh_nonce_each_time() -> None:
    with MaasClient("http://maas.example:5240/MAAS", KEY, verify=True) as client:
        first = _params(client._sign("GET", client.base + "machines/")["Authorization"])
        second = _params(client._sign("POST", client.base + "machines/?op=allocate")["Authorization"])
    assert first["oauth_signature_method"] == "PLAINTEXT"
    assert first["oauth_consumer_key"] == "Cons1" and first["oauth_token"] == "Tok2"
    assert first["oauth_signature"] == "&SecretValue3"  # empty consumer secret, then the token secret
    assert first["oauth_version"] == "1.0"
    assert first["oauth_nonce"] != second["oauth_nonce"]
    assert first["oauth_timestamp"].isdigit()


def test_the_fake_accepts_the_clients_header_once() -> None:
    state = MaasState()
    user = state.add_user("admin", admin=True)
    with MaasClient("http://maas.example:5240/MAAS", user.api_key, verify=True) as client:
        header = client._sign("GET", client.base + "users/?op=whoami")["Authorization"]
    assert state.authenticate(header).username == "admin"
    with pytest.raises(Exception, match="Nonce already used"):
        state.authenticate(header)


@pytest.mark.parametrize("bad", ["", "a:b", "a:b:c:d", "a::c", "  "])
def test_malformed_keys_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(WizardError) as exc:
        parse_api_key(bad)
    assert exc.value.title == "Invalid MAAS API key"
    if bad.strip():
        assert bad not in exc.value.render()


def test_api_base() -> None:
    assert api_base("http://maas:5240/MAAS") == "http://maas:5240/MAAS/api/2.0/"
    assert api_base("http://maas:5240/MAAS/") == "http://maas:5240/MAAS/api/2.0/"
    assert api_base("https://maas:5443/MAAS/api/2.0/") == "https://maas:5443/MAAS/api/2.0/"


def _machine(**kw: object) -> Machine:
    data: dict[str, object] = {
        "system_id": "abc123",
        "hostname": "pma-1",
        "fqdn": "pma-1.maas",
        "status": 4,
        "status_name": "Ready",
        "owner": None,
        "zone": {"name": "default"},
        "pool": {"name": "default"},
        "tag_names": [],
        "power_type": "redfish",
        "power_state": "off",
        "cpu_count": 8,
        "memory": 16384,
    }
    data.update(kw)
    return Machine.from_json(data)


def test_selection_rules() -> None:
    assert machine_problem(_machine(), "me") is None
    assert machine_problem(_machine(status=10, status_name="Allocated", owner="me"), "me") is None
    assert "belongs to you2" in (
        machine_problem(_machine(status=10, status_name="Allocated", owner="you2"), "me") or ""
    )
    assert "Failed" in (
        machine_problem(_machine(status=MachineStatus.FAILED_TESTING, status_name="Failed testing"), "me") or ""
    )
    assert "commission it" in (machine_problem(_machine(status=0, status_name="New"), "me") or "")


def test_zone_labels_are_valid_label_values() -> None:
    labels = zone_labels(_machine(zone={"name": "-Hall 1/Row 7-"}, pool={"name": ""}))
    assert labels == {"topology.kubernetes.io/zone": "Hall-1-Row-7"}
    long = zone_labels(_machine(zone={"name": "z" * 80}))
    assert len(long["topology.kubernetes.io/zone"]) == 63


def test_boot_route_without_network() -> None:
    params = {"power_address": "https://10.0.0.5:8443", "power_user": "u", "power_pass": "p4ssw0rd!", "node_id": ""}
    route = boot_route(_machine(), params)
    assert isinstance(route, RedfishTarget) and route.bmc.address == "https://10.0.0.5:8443"
    assert route.bmc.password.key == "maas:abc123:power_pass" and route.redfish_system == ""
    virsh = boot_route(_machine(power_type="virsh"), {"power_address": "qemu+ssh://kvm1/system", "power_id": "pma-1"})
    assert (
        isinstance(virsh, ManualInstruction)
        and "virtual CD-ROM" in virsh.text
        and "qemu+ssh://kvm1/system" in virsh.text
    )
