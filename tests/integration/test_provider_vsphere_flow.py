"""The whole vSphere path through the engine: the wizard creates the VMs in the vCenter simulator, uploads the ISO,
boots them from it, and the lab's nodes install because — and only because — their VMs were powered on with the ISO.

Each lab machine is driven by a watcher that reads its VM over the vSphere API (wizard.lab.controlplane), so the
test proves the provider really booted the node; nothing else powers a lab machine on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from tests.integration.vcsim_peer import (  # noqa: F401 - fixtures
    CLUSTER,
    DATACENTER,
    DATASTORE,
    NETWORK,
    PASSWORD,
    USER,
    VcsimServer,
    make_certificate,
    vcsim_binary_fixture,
)
from tests.support.waiting import eventually
from wizard.core.project import SecretRef
from wizard.core.runner import Event, ExitCode, RunFinished
from wizard.core.trust import TrustStore, fetch_certificate
from wizard.install.session import Session
from wizard.lab.controlplane import VSphereWatcher, datastore_fetcher, datastore_reader
from wizard.providers.vsphere.session import connect
from wizard.rehearsal import Rehearsal

pytestmark = [pytest.mark.vsphere, pytest.mark.lab, pytest.mark.flow]

VCSIM_REF = "vcsim-password"


@pytest.fixture
def vcsim_tls(vcsim_binary: Path, tmp_path: Path) -> Iterator[VcsimServer]:
    with VcsimServer(vcsim_binary, tls=True, cert=make_certificate(tmp_path, "flow")) as server:
        yield server


def _vm_names(rehearsal: Rehearsal) -> list[str]:
    assert rehearsal.lab is not None
    return [f"pma-{node.name}" for node in rehearsal.lab.nodes]


def _point_at_vcsim(rehearsal: Rehearsal, server: VcsimServer, fingerprint: str) -> None:
    doc: dict[str, Any] = yaml.safe_load(rehearsal.project_file.read_text())
    doc["provider"] = {
        "type": "vsphere",
        "vsphere": {
            "server": server.host,
            "port": server.port,
            "username": USER,
            "password": {"secret": VCSIM_REF},
            "datacenter": DATACENTER,
            "cluster": CLUSTER,
            "datastore": DATASTORE,
            "network": NETWORK,
            "tls_fingerprint": fingerprint,
            "vm": {"cpus": 2, "memory_gb": 1, "os_disk_gb": 1, "data_disk_gb": 1},
        },
    }
    for node, vm in zip(doc["nodes"], _vm_names(rehearsal), strict=True):
        node["vm"] = vm
    rehearsal.project_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    rehearsal.secrets.set(SecretRef(VCSIM_REF), PASSWORD)


def test_vms_created_booted_from_the_iso_installed_and_ejected(vcsim_tls: VcsimServer, tmp_path: Path) -> None:
    fingerprint = fetch_certificate(vcsim_tls.host, vcsim_tls.port).fingerprint
    with Rehearsal(tmp_path / "rehearsal", nodes=3, speed=300) as rehearsal:
        assert rehearsal.lab is not None
        _point_at_vcsim(rehearsal, vcsim_tls, fingerprint)
        settings = vcsim_tls.settings(tls_fingerprint=fingerprint)
        with connect(settings, PASSWORD, TrustStore(tmp_path / "watcher-trust"), None) as session:
            watchers = [
                VSphereWatcher(
                    node.machine,
                    session.si,
                    vm,
                    interval=0.05,
                    fetch=datastore_fetcher(session),
                    reader=datastore_reader(session),
                ).start()
                for node, vm in zip(rehearsal.lab.nodes, _vm_names(rehearsal), strict=True)
            ]
            try:
                assert not any(n.machine.powered_on for n in rehearsal.lab.nodes)
                events: list[Event] = []
                run = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
                code = run.engine(steps=rehearsal.steps(until="password"), on_event=events.append).run()
                finished = next(e for e in events if isinstance(e, RunFinished))
                assert code is ExitCode.DONE, finished.error
                journal = run.journal
                assert journal.result("media/iso")["datastore_path"].startswith(f"[{DATASTORE}] palette-iso/")
                # What the VMs booted is the unattended copy (the lab's ISO defaults to the interactive installer,
                # which would never install), uploaded with its own sha256.
                derived = journal.result("media/unattended")
                assert "-unattended-" in journal.result("media/iso")["datastore_path"]
                assert journal.result("media/iso")["sha256"] == derived["sha256"] != derived["source_sha256"]
                # The nodes installed from the ISO: each machine is installed and up, and was powered on by its VM.
                for node in rehearsal.lab.nodes:
                    assert node.machine.installed and node.machine.powered_on
                    assert eventually(
                        lambda n=node: n.machine.media is None
                    )  # ejected through vSphere, seen by the watcher
                content = session.si.RetrieveContent()
                view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
                vms = {vm.name: vm for vm in view.view if vm.name in _vm_names(rehearsal)}
                view.Destroy()
                assert sorted(vms) == sorted(_vm_names(rehearsal))
                for vm in vms.values():
                    assert vm.config.firmware == "efi" and str(vm.runtime.powerState) == "poweredOn"
                    order = list(vm.config.bootOptions.bootOrder or [])
                    assert order and isinstance(order[0], vim.vm.BootOptions.BootableDiskDevice)
                # Each VM had its own seed ISO on CD drive 2 (uploaded beside the ISO); the node took it, and the
                # install monitor ejected both drives as soon as the node's installer finished.
                for node, vm_name in zip(rehearsal.lab.nodes, _vm_names(rehearsal), strict=True):
                    seed = journal.result(f"media/seed/{node.name}")
                    assert seed["datastore_path"] == f"[{DATASTORE}] palette-iso/{vm_name}-seed.iso"
                    assert node.machine.seeded_with is not None
                    assert node.machine.seeded_with.hostname == node.state.hostname
                    assert journal.result(f"install/{node.name}")["eject"]["ejected"]
                # Passwords were replaced after the install, through the Local UI.
                assert all(journal.result(f"password/{n.name}")["replaced"] for n in rehearsal.lab.nodes)

                # A second run finds everything done: no new VMs, no second upload.
                events.clear()
                again = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
                code = again.engine(steps=rehearsal.steps(until="password"), on_event=events.append).run()
                assert code is ExitCode.DONE
                view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
                assert sum(1 for vm in view.view if vm.name.startswith("pma-")) == 3
                view.Destroy()
            finally:
                for watcher in watchers:
                    watcher.stop()
