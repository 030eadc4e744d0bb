"""Builders for project documents and the files they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# The file builders ship with the rehearsal lab; tests use the same ones.
from wizard.lab.artifacts import appliance_iso, make_key, random_file, sign_file

__all__ = ["appliance_iso", "base_doc", "make_key", "random_file", "sign_file", "write_project"]


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
