"""Builders for project documents and the files they name."""

from __future__ import annotations

import hashlib
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
                "ip": f"10.0.0.1{i}",
                "prefix": 24,
                "gateway": "10.0.0.1",
            }
            for i in (1, 2, 3)
        ],
        "network": {"vip": "10.0.0.50", "ntp": ["pool.ntp.org"], "dns": ["10.0.0.2"]},
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
