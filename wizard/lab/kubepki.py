"""The management cluster's PKI as kubeadm makes it: a cluster CA, the API server's certificate for the VIP and the
``kubernetes-admin`` client certificate that the admin kubeconfig carries.

The rehearsal creates one per VIP where it serves a Kubernetes API (:mod:`wizard.lab.kubeapi`); the kubeconfig the
Local UI hands out then carries this CA and client certificate, so the wizard's validation reads the cluster's pods
over verified TLS with client-certificate authentication, as ``kubectl`` with that kubeconfig does. Without one
(a lab with no API served) the kubeconfig keeps placeholder data.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_LOCK = threading.Lock()
_BY_VIP: dict[str, ClusterPKI] = {}


@dataclass(frozen=True)
class ClusterPKI:
    vip: str
    ca_pem: bytes
    server_cert: Path
    server_key: Path
    client_cert_pem: bytes
    client_key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        """TLS for the API server: its VIP certificate; a client certificate is checked when one is presented
        (anonymous callers still reach ``/livez``, as on a kube-apiserver)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.load_verify_locations(cadata=self.ca_pem.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx


def create(folder: Path, vip: str) -> ClusterPKI:
    """A fresh CA, server and admin certificate for ``vip`` in ``folder``; registered for :func:`lookup`."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )  # digital signature, cert and CRL signing
        .sign(ca_key, hashes.SHA256())
    )

    def issue(
        common: str, org: str | None, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    server_san: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(vip)), x509.DNSName("kubernetes")]
    server_pem, server_key_pem = issue("kube-apiserver", None, ExtendedKeyUsageOID.SERVER_AUTH, server_san)
    client_pem, client_key_pem = issue("kubernetes-admin", "system:masters", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    cert_path, key_path = folder / "apiserver.crt", folder / "apiserver.key"
    cert_path.write_bytes(server_pem)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(server_key_pem)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    # Kept beside the server's files, so a kept lab started again serves the PKI its kubeconfig names.
    (folder / "ca.crt").write_bytes(ca_pem)
    (folder / "admin.crt").write_bytes(client_pem)
    fd = os.open(folder / "admin.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(client_key_pem)
    return _register(ClusterPKI(vip, ca_pem, cert_path, key_path, client_pem, client_key_pem))


def _register(pki: ClusterPKI) -> ClusterPKI:
    with _LOCK:
        _BY_VIP[pki.vip] = pki
    return pki


def load_or_create(folder: Path, vip: str) -> ClusterPKI:
    """The PKI :func:`create` wrote into ``folder`` for ``vip`` before (a kept lab started again), else a new one."""
    names = ("ca.crt", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key")
    if all((folder / n).is_file() for n in names):
        ca, _, _, client, client_key = ((folder / n).read_bytes() for n in names)
        return _register(ClusterPKI(vip, ca, folder / "apiserver.crt", folder / "apiserver.key", client, client_key))
    return create(folder, vip)


def lookup(vip: str) -> ClusterPKI | None:
    with _LOCK:
        return _BY_VIP.get(vip)


def forget(pki: ClusterPKI) -> None:
    with _LOCK:
        if _BY_VIP.get(pki.vip) is pki:
            del _BY_VIP[pki.vip]
