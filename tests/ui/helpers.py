"""Project documents, files and a paced test step for the desktop wizard's tests and screenshots."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keyring.backend
import keyring.errors
import yaml

from wizard.core.cancel import CancelToken
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.progress import Reporter

ISO_SIZE = 20 * 1024 * 1024
ZERO_SHA = "0" * 64


class InMemoryKeyring(keyring.backend.KeyringBackend):
    priority = -1  # never chosen automatically; installed with set_keyring

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.store[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


def valid_doc(**overrides: Any) -> dict[str, Any]:
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
        "network": {"vip": "10.0.0.50", "ntp": ["pool.ntp.org"]},
        "files": {"iso": "appliance.iso"},
    }
    doc.update(overrides)
    return doc


def invalid_doc() -> dict[str, Any]:
    """A project with several independent mistakes, each under a different field path."""
    doc = valid_doc()
    doc["nodes"][1]["ip"] = "10.0.0.300"
    doc["nodes"][2]["prefix"] = 40
    doc["network"] = {"ntp": ["pool.ntp.org"]}  # no vip
    doc["files"] = {"iso": "missing.iso"}
    return doc


def write_project(folder: Path, doc: Mapping[str, Any], name: str = "project.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(dict(doc), sort_keys=False))
    return path


def random_file(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        remaining = size
        while remaining:
            n = min(remaining, 1024 * 1024)
            fh.write(os.urandom(n))
            remaining -= n
    return path


class PacedJob(Job):
    """Pretends to move ``total`` bytes in ``seconds``, checking the cancel token between chunks."""

    def __init__(self, job_id: str, name: str, node: str, seconds: float, total: int = 512 * 1024 * 1024) -> None:
        self.id = job_id
        self.name = name
        self.node = node
        self.seconds = seconds
        self.total = total

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        chunks = max(1, round(self.seconds / 0.05))
        for i in range(1, chunks + 1):
            cancel.sleep(self.seconds / chunks)
            report.transfer(self.total * i // chunks, self.total, f"sending chunk {i} of {chunks}")
        return {"chunks": chunks}


class PacedStep(Step):
    """One paced job per node: long enough to watch the GUI while the engine works."""

    id = "paced"
    title = "Upload to nodes"
    parallel = 4

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def jobs(self, ctx: StepContext) -> list[Job]:
        return [PacedJob(f"paced/{n.name}", "Upload ISO", n.name, self.seconds) for n in ctx.project.nodes]
