"""The engine on a MAAS project: preflight asks MAAS about every machine, the machines step allocates them, and the
boot step boots each through the Redfish BMC MAAS knows (sushy-emulator) or shows MAAS's manual instruction.

Runs against the lab's MAAS 2.0 fake over real HTTP with OAuth-signed requests; the end-to-end cases drive the lab's
appliance nodes through their BMCs (wizard.lab.controlplane.RedfishWatcher) or play the operator who boots by hand.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.sushy_peer import SushyEmulator
from tests.support.projects import base_doc, signed_iso
from tests.support.waiting import eventually
from wizard.core.jobs import StepContext
from wizard.core.journal import Journal
from wizard.core.paths import app_paths
from wizard.core.progress import Progress
from wizard.core.project import SecretRef, parse_project
from wizard.core.runner import Engine, Event, ExitCode, JobStarted, RunFinished
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustRequest, same_fingerprint
from wizard.install.session import Session
from wizard.install.steps import pipeline
from wizard.install.steps.preflight import PreflightSettings, report_paths
from wizard.lab import ManualClock
from wizard.lab.controlplane import RedfishWatcher
from wizard.lab.knobs import parse_knobs
from wizard.lab.maas import MaasState, Status, redfish_power_parameters
from wizard.lab.maasserver import MaasServer
from wizard.rehearsal import Rehearsal

pytestmark = [pytest.mark.maas, pytest.mark.flow]

# The boot and the install are what these flows are about: the cluster takes 5 appliance minutes, not 25.
SHORT_CLUSTER = parse_knobs("cluster-seconds=300")

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
    _, public = signed_iso(tmp_path)
    doc = base_doc(
        provider={"type": "maas", "maas": {"url": url, "api_key": {"secret": KEY_REF}}},
        files={"iso": "appliance.iso", "public_key": public.name},
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
    # In words (the check's title and the machine), the check's id in the details.
    assert "Each MAAS machine exists" in error["message"] and "pma-2" in error["message"]
    assert "[maas.machines]" in error["details"]
    assert journal.job("machines/maas") is None  # nothing was allocated
    assert state.machine("abc1de").status == Status.READY


def test_a_wrong_api_key_is_reported_by_preflight(tmp_path: Path, maas: tuple[MaasState, MaasServer, str]) -> None:
    _, server, key = maas
    consumer, token, _secret = key.split(":")
    code, _journal, events = _run(tmp_path, server.url, f"{consumer}:{token}:wrongsecret", "preflight")
    assert code is ExitCode.PREFLIGHT_BLOCKED
    error = _error(events)
    assert "MAAS refused the API key" in error["message"] and "[maas.reachable]" in error["details"]
    # The other checks could not run because of it: folded under it, the key fixed on the Credentials page.
    assert "could not run because of this" in error["message"] and "(Credentials page)" in error["remediation"]


# -- booting MAAS machines end to end ------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[SushyEmulator]:
    with SushyEmulator(tls=True, auth=True, systems=3) as emu:
        yield emu


def _maas_project(rehearsal: Rehearsal, url: str, key: str) -> None:
    """The rehearsal's project, turned into a MAAS one whose node i is MAAS machine pma-i."""
    doc: dict[str, Any] = yaml.safe_load(rehearsal.project_file.read_text())
    doc["provider"] = {"type": "maas", "maas": {"url": url, "api_key": {"secret": KEY_REF}}}
    for i, node in enumerate(doc["nodes"], start=1):
        node["maas"] = f"pma-{i}"
    rehearsal.project_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    rehearsal.secrets.set(SecretRef(KEY_REF), key)


class _Operator:
    """Confirms the BMC certificates MAAS does not pin: only the emulator's, and records each question."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.asked: list[TrustRequest] = []

    def __call__(self, request: TrustRequest) -> bool:
        self.asked.append(request)
        return same_fingerprint(request.presented, self.fingerprint)


def test_maas_machines_boot_through_their_redfish_bmcs_and_the_install_completes(
    emulator: SushyEmulator, tmp_path: Path
) -> None:
    state = MaasState(clock=ManualClock())
    admin = state.add_user("admin", admin=True)
    bmc_password = emulator.password
    with (
        Rehearsal(tmp_path / "rehearsal", nodes=3, speed=40, lab=SHORT_CLUSTER) as rehearsal,
        MaasServer(state) as server,
    ):
        assert rehearsal.lab is not None
        for i in range(3):
            state.add_machine(
                f"pma-{i + 1}",
                system_id=f"rf{i + 1}aa",
                zone=f"rack-{i + 1}",
                pool="palette",
                power_type="redfish",
                power_parameters=redfish_power_parameters(
                    emulator.base_url, emulator.systems[i], emulator.username, bmc_password
                ),
                cpu_count=16,
                memory=32768,
            )
        _maas_project(rehearsal, server.url, admin.api_key)
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
        operator = _Operator(emulator.fingerprint)
        try:
            assert not any(n.machine.powered_on for n in rehearsal.lab.nodes)
            events: list[Event] = []
            run = Session.open(
                rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets, confirm=operator
            )
            code = run.engine(steps=rehearsal.steps(until="cluster"), on_event=events.append).run()
            finished = next(e for e in events if isinstance(e, RunFinished))
            assert code is ExitCode.DONE, finished.error
            journal = run.journal
            # One BMC service for the three systems: its certificate was asked about once, then pinned.
            assert len(operator.asked) == 1 and operator.asked[0].port == emulator.port
            routes = journal.result("media/maas")["routes"]
            assert {r["route"] for r in routes.values()} == {"redfish"}
            assert journal.result("media/maas")["url_base"].startswith("http://127.0.0.1:")
            iso_size = (rehearsal.folder / "files" / "palette-edge-installer.iso").stat().st_size
            for i, node in enumerate(rehearsal.lab.nodes):
                boot = journal.result(f"boot/{node.name}")
                assert boot["route"] == "redfish" and boot["system_id"] == f"rf{i + 1}aa"
                assert boot["system"] == f"/redfish/v1/Systems/{emulator.systems[i]}"
                assert boot["iso_bytes_read"] >= iso_size  # the emulator downloaded the whole ISO from us
                # Ejected by the install monitor as soon as the node's installer finished; the eject step confirms.
                early = journal.result(f"install/{node.name}")["eject"]
                assert early["ejected"] and early["seeds_ejected"] == 1, early
                # The seed went in as the BMC's second medium and the node took it (zero-touch, as on Redfish).
                assert boot["seed"].endswith("/Floppy")
                assert node.machine.seeded_with is not None
                assert node.machine.seeded_with.hostname == node.state.hostname
                assert not journal.result(f"eject/{node.name}")["ejected"]
                assert node.machine.installed and node.machine.powered_on
                assert eventually(lambda n=node: n.machine.media is None)  # ejected through the BMC
                assert journal.job(f"password/{node.name}")["status"] == "done"
                machine = state.machine(f"rf{i + 1}aa")
                assert machine.status == Status.ALLOCATED and machine.owner == "admin"
            assert (journal.job("cluster/create") or {}).get("status") == "done"
            # The BMC password MAAS handed over is in neither the journal nor the log.
            assert bmc_password not in journal.path.read_text()
            for log_file in rehearsal.paths.logs.glob("*.log*"):
                assert bmc_password not in log_file.read_text(errors="replace")
        finally:
            for watcher in watchers:
                watcher.stop()


def test_a_machine_maas_powers_by_ipmi_is_booted_by_hand_from_maass_instruction(tmp_path: Path) -> None:
    state = MaasState(clock=ManualClock())
    admin = state.add_user("admin", admin=True)
    state.add_machine(
        "pma-1",
        system_id="ipmi1a",
        power_type="ipmi",
        power_parameters={"power_address": "10.20.0.31", "power_user": "ADMIN", "power_pass": "Ipmi-S3cret!"},
        cpu_count=16,
        memory=32768,
    )
    with (
        Rehearsal(tmp_path / "rehearsal", nodes=1, speed=120) as rehearsal,
        MaasServer(state) as server,
    ):
        assert rehearsal.lab is not None
        node = rehearsal.lab.nodes[0]
        _maas_project(rehearsal, server.url, admin.api_key)
        progress = Progress()
        shown: list[str] = []
        stop = threading.Event()

        def operator() -> None:
            # Reads what the wizard shows on the node's row, then does it: ISO in, power on.
            while not stop.is_set():
                task = progress.snapshot().task(f"boot/{node.name}")
                if task is not None and "IPMI" in task.message:
                    shown.append(task.message)
                    rehearsal.power_on()
                    return
                stop.wait(0.05)

        helper: list[threading.Thread] = []

        def on_event(event: Event) -> None:
            events.append(event)
            rehearsal.on_event(event)  # the operator learns which files to attach from what the wizard says
            if isinstance(event, JobStarted) and event.job == f"boot/{node.name}" and not helper:
                helper.append(threading.Thread(target=operator, daemon=True))
                helper[0].start()

        events: list[Event] = []
        run = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        try:
            code = run.engine(steps=rehearsal.steps(until="eject"), progress=progress, on_event=on_event).run()
        finally:
            stop.set()
        finished = next(e for e in events if isinstance(e, RunFinished))
        assert code is ExitCode.DONE, finished.error
        journal = run.journal
        route = journal.result("media/maas")["routes"][node.name]
        assert route["route"] == "manual" and route["power_type"] == "ipmi"
        assert "url_base" not in journal.result("media/maas")  # no BMC to serve: no ISO server
        assert shown and "10.20.0.31" in shown[0] and "Leave it Allocated in MAAS" in shown[0]
        assert journal.result(f"boot/{node.name}")["booted_by"] == "operator"
        assert journal.job(f"eject/{node.name}") is None  # the operator attached the ISO and detaches it
        assert node.machine.installed
        assert "Ipmi-S3cret!" not in journal.path.read_text()
