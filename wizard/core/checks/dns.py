"""DNS checks, asking the project's DNS servers directly (never the jump host's resolver, which may differ)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename

from wizard.core.checks.catalog import CheckResult, failed, not_applicable, passed

DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True)
class NodeName:
    name: str
    hostname: str
    ip: str  # empty for DHCP nodes


def _ask(server: str, qname: str, rdtype: str, port: int, timeout: float) -> dns.message.Message:
    query = dns.message.make_query(qname, rdtype)
    return dns.query.udp(query, server, timeout=timeout, port=port)


def _names(hostname: str, search_domains: Sequence[str]) -> list[str]:
    """The names to look up: the host name itself when it is qualified, else it under each search domain."""
    if "." in hostname.rstrip("."):
        return [hostname.rstrip(".")]
    return [f"{hostname}.{d.strip('.')}" for d in search_domains]


def _answers(msg: dns.message.Message, rdtype: int) -> list[str]:
    return [rd.to_text() for rrset in msg.answer if rrset.rdtype == rdtype for rd in rrset]


def check_dns(
    servers: Sequence[str],
    nodes: Sequence[NodeName],
    search_domains: Sequence[str] = (),
    *,
    port: int = 53,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[CheckResult]:
    method = (f"queries sent straight to each server over UDP port {port} with dnspython ({timeout:g} s timeout)",)
    if not servers:
        return [not_applicable("net.dns-server", "the project names no DNS servers")]
    out: list[CheckResult] = []
    answering: list[str] = []
    for server in servers:
        try:
            reply = _ask(server, ".", "NS", port, timeout)
        except (dns.exception.DNSException, OSError) as exc:
            reason = "no answer" if isinstance(exc, dns.exception.Timeout) else str(exc)
            out.append(failed("net.dns-server", f"{server} did not answer ({reason})", server, method=method))
            continue
        answering.append(server)
        rcode = dns.rcode.to_text(reply.rcode())
        out.append(passed("net.dns-server", f"{server} answers ({rcode} for the root NS)", server, method=method))
    if not answering:
        return out  # the blocker says it all; per-name results would only repeat it
    server = answering[0]
    for node in nodes:
        out.append(_forward(server, node, search_domains, port=port, timeout=timeout, method=method))
        out.append(_reverse(server, node, search_domains, port=port, timeout=timeout, method=method))
    return out


def _forward(
    server: str, node: NodeName, search: Sequence[str], *, port: int, timeout: float, method: tuple[str, ...]
) -> CheckResult:
    target = f"{node.name} ({node.hostname})"
    names = _names(node.hostname, search)
    if not names:
        return not_applicable("net.dns-forward", "short host name and no search domains", target)
    found: dict[str, list[str]] = {}
    for name in names:
        try:
            reply = _ask(server, name, "A", port, timeout)
        except (dns.exception.DNSException, OSError) as exc:
            return failed("net.dns-forward", f"{server} failed to answer for {name}: {exc}", target, method=method)
        found[name] = _answers(reply, dns.rdatatype.A)
    details = {"server": server, "answers": found}
    if not node.ip:
        hits = {n: a for n, a in found.items() if a}
        if hits:
            return passed("net.dns-forward", f"resolves: {hits}", target, details=details, method=method)
        return failed("net.dns-forward", f"{' / '.join(names)}: no A record", target, details=details, method=method)
    for name, addrs in found.items():
        if node.ip in addrs:
            return passed("net.dns-forward", f"{name} → {node.ip}", target, details=details, method=method)
    wrong = {n: a for n, a in found.items() if a}
    if wrong:
        text = "; ".join(f"{n} → {', '.join(a)}" for n, a in wrong.items())
        return failed(
            "net.dns-forward", f"{text}, but the project gives {node.ip}", target, details=details, method=method
        )
    return failed("net.dns-forward", f"{' / '.join(names)}: no A record", target, details=details, method=method)


def _reverse(
    server: str, node: NodeName, search: Sequence[str], *, port: int, timeout: float, method: tuple[str, ...]
) -> CheckResult:
    target = f"{node.name} ({node.ip or 'DHCP'})"
    if not node.ip:
        return not_applicable("net.dns-reverse", "the node's address comes from DHCP", target)
    qname = dns.reversename.from_address(str(ipaddress.IPv4Address(node.ip))).to_text()
    try:
        reply = _ask(server, qname, "PTR", port, timeout)
    except (dns.exception.DNSException, OSError) as exc:
        return failed("net.dns-reverse", f"{server} failed to answer for {qname}: {exc}", target, method=method)
    names = [n.rstrip(".").lower() for n in _answers(reply, dns.rdatatype.PTR)]
    details = {"server": server, "ptr": names}
    wanted = {node.hostname.rstrip(".").lower(), *(n.lower() for n in _names(node.hostname, search))}
    if any(n in wanted or n.split(".", 1)[0] == node.hostname for n in names):
        return passed("net.dns-reverse", f"{node.ip} → {', '.join(names)}", target, details=details, method=method)
    if names:
        text = f"{node.ip} → {', '.join(names)}, not {node.hostname}"
        return failed("net.dns-reverse", text, target, details=details, method=method)
    return failed("net.dns-reverse", f"{node.ip}: no PTR record", target, details=details, method=method)
