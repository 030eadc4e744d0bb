"""Who answers at an address the project says belongs to its own nodes (or to their cluster's VIP)?

Preflight blocks an address that answers, because the install would claim it. Where the project says the nodes
exist already — the manual provider (the operator boots, and may have installed, them), vSphere's existing VMs —
an answer is expected, and what matters is *who* answers: this node, or another device on its address. The
evidence, strongest first:

- what the project or the trust store pins for the node: its SSH host key (the installed system's, or the live
  installer's) and its Local UI certificate. A pinned key or certificate presented at the address proves the node;
  another one presented where a pin exists is a foreign device (or a reinstalled node: the fix is the same, look).
- nothing pinned (or the pinned ports silent): an appliance Local UI answers — ``GET /v1/ping`` answers a JSON
  object (the spec's ``v1Ping``, ``{"msg": …}``) and an authenticated path refuses without a token (401 or 403).
  That tells an appliance from a printer or a laptop, not one appliance from another; first contact with the node
  then asks (or refuses headless) as usual.

Only key exchanges and two unauthenticated GETs are made: no credential reaches whoever answers. The TLS GETs trust
exactly the certificate the server just presented (an identification, not a session).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from wizard.appliance.ssh import SSHUnreachable, presented_host_key
from wizard.core.errors import WizardError
from wizard.core.trust import TrustKind, TrustStore, fetch_certificate, pinned_ssl_context, same_fingerprint

P_PING = "/v1/ping"
P_HOST = "/v1/edge-mgmt/edgehosts/current"


@dataclass(frozen=True)
class Expected:
    """One thing that would prove the address is ours: ``who`` presents ``fingerprint`` on ``port``."""

    who: str  # "edge-node-1", "edge-node-1's live installer", "the system console"
    kind: TrustKind
    port: int
    fingerprint: str

    @property
    def what(self) -> str:
        return "SSH host key" if self.kind is TrustKind.SSH else "TLS certificate"


@dataclass(frozen=True)
class Identification:
    ours: bool
    message: str  # what answers, in a sentence
    seen: dict[str, str] = field(default_factory=dict)  # port/kind → what it presented, or why nothing

    def details(self) -> dict[str, object]:
        return {"identified": self.ours, "identity": self.message, "presented": dict(self.seen)}


def node_expectations(
    store: TrustStore,
    name: str,
    ip: str,
    *,
    ssh_port: int,
    localui_port: int,
    ssh_host_key: str = "",
    installer_host_key: str = "",
    localui_fingerprint: str = "",
) -> list[Expected]:
    """What proves ``name``: the project's pins first, then what the trust store pinned for its address."""

    def pins(kind: TrustKind, host: str, port: int, given: str) -> list[str]:
        entry = store.pinned(kind, host, port)
        return [f for f in (given, str(entry["fingerprint"]) if entry else "") if f]

    out = [Expected(name, TrustKind.SSH, ssh_port, f) for f in pins(TrustKind.SSH, ip, ssh_port, ssh_host_key)]
    out += [
        Expected(f"{name}'s live installer", TrustKind.SSH, ssh_port, f)
        for f in pins(TrustKind.SSH, f"installer@{ip}", ssh_port, installer_host_key)
    ]
    out += [
        Expected(name, TrustKind.TLS, localui_port, f)
        for f in pins(TrustKind.TLS, ip, localui_port, localui_fingerprint)
    ]
    return out


def _presented(host: str, kind: TrustKind, port: int, timeout: float) -> tuple[str | None, str]:
    """The fingerprint presented at ``host:port`` (None when nothing of that kind answers) and a note."""
    try:
        if kind is TrustKind.SSH:
            fingerprint, key_type = presented_host_key(host, port, timeout)
            return fingerprint, key_type
        cert = fetch_certificate(host, port, timeout)
        return cert.fingerprint, "TLS"
    except (SSHUnreachable, WizardError) as exc:
        return None, exc.message


def local_ui_shape(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """Whether an appliance Local UI answers at ``host:port``, and what was seen."""
    try:
        cert = fetch_certificate(host, port, timeout)
    except WizardError as exc:
        return False, f"no TLS service on port {port} ({exc.message})"
    try:
        with httpx.Client(
            base_url=f"https://{host}:{port}", verify=pinned_ssl_context(cert.pem), timeout=timeout
        ) as http:
            ping = http.get(P_PING)
            guarded = http.get(P_HOST)
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        return False, f"port {port} speaks TLS but no HTTP answer came ({type(exc).__name__})"
    try:
        body = ping.json()
    except ValueError:
        body = None
    if ping.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("msg", ""), str):
        return False, f"port {port} answers HTTPS, but GET {P_PING} gave {ping.status_code}, not the Local UI's ping"
    if guarded.status_code not in (401, 403):
        return False, (
            f"port {port} answers {P_PING}, but {P_HOST} answered {guarded.status_code} without a token "
            "(a Local UI refuses it)"
        )
    return True, f"an appliance Local UI answers on port {port} ({P_PING} and a token-guarded {P_HOST})"


def identify(
    host: str, expected: Sequence[Expected], *, localui_ports: Sequence[int], timeout: float = 3.0
) -> Identification:
    """Whether what answers at ``host`` is one of ``expected`` (or, with nothing pinned answering, an appliance)."""
    seen: dict[str, str] = {}
    observed: dict[tuple[TrustKind, int], str | None] = {}
    for e in expected:
        key = (e.kind, e.port)
        if key not in observed:
            fingerprint, note = _presented(host, e.kind, e.port, timeout)
            observed[key] = fingerprint
            seen[f"{e.kind.value}:{e.port}"] = f"{fingerprint} ({note})" if fingerprint else f"nothing ({note})"
    mismatched = [
        (port, kind, presented)
        for (kind, port), presented in observed.items()
        if presented is not None
        and not any(e.kind is kind and e.port == port and same_fingerprint(e.fingerprint, presented) for e in expected)
    ]
    if mismatched:
        port, kind, presented = mismatched[0]
        pinned = [e for e in expected if e.kind is kind and e.port == port]
        what = pinned[0].what
        names = " or ".join(sorted({f"{e.who}'s {e.fingerprint}" for e in pinned}))
        return Identification(
            False,
            f"port {port} presents the {what} {presented}, not the pinned {names}: another device holds the "
            "address (or the machine was reinstalled)",
            seen,
        )
    matched = [e for e in expected if observed.get((e.kind, e.port)) is not None]
    if matched:
        e = matched[0]
        return Identification(True, f"{e.who} answers: port {e.port} presents its pinned {e.what}", seen)
    for port in dict.fromkeys(localui_ports):
        ok, note = local_ui_shape(host, port, timeout)
        seen[f"localui:{port}"] = note
        if ok:
            unpinned = "nothing pinned answered" if expected else "nothing is pinned to tell which node"
            return Identification(True, f"{note}; {unpinned}, so first contact confirms it", seen)
    why = "; ".join(seen[k] for k in seen)
    return Identification(False, f"it is not an appliance: {why}", seen)
