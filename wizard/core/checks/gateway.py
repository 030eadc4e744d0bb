"""Gateway and prefix: are the static nodes' addresses, gateways and the VIP one consistent subnet, and does the
gateway answer from here?

Consistency is arithmetic on the project's values: each static node's gateway lies inside its own subnet (address
and prefix), all nodes share one subnet, the VIP lies inside it, and no node address or the VIP is the subnet's
network or broadcast address or a gateway. A mistake here installs nodes that cannot route, or a VIP that the
cluster cannot claim, and is found only an hour later.

Whether the gateway answers is probed from the jump host with what this platform allows: TCP connects (an accept or
a refusal both prove a live host), ICMP echo when ``ping`` exists, and ARP only when this machine sits on the nodes'
subnet (ARP does not cross routers) and may send it. Routers often ignore all of these, so silence is a warning,
never a blocker; the result says which probes were possible.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from wizard.core.checks.address import DEFAULT_PORTS, DEFAULT_TIMEOUT, probe_address
from wizard.core.checks.catalog import Category, Check, CheckResult, CheckSeverity, failed, not_applicable, passed

CHECKS = (
    Check(
        "net.gateway-consistent",
        Category.NETWORK,
        CheckSeverity.BLOCKER,
        "Gateway, prefix and VIP are consistent",
        "give every node the same prefix and a gateway inside that subnet, and a VIP inside it that is neither the "
        "network, broadcast nor gateway address",
        "nodes",
    ),
    Check(
        "net.gateway-answers",
        Category.NETWORK,
        CheckSeverity.WARNING,
        "Gateway answers",
        "check the gateway address; if the router ignores probes on purpose, override this warning with a reason",
        "nodes",
    ),
)


@dataclass(frozen=True)
class StaticAddress:
    """One statically addressed node: ``ip``/``prefix`` with ``gateway``."""

    name: str
    ip: str
    prefix: int
    gateway: str


def _problems(node: StaticAddress) -> tuple[ipaddress.IPv4Network | None, list[str]]:
    try:
        ip = ipaddress.IPv4Address(node.ip)
        net = ipaddress.IPv4Network(f"{node.ip}/{node.prefix}", strict=False)
    except ValueError as exc:
        return None, [f"{node.ip}/{node.prefix} is not an IPv4 address and prefix ({exc})"]
    problems: list[str] = []
    special = net.prefixlen < 31  # /31 and /32 have no network or broadcast address (RFC 3021)
    if special and ip == net.network_address:
        problems.append(f"{ip} is the network address of {net}")
    if special and ip == net.broadcast_address:
        problems.append(f"{ip} is the broadcast address of {net}")
    try:
        gw = ipaddress.IPv4Address(node.gateway)
    except ValueError:
        problems.append(f"the gateway {node.gateway!r} is not an IPv4 address")
        return net, problems
    if gw == ip:
        problems.append(f"the gateway {gw} is the node's own address")
    elif gw not in net:
        problems.append(f"the gateway {gw} is outside the node's subnet {net}")
    elif special and gw in (net.network_address, net.broadcast_address):
        problems.append(f"the gateway {gw} is the network or broadcast address of {net}")
    return net, problems


def check_gateway_consistent(nodes: Sequence[StaticAddress], vip: str) -> list[CheckResult]:
    """One result per static node, plus one for the VIP."""
    check = "net.gateway-consistent"
    if not nodes:
        return [not_applicable(check, "no node has a static address")]
    results: list[CheckResult] = []
    subnets: list[ipaddress.IPv4Network] = []
    gateways = {n.gateway for n in nodes}
    addresses = {n.ip for n in nodes}
    for node in nodes:
        target = f"{node.name} ({node.ip}/{node.prefix} via {node.gateway})"
        net, problems = _problems(node)
        if net is not None:
            if subnets and net != subnets[0]:
                problems.append(f"its subnet {net} differs from the first node's {subnets[0]}")
            subnets.append(net)
        if node.ip in gateways - {node.gateway}:
            problems.append(f"{node.ip} is another node's gateway")
        details = {"ip": node.ip, "prefix": node.prefix, "gateway": node.gateway, "subnet": str(net) if net else ""}
        if problems:
            results.append(failed(check, "; ".join(problems), target, details=details))
        else:
            results.append(passed(check, f"{node.gateway} is inside {net}", target, details=details))

    target = f"VIP ({vip})"
    subnet = subnets[0] if subnets else None
    try:
        address = ipaddress.IPv4Address(vip)
    except ValueError:
        results.append(failed(check, f"the VIP {vip!r} is not an IPv4 address", target))
        return results
    problems = []
    if subnet is not None:
        if address not in subnet:
            problems.append(f"{address} is outside the nodes' subnet {subnet}")
        elif subnet.prefixlen < 31 and address in (subnet.network_address, subnet.broadcast_address):
            problems.append(f"{address} is the network or broadcast address of {subnet}")
    if vip in gateways:
        problems.append(f"{address} is the gateway")
    if vip in addresses:
        problems.append(f"{address} is a node's address")
    details = {"vip": vip, "subnet": str(subnet) if subnet else ""}
    if problems:
        results.append(failed(check, "; ".join(problems), target, details=details))
    else:
        results.append(passed(check, f"{address} is inside {subnet} and free of the nodes' addresses", target,
                              details=details))  # fmt: skip
    return results


def _on_link(gateway: str, subnet: ipaddress.IPv4Network | None) -> bool | None:
    """Whether this machine's route to ``gateway`` leaves from an address inside ``subnet`` (None: unknown)."""
    if subnet is None:
        return None
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((gateway, 9))  # UDP connect sends nothing; it only picks the route and the source address
        return ipaddress.IPv4Address(s.getsockname()[0]) in subnet
    return None


def check_gateway_answers(
    gateway: str,
    target: str,
    *,
    subnet: str = "",
    ports: Sequence[int] = DEFAULT_PORTS,
    timeout: float = DEFAULT_TIMEOUT,
    icmp: bool = True,
    arp: bool = True,
) -> CheckResult:
    """Probe ``gateway`` from here; ``subnet`` (the nodes' ``a.b.c.d/n``) decides whether ARP can reach it."""
    check = "net.gateway-answers"
    net = ipaddress.IPv4Network(subnet, strict=False) if subnet else None
    on_link = _on_link(gateway, net)
    notes: list[str] = []
    if arp and on_link is False:
        arp = False
        notes.append(f"ARP not possible: this machine is not on {net} (ARP does not cross routers)")
    probe = probe_address(gateway, ports=ports, timeout=timeout, icmp=icmp, arp=arp)
    method = tuple(m for m in probe.method if not (notes and m.startswith("ARP not tried"))) + tuple(notes)
    details = {"gateway": gateway, "evidence": list(probe.evidence), "on_link": on_link}
    if probe.in_use:
        return passed(check, f"{gateway} answers: {', '.join(probe.evidence)}", target, details=details, method=method)
    return failed(
        check,
        f"nothing answered at {gateway} (routers may ignore probes; tried: {'; '.join(method)})",
        target,
        details=details,
        method=method,
    )


def check_gateways(
    nodes: Sequence[StaticAddress],
    vip: str,
    *,
    ports: Sequence[int] = DEFAULT_PORTS,
    timeout: float = DEFAULT_TIMEOUT,
    icmp: bool = True,
    arp: bool = True,
    probe_loopback: bool = False,
) -> list[CheckResult]:
    """Consistency for every node and the VIP, then one reachability probe per distinct gateway.

    A loopback gateway (the rehearsal lab's projects) has no router behind it, so it is not probed unless
    ``probe_loopback`` asks for it."""
    results = check_gateway_consistent(nodes, vip)
    seen: dict[str, list[str]] = {}
    subnets: dict[str, str] = {}
    for node in nodes:
        with contextlib.suppress(ValueError):
            ipaddress.IPv4Address(node.gateway)
            seen.setdefault(node.gateway, []).append(node.name)
            subnets.setdefault(node.gateway, f"{node.ip}/{node.prefix}")
    if not seen:
        results.append(not_applicable("net.gateway-answers", "no node has a static gateway"))
    for gateway, names in seen.items():
        target = f"gateway {gateway} ({', '.join(names)})"
        if ipaddress.IPv4Address(gateway).is_loopback and not probe_loopback:
            results.append(not_applicable("net.gateway-answers", "a loopback address has no router to probe", target))
            continue
        results.append(
            check_gateway_answers(
                gateway,
                target,
                subnet=subnets[gateway],
                ports=ports,
                timeout=timeout,
                icmp=icmp,
                arp=arp,
            )
        )
    return results
