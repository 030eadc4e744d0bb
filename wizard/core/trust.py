"""Pinned trust for self-signed TLS certificates and SSH host keys.

Appliance nodes, BMCs and often vCenter present self-signed certificates, and every node has its own SSH host key.
The wizard never switches verification off: on first contact it shows the fingerprint and pins it only after the
operator confirms (or when the project file already names the expected fingerprint); afterwards it connects only
to that exact certificate or key. A changed fingerprint stops with both values shown and an explicit choice —
never a silent re-pin. Pins live in ``trust.json`` in the config folder, written atomically.

A first contact can also be settled through a channel that is trusted already: a *witness* (a node reached over its
pinned SSH session, say) reports the certificate it sees at the same address. The same certificate is pinned without
asking, recording who vouched for it; a different one is refused outright (something between this machine and the
peer answers in its place); a witness that cannot tell leaves the decision to the operator, or to a refusal when no
one can be asked. Operators who verified a fingerprint themselves pin it with ``palette-wizard trust add``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

from wizard.core.errors import WizardError
from wizard.core.fsutil import atomic_write_text


class TrustKind(StrEnum):
    TLS = "tls"
    SSH = "ssh"


@dataclass(frozen=True)
class TrustRequest:
    """What the operator is asked to confirm."""

    kind: TrustKind
    host: str
    port: int
    presented: str  # the fingerprint the peer shows now
    pinned: str | None  # what was pinned before; None on first contact
    subject: str = ""  # certificate subject or key type, to help recognise it

    @property
    def changed(self) -> bool:
        return self.pinned is not None and not same_fingerprint(self.pinned, self.presented)

    def describe(self) -> str:
        what = "TLS certificate" if self.kind is TrustKind.TLS else "SSH host key"
        where = f"{self.host}:{self.port}"
        if self.changed:
            return (
                f"The {what} of {where} has CHANGED.\n  pinned:    {self.pinned}\n  presented: {self.presented}\n"
                "If the machine was reinstalled this is expected; otherwise someone may be intercepting the connection."
            )
        extra = f" ({self.subject})" if self.subject else ""
        return f"First contact with {where}. Its {what}{extra} has the SHA-256 fingerprint\n  {self.presented}"


#: Asks the operator; returns True to trust (pin) the presented fingerprint.
Confirm = Callable[[TrustRequest], bool]


class TlsUnreachable(WizardError):
    """The TLS service did not answer (refused, timed out, handshake cut): nothing was decided about trust."""


class TrustRefused(WizardError):
    """The operator did not confirm a first-contact fingerprint, or no one could be asked."""


class TrustMismatch(TrustRefused):
    """A trusted witness sees another certificate at the peer's address than this machine does."""


@dataclass(frozen=True)
class Sighting:
    """What a witness sees at an address: a fingerprint, or None with why it could not tell."""

    witness: str  # who looked, over which trusted channel
    fingerprint: str | None = None
    note: str = ""
    #: Certificates the peer is known to hold (its own store, read over a trusted channel) when the witness cannot
    #: look at the address itself: a presented one among them is the peer's, as only the peer has its key.
    holds: tuple[str, ...] = ()


#: Asked on first contact with ``host:port``: the certificate a trusted channel sees there.
Witness = Callable[[str, int], Sighting]


@runtime_checkable
class CancellableWitness(Protocol):
    """A witness whose waits (retry pauses on its channel) a job's cancel token can end: ``bound`` gives the same
    witness tied to that token."""

    def __call__(self, host: str, port: int) -> Sighting: ...

    def bound(self, cancel: Any) -> Self: ...


class TrustChanged(WizardError):
    """A pinned certificate or host key changed and the change was not accepted."""

    def __init__(self, request: TrustRequest) -> None:
        what = "TLS certificate" if request.kind is TrustKind.TLS else "SSH host key"
        super().__init__(
            "Host key changed" if request.kind is TrustKind.SSH else "Certificate changed",
            f"the {what} of {request.host}:{request.port} is not the one pinned",
            details=f"pinned:    {request.pinned}\npresented: {request.presented}",
            remediation=(
                "if the machine was reinstalled, confirm the new fingerprint when asked (or run "
                f"`palette-wizard trust forget {request.host}:{request.port}`); otherwise stop and find out why"
            ),
        )
        self.request = request


_HEX = re.compile(r"[0-9A-Fa-f]{64}")


def normalize(fingerprint: str) -> str:
    """One spelling per fingerprint: TLS as upper-case colon-separated hex, SSH as ``SHA256:base64``."""
    text = fingerprint.strip()
    if text.startswith("SHA256:"):
        return "SHA256:" + text[7:].rstrip("=")
    hexdigits = text.replace(":", "").replace(" ", "")
    if _HEX.fullmatch(hexdigits):
        return ":".join(hexdigits[i : i + 2] for i in range(0, 64, 2)).upper()
    if re.fullmatch(r"[A-Za-z0-9+/]{43}=?", text):
        return "SHA256:" + text.rstrip("=")
    raise ValueError(f"{fingerprint!r} is not a SHA-256 fingerprint")


def same_fingerprint(a: str, b: str) -> bool:
    """Compares across spellings: colon hex and base64 of the same digest are equal."""
    return _digest(a) == _digest(b)


def _digest(fingerprint: str) -> bytes:
    text = normalize(fingerprint)
    if text.startswith("SHA256:"):
        b64 = text[7:]
        return base64.b64decode(b64 + "=" * (-len(b64) % 4))
    return bytes.fromhex(text.replace(":", ""))


def tls_fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def ssh_fingerprint(key_blob: bytes) -> str:
    """OpenSSH's ``SHA256:…`` form of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class PresentedCertificate:
    pem: str
    fingerprint: str


def fetch_certificate(host: str, port: int, timeout: float = 10.0) -> PresentedCertificate:
    """The certificate a TLS server presents, fetched only to show and pin it (nothing is sent over it)."""
    try:
        pem = ssl.get_server_certificate((host, port), timeout=timeout)
    except (OSError, ssl.SSLError) as exc:
        raise TlsUnreachable(
            "Cannot reach TLS service",
            f"{host}:{port} did not complete a TLS handshake: {exc}",
            remediation="check the address and port, and that the service is running",
        ) from exc
    return PresentedCertificate(pem, tls_fingerprint(ssl.PEM_cert_to_DER_cert(pem)))


def pinned_ssl_context(pem: str) -> ssl.SSLContext:
    """A client context that trusts exactly this one certificate.

    Certificate verification stays on; the single trust anchor is the pinned certificate itself. Host-name
    matching is off because appliance certificates name whatever the node was called when they were made; the
    pin is stricter than a name check, since no other certificate, even one from a public CA, is accepted.
    """
    ctx = ssl.create_default_context(cadata=pem)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    # The pinned certificate is the anchor even when a CA issued it (an operator's certificate for the console):
    # OpenSSL otherwise insists on a chain up to a self-signed root.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


class TrustStore:
    """Pinned fingerprints (and, for TLS, the pinned certificate itself) per kind, host and port."""

    FILE = "trust.json"

    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / self.FILE
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"pins": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise WizardError(
                "Trust store corrupt",
                f"{self.path} is not valid JSON ({exc})",
                remediation=f"move {self.path} aside; every host will then be confirmed again",
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("pins"), dict):
            raise WizardError(
                "Trust store corrupt", f"{self.path} has an unexpected layout", remediation="move it aside"
            )
        return data

    @staticmethod
    def _key(kind: TrustKind, host: str, port: int) -> str:
        return f"{kind.value}:{host.lower()}:{port}"

    def pinned(self, kind: TrustKind, host: str, port: int) -> dict[str, Any] | None:
        with self._lock:
            entry = self._load()["pins"].get(self._key(kind, host, port))
            return dict(entry) if isinstance(entry, dict) else None

    def pin(self, kind: TrustKind, host: str, port: int, fingerprint: str, *, pem: str = "", how: str = "") -> None:
        """Pin ``fingerprint``; ``how`` records how it was verified (confirmed by the operator, named by the
        project, vouched for by a witness, added by hand)."""
        with self._lock:
            data = self._load()
            data["pins"][self._key(kind, host, port)] = {
                "fingerprint": normalize(fingerprint),
                "pem": pem,
                "pinned_at": time.time(),
                "how": how,
            }
            atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True))

    def all(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._load()["pins"].items() if isinstance(v, dict)}

    def forget(self, kind: TrustKind, host: str, port: int) -> bool:
        with self._lock:
            data = self._load()
            removed = data["pins"].pop(self._key(kind, host, port), None) is not None
            if removed:
                atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True))
            return removed


def decide(
    store: TrustStore,
    confirm: Confirm | None,
    kind: TrustKind,
    host: str,
    port: int,
    *,
    presented: str,
    expected: str = "",
    pem: str = "",
    subject: str = "",
    witness: Witness | None = None,
) -> None:
    """Pin or refuse ``presented`` for ``host:port``; returns only when it is trusted.

    ``expected`` is a fingerprint the project file gives: a match pins without asking, a mismatch is a change.
    ``witness`` settles a first contact through a channel trusted already (see the module's docstring).
    ``confirm`` is None when no one can be asked (headless without a terminal): a first contact no witness settled
    is then refused.
    """
    entry = store.pinned(kind, host, port)
    pinned = str(entry["fingerprint"]) if entry else None
    if expected:
        if same_fingerprint(expected, presented):
            has_pem = bool(entry and entry.get("pem"))
            if pinned is None or not same_fingerprint(pinned, presented) or (pem and not has_pem):
                store.pin(kind, host, port, presented, pem=pem, how="named by the project file")
            return
        raise TrustChanged(TrustRequest(kind, host, port, presented, expected, subject))
    if pinned is not None and same_fingerprint(pinned, presented):
        if entry is not None and pem and not entry.get("pem"):  # pinned by hand (`trust add`): keep the certificate
            store.pin(kind, host, port, presented, pem=pem, how=str(entry.get("how") or ""))
        return
    request = TrustRequest(kind, host, port, presented, pinned, subject)
    unsettled = ""
    if witness is not None and pinned is None:
        sighting = witness(host, port)
        if sighting.fingerprint is not None and same_fingerprint(sighting.fingerprint, presented):
            store.pin(
                kind, host, port, presented, pem=pem, how=f"verified: {sighting.witness} sees the same certificate"
            )
            return
        if sighting.fingerprint is not None:
            raise TrustMismatch(
                "Certificate not confirmed",
                f"{host}:{port} presents {normalize(presented)} to this machine, but {sighting.witness} sees "
                f"{normalize(sighting.fingerprint)} there: something between this machine and {host} answers in "
                "its place",
                remediation="find what intercepts the traffic from this machine to that address (a proxy, another "
                f"device on {host}); if you verified the certificate yourself, pin it with `palette-wizard trust add "
                f"{host}:{port} FINGERPRINT`",
            )
        if any(same_fingerprint(held, presented) for held in sighting.holds):
            store.pin(
                kind, host, port, presented, pem=pem, how=f"verified: {sighting.witness} holds the same certificate"
            )
            return
        if sighting.holds:  # its note, if any, says why the witnesses before it could not tell
            note = f"none of the {len(sighting.holds)} certificate(s) it holds is the one presented"
            earlier = f"{sighting.note}; " if sighting.note else ""
            unsettled = f" ({earlier}{sighting.witness} could not confirm it: {note})"
        else:
            unsettled = f" ({sighting.witness} could not confirm it: {sighting.note})"
    if confirm is None:
        if request.changed:
            raise TrustChanged(request)
        raise TrustRefused(
            "Fingerprint not confirmed",
            f"first contact with {host}:{port}; its fingerprint {normalize(presented)} was not confirmed{unsettled}",
            remediation="run the wizard interactively to confirm it, put the fingerprint in the project file, or pin "
            f"it after checking it out of band: `palette-wizard trust add {host}:{port} FINGERPRINT`",
        )
    if confirm(request):
        store.pin(kind, host, port, presented, pem=pem, how="confirmed by the operator")
        return
    if request.changed:
        raise TrustChanged(request)
    raise TrustRefused(
        "Fingerprint not confirmed",
        f"the operator did not trust {host}:{port} ({normalize(presented)})",
        remediation="check the fingerprint on the machine's console, then retry and confirm it",
    )


def trusted_tls_context(
    store: TrustStore,
    confirm: Confirm | None,
    host: str,
    port: int,
    *,
    expected: str = "",
    timeout: float = 10.0,
    witness: Witness | None = None,
) -> ssl.SSLContext:
    """An SSL context for ``host:port`` that accepts only its pinned certificate (pinning it first if confirmed).

    With a pin, the certificate presented now is compared first, so a change is put to the operator as a change
    (both fingerprints, an explicit choice) before any request is sent; declined or unanswerable, it stops with
    :class:`TrustChanged`. A server not answering yet (a node still rebooting) gets the pinned context, and the
    client reports it as unreachable as usual.
    """
    entry = store.pinned(TrustKind.TLS, host, port)
    if entry and entry.get("pem") and not expected:
        try:
            presented = fetch_certificate(host, port, timeout)
        except WizardError:
            return pinned_ssl_context(str(entry["pem"]))
        if same_fingerprint(str(entry["fingerprint"]), presented.fingerprint):
            return pinned_ssl_context(str(entry["pem"]))
    else:
        presented = fetch_certificate(host, port, timeout)
    decide(
        store,
        confirm,
        TrustKind.TLS,
        host,
        port,
        presented=presented.fingerprint,
        expected=expected,
        pem=presented.pem,
        witness=witness,
    )
    return pinned_ssl_context(presented.pem)


def is_certificate_change(exc: BaseException) -> bool:
    """True for the handshake failure a pinned context raises when the server presents another certificate."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        current = current.__cause__ or current.__context__
    return False


def certificate_changed(host: str, port: int, pinned: str) -> TrustChanged:
    """The error for a pinned TLS certificate the server no longer presents, showing both fingerprints (the
    presented one fetched only to show it: "unknown" when that fails too)."""
    presented = "unknown"
    with contextlib.suppress(WizardError):  # only to show both values; the change is the error
        presented = fetch_certificate(host, port, timeout=5.0).fingerprint
    return TrustChanged(TrustRequest(TrustKind.TLS, host, port, presented, pinned or "unknown"))


def system_or_pinned_tls_context(
    store: TrustStore,
    confirm: Confirm | None,
    host: str,
    port: int,
    *,
    expected: str = "",
    timeout: float = 10.0,
    cafile: str | None = None,
    witness: Witness | None = None,
) -> ssl.SSLContext:
    """An SSL context for services that may hold a CA-signed certificate (vCenter, BMCs, MAAS).

    A project-given fingerprint or an existing pin wins (so a pinned certificate that changes is a change, even if
    the new one is CA-signed). Otherwise the OS trust store (or ``cafile``) verifies the server, host name
    included; only when that fails on the certificate is the operator asked to pin what the server presents.
    """
    if expected or store.pinned(TrustKind.TLS, host, port):
        return trusted_tls_context(store, confirm, host, port, expected=expected, timeout=timeout, witness=witness)
    system = ssl.create_default_context(cafile=cafile)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            system.wrap_socket(raw, server_hostname=host),
        ):
            return system
    except ssl.SSLCertVerificationError:
        return trusted_tls_context(store, confirm, host, port, timeout=timeout, witness=witness)
    except (OSError, ssl.SSLError) as exc:
        raise TlsUnreachable(
            "Cannot reach TLS service",
            f"{host}:{port} did not complete a TLS handshake: {exc}",
            remediation="check the address and port, and that the service is running",
        ) from exc
