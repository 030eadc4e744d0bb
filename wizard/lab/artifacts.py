"""Stand-ins for the files an operator downloads: a small UEFI-bootable appliance ISO and a signed bundle.

The rehearsal and the tests build them on the fly; only the structure the wizard checks is real (an ISO 9660 image
with an El Torito catalog, an RSA signature over the sha256 as ``openssl dgst -sha256 -sign`` makes it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed


def appliance_iso(
    path: Path,
    size: int = 0,
    *,
    volume_id: str = "PALETTE_EDGE_INSTALLER",
    efi: bool = True,
    bios: bool = True,
    sparse: bool = False,
) -> Path:
    """A small ISO 9660 image with an El Torito catalog (BIOS and/or EFI entries), padded to ``size`` bytes with
    random data (or a sparse tail) so hashing it takes as long as a real one of that size."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, sys_ident="LINUX", vol_ident=volume_id)
    boot = b"\xeb\xfe" + bytes(2046)
    if bios:
        iso.add_fp(io.BytesIO(boot), len(boot), "/ISOLINUX.BIN;1")
        iso.add_eltorito("/ISOLINUX.BIN;1", bootcatfile="/BOOT.CAT;1")
    if efi:
        image = bytes(4 * 2048)
        iso.add_fp(io.BytesIO(image), len(image), "/EFIBOOT.IMG;1")
        iso.add_eltorito("/EFIBOOT.IMG;1", bootcatfile="/BOOT.CAT;1", platform_id=0xEF, efi=True)
    iso.write(str(path))
    iso.close()
    current = path.stat().st_size
    if size > current:
        with path.open("r+b") as fh:
            if sparse:
                fh.truncate(size)
            else:
                fh.seek(current)
                random_bytes(fh, size - current)
    return path


def random_bytes(fh: BinaryIO, size: int) -> None:
    remaining = size
    while remaining:
        n = min(remaining, 1024 * 1024)
        fh.write(os.urandom(n))
        remaining -= n


def random_file(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        random_bytes(fh, size)
    return path


def make_key(folder: Path, name: str = "spectro_public_key.pem") -> tuple[rsa.RSAPrivateKey, Path]:
    """A fresh signing key; its public half is written to ``folder/name`` the way Artifact Studio ships it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = folder / name
    path.write_bytes(pem)
    return key, path


def sign_file(key: rsa.RSAPrivateKey, path: Path, signature: Path) -> None:
    """The same signature `openssl dgst -sha256 -sign key -out signature path` makes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(4 * 1024 * 1024):
            h.update(chunk)
    signature.write_bytes(key.sign(h.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256())))


def content_bundle(path: Path, version: str, *, edition: str = "palette", size: int = 1024 * 1024) -> Path:
    """A lab content bundle that names its release: a tar archive whose ``palette-content.json`` says ``version``
    (the lab has no zstd, so only the name is Artifact Studio's ``.tar.zst``), then ``size`` random bytes."""
    manifest = json.dumps({"kind": "palette-content", "version": version, "edition": edition}).encode()
    with tarfile.open(path, "w") as archive:
        entry = tarfile.TarInfo("palette-content.json")
        entry.size, entry.mtime = len(manifest), int(time.time())
        archive.addfile(entry, io.BytesIO(manifest))
        payload = io.BytesIO(os.urandom(size))
        entry = tarfile.TarInfo("content/payload.bin")
        entry.size, entry.mtime = size, int(time.time())
        archive.addfile(entry, payload)
    return path


def operator_certificate(folder: Path, domain: str, *, ip: str = "", days: int = 365) -> tuple[Path, Path, Path]:
    """What an operator brings for the system console: a CA (``ca.crt``) and a certificate it issued for ``domain``
    (and ``ip``) with its key (``console.crt``, ``console.key``, owner-only), as PEM files in ``folder``."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rehearsal operator CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(domain)]
    if ip:
        names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.crt", folder / "console.crt", folder / "console.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path, ca_path
