"""Stand-ins for the files an operator downloads: a small appliance ISO and signed bundles.

The rehearsal and the tests build them on the fly. What the wizard reads is real: the ISO has the appliance ISO's
layout (label ``COS_LIVE``, the GRUB menu with its three entries, default 2 and a 5-second timeout, a root
``config.yaml``, El Torito BIOS and EFI entries with the EFI FAT image chaining to the menu), and signatures are RSA
over the sha256 as ``openssl dgst -sha256 -sign`` makes them. Kernel, initrd and root file system are stand-ins.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

#: The appliance ISO's root ``config.yaml`` in the lab: the validated user-data a build copies there (reference §1.9
#: and §10.1), with the settings an appliance build carries (management mode, appliance type, install settings).
APPLIANCE_CONFIG: dict[str, Any] = {
    "install": {
        "reboot": False,
        "poweroff": True,
        "grub_options": {"extra_cmdline": "selinux=0"},
        "bind_mounts": ["/etc/lvm", "/var/lib/drbd", "/var/lib/linstor.d", "/var/lib/piraeus-datastore"],
    },
    "stylus": {
        "managementMode": "local",
        "applianceType": "palette",
        "skipStylusUpgrade": True,
        "includeTui": True,
        "debug": False,
    },
    "stages": {
        "kairos-install.pre.after": [
            {"name": "Remove a stale DRBD volume group", "commands": ["vgremove -f drbd-vg || true"]}
        ]
    },
}
#: AuroraBoot's EFI configuration (kairos-io/AuroraBoot@fa85123 pkg/constants: GrubEfiCfg): find the ISO by its
#: kernel and load the ISO's own menu, so BIOS and UEFI machines see the same /boot/grub2/grub.cfg.
EFI_CHAIN_CONFIG = (
    "search --no-floppy --file --set=root /boot/kernel\nset prefix=($root)/boot/grub2\nconfigfile $prefix/grub.cfg\n"
)
LIVE_LABEL = "COS_LIVE"
INTERACTIVE_DEFAULT = 2  # appliance builds set FORCE_INTERACTIVE_INSTALL=true (reference §10.1)


def appliance_menu(default: int | str = INTERACTIVE_DEFAULT, timeout: int = 5) -> str:
    """The appliance ISO's GRUB menu (CanvOS' ``grub.cfg``) with its default entry and timeout."""
    from importlib import resources

    text = resources.files("wizard.lab").joinpath("data/grub.cfg").read_text(encoding="utf-8")
    return text.replace("{{DEFAULT_ENTRY}}", str(default)).replace("set timeout=5", f"set timeout={timeout}")


def _iso_name(path: str, directory: bool = False) -> str:
    """An ISO 9660 (level 3) name for a POSIX path; Rock Ridge and Joliet keep the real name."""
    parts = []
    for i, part in enumerate(path.strip("/").split("/")):
        last = i == len(path.strip("/").split("/")) - 1
        name = "".join(c if c.isalnum() or c in "._" else "_" for c in part.upper())
        if last and not directory:
            base, dot, ext = name.partition(".")
            name = f"{base.replace('.', '_')}.{ext.replace('.', '_')};1" if dot else f"{name}.;1"
        else:
            name = name.replace(".", "_")
        parts.append(name)
    return "/" + "/".join(parts)


def appliance_iso(
    path: Path,
    size: int = 0,
    *,
    volume_id: str = LIVE_LABEL,
    efi: bool = True,
    bios: bool = True,
    sparse: bool = False,
    default: int | str = INTERACTIVE_DEFAULT,
    timeout: int = 5,
    menu: str | None = None,
    config: dict[str, Any] | None = None,
    content_parts: int = 0,
    efi_config: str | None = EFI_CHAIN_CONFIG,
) -> Path:
    """A small appliance ISO shaped like the real one: Rock Ridge and Joliet names, the GRUB menu
    ``/boot/grub2/grub.cfg`` (CanvOS' three entries, ``default``, ``timeout``; or ``menu`` as given), a root
    ``config.yaml`` (``config``, default :data:`APPLIANCE_CONFIG`; ``{}`` for none), stand-ins for the kernel,
    initrd and root file system, ``content_parts`` embedded content parts, and El Torito entries: BIOS
    (``/boot/eltorito.img``) and EFI (the FAT image ``/boot/uefi.img`` whose ``/EFI/BOOT/grub.cfg`` is
    ``efi_config`` — AuroraBoot's chain to the ISO's menu by default). Padded to ``size`` bytes with random data
    (or a sparse tail) so hashing it takes as long as a real one of that size."""
    import pycdlib
    import yaml

    from wizard.lab.fatimage import fat12_image

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, sys_ident="LINUX", vol_ident=volume_id, rock_ridge="1.09", joliet=3)
    made: set[str] = set()

    def folder(posix: str) -> None:
        parts = posix.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:i])
            if sub not in made:
                iso.add_directory(_iso_name(sub, directory=True), rr_name=parts[i - 1], joliet_path=sub)
                made.add(sub)

    def add(posix: str, data: bytes) -> None:
        parent = posix.rsplit("/", 1)[0]
        if parent:
            folder(parent)
        iso.add_fp(io.BytesIO(data), len(data), _iso_name(posix), rr_name=posix.rsplit("/", 1)[1], joliet_path=posix)

    menu_text = menu if menu is not None else appliance_menu(default, timeout)
    add("/boot/grub2/grub.cfg", menu_text.encode())
    add("/boot/kernel", b"\x7fELF kernel stand-in\n" + bytes(4096))
    add("/boot/initrd", b"initrd stand-in\n" + bytes(4096))
    add("/rootfs.squashfs", b"hsqs root file system stand-in\n" + bytes(8192))
    doc = APPLIANCE_CONFIG if config is None else config
    if doc:
        add("/config.yaml", ("#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False)).encode())
    for i in range(content_parts):
        add(f"/opt/spectrocloud/content/core-content.zst_part{i:02d}", os.urandom(4096))
    if efi_config is not None:
        # AuroraBoot writes the chain both into the image and onto the ISO (the CD grub's prefix is /boot/grub).
        add("/boot/grub/grub.cfg", efi_config.encode())
        add("/EFI/BOOT/grub.cfg", efi_config.encode())
    if bios:
        boot = b"\xeb\xfe" + bytes(2046)
        add("/boot/eltorito.img", boot)
        iso.add_eltorito(_iso_name("/boot/eltorito.img"), bootcatfile=_iso_name("/boot/boot.catalog"), boot_load_size=4)
    if efi:
        files = {"/EFI/BOOT/BOOTX64.EFI": b"MZ shim stand-in\n" + bytes(1024)}
        if efi_config is not None:
            files["/EFI/BOOT/grub.cfg"] = efi_config.encode()
            files["/boot/grub/grub.cfg"] = efi_config.encode()
        add("/boot/uefi.img", fat12_image(files))
        iso.add_eltorito(
            _iso_name("/boot/uefi.img"), bootcatfile=_iso_name("/boot/boot.catalog"), platform_id=0xEF, efi=True
        )
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
