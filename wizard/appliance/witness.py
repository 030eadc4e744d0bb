"""A node as a witness for a TLS certificate: what does the node itself see at an address?

The system console's certificate is made when the cluster is, on its nodes, so no project can name it beforehand,
and a headless run cannot ask anyone. The wizard already trusts each node's SSH host key (pinned during the
install, or named by the project), so it asks a node over that session: ``openssl s_client`` on the node connects
to the VIP from inside the cluster's network — where kube-vip holds the address, from the very machine — and prints
the certificate it was given. The same certificate on both sides pins it (:func:`wizard.core.trust.decide`);
another one means something between the jump host and the VIP answers in the cluster's place.

A node without ``openssl``, or that cannot be reached over its pinned SSH session, cannot testify. The cluster itself
is asked next, through the admin kubeconfig the wizard saved (it came from the leader's pinned Local UI, and it pins
the cluster's CA): the TLS certificates the cluster keeps as ``kubernetes.io/tls`` secrets. Which secret the console
serves is not published (I), so none is singled out: a presented certificate among them is the cluster's, since
only the cluster has its key. When no one can tell, the decision falls back to the operator (or a refusal,
headless). Witnesses are asked in order (the leader first, the cluster last) until one can tell.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import shlex
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from wizard.appliance.kube import kube_get
from wizard.appliance.ssh import SSHClient, SSHError
from wizard.core.errors import WizardError
from wizard.core.http import Sleeper
from wizard.core.trust import CancellableWitness, Sighting, tls_fingerprint

log = logging.getLogger(__name__)

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def s_client_command(host: str, port: int) -> str:
    """The command a node runs to see ``host:port``'s certificate; stdin from /dev/null so it ends at once, its
    diagnostics (verify errors for a self-signed certificate) dropped."""
    target = f"[{host}]:{int(port)}" if _is_ipv6(host) else f"{host}:{int(port)}"
    return f"openssl s_client -connect {shlex.quote(target)} -showcerts </dev/null 2>/dev/null"


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def first_certificate(output: str) -> str | None:
    """The peer's own certificate (the first PEM block s_client prints), as PEM; None when there is none."""
    match = _PEM.search(output)
    if match is None:
        return None
    try:
        ssl.PEM_cert_to_DER_cert(match.group(0))
    except ValueError:
        return None
    return match.group(0)


@dataclass(frozen=True)
class NodeWitness:
    """One node, reached over its pinned SSH session (``open`` makes the client; the caller owns nothing)."""

    name: str
    open: Callable[[], SSHClient]

    def __call__(self, host: str, port: int) -> Sighting:
        who = f"{self.name} (over its pinned SSH session)"
        try:
            client = self.open()
        except WizardError as exc:
            return Sighting(who, note=f"cannot open its session: {exc.title}: {exc.message}")
        try:
            result = client.run(s_client_command(host, port))
            who = f"{self.name} (over SSH, host key {client.host_fingerprint})"
        except (SSHError, WizardError) as exc:
            return Sighting(who, note=f"{exc.title}: {exc.message}")
        finally:
            client.close()
        pem = first_certificate(result.stdout)
        if pem is None:
            why = result.stderr.strip() or f"no certificate in its answer (exit code {result.code})"
            if result.code == 127:
                why = "openssl is not installed on the node"
            return Sighting(who, note=why)
        return Sighting(who, tls_fingerprint(ssl.PEM_cert_to_DER_cert(pem)))


#: The cluster's TLS secrets, whatever their namespace (the API filters by type; the client checks again).
TLS_SECRETS = "/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Ftls"


@dataclass(frozen=True)
class ClusterWitness:
    """The cluster, through the admin kubeconfig at ``kubeconfig`` (read when asked: it is saved by the cluster
    step)."""

    kubeconfig: Path
    timeout: float = 15.0
    name: str = "the cluster"
    cancel: Sleeper | None = None  # the job's token: a cancel ends a retry pause of the read at once

    def bound(self, cancel: Sleeper | None) -> ClusterWitness:
        return replace(self, cancel=cancel)

    def __call__(self, host: str, port: int) -> Sighting:
        who = "the cluster (its TLS secrets, read with the saved admin kubeconfig)"
        if not self.kubeconfig.is_file():
            return Sighting(who, note=f"no kubeconfig at {self.kubeconfig} yet")
        try:
            listed = kube_get(self.kubeconfig, TLS_SECRETS, timeout=self.timeout, cancel=self.cancel)
        except WizardError as exc:
            return Sighting(who, note=f"{exc.title}: {exc.message}")
        held = sorted(set(secret_certificates(listed)))
        if not held:
            return Sighting(who, note="the cluster keeps no TLS certificate this account can read")
        return Sighting(who, holds=tuple(held))


def secret_certificates(listed: dict[str, Any] | None) -> list[str]:
    """The fingerprint of each TLS secret's own certificate (the first of its ``tls.crt``) in a SecretList."""
    out = []
    for item in (listed or {}).get("items") or []:
        if not isinstance(item, dict) or item.get("type", "kubernetes.io/tls") != "kubernetes.io/tls":
            continue
        encoded = (item.get("data") or {}).get("tls.crt")
        if not isinstance(encoded, str):
            continue
        try:
            pem = first_certificate(base64.b64decode(encoded, validate=True).decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            continue
        if pem is not None:
            out.append(tls_fingerprint(ssl.PEM_cert_to_DER_cert(pem)))
    return out


class NamedWitness(Protocol):
    @property
    def name(self) -> str: ...

    def __call__(self, host: str, port: int) -> Sighting: ...


@dataclass(frozen=True)
class FirstAble:
    """A witness that asks each in turn until one can tell (a node may be rebooting or lack openssl)."""

    witnesses: tuple[NamedWitness, ...]

    def bound(self, cancel: Sleeper | None) -> FirstAble:
        """The same witnesses, those that wait tied to a job's cancel token."""
        return FirstAble(tuple(w.bound(cancel) if isinstance(w, CancellableWitness) else w for w in self.witnesses))

    def __call__(self, host: str, port: int) -> Sighting:
        notes: list[str] = []
        for witness in self.witnesses:
            sighting = witness(host, port)
            if sighting.fingerprint is not None:
                return sighting
            if sighting.holds:  # what the ones before could not tell goes with it, in case it cannot either
                return replace(sighting, note="; ".join(notes))
            log.info("%s cannot vouch for %s:%d: %s", witness.name, host, port, sighting.note)
            notes.append(f"{witness.name}: {sighting.note}")
        return Sighting("no witness", note="; ".join(notes) or "none to ask")


def first_able(witnesses: Sequence[NamedWitness]) -> FirstAble:
    """A witness that asks each in turn until one can tell (a node may be rebooting or lack openssl)."""
    return FirstAble(tuple(witnesses))
