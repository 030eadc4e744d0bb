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
