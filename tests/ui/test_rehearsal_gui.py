"""``palette-wizard --rehearse``: the desktop wizard on the rehearsal lab, run to the end through the window."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from tests.core.helpers import cli_env, run_cli
from wizard.core.progress import TaskStatus
from wizard.core.runner import ExitCode, RunStarted, StepFinished, StepStarted
from wizard.install.steps import STEP_IDS
from wizard.rehearsal import BANNER, Rehearsal
from wizard.ui.rehearsal import rehearsal_window
from wizard.ui.shell import REHEARSAL_TITLE_SUFFIX, WINDOW_TITLE, MainWindow

pytestmark = [pytest.mark.ui, pytest.mark.lab]

STEPS = STEP_IDS  # the rehearsal runs every step


def _window(qtbot: QtBot, rehearsal: Rehearsal) -> MainWindow:
    window = rehearsal_window(rehearsal)
    window.confirm_quit_while_running = lambda: True  # type: ignore[method-assign]
    window.review.confirm()  # what the rehearsal touches: simulated nodes only
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.mark.timeout(150)
def test_gui_rehearsal_installs_end_to_end(qtbot: QtBot, tmp_path: Path, wizard_home: Path) -> None:
    folder = tmp_path / "rehearsal"
    rehearsal = Rehearsal(folder, nodes=3, speed=300)
    rehearsal.prepare()
    try:
        window = _window(qtbot, rehearsal)
        assert window.windowTitle() == WINDOW_TITLE + REHEARSAL_TITLE_SUFFIX
        assert window.current == MainWindow.PROJECT and window.project.path == rehearsal.project_file
        for page in (MainWindow.WELCOME, MainWindow.PROJECT, MainWindow.RUN):
            assert window.go_to(page)
            assert window.rehearsal_banner.isVisible() and BANNER in window.rehearsal_banner.text()

        events: list[object] = []
        window.controller.event_received.connect(events.append)
        qtbot.mouseClick(window.run.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.run.last_result is not None and not window.controller.running, timeout=90_000)
        result = window.run.last_result
        assert result is not None and result.exit_code is ExitCode.DONE, result
        assert rehearsal.powered_on  # the operator's hook saw the boot step start
        snap = window.controller.snapshot()
        assert snap is not None and snap.tasks
        # Every step ran, in order, and finished.
        started = [ev for ev in events if isinstance(ev, RunStarted)]
        assert len(started) == 1 and [step for step, _ in started[0].steps] == list(STEPS)
        assert [ev.step for ev in events if isinstance(ev, StepFinished) and ev.ok] == list(STEPS)
        # The GUI's task list holds exactly the jobs the engine announced for each step, every one of them done.
        announced = {job for ev in events if isinstance(ev, StepStarted) for job, _name, _node in ev.jobs}
        assert {t.key for t in snap.tasks} == announced
        assert all(t.status is TaskStatus.DONE for t in snap.tasks), [(t.key, t.status) for t in snap.tasks]
        with_tasks = {t.key.split("/")[0] for t in snap.tasks}
        # credentials is a check without jobs and the manual provider allocates no machines; every step that does
        # the install's work on the nodes or the console shows up.
        assert not with_tasks & {"credentials", "machines"}, with_tasks
        assert with_tasks >= {"verify", "preflight", "boot", "install", "link", "content", "cluster", "packs"}
        # The pages that follow a run saw it to the end.
        assert window.install.is_done() and all(
            (bar := window.install.bar(node)) is not None and bar.value() == bar.maximum()
            for node in window.install.nodes
        )
        assert window.bundles.is_done() and window.bundles.overall.value() == window.bundles.overall.maximum()
        assert any(t.step == "packs" for t in window.bundles.tasks)  # the pack bundles are in the queue too
        assert window.activation.product_setup_id and window.activation.is_done()
        assert window.cluster.cluster_created and window.summary.is_done()
        for page in (MainWindow.INSTALL, MainWindow.BUNDLES, MainWindow.ACTIVATION, MainWindow.SUMMARY):
            assert window.go_to(page)
        # The session lives in the rehearsal's folder, its secrets in memory: the operator's home is untouched.
        assert "Journal: " + str(folder) in window.run.session_label.text()
        assert not (wizard_home / "state" / "sessions").exists()
        assert folder.is_dir()

        window.close()
        assert rehearsal.lab is None  # the lab stopped with the window
        assert not folder.exists()  # and a successful rehearsal leaves nothing behind
    finally:
        rehearsal.close()


@pytest.mark.timeout(150)
def test_gui_rehearsal_pages_follow_the_install_to_the_cluster(qtbot: QtBot, tmp_path: Path) -> None:
    """The lab's nodes through the Install, Bundles and Summary pages: every node's bar reaches 100%, the content
    bundle is uploaded, the kubeconfig is there to open."""
    rehearsal = Rehearsal(tmp_path / "rehearsal", nodes=3, speed=300)
    rehearsal.prepare()
    try:
        window = _window(qtbot, rehearsal)
        assert window.go_to(MainWindow.RUN)
        # The Cluster page follows the cluster's own conditions: which one it works towards, as it changes.
        seen: list[str] = []

        def watch() -> None:
            current = window.cluster.current_condition()
            if current and (not seen or seen[-1] != current):
                seen.append(current)

        timer = QTimer()
        timer.timeout.connect(watch)
        timer.start(50)
        window.controller.start(rehearsal.project_file, until="cluster")
        assert window.go_to(MainWindow.INSTALL)
        page = window.install
        qtbot.waitUntil(lambda: not window.controller.running, timeout=90_000)
        timer.stop()
        assert len(seen) >= 3, seen  # one highlighted at a time, moving on as the leader reports them
        cluster = window.cluster
        assert cluster.stages and all(state == "done" for _, state, _ in cluster.stages), cluster.stages
        assert cluster.timeline.count() == len(cluster.stages) and cluster.timeline_box.isVisibleTo(cluster)
        result = window.run.last_result
        assert result is not None and result.exit_code is ExitCode.DONE, result
        nodes = [n.name for n in rehearsal.lab.nodes] if rehearsal.lab is not None else []
        assert len(nodes) == 3 and sorted(page.nodes) == sorted(nodes)
        for node in nodes:
            bar = page.bar(node)
            assert bar is not None and bar.value() == bar.maximum(), node
        assert page.failed_nodes == set() and page.is_done()
        assert "Installed" in page.log.toPlainText() or "Local UI" in page.log.toPlainText()
        # The content bundle is uploaded; the pack bundles come after the cluster, so the queue is not done yet.
        bundles = window.bundles
        content = bundles.bar("content/upload")
        assert content is not None and content.value() == content.maximum()
        assert not bundles.is_done() and bundles.overall.value() < bundles.overall.maximum()
        assert [bundles.table.item(r, 1).text() for r in range(1, 3)] == ["○ Queued", "○ Queued"]
        assert window.go_to(MainWindow.SUMMARY)
        kubeconfig = window.summary.kubeconfig_path()
        assert kubeconfig is not None and kubeconfig.is_file() and window.summary.kubeconfig_button.isEnabled()
        assert window.summary.urls_list()[0][1].startswith("https://")
        window.close()
    finally:
        rehearsal.close()


def test_closing_before_a_run_stops_the_lab(qtbot: QtBot, tmp_path: Path) -> None:
    rehearsal = Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, keep=True)
    rehearsal.prepare()
    try:
        window = _window(qtbot, rehearsal)
        assert rehearsal.lab is not None
        window.close()
        assert rehearsal.lab is None and rehearsal.folder.is_dir()  # --keep keeps the folder
    finally:
        rehearsal.close()


def test_rehearse_refuses_a_command(tmp_path: Path) -> None:
    out = run_cli(["--rehearse", "validate", str(tmp_path / "p.yaml")], cli_env(tmp_path / "home"))
    assert out.returncode == int(ExitCode.INVALID_INPUT) and "--rehearse" in out.stderr


@pytest.mark.redfish
@pytest.mark.timeout(120)
def test_rehearse_with_a_provider_opens_on_that_providers_lab(
    tmp_path: Path, wizard_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``palette-wizard --rehearse --provider redfish``: the window opens on a project whose nodes boot through the
    simulated BMCs, which answer (with the certificate the project pins) while the window is open."""
    from urllib.parse import urlsplit

    import yaml

    from wizard import cli
    from wizard.core.trust import fetch_certificate

    seen: dict[str, object] = {}

    def fake_gui(project: Path | None, rehearsal: Rehearsal | None = None) -> int:
        assert project is None and rehearsal is not None
        seen["provider"] = rehearsal.provider
        text = rehearsal.project_file.read_text()
        seen["project"] = text
        bmc = yaml.safe_load(text)["nodes"][0]["bmc"]
        where = urlsplit(bmc["address"])
        # The emulator answers TLS with the certificate the project pins.
        presented = fetch_certificate(where.hostname or "", where.port or 443)
        seen["pinned"] = presented.fingerprint == bmc["tls_fingerprint"]
        return 0

    monkeypatch.setattr(cli, "_gui", fake_gui)
    assert cli.main(["--rehearse", "--provider", "redfish", "--nodes", "1"]) == 0
    assert seen["provider"] == "redfish" and "type: redfish" in str(seen["project"])
    assert seen["pinned"] is True


def test_rehearsal_flags_need_rehearse(tmp_path: Path) -> None:
    out = run_cli(["--provider", "redfish"], cli_env(tmp_path / "home"))
    assert out.returncode == int(ExitCode.INVALID_INPUT) and "--provider only goes with --rehearse" in out.stderr
    out = run_cli(["--netns", "validate", str(tmp_path / "p.yaml")], cli_env(tmp_path / "home"))
    assert out.returncode == int(ExitCode.INVALID_INPUT) and "--netns only goes with --rehearse" in out.stderr
