from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from tests.support.keyrings import MemoryKeyring
from wizard.core.redact import REDACTOR


@pytest.fixture(autouse=True)
def wizard_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own state, log and config folders."""
    home = tmp_path_factory.mktemp("wizard-home")
    monkeypatch.setenv("PALETTE_WIZARD_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def wizard_log_handlers() -> Iterator[None]:
    """A test that set up the wizard's log file (a run does) leaves no handler behind: the next tests' records
    would go to a file in a removed folder, each failing with a traceback on stderr (slow enough to make a long
    run miss its time)."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_wizard", False):
            root.removeHandler(handler)
            handler.close()


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(previous)
    REDACTOR.clear()


# -- In CI nothing may be skipped: a skipped integration area is a hole in what CI proves. ------------------------
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import os

    if os.environ.get("CI") and _skipped and exitstatus == 0:
        print(f"\nCI forbids skipped tests; {len(_skipped)} skipped: {', '.join(_skipped[:10])}")
        session.exitstatus = 1
