"""Are the appliance's service ports reachable from the jump host once the nodes are up?

After boot each node must answer SSH (22) and its Local UI (5080); once the cluster runs the VIP must answer the
Palette system console (443) and the Kubernetes API (6443). A closed port here is what an operator otherwise finds
out as a browser timeout much later: a firewall between the jump host and the nodes, or a node that did not come up.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from wizard.core.checks.catalog import Category, Check, CheckResult, CheckSeverity, failed, passed

CHECKS = (
    Check(
        "node.ports",
        Category.NODE,
        CheckSeverity.BLOCKER,
        "Node SSH and Local UI ports reachable",
        "open TCP 22 and 5080 from this machine to the node (firewall, VLAN, security group), and check that the node "
        "finished booting",
        "nodes",
    ),
    Check(
        "cluster.ports",
        Category.NODE,
        CheckSeverity.BLOCKER,
        "Palette console and Kubernetes API reachable at the VIP",
        "open TCP 443 and 6443 from this machine to the VIP; if the VIP does not answer at all, check that no other "
        "host holds it and that the cluster finished provisioning",
        "network",
    ),
)

DEFAULT_TIMEOUT = 3.0


def _probe(host: str, port: int, timeout: float) -> str:
    """``""`` when the port accepted a connection, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ""
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or exc.__class__.__name__


def check_ports(
    check: str,
    target: str,
    host: str,
    ports: Sequence[tuple[str, int]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> CheckResult:
    """One result for ``host``: every named port in ``ports`` (e.g. ``("SSH", 22)``) must accept a TCP connection."""
    with ThreadPoolExecutor(max_workers=max(1, len(ports))) as pool:
        answers = list(pool.map(lambda p: _probe(host, p[1], timeout), ports))
    closed = [f"{name} ({port}): {why}" for (name, port), why in zip(ports, answers, strict=True) if why]
    details = {f"{name} ({port})": why or "open" for (name, port), why in zip(ports, answers, strict=True)}
    method = (f"TCP connect from this machine, {timeout:g} s per port",)
    label = ", ".join(f"{name} {port}" for name, port in ports)
    if closed:
        return failed(check, f"{host}: not reachable: {'; '.join(closed)}", target, details=details, method=method)
    return passed(check, f"{host}: {label} reachable", target, details=details, method=method)
