"""Post-boot node checks over real SSH against lab nodes (each with a passing and a failing case), the postboot
step through the engine (blockers exit 3, warnings overridden with a reason), and the gateway check."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wizard.appliance.ssh import SSHCredentials
from wizard.core.checks import OverrideRefused, override
from wizard.core.checks.catalog import CATALOG, CheckResult, CheckSeverity, Outcome
from wizard.core.checks.gateway import StaticAddress, check_gateway_answers, check_gateway_consistent, check_gateways
from wizard.core.jobs import StepContext
from wizard.core.journal import Journal
from wizard.core.paths import app_paths
from wizard.core.project import parse_project
from wizard.core.runner import Engine, Event, ExitCode, RunFinished
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustStore
from wizard.install.checks.postboot import CHECK_IDS, READ_ATTEMPTS, Requirements, check_node
from wizard.install.steps.postboot import PostbootSettings, PostbootStep, report_paths
from wizard.lab import Lab, ManualClock
from wizard.lab.lab import LabNode, NodeFaults

GIB = 1024**3


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


def run_checks(node: LabNode, store: TrustStore, clock: ManualClock, **kw: Any) -> dict[str, CheckResult]:
    results = check_node(
        node.name,
        "127.0.0.1",
        node.ssh.port,
        SSHCredentials("kairos", password="kairos"),
        trust=store,
        expected_fingerprint=node.ssh.fingerprint,
        clock=clock,
        connect_timeout=5,
        command_timeout=10,
        **kw,
    )
    assert [r.check for r in results] == list(CHECK_IDS)
    assert all(r.target == node.name for r in results)
    return {r.check: r for r in results}


def failing(results: dict[str, CheckResult]) -> set[str]:
    return {check for check, r in results.items() if r.failed}


@pytest.fixture
def faulty_lab(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    """Installed nodes: 1 healthy, 2 too small, 3 skewed 5 s, 4 skewed 45 s, 5 NTP off, 6 stale partitions."""
    faults = {
        1: NodeFaults(cpus=4, memory_mb=8 * 1024, disks=(("sda", 120 * GIB), ("sdb", 200 * GIB))),
        2: NodeFaults(clock_skew=5.0),
        3: NodeFaults(clock_skew=-45.0),
        4: NodeFaults(ntp_enabled=False),
        5: NodeFaults(stale_partitions=("sdb",)),
    }
    with Lab(6, tmp_path / "lab", clock, installed=True, tick_interval=None, faults=faults) as lab:
        yield lab


@pytest.mark.lab
def test_postboot_checks_pass_and_fail_per_knob(faulty_lab: Lab, store: TrustStore, clock: ManualClock) -> None:
    healthy, small, skewed, far, no_ntp, stale = (run_checks(n, store, clock) for n in faulty_lab.nodes)

    assert failing(healthy) == set()
    assert healthy["node.disks"].details["os_disk"] == "sda"
    assert "synchronised" in healthy["node.ntp"].message

    assert failing(small) == {"node.cpu", "node.memory", "node.disks"}
    assert "4 CPU cores, the appliance needs 8" in small["node.cpu"].message
    assert "8.0 GiB of RAM" in small["node.memory"].message
    disks = small["node.disks"].message
    assert "/dev/sda has 129 GB, needs 300" in disks and "storage pool needs 500" in disks
    assert all(small[c].definition.severity is CheckSeverity.BLOCKER for c in ("node.cpu", "node.memory"))

    # 5 s: a warning only; 45 s: the blocker too. The direction is named.
    assert failing(skewed) == {"node.clock-skew"}
    assert "5.0 s ahead of" in skewed["node.clock-skew"].message
    assert skewed["node.clock-skew"].details["offset"] == pytest.approx(5.0, abs=0.01)
    assert failing(far) == {"node.clock-skew", "node.clock-skew-large"}
    assert "45.0 s behind" in far["node.clock-skew-large"].message

    assert failing(no_ntp) == {"node.ntp"}
    assert "NTP is off" in no_ntp["node.ntp"].message
    assert CATALOG["node.ntp"].severity is CheckSeverity.WARNING

    assert failing(stale) == {"node.stale-partitions"}
    assert (
        "/dev/sdb" in stale["node.stale-partitions"].message and "COS_STATE" in stale["node.stale-partitions"].message
    )


@pytest.mark.lab
def test_ntp_on_without_servers_is_not_synchronised(tmp_path: Path, store: TrustStore, clock: ManualClock) -> None:
    with Lab(1, tmp_path / "lab", clock, installed=True, tick_interval=None, faults=NodeFaults(ntp_servers=())) as lab:
        results = run_checks(lab.nodes[0], store, clock)
    assert failing(results) == {"node.ntp"}
    assert "not synchronised (servers: none configured)" in results["node.ntp"].message


@pytest.mark.lab
def test_requirements_are_configurable(faulty_lab: Lab, store: TrustStore, clock: ManualClock) -> None:
    # The same small node passes against smaller requirements: the thresholds, not the facts, decide.
    small = run_checks(
        faulty_lab.nodes[1],
        store,
        clock,
        requirements=Requirements(cpus=4, memory_gib=8, os_disk_gb=100, storage_disk_gb=200),
    )
    assert failing(small) == set()


@pytest.mark.lab
def test_unreachable_node_is_an_error_for_every_check(store: TrustStore, clock: ManualClock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    results = check_node(
        "ghost", "127.0.0.1", port, SSHCredentials("kairos", password="kairos"), trust=store, clock=clock
    )
    assert [r.check for r in results] == list(CHECK_IDS)
    assert all(r.outcome is Outcome.ERROR and "refused" in r.message for r in results)


@pytest.mark.lab
def test_a_session_that_drops_while_the_facts_are_read_is_read_again(
    faulty_lab: Lab, store: TrustStore, clock: ManualClock
) -> None:
    """Reading a node is idempotent: two sessions cut mid-command (a network blip, a loaded node) cost two fresh
    sessions, not a column of "could not read the node" blockers. A node that keeps dropping is still reported."""
    node = faulty_lab.nodes[0]
    node.ssh.drop_next_commands = 2
    results = run_checks(node, store, clock, retry_delay=0.01)
    assert failing(results) == set(), {c: r.message for c, r in results.items() if r.failed}
    assert node.ssh.drop_next_commands == 0

    node.ssh.drop_next_commands = 100
    results = run_checks(node, store, clock, retry_delay=0.01)
    assert all(r.outcome is Outcome.ERROR and "could not read the node" in r.message for r in results.values())
    assert node.ssh.drop_next_commands == 100 - READ_ATTEMPTS


# -- the postboot step through the engine -------------------------------------------------------------------------


def _project_doc(lab: Lab) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "name": "postboot-test",
        "provider": {"type": "manual"},
        "nodes": [
            {
                "name": n.name,
                "hostname": n.name,
                "ip": "127.0.0.1",
                "prefix": 8,
                "gateway": "127.0.0.254",
                "ssh_port": n.ssh.port,
                "ssh_host_key": n.ssh.fingerprint,
                "localui_port": n.server.port,
            }
            for n in lab.nodes
        ],
        "network": {"vip": "127.0.0.200"},
        "files": {},
    }


def _run(tmp_path: Path, lab: Lab, clock: ManualClock) -> tuple[ExitCode, Journal, list[Event]]:
    project = parse_project(_project_doc(lab), base=tmp_path).project
    journal = Journal.open(tmp_path / "sessions" / "p.json", "p")
    events: list[Event] = []
    ctx = StepContext(project, SecretStore(), journal, app_paths().ensure())
    step = PostbootStep(PostbootSettings(clock=clock, connect_timeout=5, command_timeout=10))
    return Engine(ctx, [step], on_event=events.append).run(), journal, events


@pytest.mark.lab
def test_postboot_step_blocks_then_passes_with_an_override(tmp_path: Path, clock: ManualClock) -> None:
    faults = {1: NodeFaults(ntp_enabled=False), 2: NodeFaults(disks=(("sda", 100 * GIB), ("sdb", 600 * GIB)))}
    with Lab(3, tmp_path / "lab", clock, installed=True, tick_interval=None, faults=faults) as lab:
        code, journal, events = _run(tmp_path, lab, clock)
        assert code is ExitCode.PREFLIGHT_BLOCKED
        error = next(e for e in events if isinstance(e, RunFinished)).error or {}
        assert "node.disks" in error["message"] and "edge-node-3" in error["message"]
        assert "node.ntp" not in error["message"], "a warning does not block"
        json_path, html_path = report_paths(journal.path)
        assert '"blockers": 1' in json_path.read_text() and '"warnings": 1' in json_path.read_text()
        assert "node.ntp" in html_path.read_text()
        assert journal.job("postboot/edge-node-1")["status"] == "done"  # type: ignore[index]

        with pytest.raises(OverrideRefused):
            override(journal, "node.disks", "we will add a disk later")
        override(journal, "node.ntp", "NTP is configured in the cluster profile (CHG-12)")
        lab.nodes[2].machine.disks = (("sda", 400 * GIB), ("sdb", 600 * GIB))  # the operator grew the disk
        code, journal, events = _run(tmp_path, lab, clock)
        assert code is ExitCode.DONE, next(e for e in events if isinstance(e, RunFinished)).error
    report = json_path.read_text()
    assert '"blockers": 0' in report and '"warnings": 0' in report and '"overridden": 1' in report
    assert "CHG-12" in html_path.read_text()


@pytest.mark.lab
def test_a_node_whose_local_ui_does_not_answer_is_a_blocker(tmp_path: Path, clock: ManualClock) -> None:
    with Lab(1, tmp_path / "lab", clock, installed=True, tick_interval=None) as lab:
        lab.nodes[0].server.stop()  # the OS is up (SSH answers) but port 5080 is closed from here
        code, journal, events = _run(tmp_path, lab, clock)
        assert code is ExitCode.PREFLIGHT_BLOCKED
        error = next(e for e in events if isinstance(e, RunFinished)).error or {}
        assert "node.ports" in error["message"], error
        json_path, _ = report_paths(journal.path)
        ports = [r for r in json.loads(json_path.read_text())["results"] if r["check"] == "node.ports"]
        assert len(ports) == 1 and ports[0]["outcome"] == "fail"
        assert f"Local UI ({lab.nodes[0].server.port}): refused" in ports[0]["message"]
        assert "SSH" not in ports[0]["message"].split("not reachable:")[1]
        lab.nodes[0].server.start()
        code, _journal, _events = _run(tmp_path, lab, clock)
        assert code is ExitCode.DONE


# -- the gateway check ---------------------------------------------------------------------------------------------


def nodes(*rows: tuple[str, int, str]) -> list[StaticAddress]:
    return [StaticAddress(f"node-{i}", ip, prefix, gw) for i, (ip, prefix, gw) in enumerate(rows, start=1)]


def test_consistent_gateways_and_vip_pass() -> None:
    good = nodes(("10.1.0.11", 24, "10.1.0.1"), ("10.1.0.12", 24, "10.1.0.1"), ("10.1.0.13", 24, "10.1.0.1"))
    results = check_gateway_consistent(good, "10.1.0.50")
    assert len(results) == 4 and not any(r.failed for r in results)
    assert results[-1].target == "VIP (10.1.0.50)"


@pytest.mark.parametrize(
    ("rows", "vip", "expected"),
    [
        ([("10.1.0.11", 24, "10.1.1.1")], "10.1.0.50", "outside the node's subnet 10.1.0.0/24"),
        ([("10.1.0.11", 24, "10.1.0.11")], "10.1.0.50", "the node's own address"),
        ([("10.1.0.0", 24, "10.1.0.1")], "10.1.0.50", "network address"),
        ([("10.1.0.255", 24, "10.1.0.1")], "10.1.0.50", "broadcast address"),
        ([("10.1.0.11", 24, "10.1.0.255")], "10.1.0.50", "network or broadcast address"),
        ([("10.1.0.11", 24, "10.1.0.1"), ("10.1.0.140", 25, "10.1.0.129")], "10.1.0.50", "differs from"),
        ([("10.1.0.11", 24, "10.1.0.1")], "10.2.0.50", "VIP outside"),
        ([("10.1.0.11", 24, "10.1.0.1")], "10.1.0.1", "is the gateway"),
        ([("10.1.0.11", 24, "10.1.0.1")], "10.1.0.11", "is a node's address"),
        ([("10.1.0.11", 24, "10.1.0.1")], "10.1.0.255", "VIP broadcast"),
    ],
)
def test_inconsistent_gateways_and_vip_are_blockers(rows: list[tuple[str, int, str]], vip: str, expected: str) -> None:
    results = check_gateway_consistent(nodes(*rows), vip)
    bad = [r for r in results if r.failed]
    assert bad and all(r.definition.severity is CheckSeverity.BLOCKER for r in bad)
    text = " | ".join(f"{r.target}: {r.message}" for r in bad)
    if expected == "VIP outside":
        assert bad[-1].target.startswith("VIP") and "outside the nodes' subnet" in text
    elif expected == "VIP broadcast":
        assert bad[-1].target.startswith("VIP") and "network or broadcast address" in text
    else:
        assert expected in text, text


def test_a_slash_31_has_no_network_or_broadcast_address() -> None:
    results = check_gateway_consistent(nodes(("10.9.0.0", 31, "10.9.0.1")), "10.9.0.1")
    # The node address is fine on a /31; the VIP equal to the gateway is not.
    assert not results[0].failed and results[1].failed and "is the gateway" in results[1].message


@pytest.fixture
def gateway_listener() -> Iterator[tuple[str, int]]:
    """A router stand-in: something on its own loopback address that accepts TCP."""
    s = socket.socket()
    s.bind(("127.0.77.1", 0))
    s.listen(8)
    yield "127.0.77.1", s.getsockname()[1]
    s.close()


def test_gateway_that_answers_passes(gateway_listener: tuple[str, int]) -> None:
    address, port = gateway_listener
    result = check_gateway_answers(address, "gateway", subnet="127.0.0.0/8", ports=(port,), timeout=0.5)
    assert result.outcome is Outcome.PASS and f"port {port} accepted" in result.message
    assert any("TCP connect" in m for m in result.method) and any("ICMP" in m for m in result.method)


def test_silent_gateway_is_a_warning_that_says_what_was_tried(gateway_listener: tuple[str, int]) -> None:
    _, port = gateway_listener
    result = check_gateway_answers("127.0.77.2", "gateway", subnet="127.0.0.0/8", ports=(port,), timeout=0.5)
    assert result.failed and result.definition.severity is CheckSeverity.WARNING
    assert "nothing answered at 127.0.77.2" in result.message and "TCP connect" in result.message
    # Off the jump host's subnet ARP is impossible, and the result says so.
    off_link = check_gateway_answers("127.0.77.2", "gateway", subnet="10.99.0.0/24", ports=(port,), timeout=0.5)
    assert any("ARP not possible: this machine is not on 10.99.0.0/24" in m for m in off_link.method)


def test_check_gateways_probes_each_gateway_once(gateway_listener: tuple[str, int]) -> None:
    address, port = gateway_listener
    rows = nodes(("127.0.77.11", 8, address), ("127.0.77.12", 8, address), ("127.0.77.13", 8, address))
    results = check_gateways(rows, "127.0.77.50", ports=(port,), timeout=0.5, probe_loopback=True)
    probes = [r for r in results if r.check == "net.gateway-answers"]
    assert len(probes) == 1 and not probes[0].failed and "node-1, node-2, node-3" in probes[0].target
    assert "accepted" in probes[0].message and not any(r.failed for r in results)
    # By default a loopback gateway (a rehearsal project) is not probed: no router stands behind it.
    default = [r for r in check_gateways(rows, "127.0.77.50", ports=(port,)) if r.check == "net.gateway-answers"]
    assert len(default) == 1 and not default[0].failed and default[0].details.get("skipped")
