"""NTP checks with a minimal SNTPv4 client (RFC 4330): does each server answer, and how far off is our clock?"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from wizard.core.checks.catalog import CheckResult, failed, not_applicable, passed

DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_OFFSET = 2.0
NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
# mode byte, stratum, poll, precision, root delay, root dispersion, reference id; reference, originate, receive
# and transmit timestamps: 48 bytes.
_PACKET = struct.Struct("!BBbbII4sQQQQ")


class SntpError(Exception):
    pass


@dataclass(frozen=True)
class SntpReply:
    server: str
    offset: float  # server clock minus ours, in seconds
    delay: float
    stratum: int


def to_ntp(t: float) -> int:
    return int((t + NTP_EPOCH_OFFSET) * 2**32)


def from_ntp(value: int) -> float:
    return value / 2**32 - NTP_EPOCH_OFFSET


def sntp_query(server: str, *, port: int = 123, timeout: float = DEFAULT_TIMEOUT) -> SntpReply:
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(server, port, socket.AF_INET, socket.SOCK_DGRAM)[0]
    except OSError as exc:
        raise SntpError(f"cannot resolve {server}: {exc}") from exc
    # The transmit timestamp doubles as a nonce: a reply must echo it, so a stray or spoofed packet is ignored.
    t1 = time.time()
    transmit = to_ntp(t1) ^ int.from_bytes(os.urandom(2), "big")  # random low bits, under 16 µs of jitter
    request = _PACKET.pack(0x23, 0, 0, 0, 0, 0, b"\0" * 4, 0, 0, 0, transmit)  # LI 0, VN 4, mode 3
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, addr)
            deadline = time.monotonic() + timeout
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                data, _ = sock.recvfrom(1024)
                t4 = time.time()
                if len(data) >= _PACKET.size and _PACKET.unpack_from(data)[8] == transmit:
                    break
        except TimeoutError as exc:
            raise SntpError("no answer") from exc
        except OSError as exc:
            raise SntpError(str(exc)) from exc
    first, stratum, *_rest = _PACKET.unpack_from(data)
    receive, sent = _PACKET.unpack_from(data)[9:11]
    if first & 0x07 != 4:
        raise SntpError(f"not a server reply (mode {first & 0x07})")
    if stratum == 0:
        raise SntpError("kiss-o'-death reply (the server refuses to serve us)")
    if first >> 6 == 3:
        raise SntpError("the server's clock is not synchronised")
    t2, t3 = from_ntp(receive), from_ntp(sent)
    return SntpReply(server, ((t2 - t1) + (t3 - t4)) / 2, (t4 - t1) - (t3 - t2), stratum)


def check_ntp(
    servers: Sequence[str],
    *,
    port: int = 123,
    timeout: float = DEFAULT_TIMEOUT,
    max_offset: float = DEFAULT_MAX_OFFSET,
) -> list[CheckResult]:
    """At least one server must answer (blocker); each silent one is a warning; a large offset is a blocker."""
    if not servers:
        return [not_applicable("net.ntp-reachable", "the project names no NTP servers")]
    method = (f"SNTPv4 query over UDP port {port} ({timeout:g} s timeout)",)
    out: list[CheckResult] = []
    replies: list[SntpReply] = []
    silent: list[str] = []
    for server in servers:
        try:
            reply = sntp_query(server, port=port, timeout=timeout)
        except SntpError as exc:
            silent.append(f"{server}: {exc}")
            out.append(failed("net.ntp-server", f"{server}: {exc}", server, method=method))
            continue
        replies.append(reply)
        details = {"offset": reply.offset, "delay": reply.delay, "stratum": reply.stratum}
        out.append(passed("net.ntp-server", f"{server} answers (stratum {reply.stratum})", server, method=method))
        if abs(reply.offset) > max_offset:
            out.append(
                failed(
                    "net.ntp-offset",
                    f"the jump host's clock is {reply.offset:+.2f} s from {server} (limit ±{max_offset:g} s)",
                    server,
                    details=details,
                    method=method,
                )
            )
        else:
            out.append(passed("net.ntp-offset", f"offset {reply.offset:+.3f} s", server, details=details))
    if replies:
        out.insert(0, passed("net.ntp-reachable", f"{len(replies)} of {len(servers)} servers answer", method=method))
    else:
        out.insert(0, failed("net.ntp-reachable", "no NTP server answers: " + "; ".join(silent), method=method))
    return out
