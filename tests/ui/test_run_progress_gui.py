"""The Run page's overall progress and what it keeps in view, through whole rehearsals in the window: one bar for the
whole install that never goes back — not within a run, not from a failed run to a retry of one node, not to the run
that resumes after it — and reaches 100 % only when the install's last step has ended; the running job's row on
screen whenever one runs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from wizard.core.runner import ExitCode, RunFinished
from wizard.rehearsal import Rehearsal
from wizard.ui.rehearsal import rehearsal_window
from wizard.ui.shell import MainWindow

pytestmark = [pytest.mark.ui, pytest.mark.lab]


class Watch:
    """Samples the Run page on every tick of its own timer and of a faster one: the bar's value, and whether the
    running job's row was on screen while a job ran."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.values: list[int] = []
        self.full_before_end = False
        self.followed = 0
        self.lost: list[str] = []
        self.ended = False
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self.sample)
        window.run.poll_timer.timeout.connect(self.sample)
        window.controller.finished.connect(self._finished)
        self.timer.start()

    def _finished(self, ev: RunFinished) -> None:
        self.sample()

    def sample(self) -> None:
        run = self.window.run
        bar = run.overall
        self.values.append(bar.value())
        if bar.value() == bar.maximum() and not self.ended:
            # Full is right once the install's last step has ended: the engine says so in the snapshot the bar was
            # drawn from (the run's RunFinished reaches the page a moment later).
            result = run.last_result
            snap = run._latest
            ended = (snap is not None and snap.finished) or (result is not None and result.exit_code is ExitCode.DONE)
            self.full_before_end = self.full_before_end or not ended
        if run.isVisible() and run._running:  # the view follows the running jobs it has drawn
            self.followed += 1
            if not run.running_rows_visible():
                self.lost.append(run._running[0])

    def stop(self) -> None:
        self.timer.stop()


def _window(qtbot: QtBot, rehearsal: Rehearsal) -> MainWindow:
    window = rehearsal_window(rehearsal)
    window.confirm_quit_while_running = lambda: True  # type: ignore[method-assign]
    qtbot.addWidget(window)
    window.show()
    return window


def _finished(qtbot: QtBot, window: MainWindow, timeout: int = 120_000) -> RunFinished:
    qtbot.waitUntil(lambda: window.run.last_result is not None and not window.controller.running, timeout=timeout)
    result = window.run.last_result
    assert result is not None
    return result


@pytest.mark.timeout(300)
def test_overall_progress_never_goes_back_over_a_failure_a_node_retry_and_a_resume(
    qtbot: QtBot, tmp_path: Path
) -> None:
    rehearsal = Rehearsal(tmp_path / "rehearsal", nodes=3, speed=300)
    rehearsal.prepare()
    try:
        window = _window(qtbot, rehearsal)
        assert rehearsal.lab is not None
        broken = rehearsal.lab.nodes[1].machine
        broken.fail_install = True  # edge-node-2's installer stops: the run fails there

        # Before Start: the checks alone are a small part of the install, not all of it.
        assert window.go_to(MainWindow.PREFLIGHT)
        window.preflight.run_checks()
        checks = _finished(qtbot, window)
        assert checks.exit_code is ExitCode.DONE and 0 < checks.fraction < 0.1
        assert window.run.overall.value() < window.run.overall.maximum() // 10

        assert window.go_to(MainWindow.RUN)
        window.run.start()  # the review comes first
        assert window.current == MainWindow.REVIEW and not window.controller.running
        window.review.confirm()
        assert window.go_to(MainWindow.RUN)
        watch = Watch(window)
        start = window.run.overall.value()
        window.run.start()
        failed = _finished(qtbot, window)
        assert failed.exit_code is ExitCode.INSTALL_FAILED, failed
        assert watch.values[0] >= start

        # The operator fixes the node and boots it into the installer again, then retries that node alone.
        broken.fail_install = False
        broken.reboot()
        install = window.install
        assert window.go_to(MainWindow.INSTALL)
        qtbot.waitUntil(lambda: "edge-node-2" in install.failed_nodes)
        install.table.selectRow(install._rows["edge-node-2"])
        assert install.retry_button.isEnabled()
        install.retry()
        retried = _finished(qtbot, window)
        assert retried.exit_code is ExitCode.INCOMPLETE and retried.retried == ("edge-node-2",), retried
        assert not watch.full_before_end

        # The rest resumes from where the retry stopped, to the end.
        assert window.go_to(MainWindow.RUN)
        window.run.start()
        done = _finished(qtbot, window)
        assert done.exit_code is ExitCode.DONE and done.fraction == 1.0, done
        watch.ended = True
        watch.sample()
        watch.stop()

        values = watch.values
        backwards = [(i, a, b) for i, (a, b) in enumerate(itertools.pairwise(values)) if b < a]
        assert not backwards, f"the overall bar went back: {backwards[:5]}"
        assert values[-1] == window.run.overall.maximum() and not watch.full_before_end
        assert len(values) > 100  # sampled all along
        # Whenever a job ran, its row was on screen.
        assert watch.followed > 20 and not watch.lost, watch.lost[:5]
        window.close()
    finally:
        rehearsal.close()
