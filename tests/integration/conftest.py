"""Fixtures for integration tests against the rehearsal lab."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.localui_client import SpecCheckedClient
from wizard.lab import Lab, ManualClock
from wizard.lab.versions import ApplianceProfile

CONTENT_SYNC_DELAY = 5.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    """A started 3-node lab on loopback, on a clock only the test moves; it plays the newest release unless a test
    parametrizes it indirectly with an :class:`ApplianceProfile`."""
    appliance: ApplianceProfile | None = getattr(request, "param", None)
    with Lab(
        3, tmp_path / "lab", clock, content_sync_delay=CONTENT_SYNC_DELAY, socket_timeout=10.0, appliance=appliance
    ) as started:
        yield started


@pytest.fixture
def client(lab: Lab) -> Iterator[Callable[[int], SpecCheckedClient]]:
    """``client(i)`` opens a spec-checked httpx client to node i; all are closed after the test."""
    opened: list[SpecCheckedClient] = []

    def make(index: int) -> SpecCheckedClient:
        c = SpecCheckedClient(lab.nodes[index])
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()
