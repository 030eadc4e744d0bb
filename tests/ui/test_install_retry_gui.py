"""The Install page: the selected node's live log (appended, never repeated) and retrying one failed node."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.progress import Progress, Reporter, TaskStatus
from wizard.core.runner import ExitCode, JobStarted
from wizard.ui.bridge import RunController
from wizard.ui.pages.install import InstallPage
from wizard.ui.shell import MainWindow

pytestmark = pytest.mark.ui

MakeWindow = Callable[..., MainWindow]


# -- the live log, drawn from progress snapshots ---------------------------------------------------------------------
class _Edits:
    """Every change to the log widget's document: (position, chars removed, chars added)."""

    def __init__(self, page: InstallPage) -> None:
        self.changes: list[tuple[int, int, int]] = []
        page.log.document().contentsChange.connect(self._changed)

    def _changed(self, position: int, removed: int, added: int) -> None:
        self.changes.append((position, removed, added))


def _node_lines(page: InstallPage) -> list[str]:
    return [line.strip() for line in page.log.toPlainText().splitlines() if line.startswith("    ")]


def test_the_selected_nodes_log_lines_are_appended_without_duplicates(qtbot: QtBot, tmp_path: Path) -> None:
    controller = RunController()
    page = InstallPage(controller)
    qtbot.addWidget(page)
    page.set_project(tmp_path / "project.yaml", ["node-1", "node-2"])
    progress = Progress()
    for node in ("node-1", "node-2"):
        progress.add_task(f"install/{node}", node, "install", node)
        progress.set_status(f"install/{node}", TaskStatus.RUNNING, "Installing")
    page.table.selectRow(1)
    assert page.selected_node() == "node-2"

    progress.log("install/node-2", ["kairos-agent: Partitioning device /dev/sda", "password=hunter2secret"])
    progress.log("install/node-1", ["node-1 only"])
    page.draw(progress.snapshot())
    assert page.log_title.text() == "Log of node-2"
    assert _node_lines(page) == ["kairos-agent: Partitioning device /dev/sda", "password=«redacted»"]

    # The next ticks add only what is new: the widget's text is extended at its end, never rewritten.
    edits = _Edits(page)
    before = len(page.log.toPlainText())
    progress.log("install/node-2", ["kairos-agent: Copying image to COS_STATE (10%)"])
    page.draw(progress.snapshot())
    page.draw(progress.snapshot())  # a tick with nothing new adds nothing
    progress.log("install/node-2", ["kairos-agent: Copying image to COS_STATE (10%)"])  # a line written twice
    page.draw(progress.snapshot())
    assert _node_lines(page) == [
        "kairos-agent: Partitioning device /dev/sda",
        "password=«redacted»",
        "kairos-agent: Copying image to COS_STATE (10%)",
        "kairos-agent: Copying image to COS_STATE (10%)",
    ]
    assert edits.changes and all(removed == 0 and pos >= before for pos, removed, _ in edits.changes), edits.changes
    assert "node-1 only" not in page.log.toPlainText()

    # Another node selected: its own log, whole.
    page.table.selectRow(0)
    assert page.log_title.text() == "Log of node-1" and _node_lines(page) == ["node-1 only"]
    page.table.selectRow(1)
    assert len(_node_lines(page)) == 4


def test_a_log_longer_than_progress_keeps_is_followed_to_its_newest_lines(qtbot: QtBot, tmp_path: Path) -> None:
    """Progress keeps the newest lines only; lines published between two ticks beyond that are lost, not
    repeated."""
    controller = RunController()
    page = InstallPage(controller)
    qtbot.addWidget(page)
    page.set_project(tmp_path / "project.yaml", ["node-1"])
    progress = Progress()
    progress.add_task("install/node-1", "node-1", "install", "node-1")
    progress.log("install/node-1", [f"a{i}" for i in range(5)], keep=10)
    page.draw(progress.snapshot())
    progress.log("install/node-1", [f"b{i}" for i in range(25)], keep=10)
    page.draw(progress.snapshot())
    assert _node_lines(page) == [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(15, 25)]


# -- retrying one node in a run --------------------------------------------------------------------------------------
class _FlakyInstall(Job):
    """Publishes a few log lines, then fails on its first attempt when its node is one of ``failing``."""

    def __init__(self, node: str, attempts: dict[str, int], lock: threading.Lock, failing: set[str]) -> None:
        self.id = f"install/{node}"
        self.name = "Install"
        self.node = node
        self.attempts = attempts
        self.lock = lock
        self.failing = failing

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        with self.lock:
            self.attempts[self.node] = attempt = self.attempts.get(self.node, 0) + 1
        for i in range(1, 6):
            cancel.sleep(0.02)
            report.update(i / 5, f"Installing: stage {i} of 5")
            report.log([f"{self.node} installer line {i} (attempt {attempt})"])
        if attempt == 1 and self.node in self.failing:
            raise WizardError("Install failed", f"{self.node}: the installer stopped", remediation="retry")
        return {"attempt": attempt}


class _InstallStep(Step):
    id = "install"
    title = "Install the nodes"
    parallel = 4

    def __init__(self, attempts: dict[str, int], failing: set[str]) -> None:
        self.attempts, self.failing, self.lock = attempts, failing, threading.Lock()

    def jobs(self, ctx: StepContext) -> list[Job]:
        return [_FlakyInstall(n.name, self.attempts, self.lock, self.failing) for n in ctx.project.nodes]


class _AfterStep(Step):
    """Runs once every node is installed: a held node must keep it from running."""

    id = "link"
    title = "Link the nodes"

    def __init__(self, ran: list[str]) -> None:
        self.ran = ran

    def jobs(self, ctx: StepContext) -> list[Job]:
        ran = self.ran

        class _Link(Job):
            id = "link/all"
            name = "Link"

            def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
                ran.append("link")
                return {}

        return [_Link()]


def _finished(qtbot: QtBot, window: MainWindow) -> ExitCode:
    qtbot.waitUntil(lambda: window.run.last_result is not None and not window.controller.running, timeout=60_000)
    result = window.run.last_result
    assert result is not None
    return result.exit_code


def test_retry_selected_runs_only_that_nodes_job(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path, tmp_path: Path
) -> None:
    attempts: dict[str, int] = {}
    linked: list[str] = []
    window = make_window(steps=lambda: [_InstallStep(attempts, {"node-2", "node-3"}), _AfterStep(linked)])
    window.open_project(project_file)
    page = window.install
    started: list[str] = []
    window.controller.event_received.connect(lambda ev: started.append(ev.job) if isinstance(ev, JobStarted) else None)

    window.go_to(MainWindow.RUN)
    qtbot.mouseClick(window.run.start_button, Qt.MouseButton.LeftButton)
    window.go_to(MainWindow.INSTALL)
    assert _finished(qtbot, window) is ExitCode.INSTALL_FAILED
    assert page.failed_nodes == {"node-2", "node-3"} and linked == []
    assert page.announcer.text() == "node-2, node-3: failed — select a node for its log, then retry it"
    assert page.retry_all_button.isEnabled()
    page.table.selectRow(0)  # node-1 installed: nothing to retry there
    assert not page.retry_button.isEnabled()
    page.table.selectRow(1)
    assert page.retry_button.isEnabled() and page.retry_button.accessibleName() == "Retry node-2"
    assert "node-2 installer line 5 (attempt 1)" in page.log.toPlainText()

    started.clear()
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)
    assert window.controller.only_nodes == frozenset({"node-2"})
    assert _finished(qtbot, window) is ExitCode.INCOMPLETE
    assert started == ["install/node-2"], "only the selected node's job ran"
    assert attempts == {"node-1": 1, "node-2": 2, "node-3": 1} and linked == []
    # node-3 is shown as waiting for its retry, not as failed by this run.
    assert page.failed_nodes == {"node-3"}
    assert page.table.item(1, 6).text() == "✓ Done" and page.table.item(2, 6).text() == "◌ Needs a retry"
    assert page.announcer.text() == "node-2 retried; node-3 still needs a retry"
    assert window.run.error_panel.isHidden()
    assert "node-2 retried; node-3 still needs a retry" in window.run.outcome.text()
    # The retry's log lines follow the first attempt's in the node's log, each once.
    lines = _node_lines(page)
    attempt = [line for line in lines if line.startswith("node-2 installer line")]
    assert attempt == [f"node-2 installer line {i} (attempt {a})" for a in (1, 2) for i in range(1, 6)]

    # "Retry all failed" keeps the old behaviour: every node that needs it runs, the run goes on to the end.
    started.clear()
    assert page.retry_all_button.isEnabled()
    qtbot.mouseClick(page.retry_all_button, Qt.MouseButton.LeftButton)
    assert window.controller.only_nodes is None
    assert _finished(qtbot, window) is ExitCode.DONE
    assert sorted(started) == ["install/node-3", "link/all"]
    assert attempts == {"node-1": 1, "node-2": 2, "node-3": 2} and linked == ["link"]
    assert page.failed_nodes == set() and page.is_done()
    assert not page.retry_button.isEnabled() and not page.retry_all_button.isEnabled()
