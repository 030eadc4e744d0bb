"""The system console's address settings: its root domain and the certificate it serves (palette-sdk-go's
``PUT /v1/system/config/domain/certificates {rootDomain, certificates{certificateBase64, keyBase64,
caCertificateBase64}}``, reference §10.4; the GET beside it is the lab's reading, I).

A certificate is taken only when it parses, its key is its own and the CA (when given) issued it — what a console must
check before it serves something that would lock everyone out; then ``on_change`` hands it to the server, which
serves it from then on (:class:`~wizard.lab.console.SystemConsoleServer` reloads, as an ingress does). The key is
never answered back.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

PATH = r"/v1/system/config/domain/certificates"


class DomainError(Exception):
    """A refused change: 400 with this message."""


@dataclass(frozen=True)
class ServedCertificate:
    cert_pem: str
    key_pem: str
    ca_pem: str = ""


class DomainSettings:
    """The console's root domain and its own certificate, if the operator gave one; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.root_domain = ""
        self.custom: ServedCertificate | None = None
        #: Called with the new certificate after a change is taken (the server starts serving it).
        self.on_change: Callable[[ServedCertificate], None] | None = None
        self.changes = 0

    def put(self, body: dict[str, Any]) -> None:
        root = body.get("rootDomain")
        if not isinstance(root, str) or not root.strip():
            raise DomainError("rootDomain is required")
        given = body.get("certificates")
        served: ServedCertificate | None = None
        if isinstance(given, dict) and given.get("certificateBase64"):
            served = _checked(given)
        with self.lock:
            self.root_domain = root.strip().lower()
            if served is not None:
                self.custom = served
            self.changes += 1
            hook = self.on_change
        if served is not None and hook is not None:
            hook(served)

    def get(self) -> dict[str, Any]:
        with self.lock:
            certificates: dict[str, str] = {}
            if self.custom is not None:
                certificates["certificateBase64"] = _b64(self.custom.cert_pem)
                if self.custom.ca_pem:
                    certificates["caCertificateBase64"] = _b64(self.custom.ca_pem)
            return {"rootDomain": self.root_domain, "certificates": certificates}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _decoded(given: dict[str, Any], key: str) -> str:
    try:
        return base64.b64decode(str(given.get(key) or ""), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise DomainError(f"certificates.{key} is not base64 of a PEM text") from exc


def _public(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def _checked(given: dict[str, Any]) -> ServedCertificate:
    cert_pem, key_pem = _decoded(given, "certificateBase64"), _decoded(given, "keyBase64")
    ca_pem = _decoded(given, "caCertificateBase64") if given.get("caCertificateBase64") else ""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise DomainError("the certificate is not a PEM certificate") from exc
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise DomainError("the key is not an unencrypted PEM private key") from exc
    if _public(key.public_key()) != _public(cert.public_key()):
        raise DomainError("the key does not belong to the certificate")
    if ca_pem:
        try:
            cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise DomainError("the CA certificate did not issue the certificate") from exc
    return ServedCertificate(cert_pem, key_pem, ca_pem)
