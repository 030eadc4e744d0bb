"""The Run page's "Give back the machines" after a failed or cancelled run: the session's abort (release what it
allocated in MAAS), on a worker, its outcome shown — against the lab's MAAS fake over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.support.projects import base_doc, signed_iso, write_project
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.progress import Reporter
from wizard.core.project import SecretRef
from wizard.core.runner import ExitCode
from wizard.core.secrets import SecretStore
from wizard.install.steps import pipeline
from wizard.install.steps.preflight import PreflightSettings
from wizard.lab import ManualClock
from wizard.lab.maas import MaasState, MaasUser, Status
from wizard.lab.maasserver import MaasServer
from wizard.ui.shell import MainWindow

pytestmark = [pytest.mark.ui, pytest.mark.maas]

KEY_REF = "maas-api-key"
SETTINGS = PreflightSettings(ports=(9,), connect_timeout=0.2, icmp=False, arp=False, min_free=1024)


class BrokenJob(Job):
    id = "broken/all"
    name = "Something after the machines"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        raise WizardError("Boot failed", "the test's boot never works", remediation="none: it is a test")


class BrokenStep(Step):
    """Fails once the machines are allocated, as a boot that goes wrong would."""

    id = "broken"
    title = "Broken boot"

    def jobs(self, ctx: StepContext) -> list[Job]:
        return [BrokenJob()]


@pytest.fixture
def site() -> Iterator[tuple[MaasState, MaasServer, MaasUser]]:
    state = MaasState(clock=ManualClock())
    admin = state.add_user("admin", admin=True)
    for i in (1, 2, 3):
        state.add_machine(f"pma-{i}", system_id=f"abc{i}de", power_type="ipmi", cpu_count=16, memory=32768)
    # pma-3 was the operator's before the wizard ran: giving back must leave it allocated.
    state.machine("abc3de").status = Status.ALLOCATED
    state.machine("abc3de").owner = "admin"
    with MaasServer(state) as server:
        yield state, server, admin


def _maas_project(tmp_path: Path, url: str) -> Path:
    _, public = signed_iso(tmp_path)
    doc = base_doc(
        provider={"type": "maas", "maas": {"url": url, "api_key": {"secret": KEY_REF}}},
        files={"iso": "appliance.iso", "public_key": public.name},
    )
    for i, node in enumerate(doc["nodes"], start=1):
        node["maas"] = f"pma-{i}"
    return write_project(tmp_path, doc)


def _owners(state: MaasState) -> dict[str, tuple[str, str | None]]:
    return {m.hostname: (Status(m.status).name, m.owner) for m in state.machines}


def _failed_run(qtbot: QtBot, window: MainWindow, project: Path) -> None:
    assert window.open_project(project, goto=MainWindow.RUN), window.project.problems
    assert not window.run.abort_button.isVisible()  # nothing ran yet: nothing to give back
    qtbot.mouseClick(window.run.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.run.last_result is not None and not window.controller.running, timeout=60_000)
    result = window.run.last_result
    assert result is not None and result.exit_code is ExitCode.INSTALL_FAILED, result


def test_give_back_releases_what_the_failed_run_allocated(
    qtbot: QtBot,
    tmp_path: Path,
    site: tuple[MaasState, MaasServer, MaasUser],
    make_window: Callable[..., MainWindow],
) -> None:
    state, server, admin = site
    SecretStore().set(SecretRef(KEY_REF), admin.api_key)
    window = make_window(lambda: [*pipeline(SETTINGS, until="machines"), BrokenStep()])
    _failed_run(qtbot, window, _maas_project(tmp_path, server.url))
    assert _owners(state)["pma-1"] == ("ALLOCATED", "admin")  # the run took them

    page = window.run
    assert page.abort_button.isVisible() and page.abort_button.isEnabled()
    assert page.abort_button.accessibleName()
    asked: list[bool] = []
    page.confirm_abort = lambda: asked.append(True) or True  # type: ignore[method-assign]
    qtbot.mouseClick(page.abort_button, Qt.MouseButton.LeftButton)
    assert asked and window.controller.aborting  # on a worker: the click returned at once
    assert not page.start_button.isEnabled()  # nothing else starts while it works
    qtbot.waitUntil(lambda: page.last_abort is not None, timeout=60_000)

    ev = page.last_abort
    assert ev is not None and ev.ok and ev.result is not None
    assert sorted(ev.result.released) == ["abc1de", "abc2de"]
    assert _owners(state) == {
        "pma-1": ("READY", None),
        "pma-2": ("READY", None),
        "pma-3": ("ALLOCATED", "admin"),  # allocated before the wizard ran
    }
    text = page.abort_outcome.text()
    assert page.abort_outcome.isVisible() and "released MAAS machine abc1de" in text and "abc2de" in text
    assert not window.controller.running and page.start_button.isEnabled()
    assert not page.abort_button.isVisible()  # given back: nothing left to give back until the next run


def test_give_back_shows_why_nothing_could_be_given_back(
    qtbot: QtBot,
    tmp_path: Path,
    site: tuple[MaasState, MaasServer, MaasUser],
    make_window: Callable[..., MainWindow],
) -> None:
    state, server, admin = site
    store = SecretStore()
    store.set(SecretRef(KEY_REF), admin.api_key)
    window = make_window(lambda: [*pipeline(SETTINGS, until="machines"), BrokenStep()])
    _failed_run(qtbot, window, _maas_project(tmp_path, server.url))
    store.delete(SecretRef(KEY_REF))  # the API key is gone from the keyring since
    page = window.run
    page.confirm_abort = lambda: True  # type: ignore[method-assign]
    page.abort()
    qtbot.waitUntil(lambda: page.last_abort is not None, timeout=60_000)
    ev = page.last_abort
    assert ev is not None and not ev.ok and ev.error is not None
    assert page.abort_outcome.isVisible() and "✗" in page.abort_outcome.text()
    assert _owners(state)["pma-1"] == ("ALLOCATED", "admin")  # nothing was released
    assert page.abort_button.isVisible() and page.abort_button.isEnabled()  # fix the cause, then try again


def test_declining_the_question_gives_nothing_back(
    qtbot: QtBot,
    tmp_path: Path,
    site: tuple[MaasState, MaasServer, MaasUser],
    make_window: Callable[..., MainWindow],
) -> None:
    state, server, admin = site
    SecretStore().set(SecretRef(KEY_REF), admin.api_key)
    window = make_window(lambda: [*pipeline(SETTINGS, until="machines"), BrokenStep()])
    _failed_run(qtbot, window, _maas_project(tmp_path, server.url))
    window.run.confirm_abort = lambda: False  # type: ignore[method-assign]
    window.run.abort()
    assert not window.controller.aborting and window.run.last_abort is None
    assert _owners(state)["pma-1"] == ("ALLOCATED", "admin")


def test_a_manual_install_has_nothing_to_give_back(
    qtbot: QtBot, tmp_path: Path, make_window: Callable[..., MainWindow]
) -> None:
    _, public = signed_iso(tmp_path)
    project = write_project(tmp_path, base_doc(files={"iso": "appliance.iso", "public_key": public.name}))
    window = make_window(lambda: [*pipeline(SETTINGS, until="preflight"), BrokenStep()])
    _failed_run(qtbot, window, project)
    assert not window.run.can_abort() and not window.run.abort_button.isVisible()
