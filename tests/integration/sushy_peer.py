"""sushy-tools' ``sushy-emulator --fake`` on loopback: the Redfish BMC peer for the Redfish tests.

The emulator itself is :mod:`wizard.lab.sushy` (the rehearsal boots its nodes through it too); the tests add only
what must stay fixed between runs: known System UUIDs and a known password. A missing emulator fails the test
loudly (never a skip), with the install hint from the lab module.
"""

from __future__ import annotations

from pathlib import Path

from wizard.lab.ports import free_port
from wizard.lab.sushy import SushyEmulator as _LabEmulator

__all__ = ["PASSWORD", "SYSTEM_IDS", "SushyEmulator", "free_port"]

PASSWORD = "S3cret!-bmc"
SYSTEM_IDS = tuple(f"27946b59-9e44-4fa7-8e91-f3527a1ef09{i}" for i in range(3))


class SushyEmulator(_LabEmulator):
    """The lab's emulator with the tests' fixed identities (node-0..2, powered off)."""

    def __init__(
        self,
        *,
        tls: bool = True,
        auth: bool = True,
        systems: int = 3,
        folder: Path | None = None,
        http_5xx: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(
            tls=tls,
            auth=auth,
            systems=systems,
            system_uuids=SYSTEM_IDS,
            password=PASSWORD,
            folder=folder,
            http_5xx=http_5xx,
            seed=seed,
        )
