"""The bare-metal path through the engine, from an empty lab to "Palette activated, packs uploaded": the wizard
serves the ISO, each BMC (sushy-emulator) inserts it as virtual media — downloading it from our ISO server — boots
once from CD and powers on; the lab's nodes install because, and only because, their BMC says so
(wizard.lab.controlplane.RedfishWatcher); then the media is ejected, the nodes linked, the content uploaded, the
cluster created, the system console set up, Palette activated, the pack bundles uploaded and the registry synced.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.sushy_peer import SushyEmulator
from tests.support.waiting import eventually
from wizard.core.project import SecretRef, load_project
from wizard.core.report import REPORT_HTML, SUMMARY_TEXT
from wizard.core.runner import Event, ExitCode, RunFinished
from wizard.install.session import Session
from wizard.install.steps.nodes import DEFAULT_PASSWORD
from wizard.lab.console import DEFAULT_ADMIN_PASSWORD
from wizard.lab.controlplane import RedfishWatcher
from wizard.lab.knobs import parse_knobs
from wizard.lab.lab import LabNode
from wizard.rehearsal import CONSOLE_EMAIL, CONSOLE_PASSWORD_KEY, NODE_PASSWORD_KEY, Rehearsal

pytestmark = [pytest.mark.redfish, pytest.mark.lab, pytest.mark.flow]

# The boot and the install are what these flows are about: the cluster takes 5 appliance minutes, not 25.
SHORT_CLUSTER = parse_knobs("cluster-seconds=300")

BMC_REF = "bmc-password"


@pytest.fixture
def emulator() -> Iterator[SushyEmulator]:
    with SushyEmulator(tls=True, auth=True, systems=3) as emu:
        yield emu


def _point_at_bmcs(rehearsal: Rehearsal, emu: SushyEmulator) -> None:
    doc: dict[str, Any] = yaml.safe_load(rehearsal.project_file.read_text())
    doc["provider"] = {"type": "redfish", "redfish": {"iso_server_bind": "127.0.0.1"}}
    for i, node in enumerate(doc["nodes"]):
        node["bmc"] = {
            "address": emu.address(i),
            "username": emu.username,
            "password": {"secret": BMC_REF},
            "tls_fingerprint": emu.fingerprint,
        }
    rehearsal.project_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    rehearsal.secrets.set(SecretRef(BMC_REF), emu.password)


def _ejected(node: LabNode) -> Callable[[], bool]:
    return lambda: node.machine.media is None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bare_metal_from_empty_project_to_palette_activated_with_packs(emulator: SushyEmulator, tmp_path: Path) -> None:
    # The emulator applies power changes 1-11 s late; at speed 40 an install takes ~23 s, so the first node to power
    # on is still installing when the last one's boot job ends and the install step starts watching.
    with Rehearsal(tmp_path / "rehearsal", nodes=3, speed=40, lab=SHORT_CLUSTER) as rehearsal:
        assert rehearsal.lab is not None and rehearsal.console is not None
        lab, console = rehearsal.lab, rehearsal.console.state
        _point_at_bmcs(rehearsal, emulator)
        watchers = [
            RedfishWatcher(
                node.machine,
                emulator.base_url,
                f"/redfish/v1/Systems/{emulator.systems[i]}",
                auth=(emulator.username, emulator.password),
                verify=ssl.create_default_context(cafile=str(emulator.cert_path)),
                interval=0.1,
            ).start()
            for i, node in enumerate(lab.nodes)
        ]
        try:
            assert not any(n.machine.powered_on for n in lab.nodes)
            assert console.password_reset_required and console.activation_state() == "Pending"
            events: list[Event] = []
            run = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
            code = run.engine(steps=rehearsal.steps(), on_event=events.append).run()
            finished = next(e for e in events if isinstance(e, RunFinished))
            assert code is ExitCode.DONE, finished.error
            journal = run.journal
            project = load_project(rehearsal.project_file).project

            # Booted through the BMCs from our ISO server, and ejected after the install.
            iso_size = (rehearsal.folder / "files" / "palette-edge-installer.iso").stat().st_size
            for node in lab.nodes:
                assert journal.result(f"boot/{node.name}")["iso_bytes_read"] >= iso_size
                # Ejected by the install monitor as soon as the node's installer finished; the eject step confirms.
                early = journal.result(f"install/{node.name}")["eject"]
                assert early["ejected"] and early["seeds_ejected"] == 1, early
                assert not journal.result(f"eject/{node.name}")["ejected"]
                # The seed went into the BMC's second medium (sushy's USB stick), and the node took it.
                assert journal.result(f"boot/{node.name}")["seed"].endswith("/Floppy")
                assert node.machine.seeded_with is not None
                assert node.machine.seeded_with.hostname == node.state.hostname
                assert node.machine.installed and node.machine.powered_on
                assert eventually(_ejected(node))  # through the BMC, seen by the watcher
            assert journal.result("media/iso-server")["url_base"].startswith("http://127.0.0.1:")

            # Every node's default password was replaced with the operator's.
            node_password = rehearsal.secrets.require(SecretRef(NODE_PASSWORD_KEY), "appliance.password")
            for node in lab.nodes:
                assert node.state.check_password("kairos", node_password)
                assert not node.state.check_password("kairos", DEFAULT_PASSWORD)

            # Linked: the leader sees both followers Ready and Healthy.
            leader = lab.nodes[0].state
            peers = lab.registry.status(leader)["peers"]
            followers = [p for p in peers if p["id"] != leader.uid]
            assert len(followers) == 2
            assert all(p["status"] == "Ready" and p["health"]["status"] == "Healthy" for p in followers)

            # The content bundle arrived whole (the server's sha256 is the file's).
            bundle = project.files.content_bundle
            assert bundle is not None
            assert journal.result("content/upload")["sha256"] == _sha256(bundle.path)

            # The cluster runs on all three nodes with the project's VIP; its kubeconfig is saved owner-only.
            deployment = leader.cluster
            assert deployment is not None and deployment.running(lab.clock())
            assert deployment.vip == project.network.vip and len(deployment.hosts) == 3
            kubeconfig = Path(journal.result("cluster/create")["kubeconfig"])
            assert kubeconfig.stat().st_mode & 0o077 == 0

            # System console: admin/admin replaced with the operator's email and password.
            console_password = rehearsal.secrets.require(SecretRef(CONSOLE_PASSWORD_KEY), "console.password")
            assert not console.password_reset_required
            assert console.admin_email == CONSOLE_EMAIL
            assert console._check_password(console_password)
            assert not console._check_password(DEFAULT_ADMIN_PASSWORD)

            # Activated with the key "support" issued for this install.
            assert console.activation_state() == "Active"
            assert journal.result("activate/palette")["product_setup_id"] == console.system_uid

            # Every pack bundle is in the registry with the sha256 of our file, and the registry synced after them
            # (the content bundle's own packs, listed from the start, have no upload's sha256).
            in_registry = {(p.name, p.sha256) for p in console.packs() if p.sha256}
            for ref in project.files.pack_bundles:
                facts = journal.result(f"packs/{ref.path.name}")
                assert facts["sha256"] == _sha256(ref.path)
                assert (facts["registry_name"], facts["sha256"]) in in_registry
            assert len(in_registry) == len(project.files.pack_bundles) == 2
            sync = console.sync_status(console.registry.uid)
            assert sync["status"] == "Completed"
            assert sync["syncedPacks"] == console.pack_count + 2
            assert journal.result("packs/registry-sync")["synced_packs"] == console.pack_count + 2

            # Validated, and the run report says so.
            assert journal.result("validate/palette")["health"] == "Healthy"
            report = journal.result("validate/report")
            assert report["headline"] == "Palette activated, packs uploaded"
            folder = journal.path.with_suffix("")
            html = (folder / REPORT_HTML).read_text()
            assert "Palette activated, packs uploaded" in html and str(kubeconfig) in html
            summary = (folder / SUMMARY_TEXT).read_text()
            assert f"https://{project.network.vip}:{rehearsal.console.port}/system" in summary
        finally:
            for watcher in watchers:
                watcher.stop()
