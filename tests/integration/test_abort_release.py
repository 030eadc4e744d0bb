"""Aborting a MAAS session gives back exactly the machines it allocated (``palette-wizard abort`` and the core
function the GUI calls), against the lab's MAAS 2.0 fake over real HTTP with OAuth-signed requests."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.sushy_peer import SushyEmulator
from tests.support.projects import base_doc, signed_iso, write_project
from wizard.cli import main
from wizard.core.journal import JOB_CANCELLED, JOB_DONE, RUN_CANCELLED
from wizard.core.project import SecretRef
from wizard.core.runner import ExitCode
from wizard.core.secrets import SecretStore
from wizard.install.abort import ABORT_FACT, abort_session
from wizard.install.session import Session
from wizard.install.steps import pipeline
from wizard.install.steps.preflight import PreflightSettings
from wizard.lab import ManualClock
from wizard.lab.maas import MaasState, MaasUser, Status
from wizard.lab.maasserver import MaasServer
from wizard.rehearsal import Rehearsal

pytestmark = [pytest.mark.maas, pytest.mark.flow]

KEY_REF = "maas-api-key"
SETTINGS = PreflightSettings(ports=(9,), connect_timeout=0.2, icmp=False, arp=False, min_free=1024)


@pytest.fixture
def site() -> Iterator[tuple[MaasState, MaasServer, MaasUser]]:
    state = MaasState(clock=ManualClock())
    admin = state.add_user("admin", admin=True)
    state.add_user("bob")
    for i in (1, 2, 3):
        state.add_machine(f"pma-{i}", system_id=f"abc{i}de", power_type="ipmi", cpu_count=16, memory=32768)
    # pma-3 was the operator's before the wizard ran: an abort must leave it allocated.
    state.machine("abc3de").status = Status.ALLOCATED
    state.machine("abc3de").owner = "admin"
    with MaasServer(state) as server:
        yield state, server, admin


def _project(tmp_path: Path, url: str, key: str) -> Path:
    _, public = signed_iso(tmp_path)
    doc = base_doc(
        provider={"type": "maas", "maas": {"url": url, "api_key": {"secret": KEY_REF}}},
        files={"iso": "appliance.iso", "public_key": public.name},
    )
    for i, node in enumerate(doc["nodes"], start=1):
        node["maas"] = f"pma-{i}"
    SecretStore().set(SecretRef(KEY_REF), key)  # the test's in-memory keyring, as `secret set` would
    return write_project(tmp_path, doc)


def _allocate(project: Path) -> Session:
    session = Session.open(project)
    code = session.engine(steps=pipeline(SETTINGS, until="machines")).run()
    assert code is ExitCode.DONE
    return session


def _owners(state: MaasState) -> dict[str, tuple[str, str | None]]:
    return {m.hostname: (Status(m.status).name, m.owner) for m in state.machines}


def test_abort_releases_what_the_session_allocated_and_is_harmless_twice(
    tmp_path: Path, site: tuple[MaasState, MaasServer, MaasUser], capsys: pytest.CaptureFixture[str]
) -> None:
    state, server, admin = site
    project = _project(tmp_path, server.url, admin.api_key)
    session = _allocate(project)
    assert session.journal.result("machines/maas")["allocated"] == ["abc1de", "abc2de"]
    assert _owners(state)["pma-1"] == ("ALLOCATED", "admin")

    assert main(["abort", str(project)]) == 0
    out = capsys.readouterr().out
    assert "released MAAS machine abc1de" in out and "released MAAS machine abc2de" in out
    assert _owners(state) == {
        "pma-1": ("READY", None),
        "pma-2": ("READY", None),
        "pma-3": ("ALLOCATED", "admin"),  # kept: allocated before the wizard ran
    }
    assert any("aborted" in c for c in state.machine("abc1de").comments("Released")), state.machine("abc1de").events
    journal = Session.open(project).journal
    assert journal.job("machines/maas")["status"] == JOB_CANCELLED  # a new run allocates again
    assert journal.status == RUN_CANCELLED
    assert sorted(journal.fact(ABORT_FACT)["released"]) == ["abc1de", "abc2de"]

    assert main(["abort", str(project), "--json"]) == 0  # twice: nothing left to release, still fine
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["exit_code"] == 0 and second["released"] == [] and second["errors"] == []
    assert _owners(state)["pma-3"] == ("ALLOCATED", "admin")


def test_a_machine_someone_else_took_meanwhile_is_never_released(
    tmp_path: Path, site: tuple[MaasState, MaasServer, MaasUser]
) -> None:
    state, server, admin = site
    project = _project(tmp_path, server.url, admin.api_key)
    session = _allocate(project)
    # The operator released pma-2 by hand in MAAS and bob allocated it since.
    state.machine("abc2de").status = Status.ALLOCATED
    state.machine("abc2de").owner = "bob"
    result = abort_session(session.context)
    assert result.ok and result.released == ["abc1de"]
    assert "abc2de" in result.skipped and "bob" in result.skipped["abc2de"]
    assert _owners(state) == {
        "pma-1": ("READY", None),
        "pma-2": ("ALLOCATED", "bob"),
        "pma-3": ("ALLOCATED", "admin"),
    }


def test_an_allocation_that_never_recorded_its_facts_is_found_by_agent_name(
    tmp_path: Path, site: tuple[MaasState, MaasServer, MaasUser]
) -> None:
    state, server, admin = site
    project = _project(tmp_path, server.url, admin.api_key)
    session = _allocate(project)
    # As if the wizard died between allocating in MAAS and recording the job's facts.
    session.journal.job_failed("machines/maas", {"title": "Interrupted", "message": "power cut"})
    assert session.journal.job("machines/maas")["status"] != JOB_DONE
    # pma-3 is the same user's but not under this session's agent name: left alone.
    result = abort_session(session.context)
    assert result.ok and sorted(result.released) == ["abc1de", "abc2de"]
    assert _owners(state)["pma-3"] == ("ALLOCATED", "admin")


def test_abort_of_an_unknown_session_is_a_clear_error(
    tmp_path: Path, site: tuple[MaasState, MaasServer, MaasUser], capsys: pytest.CaptureFixture[str]
) -> None:
    _state, server, admin = site
    project = _project(tmp_path, server.url, admin.api_key)
    assert main(["abort", str(project), "--session", "nope-123"]) == ExitCode.INVALID_INPUT
    assert "No such session" in capsys.readouterr().out


@pytest.mark.redfish
def test_abort_ejects_the_iso_a_bmc_still_holds_and_only_once(tmp_path: Path) -> None:
    with (
        SushyEmulator(tls=True, auth=True, systems=1) as emu,
        Rehearsal(tmp_path / "rehearsal", nodes=1, speed=40) as rehearsal,
    ):
        doc: dict[str, Any] = yaml.safe_load(rehearsal.project_file.read_text())
        doc["provider"] = {"type": "redfish", "redfish": {"iso_server_bind": "127.0.0.1"}}
        doc["nodes"][0]["bmc"] = {
            "address": emu.address(0),
            "username": emu.username,
            "password": {"secret": "bmc-password"},
            "tls_fingerprint": emu.fingerprint,
        }
        rehearsal.project_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        rehearsal.secrets.set(SecretRef("bmc-password"), emu.password)
        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        assert session.engine(steps=rehearsal.steps(until="boot")).run() is ExitCode.DONE
        node = doc["nodes"][0]["name"]
        media_path = session.journal.result(f"boot/{node}")["virtual_media"]

        def bmc(path: str) -> dict[str, Any]:
            verify = ssl.create_default_context(cafile=str(emu.cert_path))
            response = httpx.get(emu.base_url + path, auth=(emu.username, emu.password), verify=verify, timeout=10)
            response.raise_for_status()
            doc: dict[str, Any] = response.json()
            return doc

        assert bmc(media_path)["Inserted"]
        result = abort_session(session.context)
        assert result.ok and result.ejected == [node] and result.released == []
        assert not bmc(media_path).get("Inserted")
        again = abort_session(session.context)  # the node was dealt with: its BMC is not touched again
        assert again.ok and again.ejected == []
