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
import sys
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


# -- ICMP and ARP, per platform -----------------------------------------------------------------------------------
# Each platform's ping spells "one echo, wait this long" differently, and reads a reply differently: Linux
# (iputils, busybox) waits -W seconds; macOS and the BSDs wait -W milliseconds (IPv6 needs ping6, which has no reply
# timeout: the process timeout bounds it); Windows counts with -n and waits -w milliseconds, and exits 0 even when
# all that came back is a router's "Destination host unreachable" — only a line with TTL= is an echo reply (TTL= is
# not translated). Windows' IPv6 replies carry no TTL, so there an answer cannot be told from an unreachable report
# without reading translated text: no ICMP.


def _family(platform: str) -> str:
    if platform == "win32" or platform.startswith("cygwin"):
        return "windows"
    if platform == "darwin" or "bsd" in platform:
        return "bsd"
    return "linux"


def ping_command(address: str, timeout: float, platform: str = sys.platform) -> list[str] | None:
    """The arguments for one ICMP echo to ``address`` that waits ``timeout`` seconds for the reply on ``platform``
    (a ``sys.platform`` value), or None where ping cannot be asked that in a way whose answer can be read."""
    v6 = ipaddress.ip_address(address).version == 6
    seconds = str(max(1, math.ceil(timeout)))
    millis = str(max(1, math.ceil(timeout * 1000)))
    family = _family(platform)
    if family == "windows":
        return None if v6 else ["ping", "-4", "-n", "1", "-w", millis, address]
    if family == "bsd":
        return ["ping6", "-c", "1", "-n", address] if v6 else ["ping", "-c", "1", "-n", "-W", millis, address]
    return ["ping", "-c", "1", "-n", "-W", seconds, address]


def ping_answered(returncode: int, output: str, platform: str = sys.platform) -> bool:
    """Whether a finished :func:`ping_command` got an echo reply."""
    if _family(platform) == "windows":
        return returncode == 0 and "TTL=" in output.upper()
    return returncode == 0


def arping_command(address: str, timeout: float, platform: str = sys.platform) -> list[str] | None:
    """One ARP request to ``address`` with a deadline; Linux only (iputils or Habets' arping take ``-c``/``-w`` in
    seconds), None elsewhere: macOS has no arping of its own and Windows none at all."""
    if _family(platform) != "linux" or ipaddress.ip_address(address).version != 4:
        return None
    return ["arping", "-c", "1", "-w", str(max(1, math.ceil(timeout))), address]


def privileged() -> bool:
    """Whether this process may send raw ARP: root on POSIX. Windows has no ``geteuid`` (and no arping)."""
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def _run_probe(argv: list[str], timeout: float) -> tuple[int, str] | None:
    """Exit code and output of a probe command; None when it did not end within its bound (no answer)."""
    try:
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout + 2,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    except OSError:
        return None
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _ping(address: str, timeout: float, platform: str = sys.platform) -> bool:
    argv = ping_command(address, timeout, platform)
    outcome = _run_probe(argv, timeout) if argv is not None else None
    return outcome is not None and ping_answered(*outcome, platform)


def _arping(address: str, timeout: float, platform: str = sys.platform) -> bool:
    argv = arping_command(address, timeout, platform)
    outcome = _run_probe(argv, timeout) if argv is not None else None
    return outcome is not None and outcome[0] == 0


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
    platform = sys.platform
    ping = ping_command(address, timeout, platform)
    if not icmp:
        method.append("ICMP not tried (disabled)")
    elif loopback:
        method.append("ICMP not meaningful on loopback")
    elif ping is None:
        method.append(f"ICMP not tried: this platform's ping cannot report an IPv6 echo reliably ({platform})")
    elif shutil.which(ping[0]) is None:
        method.append(f"ICMP not possible: {ping[0]} not installed")
    else:
        method.append(f"ICMP echo via {' '.join(ping[:-1])}")
        if _ping(address, timeout, platform):
            evidence.append("answers ping")
    arping = arping_command(address, timeout, platform)
    if not arp:
        method.append("ARP not tried (disabled)")
    elif loopback:
        method.append("ARP not applicable on loopback")
    elif arping is None:
        method.append(f"ARP not possible here ({platform}: no arping for this address)")
    elif shutil.which("arping") is None:
        method.append("ARP not possible: arping not installed")
    elif not privileged():
        method.append("ARP not possible without root")
    else:
        method.append("ARP via arping")
        if _arping(address, timeout, platform):
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
