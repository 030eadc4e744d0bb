"""A run stopped after the boot step and resumed still serves the ISO at the URL the BMC holds.

The BMC is sushy-emulator (over HTTPS with basic auth); it downloads the ISO from our server when the media is
inserted. The first run stops after ``boot`` (its ISO server stops with it); the resumed run skips the finished boot
job, so the URL the BMC was given must work again: same token, same port. When that port is taken, the resumed run
serves elsewhere and gives the BMC of the node still installing the new URL.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.sushy_peer import SushyEmulator
from wizard.core.progress import TaskStatus
from wizard.core.project import SecretRef
from wizard.core.runner import Event, ExitCode, JobFinished, RunFinished, StepFinished
from wizard.install.session import Session
from wizard.install.steps.boot import ISO_SERVER_FACT
from wizard.rehearsal import Rehearsal

pytestmark = [pytest.mark.redfish, pytest.mark.flow]

BMC_REF = "bmc-password"


@pytest.fixture
def emulator() -> Iterator[SushyEmulator]:
    with SushyEmulator(tls=True, auth=True, systems=1) as emu:
        yield emu


@pytest.fixture
def rehearsal(tmp_path: Path, emulator: SushyEmulator) -> Iterator[Rehearsal]:
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=40) as r:
        doc: dict[str, Any] = yaml.safe_load(r.project_file.read_text())
        doc["provider"] = {"type": "redfish", "redfish": {"iso_server_bind": "127.0.0.1"}}
        for i, node in enumerate(doc["nodes"]):
            node["bmc"] = {
                "address": emulator.address(i),
                "username": emulator.username,
                "password": {"secret": BMC_REF},
                "tls_fingerprint": emulator.fingerprint,
            }
        r.project_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        r.secrets.set(SecretRef(BMC_REF), emulator.password)
        yield r


def _bmc_image(emu: SushyEmulator, media_path: str) -> str:
    """The image URL the BMC holds, read over Redfish as anyone would."""
    verify = ssl.create_default_context(cafile=str(emu.cert_path))
    response = httpx.get(
        emu.base_url + media_path, auth=(emu.username, emu.password), verify=verify, timeout=10, trust_env=False
    )
    response.raise_for_status()
    doc = response.json()
    assert doc.get("Inserted"), doc
    return str(doc["Image"])


def _run_until_boot(r: Rehearsal, on_event: Any = None) -> tuple[ExitCode, list[Event], Session]:
    events: list[Event] = []

    def seen(event: Event) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    session = Session.open(r.project_file, paths=r.paths, secrets=r.secrets)
    code = session.engine(steps=r.steps(until="boot"), on_event=seen).run()
    finished = next(e for e in events if isinstance(e, RunFinished))
    assert code is ExitCode.DONE, finished.error
    return code, events, session


def _ranged_get(url: str) -> httpx.Response:
    return httpx.get(url, headers={"Range": "bytes=0-1023"}, timeout=10, trust_env=False)


def test_a_resumed_run_serves_the_iso_at_the_url_the_bmc_holds(rehearsal: Rehearsal, emulator: SushyEmulator) -> None:
    iso = (rehearsal.folder / "files" / "palette-edge-installer.iso").read_bytes()
    assert rehearsal.lab is not None
    node = rehearsal.lab.nodes[0].name
    _code, _events, first = _run_until_boot(rehearsal)
    media_path = first.journal.result(f"boot/{node}")["virtual_media"]
    held = _bmc_image(emulator, media_path)
    fact = first.journal.fact(ISO_SERVER_FACT)
    token = held.split("/")[3]
    assert fact["port"] == int(held.split(":")[2].split("/")[0])
    assert set(fact) == {"bind", "port", "scheme"}  # the token lives in the keyring, not the journal
    assert token not in first.journal.path.read_text() and token.encode().hex() not in first.journal.path.read_text()
    with pytest.raises(httpx.ConnectError):
        _ranged_get(held)  # the first run ended: its server is gone

    checked: list[httpx.Response] = []

    def while_serving(event: Event) -> None:
        if isinstance(event, StepFinished) and event.step == "boot":
            checked.append(_ranged_get(held))  # the resumed run's server is still up here

    _code, events, _resumed = _run_until_boot(rehearsal, while_serving)
    boot = next(e for e in events if isinstance(e, JobFinished) and e.job == f"boot/{node}")
    assert boot.status is TaskStatus.SKIPPED  # the BMC was not touched again
    assert _bmc_image(emulator, media_path) == held
    assert checked and checked[0].status_code == 206 and checked[0].content == iso[:1024]
    for log_file in rehearsal.paths.logs.glob("*.log*"):
        assert token not in log_file.read_text(errors="replace")


def test_when_the_old_port_is_taken_the_node_still_installing_gets_the_new_url(
    rehearsal: Rehearsal, emulator: SushyEmulator
) -> None:
    iso = (rehearsal.folder / "files" / "palette-edge-installer.iso").read_bytes()
    assert rehearsal.lab is not None
    node = rehearsal.lab.nodes[0].name
    _code, _events, first = _run_until_boot(rehearsal)
    media_path = first.journal.result(f"boot/{node}")["virtual_media"]
    old = _bmc_image(emulator, media_path)
    old_port = first.journal.fact(ISO_SERVER_FACT)["port"]
    checked: list[httpx.Response] = []

    def while_serving(event: Event) -> None:
        if isinstance(event, StepFinished) and event.step == "boot":
            checked.append(_ranged_get(_bmc_image(emulator, media_path)))

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        _code, events, resumed = _run_until_boot(rehearsal, while_serving)
    boot = next(e for e in events if isinstance(e, JobFinished) and e.job == f"boot/{node}")
    assert boot.status is TaskStatus.DONE  # booted again, with the URL that serves now
    new = _bmc_image(emulator, media_path)
    assert new != old and resumed.journal.fact(ISO_SERVER_FACT)["port"] != old_port
    assert checked and checked[0].status_code == 206 and checked[0].content == iso[:1024]
