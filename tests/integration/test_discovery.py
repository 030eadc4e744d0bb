"""Discovery of node candidates against the real peers: vcsim, the sushy-tools Redfish emulator, the MAAS fake."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from pyVmomi import vim

from tests.integration.sushy_peer import SushyEmulator
from tests.integration.vcsim_peer import (  # noqa: F401 - fixtures
    DATACENTER,
    EXISTING_VMS,
    PASSWORD,
    VcsimServer,
    run_job,
    vcsim_binary_fixture,
    vcsim_fixture,
)
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, SecretError, WizardError
from wizard.core.project import Bmc, Provider, ProviderType, SecretRef, VmMode
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustKind, TrustRefused, TrustRequest, TrustStore, normalize
from wizard.install.discovery import Candidate, discover, provider_settings, taken_by
from wizard.lab.certs import create_node_certificate
from wizard.lab.maas import MaasState, Status
from wizard.lab.maasserver import MaasServer
from wizard.providers.redfish.errors import AuthRefused
from wizard.providers.vsphere import vms
from wizard.providers.vsphere.jobs import PrepareVmJob
from wizard.providers.vsphere.session import connect


@pytest.fixture
def trust(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


def _secrets(**values: str) -> SecretStore:
    store = SecretStore()
    for key, value in values.items():
        store.set(SecretRef(key), value)
    return store


# -- vSphere ---------------------------------------------------------------------------------------------------------


def _vsphere(vcsim: VcsimServer, **overrides: object) -> Provider:
    return Provider(ProviderType.VSPHERE, vsphere=vcsim.settings(**overrides))


@pytest.mark.vsphere
def test_vsphere_create_mode_says_so_without_connecting(vcsim: VcsimServer, trust: TrustStore) -> None:
    # No password stored: had it tried to log in, the missing secret would have been the answer.
    found = discover(_vsphere(vcsim), SecretStore(), trust, None, CancelToken(), vsphere_scheme="http")
    assert found.candidates == ()
    assert "vm_mode: create" in found.message and "existing" in found.message


@pytest.mark.vsphere
def test_vsphere_lists_the_vms_and_flags_the_ones_that_do_not_fit(vcsim: VcsimServer, trust: TrustStore) -> None:
    create = vcsim.settings()
    run_job(PrepareVmJob(create, PASSWORD, trust, None, node="node-1", vm_name="pma-1", index=0, scheme="http"))
    with connect(create, PASSWORD, trust, None, scheme="http") as session:
        vm = vms.find_vm(session, "pma-1", "node-1")
        vms.wait_task(vm.PowerOnVM_Task(), "test", CancelToken())
        # vcsim-only settings that make the simulated VMware Tools report an address.
        spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key="SET.guest.ipAddress", value="10.20.30.41")])
        vms.wait_task(vm.ReconfigVM_Task(spec=spec), "test", CancelToken())

    found = discover(
        _vsphere(vcsim, vm_mode=VmMode.EXISTING),
        _secrets(vcsim=PASSWORD),
        trust,
        None,
        CancelToken(),
        vsphere_scheme="http",
    )
    assert found.provider is ProviderType.VSPHERE and found.message == ""
    assert DATACENTER in found.source
    by_name = {c.label: c for c in found.candidates}
    assert set(by_name) == {*EXISTING_VMS, "pma-1"}
    ours = by_name["pma-1"]
    assert ours.usable and ours.why_not == "" and ours.fields == {"vm": "pma-1"}
    assert "powered on" in ours.detail and "2 vCPU" in ours.detail and "1 GB memory" in ours.detail
    assert "guest IP 10.20.30.41" in ours.detail and "marked for node node-1" in ours.detail
    for name in EXISTING_VMS:
        other = by_name[name]
        # The same validation the install applies to an existing VM: BIOS firmware, too few disks.
        assert not other.usable and "UEFI" in other.why_not and "disk" in other.why_not, other
    assert [c.label for c in found.usable] == ["pma-1"]


@pytest.mark.vsphere
def test_vsphere_wrong_datacenter_and_missing_password_are_explained(vcsim: VcsimServer, trust: TrustStore) -> None:
    with pytest.raises(WizardError) as err:
        discover(
            _vsphere(vcsim, vm_mode=VmMode.EXISTING, datacenter="DC9"),
            _secrets(vcsim=PASSWORD),
            trust,
            None,
            CancelToken(),
            vsphere_scheme="http",
        )
    assert err.value.title == "Datacenter not found"
    assert "provider.vsphere.datacenter" in err.value.remediation and DATACENTER in err.value.remediation

    with pytest.raises(SecretError) as missing:
        absent = _vsphere(vcsim, vm_mode=VmMode.EXISTING, password=SecretRef("never-stored"))
        discover(absent, SecretStore(), trust, None, CancelToken(), vsphere_scheme="http")
    assert "provider.vsphere.password" in missing.value.message


@pytest.mark.vsphere
def test_vsphere_discovery_stops_when_cancelled(vcsim: VcsimServer, trust: TrustStore) -> None:
    cancel = CancelToken()
    cancel.cancel("closed")
    with pytest.raises(Cancelled):
        discover(_vsphere(vcsim, vm_mode=VmMode.EXISTING), _secrets(vcsim=PASSWORD), trust, None, cancel)


# -- Redfish ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[SushyEmulator]:
    with SushyEmulator(tls=True, auth=True, systems=3) as emu:
        yield emu


class Operator:
    """The trust dialog's part: records each question and trusts the certificate it expects."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = normalize(fingerprint)
        self.asked: list[TrustRequest] = []

    def __call__(self, request: TrustRequest) -> bool:
        self.asked.append(request)
        return normalize(request.presented) == self.fingerprint


REDFISH = Provider(ProviderType.REDFISH)


@pytest.mark.redfish
def test_redfish_lists_every_system_of_a_multi_system_bmc(emulator: SushyEmulator, trust: TrustStore) -> None:
    operator = Operator(emulator.fingerprint)
    # The operator typed one node's address (with its System); discovery lists the whole BMC.
    typed = Bmc(emulator.address(1), emulator.username, SecretRef("bmc"))
    found = discover(REDFISH, _secrets(bmc=emulator.password), trust, operator, CancelToken(), bmc=typed)
    assert len(operator.asked) == 1 and operator.asked[0].kind is TrustKind.TLS  # asked once, then pinned
    assert trust.pinned(TrustKind.TLS, emulator.host, emulator.port) is not None
    assert found.provider is ProviderType.REDFISH and emulator.base_url in found.source
    assert [c.key for c in found.candidates] == [emulator.address(i) for i in range(3)]
    for i, candidate in enumerate(found.candidates):
        assert candidate.label.startswith(f"node-{i} ")
        assert "power Off" in candidate.detail and "boot mode UEFI" in candidate.detail, candidate.detail
        assert "CPUs not reported" in candidate.detail  # the fake driver reports no totals
        assert candidate.usable, candidate.why_not
        # What the boot job uses: the System's path in the BMC address.
        assert candidate.fields["bmc"] == {
            "address": emulator.address(i),
            "username": emulator.username,
            "password": {"secret": "bmc"},
        }


@pytest.mark.redfish
def test_redfish_flags_a_system_that_boots_legacy(emulator: SushyEmulator, trust: TrustStore) -> None:
    system = f"/redfish/v1/Systems/{emulator.systems[2]}"
    with httpx.Client(base_url=emulator.base_url, verify=False, auth=(emulator.username, emulator.password)) as http:
        r = http.patch(system, json={"Boot": {"BootSourceOverrideMode": "Legacy"}})
        assert r.status_code in (200, 204), r.text
    try:
        bmc = Bmc(emulator.base_url, emulator.username, SecretRef("bmc"), emulator.fingerprint)
        found = discover(REDFISH, _secrets(bmc=emulator.password), trust, None, CancelToken(), bmc=bmc)
        legacy = found.candidates[2]
        assert not legacy.usable and "Legacy" in legacy.why_not and "UEFI" in legacy.why_not
        assert [c.usable for c in found.candidates] == [True, True, False]
        assert found.candidates[0].fields["bmc"]["tls_fingerprint"] == emulator.fingerprint
    finally:
        with httpx.Client(
            base_url=emulator.base_url, verify=False, auth=(emulator.username, emulator.password)
        ) as http:
            http.patch(system, json={"Boot": {"BootSourceOverrideMode": "UEFI"}})


@pytest.mark.redfish
def test_redfish_wrong_password_is_refused_without_the_password(emulator: SushyEmulator, trust: TrustStore) -> None:
    wrong = "Not-The-Password-42"
    bmc = Bmc(emulator.base_url, emulator.username, SecretRef("bmc"), emulator.fingerprint)
    with pytest.raises(AuthRefused) as err:
        discover(REDFISH, _secrets(bmc=wrong), trust, None, CancelToken(), bmc=bmc)
    assert err.value.title == "BMC login refused" and err.value.remediation
    assert wrong not in err.value.render() and emulator.password not in err.value.render()


@pytest.mark.redfish
def test_redfish_needs_a_bmc_and_a_refused_certificate_stops(emulator: SushyEmulator, trust: TrustStore) -> None:
    with pytest.raises(WizardError, match="no directory"):
        discover(REDFISH, SecretStore(), trust, None, CancelToken())
    bmc = Bmc(emulator.base_url, emulator.username, SecretRef("bmc"))
    with pytest.raises(TrustRefused) as err:
        discover(REDFISH, _secrets(bmc=emulator.password), trust, Operator("00" * 32), CancelToken(), bmc=bmc)
    assert "did not trust" in err.value.message and err.value.remediation
    assert trust.pinned(TrustKind.TLS, emulator.host, emulator.port) is None


# -- MAAS ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def maas() -> Iterator[tuple[MaasState, MaasServer, str]]:
    state = MaasState()
    admin = state.add_user("admin", admin=True)
    state.add_user("bob")
    big = {"cpu_count": 16, "memory": 32768, "power_type": "redfish"}
    state.add_machine("pma-1", system_id="abc1de", zone="rack-1", pool="palette", **big)
    state.add_machine("pma-2", system_id="abc2de", zone="rack-2", pool="palette", **big)
    state.add_machine("pma-3", system_id="abc3de", zone="rack-3", pool="palette", **big)
    state.add_machine("small-4", system_id="abc4de", cpu_count=4, memory=8192)
    state.add_machine("new-5", system_id="abc5de", **big)
    state.machine("abc2de").status = Status.ALLOCATED
    state.machine("abc2de").owner = "bob"
    state.machine("abc3de").status = Status.ALLOCATED
    state.machine("abc3de").owner = "admin"
    state.machine("abc5de").status = Status.NEW
    with MaasServer(state) as server:
        yield state, server, admin.api_key


def _maas_provider(url: str, **filters: object) -> Provider:
    doc = {"provider": {"type": "maas", "maas": {"url": url, "api_key": {"secret": "maas-key"}, **filters}}}
    return provider_settings(doc)


@pytest.mark.maas
def test_maas_lists_the_machines_with_why_each_cannot_be_used(
    maas: tuple[MaasState, MaasServer, str], trust: TrustStore
) -> None:
    _state, server, key = maas
    found = discover(_maas_provider(server.url), _secrets(**{"maas-key": key}), trust, None, CancelToken())
    assert found.provider is ProviderType.MAAS and "as admin" in found.source
    by_id = {c.key: c for c in found.candidates}
    assert set(by_id) == {"abc1de", "abc2de", "abc3de", "abc4de", "abc5de"}
    ready = by_id["abc1de"]
    assert ready.usable and ready.fields == {"maas": "abc1de", "hostname": "pma-1"}
    assert "zone rack-1" in ready.detail and "pool palette" in ready.detail and "16 CPUs" in ready.detail
    assert "pma-1" in ready.aliases
    assert by_id["abc3de"].usable  # already allocated to this user: the machines step keeps it
    assert not by_id["abc2de"].usable and "belongs to bob" in by_id["abc2de"].why_not
    assert not by_id["abc4de"].usable and "needs 8 CPUs" in by_id["abc4de"].why_not
    assert not by_id["abc5de"].usable and "commission it" in by_id["abc5de"].why_not
    assert {c.key for c in found.usable} == {"abc1de", "abc3de"}


@pytest.mark.maas
def test_maas_lists_only_the_machines_the_projects_filters_match(
    maas: tuple[MaasState, MaasServer, str], trust: TrustStore
) -> None:
    state, server, key = maas
    state.machine("abc1de").tags = ["palette", "gpu"]
    state.machine("abc3de").tags = ["palette"]
    secrets = _secrets(**{"maas-key": key})

    def keys(**filters: object) -> set[str]:
        found = discover(_maas_provider(server.url, **filters), secrets, trust, None, CancelToken())
        return {c.key for c in found.candidates}

    assert keys(pool="palette") == {"abc1de", "abc2de", "abc3de"}
    assert keys(pool="palette", zone="rack-3") == {"abc3de"}
    assert keys(tags=["palette"]) == {"abc1de", "abc3de"}
    assert keys(tags=["palette", "gpu"]) == {"abc1de"}
    assert keys(tags="gpu", zone="rack-2") == set()


def test_maas_filters_are_checked_and_kept() -> None:
    with pytest.raises(WizardError) as err:
        _maas_provider("http://maas:5240/MAAS", tags=["rack 1"])
    assert "provider.maas.tags[0]" in err.value.details and "not a MAAS tag name" in err.value.details
    provider = _maas_provider("http://maas:5240/MAAS", tags=["a", "b"], pool="p", zone="z")
    assert (
        provider.maas is not None
        and provider.maas.tags == ("a", "b")
        and (provider.maas.pool, provider.maas.zone) == ("p", "z")
    )


@pytest.mark.maas
def test_maas_wrong_key_is_a_specific_error(maas: tuple[MaasState, MaasServer, str], trust: TrustStore) -> None:
    _state, server, key = maas
    consumer, token, _secret = key.split(":")
    wrong = f"{consumer}:{token}:wrongsecret"
    with pytest.raises(WizardError) as err:
        discover(_maas_provider(server.url), _secrets(**{"maas-key": wrong}), trust, None, CancelToken())
    assert err.value.remediation and "wrongsecret" not in err.value.render()
    assert "key" in (err.value.title + err.value.message).lower(), err.value.render()


@pytest.mark.maas
def test_maas_over_https_asks_to_trust_the_certificate_once(tmp_path: Path, trust: TrustStore) -> None:
    cert = create_node_certificate(tmp_path / "tls", ip="127.0.0.1", hostname="maas.lab")
    state = MaasState()
    admin = state.add_user("admin", admin=True)
    state.add_machine("pma-1", cpu_count=16, memory=32768)
    with MaasServer(state, tls=cert.server_context()) as server:
        operator = Operator(cert.fingerprint)
        secrets = _secrets(**{"maas-key": admin.api_key})
        first = discover(_maas_provider(server.url), secrets, trust, operator, CancelToken())
        second = discover(_maas_provider(server.url), secrets, trust, operator, CancelToken())
    assert len(operator.asked) == 1
    assert [c.label for c in first.candidates] == [c.label for c in second.candidates]
    assert first.candidates[0].usable


# -- the node table --------------------------------------------------------------------------------------------------


def test_taken_by_recognises_a_node_already_in_the_table() -> None:
    vm = Candidate("vm-1", "pma-1", "", True, "", {"vm": "pma-1"})
    machine = Candidate("abc1de", "pma-1 (abc1de)", "", True, "", {"maas": "abc1de"}, aliases=("pma-1", "pma-1.maas"))
    system = Candidate(
        "https://10.0.0.5:8443/redfish/v1/Systems/a",
        "a",
        "",
        True,
        "",
        {"bmc": {"address": "https://10.0.0.5:8443/redfish/v1/Systems/a"}},
        aliases=("https://10.0.0.5:8443",),
    )
    nodes: list[object] = [
        {"name": "one", "vm": "pma-1"},
        {"name": "two", "maas": "pma-1.maas"},
        {"name": "three", "bmc": {"address": "10.0.0.5:8443"}},
        "not a node",
    ]
    assert taken_by(vm, nodes) == "one"
    assert taken_by(machine, nodes) == "two"
    assert taken_by(system, nodes) == "three"  # the bare address of a single-System BMC is that System
    assert taken_by(replace(system, aliases=()), nodes) is None
    assert taken_by(vm, [{"name": "x", "vm": "pma-2"}]) is None


def test_provider_settings_are_read_even_when_the_nodes_are_not() -> None:
    doc = {"provider": {"type": "redfish"}, "nodes": [{"name": "BAD NAME"}]}
    assert provider_settings(doc).type is ProviderType.REDFISH
    with pytest.raises(WizardError) as err:
        provider_settings({"provider": {"type": "vsphere", "vsphere": {"server": "vc"}}})
    assert err.value.title == "Provider settings incomplete" and "provider.vsphere" in err.value.details
