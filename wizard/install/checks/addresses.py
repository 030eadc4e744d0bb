"""Preflight's address checks: each node's address and the VIP must be free — unless the project or the session
says why they answer.

- **The install changed the world** (never probed again from that point): a node this session booted or started
  watching answers because of the install; the VIP answers once this session asked the leader for the cluster. A
  resumed run must not block on what its own earlier run did, whatever else changed in between (probe settings, a
  newer wizard). The journal is the evidence.
- **The nodes exist already** (the manual provider, vSphere with existing VMs): an answering address is expected,
  and :mod:`wizard.install.checks.identity` tells the node (or, at the VIP, its cluster) from a foreign device.
  Only a foreign device blocks, with a message saying what answers.

Each address is probed on the default ports plus the ports the project names for it (a node's SSH and Local UI
ports, the system console's port at the VIP), so nodes behind port forwarding are seen where they answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from wizard.core.checks import check_address_free, not_applicable
from wizard.core.checks.catalog import CheckResult, failed, passed
from wizard.core.jobs import StepContext
from wizard.core.journal import JOB_DONE, Journal
from wizard.core.project import AddressMode, Node, Project, ProviderType, VmMode
from wizard.core.trust import TrustKind, TrustStore
from wizard.install.checks.identity import Expected, Identification, identify, node_expectations

CONSOLE_PORT = 443  # the system console's port unless the project's console section says otherwise
CLUSTER_JOB = "cluster/create"


@dataclass(frozen=True)
class Probe:
    """How addresses are probed (from the preflight settings)."""

    ports: tuple[int, ...]
    timeout: float
    icmp: bool
    arp: bool

    def key(self) -> str:
        return f"{self.ports}|{self.timeout}|{self.icmp}|{self.arp}"


@dataclass(frozen=True)
class AddressCheck:
    job_id: str
    name: str
    run: Callable[[], list[CheckResult]]
    inputs: str
    fallback_check: str
    node: str = ""


def nodes_exist(project: Project) -> str:
    """Why the project's nodes may already run (and answer) before the wizard boots anything; "" when they may
    not."""
    provider = project.provider
    if provider.type is ProviderType.MANUAL:
        return "the manual provider: the operator boots the nodes, and may have installed them already"
    vsphere = provider.vsphere if provider.type is ProviderType.VSPHERE else None
    if vsphere is not None and vsphere.vm_mode is VmMode.EXISTING:
        return "vSphere with existing VMs"
    return ""


def booted_by_session(journal: Journal, node: str) -> str:
    """How the journal shows that this session's install made ``node`` answer; "" when it does not."""
    boot = journal.job(f"boot/{node}")
    if boot is not None and boot.get("status") == JOB_DONE:
        return f"this session's boot step brought {node} up"
    install = journal.job(f"install/{node}")
    if install is not None:
        return f"this session {'installed' if install.get('status') == JOB_DONE else 'watched the install of'} {node}"
    return ""


def cluster_claimed(journal: Journal) -> str:
    """How the journal shows that the VIP may be held by this session's cluster; "" when it does not."""
    record = journal.job(CLUSTER_JOB)
    if record is None:
        return ""
    done = record.get("status") == JOB_DONE
    return "this session's cluster holds it" if done else "this session asked the leader for the cluster"


def _not_probed(check: str, address: str, target: str, why: str) -> CheckResult:
    return passed(
        check,
        f"{address} answers because of this install ({why}, says the journal): not probed again",
        target,
        details={"skipped": True, "reason": why},
    )


def _identified(result: CheckResult, ident: Identification, who: str, exists: str) -> CheckResult:
    method = (*result.method, "identity: pinned SSH host key or TLS certificate, else the Local UI's ping")
    details = {**result.details, **ident.details(), "nodes_exist": exists}
    address = str(result.details.get("address", ""))
    if ident.ours:
        return passed(result.check, f"{address} answers, as expected ({exists}): {ident.message}", result.target,
                      details=details, method=method)  # fmt: skip
    evidence = ", ".join(str(e) for e in result.details.get("evidence", []))
    return failed(
        result.check,
        f"{address} is in use ({evidence}), and not by {who}: {ident.message}",
        result.target,
        details=details,
        method=method,
        remediation=(
            f"find the device on {address} and move it (or give {who} another address); if it is {who} "
            "reinstalled, forget its old pins (`palette-wizard trust forget`) and pin the new ones"
        ),
    )


def _pins(expected: list[Expected]) -> str:
    return ",".join(sorted(f"{e.kind.value}:{e.port}:{e.fingerprint}" for e in expected))


def node_check(ctx: StepContext, node: Node, probe: Probe, trust: TrustStore) -> AddressCheck:
    target = f"{node.name} ({node.ip or 'DHCP'})"
    ip = node.ip if node.address_mode is AddressMode.STATIC else ""
    ports = tuple(dict.fromkeys((*probe.ports, node.ssh_port, node.localui_port)))
    booted = booted_by_session(ctx.journal, node.name)
    exists = nodes_exist(ctx.project)
    expected = (
        node_expectations(
            trust,
            node.name,
            node.ip,
            ssh_port=node.ssh_port,
            localui_port=node.localui_port,
            ssh_host_key=node.ssh_host_key,
            installer_host_key=node.ssh_installer_host_key,
            localui_fingerprint=node.localui_fingerprint,
        )
        if exists and ip
        else []
    )

    def run() -> list[CheckResult]:
        if not ip:
            return [not_applicable("net.node-ip-free", "the node's address comes from DHCP", target)]
        if booted:
            return [_not_probed("net.node-ip-free", ip, target, booted)]
        result = check_address_free(
            "net.node-ip-free", ip, target, ports=ports, timeout=probe.timeout, icmp=probe.icmp, arp=probe.arp
        )
        if not result.failed or not exists:
            return [result]
        ident = identify(ip, expected, localui_ports=(node.localui_port,), timeout=max(2.0, probe.timeout))
        return [_identified(result, ident, node.name, exists)]

    return AddressCheck(
        f"preflight/address/{node.name}",
        f"Address of {node.name}",
        run,
        f"{node.ip}|{ports}|{probe.key()}|{exists}|{_pins(expected)}|{booted}",
        "net.node-ip-free",
        node.name,
    )


def vip_check(ctx: StepContext, probe: Probe, trust: TrustStore) -> AddressCheck:
    project = ctx.project
    vip = project.network.vip
    console_port = project.console.port if project.console is not None else CONSOLE_PORT
    ports = tuple(dict.fromkeys((*probe.ports, console_port)))
    claimed = cluster_claimed(ctx.journal)
    exists = nodes_exist(project)
    expected: list[Expected] = []
    if exists:
        # Once the cluster runs, the VIP is one more address of a control-plane node (its SSH and Local UI answer
        # there too) and the system console answers on it.
        console = project.console.tls_fingerprint if project.console is not None else ""
        entry = trust.pinned(TrustKind.TLS, vip, console_port)
        pins = [f for f in (console, str(entry["fingerprint"]) if entry else "") if f]
        expected += [Expected("the system console", TrustKind.TLS, console_port, f) for f in pins]
        for n in project.nodes:
            expected += node_expectations(
                trust,
                f"{n.name} (holding the VIP)",
                n.ip,
                ssh_port=n.ssh_port,
                localui_port=n.localui_port,
                ssh_host_key=n.ssh_host_key,
                localui_fingerprint=n.localui_fingerprint,
            )
    localui_ports = tuple(dict.fromkeys(n.localui_port for n in project.nodes))
    target = f"VIP ({vip})"

    def run() -> list[CheckResult]:
        if claimed:
            return [_not_probed("net.vip-free", vip, target, claimed)]
        result = check_address_free(
            "net.vip-free", vip, target, ports=ports, timeout=probe.timeout, icmp=probe.icmp, arp=probe.arp
        )
        if not result.failed or not exists:
            return [result]
        ident = identify(vip, expected, localui_ports=localui_ports, timeout=max(2.0, probe.timeout))
        return [_identified(result, ident, "this project's cluster", exists)]

    return AddressCheck(
        "preflight/address/vip",
        "Virtual IP",
        run,
        f"{vip}|{ports}|{probe.key()}|{exists}|{_pins(expected)}|{claimed}",
        "net.vip-free",
    )
