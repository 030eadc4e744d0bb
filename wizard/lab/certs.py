"""Per-node self-signed TLS certificates, like the one each appliance's Local UI serves on port 5080."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "localui.crt"
KEY_FILE = "localui.key"


@dataclass(frozen=True)
class NodeCertificate:
    cert_path: Path
    key_path: Path
    fingerprint: str  # SHA-256 of the DER certificate, lowercase hex without separators

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this certificate (hostname and IP SAN are still checked)."""
        return ssl.create_default_context(cafile=str(self.cert_path))


def create_node_certificate(folder: Path, *, ip: str, hostname: str, days: int = 365) -> NodeCertificate:
    """Write a fresh EC P-256 key and a self-signed certificate for ``ip``/``hostname`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    # Validity follows the real clock: TLS peers check it, whatever clock the node's state runs on.
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)), x509.DNSName(hostname)]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / CERT_FILE
    key_path = folder / KEY_FILE
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    return NodeCertificate(cert_path, key_path, fingerprint_der(cert.public_bytes(serialization.Encoding.DER)))


def write_certificate(folder: Path, cert_pem: str, key_pem: str) -> NodeCertificate:
    """A certificate someone else made (the operator's), written where a server loads it from (key owner-only)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CERT_FILE).write_text(cert_pem, encoding="ascii")
    fd = os.open(folder / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key_pem)
    return NodeCertificate(folder / CERT_FILE, folder / KEY_FILE, fingerprint_pem_file(folder / CERT_FILE))


def load_node_certificate(folder: Path) -> NodeCertificate | None:
    """The certificate :func:`create_node_certificate` wrote into ``folder`` before (a kept lab started again), or
    None when there is none."""
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    if not (cert_path.is_file() and key_path.is_file()):
        return None
    return NodeCertificate(cert_path, key_path, fingerprint_pem_file(cert_path))


def load_or_create_node_certificate(folder: Path, *, ip: str, hostname: str) -> NodeCertificate:
    return load_node_certificate(folder) or create_node_certificate(folder, ip=ip, hostname=hostname)


def fingerprint_der(der: bytes) -> str:
    """SHA-256 of a DER certificate, as a client pinning ``getpeercert(binary_form=True)`` computes it."""
    return hashlib.sha256(der).hexdigest()


def fingerprint_pem_file(path: Path) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return fingerprint_der(cert.public_bytes(serialization.Encoding.DER))


def colon_fingerprint(fingerprint: str) -> str:
    """``ab12…`` → ``AB:12:…``, the form browsers and ``openssl x509 -fingerprint`` show."""
    hexdigits = fingerprint.replace(":", "").upper()
    return ":".join(hexdigits[i : i + 2] for i in range(0, len(hexdigits), 2))
