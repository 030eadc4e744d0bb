"""Whole rehearsals on different appliance releases: what the wizard reads, which guards it applies, what it skips.

The lab plays the release (``Rehearsal(appliance=…)``, the ``--lab version=…,edition=…`` knobs once that command line
exists); the engine is the very one ``palette-wizard run`` uses.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.integration.releases import RELEASES
from wizard.appliance.versions import Version
from wizard.core.report import SUMMARY_TEXT
from wizard.core.runner import Event, ExitCode, JobFinished, StepBlocked
from wizard.install.session import Session
from wizard.install.steps import pipeline
from wizard.install.steps.preflight import PreflightSettings
from wizard.lab.network import network_of
from wizard.lab.versions import ApplianceProfile
from wizard.rehearsal import Rehearsal, pacing_for

pytestmark = [pytest.mark.flow, pytest.mark.lab]

SPEED = 600.0


Outcome = tuple[ExitCode, dict[str, JobFinished], list[Event], Path]


def rehearse(folder: Path, profile: ApplianceProfile, nodes: int = 3) -> Outcome:
    """Run a whole rehearsal in this process; the exit code, every finished job, every event, the session folder."""
    seen: list[Event] = []
    with Rehearsal(folder, nodes=nodes, speed=SPEED, appliance=profile, keep=True) as rehearsal:
        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)

        def on_event(event: Event) -> None:
            seen.append(event)
            rehearsal.on_event(event)

        code = session.engine(steps=rehearsal.steps(), on_event=on_event).run()
        folder_of_session = session.journal.path.with_suffix("")
    finished = {e.job: e for e in seen if isinstance(e, JobFinished)}
    return code, finished, seen, folder_of_session


@pytest.mark.timeout(180)
def test_vertex_4_9_44_installs_and_says_so(tmp_path: Path) -> None:
    code, finished, _, session = rehearse(tmp_path / "r", RELEASES["4.9.44-vertex"])
    assert code is ExitCode.DONE
    facts = finished["appliance/identify"].result["appliance"]
    assert facts["label"] == "VerteX 4.9.44" and facts["edition"] == "vertex"
    assert set(facts["hosts"]) == {"edge-node-1", "edge-node-2", "edge-node-3"}
    # A slim ISO: the content bundle was uploaded. PE-9263 (before 4.9.46): every host's registry was looked at.
    assert finished["content/upload"].result["synced_hosts"] == 3
    assert finished["packs/hosts-synced"].result["reason"] == "PE-9263"
    assert finished["validate/palette"].result["ingress"] == "traefik"
    summary = (session / SUMMARY_TEXT).read_text()
    assert summary.splitlines()[0] == "VerteX activated, packs uploaded"
    # The system console's own version endpoint agrees (an optional read, shown beside the nodes' version).
    assert "Appliance:   VerteX 4.9.44 (system console 4.9.44)" in summary and "VerteX:      https://" in summary
    report = json.loads((session / "appliance-report.json").read_text())
    warned = {r["check"] for r in report["results"] if r["outcome"] != "pass"}
    assert warned == {"appliance.localui-sync"}  # the PE-9263 warning; nothing blocks
    html = (session / "run-report.html").read_text()
    assert "<title>VerteX install report" in html and "VerteX 4.9.44" in html


@pytest.mark.timeout(180)
def test_4_9_10_stops_before_any_upload_with_the_advisory(tmp_path: Path) -> None:
    code, finished, events, session = rehearse(tmp_path / "r", RELEASES["4.9.10"])
    assert code is ExitCode.PREFLIGHT_BLOCKED
    assert finished["appliance/identify"].result["appliance"]["label"] == "Palette 4.9.10"
    assert not any(j.startswith(("link/", "content/", "cluster/", "packs/")) for j in finished)
    report = json.loads((session / "appliance-report.json").read_text())
    (blocker,) = [r for r in report["results"] if r["outcome"] != "pass" and r["severity"] == "blocker"]
    assert blocker["check"] == "appliance.upload-auth"
    assert "Security Advisory 016 (PE-8523)" in blocker["message"] and "4.9.14" in blocker["remediation"]
    assert not [e for e in events if isinstance(e, StepBlocked)]  # a check result, not a step that could not start


@pytest.mark.timeout(180)
def test_a_full_iso_release_skips_the_content_upload(tmp_path: Path) -> None:
    # 4.9.20: past the upload advisory, before the slim ISO (4.9.36) and the newer API; one node, so no linking.
    code, finished, _, session = rehearse(tmp_path / "r", ApplianceProfile(Version(4, 9, 20)), nodes=1)
    assert code is ExitCode.DONE, finished
    assert "content/upload" not in finished
    on_nodes = finished["content/on-nodes"].result
    assert on_nodes["uploaded"] is False and on_nodes["source"] == "iso"
    report = json.loads((session / "appliance-report.json").read_text())
    content = next(r for r in report["results"] if r["check"] == "appliance.content")
    assert "the content came with the ISO" in content["message"] and "not needed" in content["message"]
    assert "packs/hosts-synced" not in finished  # one node: nothing to sync to
    assert finished["validate/palette"].result["ingress"] == "traefik"


@pytest.mark.timeout(180)
def test_pe_9263_packs_that_never_reach_a_host_stop_the_run(tmp_path: Path) -> None:
    """With the defect's worst case (the lab never syncs), the per-host look fails the packs step naming the hosts and
    the defect, instead of reporting packs that only the leader has."""
    profile = ApplianceProfile(Version(4, 9, 44), stuck_sync=True)
    seen: list[Event] = []
    with Rehearsal(tmp_path / "r", nodes=3, speed=SPEED, appliance=profile) as rehearsal:
        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        settings = PreflightSettings(icmp=False, arp=False, connect_timeout=0.5, min_free=256 * 1024 * 1024)
        steps = pipeline(settings, pacing=replace(pacing_for(SPEED), content_sync_timeout=4.0))

        def on_event(event: Event) -> None:
            seen.append(event)
            rehearsal.on_event(event)

        assert session.engine(steps=steps, on_event=on_event).run() is ExitCode.INSTALL_FAILED
    failed = [e for e in seen if isinstance(e, JobFinished) and e.status.value == "failed"]
    assert [e.job for e in failed] == ["packs/hosts-synced"]
    error = failed[0].error or {}
    assert error["title"] == "Content did not sync" and "edge-node-2" in error["message"]
    assert "PE-9263" in error["remediation"] and "4.9.46" in error["remediation"]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("release", ["4.9.46", "4.9.36"])
def test_two_nodes_only_where_the_appliance_offers_it(tmp_path: Path, release: str) -> None:
    code, finished, events, _ = rehearse(tmp_path / "r", RELEASES[release], nodes=2)
    if release == "4.9.46":
        assert code is ExitCode.DONE and finished["cluster/create"].result["created"] is True
        return
    # Before the newer API there is no isTwoNodeCluster: the cluster step refuses before creating anything.
    assert code is ExitCode.INSTALL_FAILED and "cluster/create" not in finished
    (blocked,) = [e for e in events if isinstance(e, StepBlocked)]
    assert blocked.step == "cluster" and blocked.problems[0].path == "cluster.two_node"
    assert "Palette 4.9.36 does not offer two-node clusters" in blocked.problems[0].message


@pytest.mark.timeout(240)
def test_a_bonded_vlan_tagged_management_network_through_the_local_ui(tmp_path: Path) -> None:
    """Every node's address moves from eth0 to VLAN 100 on an LACP bond of eth0 and eth1: the bond first with eth1
    only, the VLAN with the node's address, then eth0 joins and the management interface is selected — the wizard's
    own session rides out the move and finds the node again at its address."""
    seen: list[Event] = []
    with Rehearsal(tmp_path / "r", nodes=3, speed=SPEED, bonded=True) as rehearsal:
        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)

        def on_event(event: Event) -> None:
            seen.append(event)
            rehearsal.on_event(event)

        code = session.engine(steps=rehearsal.steps(), on_event=on_event).run()
        assert rehearsal.lab is not None
        nets = [network_of(n.state) for n in rehearsal.lab.nodes]
        addresses = [n.state.ip for n in rehearsal.lab.nodes]
    finished = {e.job: e for e in seen if isinstance(e, JobFinished)}
    assert code is ExitCode.DONE, [e.error for e in finished.values() if e.error]
    for net, address in zip(nets, addresses, strict=True):
        bond, vlan = net.ifaces["bond0"], net.ifaces["bond0.100"]
        assert bond.members == ["eth0", "eth1"] and bond.mode == "802.3ad" and bond.lacp_rate == "fast"
        assert bond.hash_policy == "layer3+4" and bond.mii == "100ms" and bond.type == "none"
        assert (vlan.parent, vlan.vlan_id, vlan.type, vlan.ip) == ("bond0", "100", "static", address)
        assert net.management == "bond0.100" and not net.lost
    for node in ("edge-node-1", "edge-node-2", "edge-node-3"):
        facts = finished[f"network/{node}"].result
        assert facts["session_interface"] == "eth0" and facts["reconnected"] is True
        assert facts["sent"] == ["bond bond0", "vlan bond0.100", "bond bond0", "management bond0.100"]
        assert facts["management"] == "bond0.100"
