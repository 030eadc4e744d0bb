"""Preflight where the project says the nodes exist (manual provider, vSphere's existing VMs): an answering address
passes when what answers is the node itself, and stays a blocker, saying what answers, when it is anything else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_preflight import Listener, _engine_run, free_port
from tests.support.projects import appliance_iso, base_doc, signed_iso
from tests.support.quickboot import quick
from wizard.core.runner import ExitCode, RunFinished
from wizard.core.trust import TrustKind, TrustStore
from wizard.install.steps.preflight import PreflightSettings, report_paths
from wizard.lab import Lab

pytestmark = pytest.mark.lab

ADDRESS = "127.0.10.21"  # the lab node's address; nothing else on this machine uses it


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(1, tmp_path / "lab", ip=ADDRESS, installed=True, tick_interval=0.1) as started:
        yield started


def _doc(tmp_path: Path, lab: Lab, **node: Any) -> dict[str, Any]:
    _, public = signed_iso(tmp_path)  # the default boot strategy derives the unattended copy: a signed ISO
    n = lab.nodes[0]
    doc = base_doc(files={"iso": "appliance.iso", "public_key": public.name})
    doc["nodes"] = [
        {"name": "node-1", "hostname": "edge-node-1", "ip": ADDRESS, "prefix": 24, "gateway": "127.0.10.1",
         "ssh_port": n.ssh.port, "localui_port": n.server.port, **node}
    ]  # fmt: skip
    doc["network"] = {"vip": "127.0.10.50"}
    return doc


SETTINGS = PreflightSettings(ports=(free_port(),), connect_timeout=0.5, icmp=False, arp=False)


def _address_result(journal_path: Path) -> dict[str, Any]:
    report = json.loads(report_paths(journal_path)[0].read_text())
    return next(r for r in report["results"] if r["check"] == "net.node-ip-free")


def test_an_installed_node_with_pinned_keys_is_itself(tmp_path: Path, lab: Lab) -> None:
    n = lab.nodes[0]
    doc = _doc(tmp_path, lab, ssh_host_key=n.ssh.fingerprint, localui_fingerprint=n.fingerprint)
    code, journal, events = _engine_run(tmp_path, doc, SETTINGS)
    assert code is ExitCode.DONE, next(e for e in events if isinstance(e, RunFinished)).error
    result = _address_result(journal.path)
    assert result["outcome"] == "pass" and "answers, as expected" in result["message"]
    assert "node-1 answers: port" in result["message"] and "pinned" in result["message"]
    assert result["details"]["identified"] is True


def test_an_unpinned_node_is_recognised_by_its_local_ui(tmp_path: Path, lab: Lab) -> None:
    code, journal, events = _engine_run(tmp_path, _doc(tmp_path, lab), SETTINGS)
    assert code is ExitCode.DONE, next(e for e in events if isinstance(e, RunFinished)).error
    result = _address_result(journal.path)
    assert result["outcome"] == "pass" and "an appliance Local UI answers" in result["message"]


def test_a_key_from_the_trust_store_identifies_the_node_too(tmp_path: Path, lab: Lab) -> None:
    from wizard.core.paths import app_paths

    n = lab.nodes[0]
    TrustStore(app_paths().ensure().config).pin(TrustKind.SSH, ADDRESS, n.ssh.port, n.ssh.fingerprint)
    code, journal, _ = _engine_run(tmp_path, _doc(tmp_path, lab), SETTINGS)
    assert code is ExitCode.DONE
    assert "presents its pinned SSH host key" in _address_result(journal.path)["message"]


def test_another_key_on_the_address_is_a_blocker_that_says_what_answers(tmp_path: Path, lab: Lab) -> None:
    other = "SHA256:" + "Q" * 43
    code, journal, events = _engine_run(tmp_path, _doc(tmp_path, lab, ssh_host_key=other), SETTINGS)
    assert code is ExitCode.PREFLIGHT_BLOCKED
    result = _address_result(journal.path)
    assert result["outcome"] == "fail" and lab.nodes[0].ssh.fingerprint in result["message"]
    assert f"not the pinned node-1's {other}" in result["message"]
    error = next(e for e in events if isinstance(e, RunFinished)).error or {}
    assert "Node address not in use" in error["message"] and other in error["message"]


def test_a_foreign_device_on_the_address_stays_a_blocker(tmp_path: Path) -> None:
    appliance_iso(tmp_path / "appliance.iso", 64 * 1024)
    device = Listener(ADDRESS)  # accepts and closes: no SSH, no Local UI
    try:
        doc = base_doc(files={"iso": "appliance.iso"})
        doc["nodes"] = [{"name": "node-1", "hostname": "edge-node-1", "ip": ADDRESS, "prefix": 24,
                         "gateway": "127.0.10.1", "ssh_port": device.port, "localui_port": device.port}]  # fmt: skip
        doc["network"] = {"vip": "127.0.10.50"}
        code, journal, _ = _engine_run(tmp_path, doc, SETTINGS)
    finally:
        device.close()
    assert code is ExitCode.PREFLIGHT_BLOCKED
    result = _address_result(journal.path)
    assert result["outcome"] == "fail" and "it is not an appliance" in result["message"]
    assert f"port {device.port} accepted" in result["message"]


def test_where_the_wizard_boots_the_nodes_an_answering_address_blocks(tmp_path: Path, lab: Lab) -> None:
    n = lab.nodes[0]
    doc = _doc(tmp_path, lab, ssh_host_key=n.ssh.fingerprint)
    doc["provider"] = {"type": "redfish"}
    doc["nodes"][0]["bmc"] = {"address": "127.0.20.1", "username": "root", "password": {"secret": "bmc"}}
    from wizard.core.project import SecretRef
    from wizard.core.secrets import SecretStore

    SecretStore().set(SecretRef("bmc"), "bmc-password-1")
    code, journal, _ = _engine_run(tmp_path, doc, SETTINGS)
    assert code is ExitCode.PREFLIGHT_BLOCKED
    result = _address_result(journal.path)
    assert result["outcome"] == "fail" and "identified" not in result["details"]


def _copy_project(rehearsal: Any, folder: Path) -> Path:
    """The rehearsal's project as a new project file elsewhere: a new session (its own journal) on the same nodes."""
    import yaml

    doc = yaml.safe_load(rehearsal.project_file.read_text())
    files = doc["files"]

    def absolute(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: absolute(v) for k, v in value.items()}
        return str((rehearsal.folder / value).resolve())

    for key in ("iso", "public_key", "content_bundle"):
        files[key] = absolute(files[key])
    files["pack_bundles"] = [absolute(p) for p in files["pack_bundles"]]
    folder.mkdir(parents=True)
    path = folder / "project.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.flow
@pytest.mark.timeout(300)
def test_a_fresh_session_on_installed_nodes_passes_preflight_and_completes(tmp_path: Path) -> None:
    """Install once; then a new session (another project file, no journal) with the manual provider on the nodes,
    now installed, answering, with the operator's password and the cluster on the VIP: preflight passes (each
    address answers as its own node, the VIP as this install's cluster) and the run completes."""
    import io

    from wizard.headless import run_headless
    from wizard.install.session import Session
    from wizard.rehearsal import Rehearsal

    with Rehearsal(tmp_path / "rehearsal", nodes=3, speed=300, lab=quick()) as rehearsal:

        def run(project: Path) -> tuple[int, str]:
            out = io.StringIO()
            code = run_headless(
                project,
                steps=rehearsal.steps(),
                paths=rehearsal.paths,
                secrets=rehearsal.secrets,
                on_event=rehearsal.on_event,
                out=out,
            )
            return code, out.getvalue()

        code, text = run(rehearsal.project_file)
        assert code == ExitCode.DONE, text[-4000:]
        again = _copy_project(rehearsal, tmp_path / "existing")
        code, text = run(again)
        assert code == ExitCode.DONE, text[-4000:]
        journal = Session.open(again, paths=rehearsal.paths, secrets=rehearsal.secrets).journal
        assert journal.path != Session.open(rehearsal.project_file, paths=rehearsal.paths).journal.path
        report = json.loads(report_paths(journal.path)[0].read_text())
    addresses = [r for r in report["results"] if r["check"] in ("net.node-ip-free", "net.vip-free")]
    assert len(addresses) == 4 and all(r["outcome"] == "pass" for r in addresses), addresses
    assert all("answers, as expected" in r["message"] for r in addresses), [r["message"] for r in addresses]
    vip = next(r for r in addresses if r["check"] == "net.vip-free")
    assert "the system console answers" in vip["message"]
    for i in (1, 2, 3):
        stages = journal.result(f"install/edge-node-{i}")["stages"]
        assert stages[-1]["stage"] == "done" and "already installed at first contact" in [s["note"] for s in stages]
    assert journal.result("cluster/create")["created"] is False  # the existing cluster, followed, not a second one
