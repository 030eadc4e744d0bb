"""Project documents, files and a paced test step for the desktop wizard's tests and screenshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.keyrings import MemoryKeyring as InMemoryKeyring
from tests.support.projects import base_doc, random_file, write_project
from wizard.core.cancel import CancelToken
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.progress import Reporter

__all__ = [
    "ISO_SIZE",
    "ZERO_SHA",
    "InMemoryKeyring",
    "PacedJob",
    "PacedStep",
    "invalid_doc",
    "random_file",
    "valid_doc",
    "write_project",
]

ISO_SIZE = 20 * 1024 * 1024
ZERO_SHA = "0" * 64


def valid_doc(**overrides: Any) -> dict[str, Any]:
    # The sample ISO is unsigned, so the wizard cannot derive its unattended copy: its nodes boot at the console.
    doc = base_doc(files={"iso": "appliance.iso"}, appliance={"boot": "console"})
    doc.update(overrides)
    return doc


def invalid_doc() -> dict[str, Any]:
    """A project with several independent mistakes, each under a different field path."""
    doc = valid_doc()
    doc["nodes"][1]["ip"] = "127.0.10.300"
    doc["nodes"][2]["prefix"] = 40
    doc["network"] = {"ntp": ["pool.ntp.org"]}  # no vip
    doc["files"] = {"iso": "missing.iso"}
    return doc


class PacedJob(Job):
    """A test double for a transfer: reports ``total`` bytes over ``seconds``, checking the cancel token."""

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
    title = "Paced test transfer"
    parallel = 4

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def jobs(self, ctx: StepContext) -> list[Job]:
        return [PacedJob(f"paced/{n.name}", "Test transfer", n.name, self.seconds) for n in ctx.project.nodes]
