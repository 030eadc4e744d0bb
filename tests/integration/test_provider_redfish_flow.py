"""The bare-metal path through the engine: the wizard serves the ISO, each BMC (sushy-emulator) inserts it as
virtual media — downloading it from our ISO server — boots once from CD and powers on; the lab's nodes install
because, and only because, their BMC says so (wizard.lab.controlplane.RedfishWatcher); then the media is ejected.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.sushy_peer import SushyEmulator
from tests.support.waiting import eventually
from wizard.core.project import SecretRef
from wizard.core.runner import Event, ExitCode, RunFinished
from wizard.core.session import Session
from wizard.lab.controlplane import RedfishWatcher
from wizard.lab.rehearsal import Rehearsal

pytestmark = [pytest.mark.redfish, pytest.mark.lab, pytest.mark.flow]

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


def test_bmcs_boot_the_nodes_from_our_iso_server_and_eject_after_install(
    emulator: SushyEmulator, tmp_path: Path
) -> None:
    # The emulator applies power changes 1-11 s late; at speed 40 an install takes ~23 s, so the first node to power
    # on is still installing when the last one's boot job ends and the install step starts watching.
    with Rehearsal(tmp_path / "rehearsal", nodes=3, speed=40) as rehearsal:
        assert rehearsal.lab is not None
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
            for i, node in enumerate(rehearsal.lab.nodes)
        ]
        try:
            assert not any(n.machine.powered_on for n in rehearsal.lab.nodes)
            events: list[Event] = []
            run = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
            code = run.engine(steps=rehearsal.steps(until="eject"), on_event=events.append).run()
            finished = next(e for e in events if isinstance(e, RunFinished))
            assert code is ExitCode.DONE, finished.error
            journal = run.journal
            iso_size = (rehearsal.folder / "files" / "palette-edge-installer.iso").stat().st_size
            for node in rehearsal.lab.nodes:
                boot = journal.result(f"boot/{node.name}")
                assert boot["iso_bytes_read"] >= iso_size  # the emulator downloaded the whole ISO from us
                assert journal.result(f"eject/{node.name}")["ejected"]
                assert node.machine.installed and node.machine.powered_on
                assert eventually(
                    lambda n=node: n.machine.media is None
                )  # ejected through the BMC, seen by the watcher
            assert journal.result("preflight/bmc/" + rehearsal.lab.nodes[0].name)["results"]
            assert journal.result("media/iso-server")["url_base"].startswith("http://127.0.0.1:")
        finally:
            for watcher in watchers:
                watcher.stop()
