"""Is an address already taken? TCP connect probes, plus ICMP and ARP where this host allows them.

On a real network a completed connection *or a refusal* (TCP RST) proves a host holds the address: only a live
IP stack answers with RST. Silence (timeout, host unreachable) on every probe means nothing answered.

Loopback is different: the kernel itself owns all of 127.0.0.0/8, refuses on every port and answers every ping,
so neither proves anything there. On loopback only an accepted connection counts, and only when the same port
does not also accept on a control loopback address: a wildcard listener is the jump host's own service, not a
machine holding that address. This keeps rehearsal projects (the lab, the tests) on loopback meaningful.
"""

from __future__ import annotations

import ipaddress
import math
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from wizard.core.checks.catalog import CheckResult, failed, passed

DEFAULT_PORTS = (22, 80, 443, 5080, 6443)
DEFAULT_TIMEOUT = 1.0


@dataclass(frozen=True)
class ProbeResult:
    address: str
    in_use: bool
    evidence: tuple[str, ...]  # what answered
    method: tuple[str, ...]  # what was tried, and what could not be


def _connect(address: str, port: int, timeout: float) -> str:
    """``accepted``, ``refused`` or ``silent`` (timeout, unreachable, any other error)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "accepted"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "silent"


def _control_address(address: str) -> str:
    return "127.255.255.253" if address == "127.255.255.254" else "127.255.255.254"


def _ping(address: str, timeout: float) -> bool:
    wait = str(max(1, math.ceil(timeout)))
    proc = subprocess.run(
        ["ping", "-c", "1", "-n", "-W", wait, address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout + 5,
        check=False,
    )
    return proc.returncode == 0


def _arping(address: str, timeout: float) -> bool:
    wait = str(max(1, math.ceil(timeout)))
    proc = subprocess.run(
        ["arping", "-c", "1", "-w", wait, address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout + 5,
        check=False,
    )
    return proc.returncode == 0


def probe_address(
    address: str,
    *,
    ports: Sequence[int] = DEFAULT_PORTS,
    timeout: float = DEFAULT_TIMEOUT,
    icmp: bool = True,
    arp: bool = True,
) -> ProbeResult:
    loopback = ipaddress.ip_address(address).is_loopback
    evidence: list[str] = []
    method = [f"TCP connect to {'/'.join(str(p) for p in ports)} ({timeout:g} s timeout)"]
    with ThreadPoolExecutor(max_workers=max(1, len(ports))) as pool:
        outcomes = dict(zip(ports, pool.map(lambda p: _connect(address, p, timeout), ports), strict=True))
        if loopback:
            accepted = [p for p, o in outcomes.items() if o == "accepted"]
            control = _control_address(address)
            also = pool.map(lambda p: _connect(control, p, timeout) == "accepted", accepted)
            own = {p for p, wildcard in zip(accepted, also, strict=True) if wildcard}
            evidence += [f"port {p} accepted" for p in accepted if p not in own]
            method.append("loopback: a refusal proves nothing (the kernel refuses for all of 127/8)")
            if own:
                method.append(f"ports {sorted(own)} also accept on {control}: the jump host's own wildcard listener")
        else:
            evidence += [f"port {p} accepted" for p, o in outcomes.items() if o == "accepted"]
            evidence += [f"port {p} refused (a live host sent RST)" for p, o in outcomes.items() if o == "refused"]
    if not icmp:
        method.append("ICMP not tried (disabled)")
    elif loopback:
        method.append("ICMP not meaningful on loopback")
    elif shutil.which("ping") is None:
        method.append("ICMP not possible: ping not installed")
    else:
        method.append("ICMP echo via ping")
        if _ping(address, timeout):
            evidence.append("answers ping")
    if not arp:
        method.append("ARP not tried (disabled)")
    elif loopback:
        method.append("ARP not applicable on loopback")
    elif shutil.which("arping") is None:
        method.append("ARP not possible: arping not installed")
    elif os.geteuid() != 0:
        method.append("ARP not possible without root")
    else:
        method.append("ARP via arping")
        if _arping(address, timeout):
            evidence.append("answers ARP")
    return ProbeResult(address, bool(evidence), tuple(evidence), tuple(method))


def check_address_free(
    check_id: str,
    address: str,
    target: str,
    *,
    ports: Sequence[int] = DEFAULT_PORTS,
    timeout: float = DEFAULT_TIMEOUT,
    icmp: bool = True,
    arp: bool = True,
) -> CheckResult:
    """``check_id`` is ``net.node-ip-free`` or ``net.vip-free``: the address must be unused before the install."""
    probe = probe_address(address, ports=ports, timeout=timeout, icmp=icmp, arp=arp)
    details = {"address": address, "evidence": list(probe.evidence)}
    if probe.in_use:
        return failed(
            check_id, f"{address} is in use: {', '.join(probe.evidence)}", target, details=details, method=probe.method
        )
    return passed(check_id, f"nothing answered at {address}", target, details=details, method=probe.method)
