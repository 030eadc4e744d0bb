"""Node VMs against the simulator: create to spec, rerun, existing VMs, anti-affinity, boot, eject, guest info."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pyVmomi import vim

from tests.integration.vcsim_peer import (  # noqa: F401 - fixtures
    EXISTING_VMS,
    HOSTS,
    PASSWORD,
    PORTGROUP,
    SMALL_VM,
    VcsimServer,
    run_job,
    vcsim_binary_fixture,
    vcsim_fixture,
)
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.project import VmMode, VsphereSettings
from wizard.core.trust import TrustStore
from wizard.providers.vsphere import vms
from wizard.providers.vsphere.jobs import (
    AntiAffinityJob,
    BootVmJob,
    EjectVmJob,
    PrepareVmJob,
    UploadIsoJob,
    guest_address,
)
from wizard.providers.vsphere.session import VsphereSession, connect

pytestmark = pytest.mark.vsphere

NODES = ("node-1", "node-2", "node-3")
GIB_KB = 1024 * 1024


@pytest.fixture
def trust(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


@contextmanager
def session_for(settings: VsphereSettings, trust: TrustStore) -> Iterator[VsphereSession]:
    with connect(settings, PASSWORD, trust, None, scheme="http") as session:
        yield session


def prepare(settings: VsphereSettings, trust: TrustStore, node: str, vm_name: str, index: int | None = None) -> dict:
    job = PrepareVmJob(settings, PASSWORD, trust, None, node=node, vm_name=vm_name, index=index, scheme="http")
    assert job.id == f"vsphere/vm/{node}"
    return run_job(job)[0]


def all_vm_names(session: VsphereSession) -> list[str]:
    return sorted(str(p["name"]) for _, p in session.properties(vim.VirtualMachine, ["name"]))


def test_create_vms_to_spec_spread_over_hosts_and_rerun(vcsim: VcsimServer, trust: TrustStore) -> None:
    settings = vcsim.settings()
    facts = [prepare(settings, trust, node, f"pma-{node}", i) for i, node in enumerate(NODES)]
    assert all(f["created"] is True for f in facts)
    assert sorted(f["host"] for f in facts) == sorted(HOSTS)
    with session_for(settings, trust) as session:
        for node, f in zip(NODES, facts, strict=True):
            vm = vms.find_vm(session, f"pma-{node}", node)
            assert vm._moId == f["moref"]
            cfg = vm.config
            assert cfg.firmware == "efi"
            assert cfg.hardware.numCPU == SMALL_VM.cpus and cfg.hardware.numCoresPerSocket == SMALL_VM.cpus
            assert cfg.hardware.memoryMB == SMALL_VM.memory_gb * 1024
            ds = vms.disks(vm)
            assert [d.capacityInKB // GIB_KB for d in ds] == [SMALL_VM.os_disk_gb, SMALL_VM.data_disk_gb]
            by_key = {d.key: d for d in vms.devices(vm)}
            assert all(isinstance(by_key[d.controllerKey], vim.vm.device.ParaVirtualSCSIController) for d in ds)
            assert all(d.backing.thinProvisioned and d.backing.fileName.endswith(".vmdk") for d in ds)
            nics = vms.nics(vm)
            assert len(nics) == 1 and isinstance(nics[0], vim.vm.device.VirtualVmxnet3)
            assert vms.nic_on_network(nics[0], session.network())
            assert len(vms.cdroms(vm)) == 1
            extra = vms.extra_config(vm)
            assert extra["disk.EnableUUID"] == "TRUE" and extra[vms.MARKER_KEY] == node
            assert node in cfg.annotation
            assert vm.runtime.host.name == f["host"]
        before = all_vm_names(session)
    # A rerun finds the same VMs and creates nothing.
    again = [prepare(settings, trust, node, f"pma-{node}", i) for i, node in enumerate(NODES)]
    assert [f["moref"] for f in again] == [f["moref"] for f in facts]
    assert all(f["created"] is False for f in again)
    with session_for(settings, trust) as session:
        assert all_vm_names(session) == before
        assert before.count("pma-node-1") == 1


def test_least_loaded_host_without_index_and_dvs_portgroup(vcsim: VcsimServer, trust: TrustStore) -> None:
    settings = vcsim.settings(network=PORTGROUP)
    hosts = [prepare(settings, trust, node, f"dv-{node}")["host"] for node in NODES]
    assert sorted(hosts) == sorted(HOSTS)
    with session_for(settings, trust) as session:
        vm = vms.find_vm(session, "dv-node-1", "node-1")
        backing = vms.nics(vm)[0].backing
        assert isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo)
        assert backing.port.portgroupKey == session.network().key


def test_same_name_without_marker_is_never_taken(vcsim: VcsimServer, trust: TrustStore) -> None:
    with pytest.raises(WizardError) as err:
        prepare(vcsim.settings(), trust, "node-1", EXISTING_VMS[0])
    assert err.value.title == "VM name in use"
    assert "vm_mode: existing" in err.value.remediation


def test_existing_vm_must_fit_the_spec(vcsim: VcsimServer, trust: TrustStore) -> None:
    settings = vcsim.settings(vm_mode=VmMode.EXISTING)
    with pytest.raises(WizardError) as err:
        prepare(settings, trust, "node-1", EXISTING_VMS[0])
    assert err.value.title == "VM does not fit the appliance"
    assert "UEFI" in err.value.details and "data disk" in err.value.details


def test_existing_vm_that_fits_is_marked(vcsim: VcsimServer, trust: TrustStore) -> None:
    # The operator built a VM by hand (here: with the wizard's own spec but no marker, then removed the marker).
    create = vcsim.settings()
    prepare(create, trust, "tmp", "hand-made")
    with session_for(create, trust) as session:
        vm = vms.find_vm(session, "hand-made", "tmp")
        vms.reconfigure(
            vm,
            vim.vm.ConfigSpec(
                extraConfig=[
                    vim.option.OptionValue(key=vms.MARKER_KEY, value=""),
                    vim.option.OptionValue(key="disk.EnableUUID", value="FALSE"),
                ]
            ),
            "test",
            CancelToken(),
        )
    facts = prepare(vcsim.settings(vm_mode=VmMode.EXISTING), trust, "node-2", "hand-made")
    assert facts["created"] is False
    with session_for(create, trust) as session:
        extra = vms.extra_config(vms.find_vm(session, "hand-made", "node-2"))
        assert extra[vms.MARKER_KEY] == "node-2" and extra["disk.EnableUUID"] == "TRUE"


def test_anti_affinity_rule_created_read_back_and_idempotent(vcsim: VcsimServer, trust: TrustStore) -> None:
    settings = vcsim.settings()
    names = [f"aa-{n}" for n in NODES]
    for i, node in enumerate(NODES):
        prepare(settings, trust, node, names[i], i)
    job = AntiAffinityJob(settings, PASSWORD, trust, None, vm_names=names, rule_name="palette-nodes", scheme="http")
    assert job.id == "vsphere/anti-affinity"
    facts, _ = run_job(job)
    assert facts["action"] == "created"
    with session_for(settings, trust) as session:
        rules = [r for r in session.cluster().configurationEx.rule if r.name == "palette-nodes"]
        assert len(rules) == 1 and isinstance(rules[0], vim.cluster.AntiAffinityRuleSpec)
        assert rules[0].enabled
        assert sorted(v.name for v in rules[0].vm) == sorted(names)
    again, _ = run_job(
        AntiAffinityJob(settings, PASSWORD, trust, None, vm_names=names, rule_name="palette-nodes", scheme="http")
    )
    assert again["action"] == "unchanged"


def test_anti_affinity_skipped_when_hosts_are_too_few(vcsim: VcsimServer, trust: TrustStore) -> None:
    settings = vcsim.settings()
    names = [f"s-{i}" for i in range(4)]
    for i, name in enumerate(names):
        prepare(settings, trust, f"n{i}", name, i)
    facts, progress = run_job(
        AntiAffinityJob(settings, PASSWORD, trust, None, vm_names=names, rule_name="r4", scheme="http")
    )
    assert facts["action"] == "skipped" and "3 usable host(s) for 4 VMs" in facts["message"]
    task = progress.snapshot().task("vsphere/anti-affinity")
    assert task is not None and "could not be satisfied" in task.message
    # vcsim 0.24.2 ignores drsConfig changes, so "DRS off" is covered in tests/core/test_vsphere_faults.py.


def _upload(settings: VsphereSettings, trust: TrustStore, tmp_path: Path, name: str, node: str = "") -> str:
    path = tmp_path / name
    path.write_bytes(os.urandom(256 * 1024))
    job = UploadIsoJob(
        settings,
        PASSWORD,
        trust,
        None,
        local_path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        remote_name=name,
        node=node,
        scheme="http",
    )
    return str(run_job(job)[0]["datastore_path"])


def test_boot_with_seed_then_eject_and_reruns(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    settings = vcsim.settings()
    iso = _upload(settings, trust, tmp_path, "pma.iso")
    seed = _upload(settings, trust, tmp_path, "seed-node-1.iso", node="node-1")
    prepare(settings, trust, "node-1", "boot-1", 0)

    def boot() -> dict:
        job = BootVmJob(
            settings,
            PASSWORD,
            trust,
            None,
            node="node-1",
            vm_name="boot-1",
            iso_datastore_path=iso,
            seed_datastore_path=seed,
            scheme="http",
        )
        assert job.id == "vsphere/boot/node-1"
        return run_job(job)[0]

    facts = boot()
    assert facts["action"] == "powered-on" and facts["power"] == "poweredOn"
    with session_for(settings, trust) as session:
        vm = vms.find_vm(session, "boot-1", "node-1")
        cds = vms.cdroms(vm)
        assert [cd.backing.fileName for cd in cds] == [iso, seed]
        assert all(cd.connectable.connected and cd.connectable.startConnected for cd in cds)
        os_disk = vms.disks(vm)[0]
        assert vms.boot_order(vm) == ["cdrom", f"disk:{os_disk.key}"]
        assert vm.runtime.powerState == "poweredOn"
        extra = vms.extra_config(vm)
        assert extra[vms.BOOT_KEY] == iso and extra[vms.STATE_KEY] == "booting"
    # Running from the ISO already: a rerun must not reset an install in progress.
    assert boot()["action"] == "already-booting"

    eject = EjectVmJob(settings, PASSWORD, trust, None, node="node-1", vm_name="boot-1", scheme="http")
    assert eject.id == "vsphere/eject/node-1"
    ejected, _ = run_job(eject)
    assert ejected["ejected"] is True and ejected["boot_order"] == [f"disk:{os_disk.key}"]
    with session_for(settings, trust) as session:
        vm = vms.find_vm(session, "boot-1", "node-1")
        assert vms.iso_backings(vm) == []
        assert all(not cd.connectable.connected and not cd.connectable.startConnected for cd in vms.cdroms(vm))
        assert vms.boot_order(vm) == [f"disk:{os_disk.key}"]
        assert vms.extra_config(vm)[vms.STATE_KEY] == "ejected"
    again, _ = run_job(EjectVmJob(settings, PASSWORD, trust, None, node="node-1", vm_name="boot-1", scheme="http"))
    assert again["ejected"] is False
    # Installed from this ISO and ejected: booting again would reinstall, so it is skipped.
    assert boot()["action"] == "already-installed"


def test_boot_resets_a_vm_running_something_else(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    settings = vcsim.settings()
    iso = _upload(settings, trust, tmp_path, "pma.iso")
    prepare(settings, trust, "node-2", "running", 1)
    with session_for(settings, trust) as session:
        vm = vms.find_vm(session, "running", "node-2")
        vms.wait_task(vm.PowerOnVM_Task(), "test", CancelToken())
    facts, _ = run_job(
        BootVmJob(
            settings, PASSWORD, trust, None, node="node-2", vm_name="running", iso_datastore_path=iso, scheme="http"
        )
    )
    assert facts["action"] == "reset" and facts["isos"] == [iso] and facts["boot_order"][0] == "cdrom"


def test_guest_address_from_vmware_tools(vcsim: VcsimServer, trust: TrustStore) -> None:
    settings = vcsim.settings()
    prepare(settings, trust, "node-3", "guest-3", 2)
    with pytest.raises(WizardError) as err:
        guest_address(settings, PASSWORD, trust, None, "guest-3", 0.3, CancelToken(), poll=0.1, scheme="http")
    assert err.value.title == "No guest address"
    with session_for(settings, trust) as session:
        vm = vms.find_vm(session, "guest-3", "node-3")
        vms.wait_task(vm.PowerOnVM_Task(), "test", CancelToken())
        # vcsim-only advanced settings that make the simulated VMware Tools report an address and a name.
        spec = vim.vm.ConfigSpec(
            extraConfig=[
                vim.option.OptionValue(key="SET.guest.ipAddress", value="10.20.30.43"),
                vim.option.OptionValue(key="SET.guest.hostName", value="pma-node-3"),
                vim.option.OptionValue(key="SET.guest.toolsRunningStatus", value="guestToolsRunning"),
            ]
        )
        vms.wait_task(vm.ReconfigVM_Task(spec=spec), "test", CancelToken())
    ip, hostname = guest_address(settings, PASSWORD, trust, None, "guest-3", 5.0, CancelToken(), scheme="http")
    assert (ip, hostname) == ("10.20.30.43", "pma-node-3")
