"""An operator's TLS certificate, key and CA for the system console, checked before anything is sent.

What is checked (each problem says which file and what to do): the certificate and the key are PEM and the key is
not encrypted (the console takes it as is); the key belongs to the certificate; the CA, when given, issued the
certificate; the certificate is valid now and names the root domain (or, without one, the address it will be served
at) in its subject alternative names; the key file is not readable by others (a warning). The key's text is handed
to the redactor as soon as it is read: it never reaches a log or a journal.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from wizard.core.redact import REDACTOR
from wizard.core.trust import tls_fingerprint

SOON = dt.timedelta(days=30)


@dataclass(frozen=True)
class CertificateSet:
    """The operator's files, read: PEM texts (``key_pem`` masked in every repr), the certificate's fingerprint,
    the names it covers and when it expires."""

    cert_pem: str
    key_pem: str = field(repr=False)
    ca_pem: str
    fingerprint: str
    names: tuple[str, ...]
    not_after: dt.datetime


@dataclass(frozen=True)
class CertificateProblem:
    field: str  # "cert", "key", "ca" or "domain"
    message: str
    fix: str
    warning: bool = False


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace")


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return tuple(dns + ips)


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a certificate naming ``names`` is valid for ``host`` (a ``*.`` wildcard covers one label)."""
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host:
            return True
        if name.startswith("*.") and host.count(".") >= 2 and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_certificate_set(
    cert_path: Path,
    key_path: Path,
    ca_path: Path | None,
    *,
    domain: str = "",
    address: str = "",
    now: dt.datetime | None = None,
    platform: str = sys.platform,
) -> tuple[CertificateSet | None, list[CertificateProblem]]:
    """Read and check the files; the set (None when it cannot be used) and every problem found."""
    problems: list[CertificateProblem] = []
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert_pem = _read(cert_path)
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "is not a PEM certificate"
        return None, [CertificateProblem("cert", f"{cert_path} {why}", "give the certificate as a PEM file")]
    try:
        key_pem = _read(key_path)
        REDACTOR.add(key_pem.strip())
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:
        return None, [
            CertificateProblem(
                "key",
                f"{key_path} is encrypted",
                "give the key without a passphrase (openssl pkey -in KEY -out PLAIN.key); keep that file private",
            )
        ]
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "is not a PEM private key"
        return None, [CertificateProblem("key", f"{key_path} {why}", "give the certificate's private key as PEM")]
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        problems.append(CertificateProblem("key", f"{key_path} holds a {type(key).__name__}", "use an RSA or EC key"))
    elif key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        problems.append(
            CertificateProblem(
                "key",
                f"{key_path} is not the key of {cert_path.name}",
                "give the private key the certificate was made for",
            )
        )
    ca_pem = ""
    if ca_path is not None:
        try:
            ca_pem = _read(ca_path)
            ca = x509.load_pem_x509_certificate(ca_pem.encode())
        except (OSError, ValueError):
            problems.append(CertificateProblem("ca", f"{ca_path} is not a PEM certificate", "give the CA as PEM"))
        else:
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                problems.append(
                    CertificateProblem(
                        "ca",
                        f"{ca_path.name} did not issue {cert_path.name}",
                        "give the CA certificate that signed it (the issuing, intermediate CA)",
                    )
                )
    if cert.not_valid_after_utc <= now or cert.not_valid_before_utc > now:
        problems.append(
            CertificateProblem(
                "cert",
                f"{cert_path.name} is valid from {cert.not_valid_before_utc:%Y-%m-%d} to "
                f"{cert.not_valid_after_utc:%Y-%m-%d}",
                "give a certificate that is valid now",
            )
        )
    elif cert.not_valid_after_utc - now < SOON:
        problems.append(
            CertificateProblem(
                "cert",
                f"{cert_path.name} expires on {cert.not_valid_after_utc:%Y-%m-%d}",
                "renew it soon",
                warning=True,
            )
        )
    names = _names(cert)
    served_at = domain or address
    if served_at and not covers(names, served_at):
        listed = ", ".join(names) or "no subject alternative names"
        problems.append(
            CertificateProblem(
                "domain" if domain else "cert",
                f"{cert_path.name} is for {listed}, not {served_at}",
                "give a certificate whose subject alternative names include the root domain",
                warning=not domain,
            )
        )
    if platform != "win32" and key_path.exists() and stat.S_IMODE(os.stat(key_path).st_mode) & 0o077:
        problems.append(
            CertificateProblem(
                "key",
                f"{key_path} can be read by other users",
                f"chmod 600 {key_path}",
                warning=True,
            )
        )
    fingerprint = tls_fingerprint(cert.public_bytes(serialization.Encoding.DER))
    certificate_set = CertificateSet(cert_pem, key_pem, ca_pem, fingerprint, names, cert.not_valid_after_utc)
    errors = [p for p in problems if not p.warning]
    return (None if errors else certificate_set), problems
