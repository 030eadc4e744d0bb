"""Builders for project documents and the files they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# The file builders ship with the rehearsal lab; tests use the same ones.
from wizard.lab.artifacts import appliance_iso, make_key, random_file, sign_file

__all__ = ["appliance_iso", "base_doc", "make_key", "random_file", "sign_file", "signed_iso", "write_project"]


def signed_iso(folder: Path, name: str = "appliance.iso", size: int = 64 * 1024) -> tuple[Path, Path]:
    """An appliance ISO with its signature beside it (``NAME.sig.bin``) and the public key that checks it, as
    Artifact Studio ships them: what the default ``appliance.boot: unattended`` needs to derive its copy."""
    key, public = make_key(folder)
    iso = appliance_iso(folder / name, size)
    sign_file(key, iso, iso.with_name(iso.name + ".sig.bin"))
    return iso, public


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
