"""The engine on a MAAS project: preflight asks MAAS about every machine, then the machines step allocates them.

Runs against the lab's MAAS 2.0 fake over real HTTP with OAuth-signed requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.projects import appliance_iso, base_doc
from wizard.core.jobs import StepContext
from wizard.core.journal import Journal
from wizard.core.paths import app_paths
from wizard.core.project import SecretRef, parse_project
from wizard.core.runner import Engine, Event, ExitCode, RunFinished
from wizard.core.secrets import SecretStore
from wizard.core.steps import pipeline
from wizard.core.steps.preflight import PreflightSettings, report_paths
from wizard.lab import ManualClock
from wizard.lab.maas import MaasServer, MaasState, Status

pytestmark = [pytest.mark.maas, pytest.mark.flow]

KEY_REF = "maas-api-key"
SETTINGS = PreflightSettings(ports=(9,), connect_timeout=0.2, icmp=False, arp=False, min_free=1024)


@pytest.fixture
def maas() -> Iterator[tuple[MaasState, MaasServer, str]]:
    state = MaasState(clock=ManualClock(), power_delay=1.0, deploy_delay=60.0)
    admin = state.add_user("admin", admin=True)
    for i in (1, 2, 3):
        state.add_machine(
            f"pma-{i}",
            system_id=f"abc{i}de",
            zone=f"rack-{i}",
            pool="palette",
            power_type="redfish",
            power_parameters={"power_address": f"10.20.0.1{i}", "power_user": "root", "power_pass": "Bmc-S3cret!"},
            cpu_count=16,
            memory=32768,
        )
    with MaasServer(state) as server:
        yield state, server, admin.api_key


def _run(tmp_path: Path, url: str, key: str, until: str) -> tuple[ExitCode, Journal, list[Event]]:
    appliance_iso(tmp_path / "appliance.iso", 64 * 1024)
    doc = base_doc(
        provider={"type": "maas", "maas": {"url": url, "api_key": {"secret": KEY_REF}}},
        files={"iso": "appliance.iso"},
    )
    for i, node in enumerate(doc["nodes"], start=1):
        node["maas"] = f"pma-{i}"
    project = parse_project(doc, base=tmp_path).project
    secrets = SecretStore()
    secrets.set(SecretRef(KEY_REF), key)
    journal = Journal.open(tmp_path / "sessions" / "p.json", "p")
    events: list[Event] = []
    ctx = StepContext(project, secrets, journal, app_paths().ensure())
    code = Engine(ctx, pipeline(SETTINGS, until=until), on_event=events.append).run()
    return code, journal, events


def _error(events: list[Event]) -> dict[str, Any]:
    return next(e for e in events if isinstance(e, RunFinished)).error or {}


def test_preflight_checks_maas_then_the_machines_are_allocated(
    tmp_path: Path, maas: tuple[MaasState, MaasServer, str]
) -> None:
    state, server, key = maas
    code, journal, events = _run(tmp_path, server.url, key, "machines")
    assert code is ExitCode.DONE, _error(events)
    report = report_paths(journal.path)[0].read_text()
    assert '"maas.reachable"' in report and '"maas.machines"' in report and '"maas.resources"' in report
    facts = journal.result("machines/maas")
    assert sorted(facts["system_ids"]) == ["abc1de", "abc2de", "abc3de"]
    for i in (1, 2, 3):
        machine = state.machine(f"abc{i}de")
        assert machine.status == Status.ALLOCATED and machine.owner == "admin"
        assert any("palette-wizard" in c for c in machine.comments("Allocated")), machine.events


def test_a_machine_taken_by_someone_else_blocks_before_anything_is_touched(
    tmp_path: Path, maas: tuple[MaasState, MaasServer, str]
) -> None:
    state, server, key = maas
    bob = state.add_user("bob")
    del bob
    state.machine("abc2de").status = Status.ALLOCATED
    state.machine("abc2de").owner = "bob"
    code, journal, events = _run(tmp_path, server.url, key, "machines")
    assert code is ExitCode.PREFLIGHT_BLOCKED
    error = _error(events)
    assert "maas.machines" in error["message"] and "pma-2" in error["message"]
    assert journal.job("machines/maas") is None  # nothing was allocated
    assert state.machine("abc1de").status == Status.READY


def test_a_wrong_api_key_is_reported_by_preflight(tmp_path: Path, maas: tuple[MaasState, MaasServer, str]) -> None:
    _, server, key = maas
    consumer, token, _secret = key.split(":")
    code, _journal, events = _run(tmp_path, server.url, f"{consumer}:{token}:wrongsecret", "preflight")
    assert code is ExitCode.PREFLIGHT_BLOCKED
    assert "maas.reachable" in _error(events)["message"]
