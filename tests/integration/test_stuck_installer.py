"""A node that boots the ISO's interactive installer is detected, not waited on: the lab node given the ISO as
shipped (GRUB default 2) and its seed sits at the interactive installer; the install monitor reports it per node
within its budget, with what to do at the console — and where the operator is at the console by design
(``appliance.boot: console``) the same words come as a warning, and following them gets the node installed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from wizard.core.progress import Progress
from wizard.core.runner import Event, ExitCode, JobFinished, RunFinished
from wizard.install.session import Session
from wizard.lab.machine import Stage
from wizard.rehearsal import ISO_NAME, Rehearsal

pytestmark = [pytest.mark.lab, pytest.mark.flow, pytest.mark.media]


def test_a_node_given_the_shipped_iso_is_reported_at_the_interactive_installer(tmp_path: Path) -> None:
    with Rehearsal(tmp_path / "rehearsal", nodes=3, speed=60) as rehearsal:
        assert rehearsal.lab is not None
        shipped = rehearsal.folder / "files" / ISO_NAME
        events: list[Event] = []

        def on_event(event: Event) -> None:
            events.append(event)
            rehearsal.on_event(event)
            # The operator attaches the ISO as downloaded, not the unattended copy the wizard names.
            rehearsal.boot_iso = shipped

        run = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        code = run.engine(steps=rehearsal.steps(until="install"), on_event=on_event).run()
        assert code is ExitCode.INSTALL_FAILED
        failed = {e.node: e for e in events if isinstance(e, JobFinished) and e.job.startswith("install/")}
        assert sorted(failed) == ["edge-node-1", "edge-node-2", "edge-node-3"]
        for node in rehearsal.lab.nodes:
            error = failed[node.name].error or {}
            # The stuck verdict, per node, not the monitor's overall time limit.
            assert error["title"] == "Waiting at the interactive installer", error
            assert node.name in error["message"] and "ignores the seed" in error["message"]
            assert "press Home Enter" in error["remediation"] and "appliance.boot: unattended" in error["remediation"]
            assert "--only-node" in error["remediation"]
            assert node.machine.stage is Stage.INSTALLER_WAITING and node.machine.seeded_with is None
            assert not node.machine.installed


def test_at_the_console_the_operator_is_told_what_to_press_and_the_node_installs(tmp_path: Path) -> None:
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=60, boot="console") as rehearsal:
        assert rehearsal.lab is not None
        machine = rehearsal.lab.nodes[0].machine
        progress = Progress()
        told: list[str] = []
        stop = threading.Event()

        def operator() -> None:
            # Watches the node's row; when the wizard says it waits at the interactive installer, does as told:
            # resets the node and presses Home, Enter in GRUB's menu.
            while not stop.wait(0.05):
                task = progress.snapshot().task("install/edge-node-1")
                if task is None or "interactive installer" not in task.warning:
                    continue
                told.append(task.warning)
                machine.reset()
                while not stop.wait(0.05):
                    _, menu, now = machine.console_state()
                    if menu is not None and now >= menu.shown_at:
                        machine.press_keys(["home", "enter"])
                        return

        helper = threading.Thread(target=operator, daemon=True)
        helper.start()
        events: list[Event] = []
        run = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        try:
            code = run.engine(
                steps=rehearsal.steps(until="install"),
                progress=progress,
                on_event=lambda e: (events.append(e), rehearsal.on_event(e)),
            ).run()
        finally:
            stop.set()
            helper.join(10)
        finished = next(e for e in events if isinstance(e, RunFinished))
        assert code is ExitCode.DONE, finished.error
        assert told and "press Home Enter" in told[0] and "reset it" in told[0]
        # The boot step said the same before the node was powered on.
        boot = next(e for e in events if isinstance(e, JobFinished) and e.job == "boot/edge-node-1")
        assert boot.status.value == "done"
        assert machine.installed and machine.seeded_with is not None
