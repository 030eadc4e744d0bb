"""Builders for project documents and the files they name."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed


def base_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "name": "palette-mgmt",
        "provider": {"type": "manual"},
        "nodes": [
            {
                "name": f"node-{i}",
                "hostname": f"edge-node-{i}",
                "ip": f"127.0.10.1{i}",
                "prefix": 24,
                "gateway": "127.0.10.1",
            }
            for i in (1, 2, 3)
        ],
        # Loopback only, no DNS or NTP servers: a run's preflight probes must never leave the machine.
        "network": {"vip": "127.0.10.50"},
        "files": {},
    }
    doc.update(overrides)
    return doc


def write_project(folder: Path, doc: dict[str, Any], name: str = "project.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def make_key(folder: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = folder / "spectro_public_key.pem"
    path.write_bytes(pem)
    return key, path


def sign_file(key: rsa.RSAPrivateKey, path: Path, signature: Path) -> None:
    """The same signature `openssl dgst -sha256 -sign key -out signature path` makes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(4 * 1024 * 1024):
            h.update(chunk)
    signature.write_bytes(key.sign(h.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256())))


def random_file(path: Path, size: int) -> Path:
    import os

    with path.open("wb") as fh:
        remaining = size
        while remaining:
            n = min(remaining, 1024 * 1024)
            fh.write(os.urandom(n))
            remaining -= n
    return path


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
    import os

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
                remaining = size - current
                while remaining:
                    n = min(remaining, 1024 * 1024)
                    fh.write(os.urandom(n))
                    remaining -= n
    return path
